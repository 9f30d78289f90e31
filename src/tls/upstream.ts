import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

/**
 * The CAs upstream TLS is verified against: node's bundled roots plus `tls.upstream_ca`.
 * undefined means "node's defaults" (which also honour NODE_EXTRA_CA_CERTS). There is
 * deliberately no way to turn verification off.
 */
export function upstreamCaList(upstreamCa: string | undefined): string[] | undefined {
  if (!upstreamCa) return undefined;
  let extra: string;
  try {
    extra = readFileSync(upstreamCa, 'utf8');
  } catch (err) {
    throw new Error(`tls.upstream_ca: cannot read ${upstreamCa} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!extra.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`tls.upstream_ca: ${upstreamCa} holds no PEM certificate`);
  return [...rootCertificates, extra];
}
