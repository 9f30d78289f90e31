import { IncomingMessage, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { Duplex, Transform, Writable } from 'node:stream';
import { errors, type Dispatcher } from 'undici';
import { CredproxyError } from '../errors.js';
import { clientResponseHeaderList, clientResponseHeaders } from './headers.js';
import { decodersFor, scrubbable, scrubHeaders, ScrubStream, scrubUrlHeaders } from './scrub.js';
import type { UpstreamRequest } from './types.js';

export interface ForwardOptions {
  headersTimeout: number;
  /**
   * When it returns true for the upstream status, the answer is read and dropped instead of
   * sent to the client (a 401 that a refresh and replay will answer instead).
   */
  holdBack?: (status: number) => boolean;
  /** called when the upstream's response headers arrive (upstream latency metric) */
  onResponse?: () => void;
  /** secrets to replace in the response headers and text body (`scrub_responses`, scrub.ts) */
  scrub?: readonly string[];
  /**
   * Ask for a protocol switch (`Upgrade: websocket`, undici's `upgrade` option). On 101 the
   * upstream socket goes to `onUpgrade`; any other answer is relayed to `res` like every
   * other response, filtered and scrubbed the same way.
   */
  upgrade?: { protocol: string; onUpgrade(statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void };
  /** the injected values, always replaced in Location, Content-Location, Link and Refresh */
  redact?: readonly string[];
}

/**
 * Sends the request with undici's `dispatch()` and relays the answer straight into the
 * client's response, so bodies of any size flow with backpressure and are never held whole.
 * Resolves with the upstream status once the body is through. A client that goes away
 * aborts the upstream request.
 *
 * This is what undici's `stream()` does, without the layers a proxy does not use (an
 * AsyncResource per request, an AbortController and its listeners, `finished()` on the
 * response, a promise around a callback): the CPU profile showed them on every request.
 */
export function forward(agent: Dispatcher, up: UpstreamRequest, res: ServerResponse, opts: ForwardOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const relay = new Relay(res, up.body, opts, resolve, reject);
    try {
      agent.dispatch(
        {
          origin: up.origin,
          path: up.path,
          method: up.method as Dispatcher.HttpMethod,
          headers: up.headers,
          body: up.body,
          headersTimeout: opts.headersTimeout,
          bodyTimeout: opts.headersTimeout,
          ...(opts.upgrade ? { upgrade: opts.upgrade.protocol } : {}),
          // No redirect interceptor on the agent: redirects go back to the client untouched,
          // and the proxy never follows one with a credential.
        },
        relay,
      );
    } catch (err) {
      relay.onResponseError(undefined, err as Error);
    }
  });
}

type Controller = Dispatcher.DispatchController;

/**
 * undici's handler (the controller API of undici 7) for one upstream request: the answer
 * goes to `res`, or is dropped when held back. Backpressure is the controller's pause and
 * resume, driven by the sink's `drain`.
 */
class Relay implements Dispatcher.DispatchHandler {
  private status = 0;
  private controller: Controller | undefined;
  /** the client went away: abort as soon as undici hands us the means */
  private gone = false;
  /** the upstream answer is being written to the client */
  private streaming = false;
  private discarding = false;
  private complete = false;
  private settled = false;
  /** the sink whose `drain` will resume undici, while the relay waits on one */
  private waitingOn: Writable | undefined;
  /** where the body goes: the response, or a scrubber (and decoders) in front of it */
  private sink: Writable;
  /** decoders to put in front of the scrubber at the first body byte (an empty body cannot be decoded) */
  private decode: Array<() => Transform> | undefined;
  /** why the answer is refused rather than relayed */
  private refused: CredproxyError | undefined;

  constructor(
    private readonly res: ServerResponse,
    private body: UpstreamRequest['body'],
    private readonly opts: ForwardOptions,
    private readonly resolve: (status: number) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.sink = res;
    res.on('close', this.onClose);
    if (res.destroyed) this.gone = true;
    if (body && !Buffer.isBuffer(body)) body.on('error', (err: Error) => this.onResponseError(undefined, err));
  }

  private readonly onClose = (): void => {
    if (this.res.writableFinished) return;
    this.gone = true;
    if (this.complete) return this.settle();
    this.abort();
  };

  private abort(reason?: Error): void {
    // undici's abort without a reason is its RequestAbortedError.
    (this.controller?.abort as ((reason?: Error) => void) | undefined)?.call(this.controller, reason);
  }

