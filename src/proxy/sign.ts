import { Readable } from 'node:stream';
import type { CredentialRequest, SignableRequest, SignedHeaders } from '../auth/types.js';
import { CredproxyError } from '../errors.js';
import type { Signer, UpstreamRequest } from './types.js';

/** A scheme's per-request signer, bound to the entity's credential by resolveCredential. */
export function bindSigner(
  scheme: { sign?(request: SignableRequest, cred: CredentialRequest): Promise<SignedHeaders> | SignedHeaders },
  cred: CredentialRequest,
): Signer | undefined {
  return scheme.sign ? (request) => scheme.sign!(request, cred) : undefined;
}

/**
 * The URL a signature covers: the request's real origin with its path exactly as sent.
 * `new URL(path, origin)` reads a path starting with `//` as a network-path reference, so
 * `//bucket/key` would be signed for host `bucket` (a host the client chose) and path
 * `/key`. Joined as text, the origin's authority ends before the path's first `/`.
 */
export function signedUrl(origin: string, path: string): URL {
  const url = new URL(`${origin}${path.startsWith('/') ? '' : '/'}${path}`);
  // Belt and braces: whatever the path holds, the signed host is the one the request goes to.
  if (url.origin !== new URL(origin).origin) throw new CredproxyError('bad_request', 'the request path changes the host it would be signed for');
  return url;
}

type Buffered = { kind: 'whole'; body: Buffer } | { kind: 'partial'; head: Buffer[]; rest: Readable };

/** Reads a body up to `limit` bytes; past it, stops reading and keeps what was read for the stream. */
function bufferUpTo(stream: Readable, limit: number): Promise<Buffered> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) {
        stream.pause();
        cleanup();
        resolve({ kind: 'partial', head: chunks, rest: stream });
      }
    };
    const onEnd = () => {
      cleanup();
      resolve({ kind: 'whole', body: Buffer.concat(chunks) });
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(new CredproxyError('bad_request', 'the client closed the connection before its request body was complete'));
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

/**
 * The sign step: after inject and header filtering, a signing scheme (OAuth 1.0a, SigV4)
 * sees the final request and returns the headers that carry its signature. The body is
 * read only if the scheme asks for it: up to `limit` bytes it is buffered (and sent as a
 * buffer); beyond, the scheme is told it is too large and what was read is sent ahead of
 * the rest of the stream.
 */
export async function signUpstream(up: UpstreamRequest, origin: string, sign: Signer, limit: number): Promise<UpstreamRequest> {
  let read: Promise<Buffered> | undefined;
  const source = up.body;
  const body = async (): Promise<Buffer | null | undefined> => {
    if (!source) return null;
    if (Buffer.isBuffer(source)) return source.length > limit ? undefined : source;
    read ??= bufferUpTo(source, limit);
    const b = await read;
    return b.kind === 'whole' ? b.body : undefined;
  };
  const signed = await sign({ method: up.method, url: signedUrl(origin, up.path), headers: up.headers, body });
  const replaced = new Set([...signed.headers.map(([n]) => n.toLowerCase()), ...(signed.remove ?? [])]);
  const headers: string[] = [];
  for (let i = 0; i < up.headers.length; i += 2) {
    if (!replaced.has(up.headers[i]!.toLowerCase())) headers.push(up.headers[i]!, up.headers[i + 1]!);
  }
  for (const [n, v] of signed.headers) headers.push(n, v);
  let sent = source;
  if (read) {
    const b = await read;
    sent = b.kind === 'whole' ? b.body : Readable.from(prepend(b.head, b.rest));
  }
  return { ...up, headers, body: sent };
}

async function* prepend(head: Buffer[], rest: Readable): AsyncGenerator<Buffer> {
  yield* head;
  for await (const chunk of rest) yield chunk as Buffer;
}
