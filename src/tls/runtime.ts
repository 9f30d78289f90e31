import type { Settings } from '../config/types.js';
import { loadOrCreateCa, type CertificateAuthority } from './ca.js';
import { LeafCertificates } from './leaf.js';
import { upstreamCaList } from './upstream.js';

/** What the proxy needs for TLS on both sides: the local CA and its leaves (when intercepting) and the upstream trust list. */
export interface TlsRuntime {
  ca: CertificateAuthority | undefined;
  /** undefined when `tls.intercept` is off: tunnels to integration hosts then stay untouched */
  leaves: LeafCertificates | undefined;
  /** CAs for verifying upstreams (see upstreamCaList); undefined = node's defaults */
  upstreamCa: string[] | undefined;
}

export function createTlsRuntime(settings: Settings): TlsRuntime {
  const upstreamCa = upstreamCaList(settings.tls.upstream_ca);
  if (!settings.tls.intercept) return { ca: undefined, leaves: undefined, upstreamCa };
  let ca: CertificateAuthority;
  try {
    ca = loadOrCreateCa(settings.tls.ca_dir);
  } catch (err) {
    throw new Error(`tls.ca_dir (${settings.tls.ca_dir}): ${(err as Error).message}`);
  }
  return { ca, leaves: new LeafCertificates(ca), upstreamCa };
}
