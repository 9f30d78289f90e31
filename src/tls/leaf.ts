import { createSecureContext, type SecureContext } from 'node:tls';
import type { CertificateAuthority } from './ca.js';
import { createLeafSigner, type LeafSigner } from './leaf-signer.js';

const HOUR = 3600 * 1000;
/**
 * Certificates in the making at once. The signature runs on the thread pool, but building
 * each certificate and its TLS context is a few hundred microseconds of work on the event
 * loop: a handful at a time, each after one turn of the loop, keeps a burst of new names from
 * running back to back while other connections wait.
 */
const SIGNING_AT_ONCE = 2;
const DAY = 24 * HOUR;

export interface LeafOptions {
  /** how long a leaf certificate is valid; short, so a leaked leaf key is worth little */
  validityMs?: number;
  /** names kept at once; `*.example.com` integrations could otherwise grow the cache without end */
  maxHosts?: number;
}

interface Entry {
  context: SecureContext;
  renewAt: number;
}

/**
 * Leaf certificates for intercepted hosts, signed by the local CA: one per certificate name
 * (a host, or the `*.parent` wildcard that covers it, see RoutingTable.leafName), made on
 * the first tunnel to it and reused by every later connection until shortly before it
 * expires. Signing is asynchronous (node's crypto, src/tls/leaf-signer.ts) and single-flight:
 * handshakes that arrive while a name is being signed wait for that one signature.
 */
export class LeafCertificates {
  private readonly cache = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<SecureContext>>();
  private signer: Promise<LeafSigner> | undefined;
  private signing = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly validityMs: number;
  private readonly maxHosts: number;
  /** certificates made so far (for tests and the benchmark: once per name, not per connection) */
  issued = 0;

  constructor(private readonly ca: CertificateAuthority, opts: LeafOptions = {}) {
    this.validityMs = opts.validityMs ?? 7 * DAY;
    this.maxHosts = opts.maxHosts ?? 1000;
  }

  /** Whether a tunnel to `name` needs no new signature (a fresh certificate, or one on its way). */
  has(name: string, now = Date.now()): boolean {
    const hit = this.cache.get(name);
    return (hit !== undefined && hit.renewAt > now) || this.pending.has(name);
  }

  /** The TLS context presenting a certificate for `name` (a DNS name, `*.` wildcard, or an IP address without brackets). */
  contextFor(name: string, now = Date.now()): Promise<SecureContext> {
    const hit = this.cache.get(name);
    if (hit && hit.renewAt > now) {
      // Re-insert so that eviction drops the least recently used name first.
      this.cache.delete(name);
      this.cache.set(name, hit);
      return Promise.resolve(hit.context);
    }
    const inFlight = this.pending.get(name);
    if (inFlight) return inFlight;
    const made = this.inTurn(async () => {
      const { pem, notAfter } = await this.issue(name, now);
      return this.store(name, pem, notAfter, now);
    });
    this.pending.set(name, made);
    // Settled either way, the next caller looks at the cache (or tries again after a failure).
    const clear = () => this.pending.delete(name);
    made.then(clear, clear);
    return made;
  }

  /** Runs `work` when one of SIGNING_AT_ONCE places is free, after letting the event loop turn once. */
  private async inTurn<T>(work: () => Promise<T>): Promise<T> {
    if (this.signing < SIGNING_AT_ONCE) this.signing++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      await new Promise((resolve) => setImmediate(resolve));
      return await work();
    } finally {
      // The place goes straight to the next in line, if any.
      const next = this.waiting.shift();
      if (next) next();
      else this.signing--;
    }
  }

  private async store(name: string, pem: string, notAfter: number, now: number): Promise<SecureContext> {
    const context = createSecureContext({ key: (await this.signerOf()).keyPem, cert: pem });
    this.cache.delete(name);
    this.cache.set(name, { context, renewAt: now + Math.floor((notAfter - now) * 0.8) });
    while (this.cache.size > this.maxHosts) this.cache.delete(this.cache.keys().next().value!);
    return context;
  }

  /** A PEM leaf for `name`; public for tests that inspect the certificate itself. */
  async issue(name: string, now = Date.now()): Promise<{ pem: string; notAfter: number }> {
    const notAfter = Math.min(now + this.validityMs, this.ca.cert.validity.notAfter.getTime());
    this.issued++;
    // notBefore an hour back: tolerate clients whose clock is a little behind.
    const pem = await (await this.signerOf()).sign(name, new Date(now - HOUR), new Date(notAfter));
    return { pem, notAfter };
  }

  /** Made on first use, once: the leaf key pair and the CA key imported into WebCrypto. */
  private signerOf(): Promise<LeafSigner> {
    this.signer ??= createLeafSigner(this.ca);
    return this.signer;
  }
}
