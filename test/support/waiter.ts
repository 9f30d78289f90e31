/**
 * A queue of things that happen later (reload outcomes, webhook deliveries): `next()`
 * resolves with the next one, whether it already happened or not. Tests wait on events,
 * never on the clock.
 */
export class Waiter<T> {
  private readonly items: T[] = [];
  private readonly waiting: Array<(item: T) => void> = [];

  push = (item: T): void => {
    const w = this.waiting.shift();
    if (w) w(item);
    else this.items.push(item);
  };

  next(): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** The next item that satisfies `test`, dropping the others (file events come in bursts). */
  async until(test: (item: T) => boolean): Promise<T> {
    for (;;) {
      const item = await this.next();
      if (test(item)) return item;
    }
  }

  get length(): number {
    return this.items.length;
  }
}
