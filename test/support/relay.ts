import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP relay in front of a real server on 127.0.0.1 (Redis, PostgreSQL), so a test can make
 * it unreachable for the process under test (`cut`) and bring it back (`restore`) without
 * touching the server other tests and helpers use. `stall` keeps connections open but stops
 * forwarding (a paused or black-holed server).
 */
export class TcpRelay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private stalled = false;
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<this> {
    await this.listen();
    return this;
  }

  /** every open connection dropped, new ones refused */
  async cut(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const sock of this.sockets) sock.destroy();
    this.sockets.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /** listening again on the same port */
  async restore(): Promise<void> {
    this.stalled = false;
    if (!this.server) await this.listen();
  }

  /** connections stay open, nothing is forwarded either way */
  stall(): void {
    this.stalled = true;
    for (const sock of this.sockets) sock.pause();
  }

  async close(): Promise<void> {
    await this.cut();
  }

  private listen(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
        if (this.stalled) s.pause();
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        this.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }
}
