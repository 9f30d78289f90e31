import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';

/** The combined CA bundle `credproxy env` writes for clients, inside `tls.ca_dir`. */
export const BUNDLE_FILE = 'bundle.pem';

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The CAs passthrough upstreams are verified against. When credproxy terminates a tunnel to
 * a host no integration owns (an entity-token client's, see proxy/tunnel.ts), the client can
 * no longer check that host's certificate itself, so credproxy checks it against what the
 * client was told to trust: the bundle `credproxy env` wrote from the client's environment
 * (its SSL_CERT_FILE, the system CAs), less credproxy's own CA, on top of the usual upstream
 * list. The file may appear or change while the proxy runs; it is re-read when it does.
 */
export function passthroughTrust(caDir: string | undefined, ownCaPem: string | undefined, upstreamCa: string[] | undefined): () => string[] | undefined {
  const base = upstreamCa ?? [...rootCertificates];
  let seen: number | undefined;
  let list: string[] | undefined = upstreamCa;
  return () => {
    if (caDir === undefined) return upstreamCa;
    let mtime: number | undefined;
    try {
      mtime = statSync(join(caDir, BUNDLE_FILE)).mtimeMs;
    } catch {
      mtime = undefined;
    }
    if (mtime === seen) return list;
    seen = mtime;
    list = upstreamCa;
    if (mtime !== undefined) {
      try {
        const own = ownCaPem?.trim();
        const extra = (readFileSync(join(caDir, BUNDLE_FILE), 'utf8').match(PEM) ?? []).filter((pem) => pem.trim() !== own);
        if (extra.length > 0) list = [...base, ...extra];
      } catch {
        /* unreadable: the usual list */
      }
    }
    return list;
  };
}