  private settle(err?: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.res.off('close', this.onClose);
    if (this.onDrain) this.waitingOn?.off('drain', this.onDrain);
    if (err) this.reject(err);
    else this.resolve(this.status);
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.gone) this.abort();
  }

  /** 101 to an upgrade request: the upstream socket is the caller's now. */
  onRequestUpgrade(_controller: Controller, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.status = statusCode;
    this.opts.onResponse?.();
    if (!this.opts.upgrade) {
      socket.destroy();
      return this.settle(upstreamError(new Error('unexpected protocol switch')));
    }
    this.opts.upgrade.onUpgrade(statusCode, headers, socket);
    this.settle();
  }

  onResponseStart(controller: Controller, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx: node answers the client's own 100-continue
    this.status = statusCode;
    this.opts.onResponse?.();
    if (this.opts.holdBack?.(statusCode)) {
      this.discarding = true;
      return;
    }
    const secrets = this.opts.scrub;
    if (secrets && secrets.length > 0) {
      let out = clientResponseHeaders(headers);
      const text = scrubbable(headers);
      if (text) {
        // An upstream that compressed although asked for identity: decode to scrub, or refuse.
        const { decoders, unknown } = decodersFor(headers);
        if (unknown !== undefined) return this.refuse(unknown);
        if (decoders.length > 0) {
          this.decode = decoders;
          delete out['content-encoding'];
        }
        // A scrubbed body changes length: it goes chunked.
        delete out['content-length'];
      }
      out = scrubHeaders(out, secrets);
      if (text) {
        const scrub = new ScrubStream(secrets);
        scrub.pipe(this.res);
        this.sink = scrub;
      }
      this.res.writeHead(statusCode, out);
    } else {
      // A redirect can carry a query-injected key back: URL headers are always scrubbed.
      this.res.writeHead(statusCode, scrubUrlHeaders(clientResponseHeaderList(headers), this.opts.redact ?? []));
    }
    this.streaming = true;
    if (this.sink.writableNeedDrain) this.pause(controller);
  }

  /**
   * Backpressure: undici stops reading until the sink drains. The `drain` listener is added
   * only when a write is refused, not for every response: most answers fit the socket's
   * buffer, and a listener added and removed per request showed in the profile.
   */
  private pause(controller: Controller): void {
    controller.pause();
    if (this.waitingOn === this.sink) return;
    // Made on the first refusal only: most relays never need it.
    this.onDrain ??= () => {
      this.waitingOn = undefined;
      this.controller?.resume();
    };
    this.waitingOn?.off('drain', this.onDrain);
    this.waitingOn = this.sink;
    this.sink.once('drain', this.onDrain);
  }

  private onDrain: (() => void) | undefined;

  /** A text body in an encoding credproxy cannot decode cannot be scrubbed: 502, nothing relayed. */
  private refuse(encoding: string): void {
    this.discarding = true;
    this.refused = new CredproxyError(
      'upstream_error',
      `the upstream answered with Content-Encoding "${encoding}", which credproxy cannot decode to scrub the response (scrub_responses): refused`,
    );
    this.abort(this.refused);
  }

  /** Puts the decoders in front of the scrubber, the first one now taking the body. */
  private startDecoding(makers: Array<() => Transform>): void {
    const chain = makers.map((make) => make());
    let head: Writable = this.sink;
    for (let i = chain.length - 1; i >= 0; i--) {
      chain[i]!.pipe(head);
      head = chain[i]!;
    }
    // A body that does not decode: the client is cut off (headers are out), never sent it raw.
    for (const d of chain) d.on('error', () => this.res.destroy());
    this.sink = head;
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.discarding) return;
    if (this.decode) {
      this.startDecoding(this.decode);
      this.decode = undefined;
    }
    if (!this.sink.write(chunk)) this.pause(controller);
  }

  onResponseEnd(): void {
    this.complete = true;
    if (this.discarding) return this.settle(this.refused);
    // The body is all handed to the client's socket (written or queued there): settled now,
    // without a 'finish' listener and closure per request. A client that is gone meanwhile
    // ends the same way as before: the status is the upstream's, the socket simply closes.
    if (this.sink === this.res) {
      this.res.end();
      return this.settle();
    }
    this.res.once('finish', () => this.settle());
    this.sink.end();
  }

  onResponseError(_controller: Controller | undefined, err: Error): void {
    if (this.settled) return;
    if (this.refused) return this.settle(this.refused);
    const body = this.body;
    this.body = null;
    if (body && !Buffer.isBuffer(body) && !body.destroyed) {
      // As undici does: a request body that is the client's IncomingMessage is destroyed
      // without its socket (the error answer still has to go out on it).
      if (body instanceof IncomingMessage) (body as { socket: unknown }).socket = null;
      body.destroy(err);
    }
    if (this.streaming || this.res.headersSent) {
      // The answer was under way: all that is left is to cut the client off, so it sees a
      // truncated body rather than a complete-looking wrong one.
      this.res.destroy();
      return this.settle();
    }
    this.settle(upstreamError(err));
  }
}

export function upstreamError(err: unknown): CredproxyError {
  if (err instanceof CredproxyError) return err;
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.ConnectTimeoutError || err instanceof errors.BodyTimeoutError) {
    return new CredproxyError('upstream_timeout', `the upstream did not answer in time (${(err as Error).message})`);
  }
  const code = (err as NodeJS.ErrnoException).code;
  const detail = code ?? (err as Error).message ?? 'unknown error';
  return new CredproxyError('upstream_error', `the upstream could not be reached or answered garbage (${detail})`);
}
