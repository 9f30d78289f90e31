import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Runtime } from '../runtime.js';
import type { TunnelContext } from './target.js';
import { ESTABLISHED, type Interceptor } from './tunnel.js';

/** Every TLS record starts with its content type; a handshake (ClientHello) is 22. No HTTP method starts with it. */
const TLS_HANDSHAKE = 0x16;

/** A client that opens a tunnel and then says nothing, or never finishes its handshake, is dropped (like headersTimeout). */
export const FIRST_BYTES_TIMEOUT_MS = 30_000;

/**
 * Terminates tunnels to integration hosts. After `200 Connection Established` the first
 * byte tells what the client speaks: a TLS handshake is answered with a leaf certificate for
 * the CONNECT host (never the SNI the client sends: the CONNECT line decides the target),
 * anything else is taken as plain HTTP (undici's ProxyAgent tunnels http:// URLs too).
 * Either way the connection is handed to `inner`, an http.Server that never listens and
 * runs each request through the proxy pipeline with the tunnel as its target.
 */
export function createInterceptor(rt: Runtime, inner: Server, tunnels: WeakMap<Duplex, TunnelContext>): Interceptor {
  return function intercept(socket: Socket, head: Buffer, tunnel: Omit<TunnelContext, 'secure'>, leafName: string): void {
    socket.write(ESTABLISHED);
    socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy());
    const start = (first: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) terminateTls(rt, inner, tunnels, socket, tunnel, leafName);
      else {
        tunnels.set(socket, { ...tunnel, secure: false });
        inner.emit('connection', socket);
        process.nextTick(() => socket.resume());
      }
    };
    if (head.length > 0) start(head);
    else socket.once('data', start);
  };
}

function terminateTls(rt: Runtime, inner: Server, tunnels: WeakMap<Duplex, TunnelContext>, socket: Socket, tunnel: Omit<TunnelContext, 'secure'>, leafName: string): void {
  // Signing a new leaf is asynchronous (src/tls/leaf.ts); the ClientHello waits in the paused socket meanwhile.
  rt.tls.leaves!.contextFor(leafName).then(
    (secureContext) => {
      if (socket.destroyed) return; // the client gave up (or timed out) while the certificate was made
      handshake(rt, inner, tunnels, socket, tunnel, secureContext);
    },
    (err: unknown) => {
      rt.log.error({ err, host: tunnel.hostname }, 'could not issue a leaf certificate');
      socket.destroy();
    },
  );
}

function handshake(rt: Runtime, inner: Server, tunnels: WeakMap<Duplex, TunnelContext>, socket: Socket, tunnel: Omit<TunnelContext, 'secure'>, secureContext: SecureContext): void {
  // The TLSSocket reads what the raw socket already buffered (the ClientHello put back above).
  const tls = new TLSSocket(socket, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
  tunnels.set(tls, { ...tunnel, secure: true });
  const onHandshakeError = (err: Error) => {
    // Typically a client that does not trust credproxy's CA: it aborts with an alert, as it should.
    rt.log.info({ host: tunnel.hostname, port: tunnel.port, err: err.message }, 'TLS handshake with the client failed');
    tls.destroy();
  };
  tls.once('error', onHandshakeError);
  tls.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => tls.destroy());
  tls.once('secure', () => {
    tls.setTimeout(0); // from here on the inner server's own timeouts apply
    tls.off('error', onHandshakeError);
    inner.emit('connection', tls);
  });
}
