import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AuthDefinition, SchemeConfig } from '../config/scheme-definition.js';
import { common } from '../config/schema.js';
import { obj, str } from '../config/spec.js';
import { CredproxyError } from '../errors.js';
import { fieldInfos, traits } from './fields.js';
import { formPairs } from './oauth1.js';
import { StaticScheme } from './static-scheme.js';
import { defineScheme, type CredentialRequest, type SignableRequest, type SignedHeaders } from './types.js';

const spec = obj({ ...common, region: str(), service: str() }, ['region', 'service']);
type SigV4Config = SchemeConfig<typeof spec>;

/** Services that accept `UNSIGNED-PAYLOAD`, so a body too large to buffer can still be sent. */
const UNSIGNED_PAYLOAD_SERVICES = new Set(['s3', 's3-object-lambda']);
/** Services whose path is signed as sent, not URI-encoded a second time (AWS SigV4 docs). */
const SINGLE_ENCODED_PATH = UNSIGNED_PAYLOAD_SERVICES;

/** Request headers worth signing besides host: the ones a proxy hop cannot change and that AWS cares about. */
const SIGNED = (lower: string) => lower === 'content-type' || lower === 'content-md5' || lower === 'range' || lower.startsWith('x-amz-');
/** Headers the signature sets; a client's own copy is dropped. */
const GENERATED = new Set(['authorization', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256']);

/** node:crypto behind the hash interface @smithy/signature-v4 expects. */
class NodeSha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    const key = secret === undefined || typeof secret === 'string' ? secret : ArrayBuffer.isView(secret) ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength) : new Uint8Array(secret);
    this.h = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {}
}

/**
 * `aws_sigv4`: AWS Signature Version 4 on every request (@smithy/signature-v4, the signer of
 * the AWS SDK), with the connection's access key and the region and service in the YAML. The
 * body hash needs the whole body: bodies up to `limits.replay_body_bytes` are buffered and
 * hashed; larger ones go as UNSIGNED-PAYLOAD where the service allows it (S3), else 413.
 */
export class AwsSigV4Scheme extends StaticScheme<SigV4Config> {
  readonly type = 'aws_sigv4';
  private readonly region: string;
  private readonly service: string;

  constructor(
    definition: AuthDefinition<SigV4Config>,
    private readonly now: () => number = Date.now,
  ) {
    super(definition);
    this.region = definition.config.region;
    this.service = definition.config.service;
  }

  async sign(request: SignableRequest, cred: CredentialRequest): Promise<SignedHeaders> {
    const c = cred.connection?.credentials ?? {};
    const unsignedAllowed = UNSIGNED_PAYLOAD_SERVICES.has(this.service);
    const body = await request.body();
    if (body === undefined && !unsignedAllowed) {
      throw new CredproxyError(
        'payload_too_large',
        `aws_sigv4 must hash the body to sign it, and this one is larger than limits.replay_body_bytes (or came while limits.replay_budget_bytes was spent); service "${this.service}" does not accept UNSIGNED-PAYLOAD, so raise that limit to send it`,
      );
    }
    const headers: Record<string, string> = {};
    for (let i = 0; i < request.headers.length; i += 2) {
      const lower = request.headers[i]!.toLowerCase();
      if (lower === 'host' || (SIGNED(lower) && !GENERATED.has(lower))) {
        const value = request.headers[i + 1]!;
        headers[lower] = headers[lower] === undefined ? value : `${headers[lower]},${value}`;
      }
    }
    if (unsignedAllowed) {
      headers['x-amz-content-sha256'] = body === undefined ? 'UNSIGNED-PAYLOAD' : createHash('sha256').update(body ?? '').digest('hex');
    }
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of formPairs(request.url.search.slice(1))) {
      const had = query[k];
      query[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
    }
    const signer = new SignatureV4({
      service: this.service,
      region: this.region,
      credentials: { accessKeyId: c.access_key_id ?? '', secretAccessKey: c.secret_access_key ?? '', sessionToken: c.session_token },
      sha256: NodeSha256,
      uriEscapePath: !SINGLE_ENCODED_PATH.has(this.service),
      applyChecksum: false,
    });
    const signed = await signer.sign(
      {
        method: request.method,
        protocol: request.url.protocol,
        hostname: request.url.hostname,
        path: request.url.pathname,
        query,
        headers,
        body: body ?? undefined,
      },
      { signingDate: new Date(this.now()) },
    );
    const out: Array<[string, string]> = [];
    for (const name of ['authorization', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256']) {
      const v = signed.headers[name];
      if (v !== undefined) out.push([name, v]);
    }
    // A client's own token or content hash must not travel unsigned next to the signature.
    return { headers: out, remove: [...GENERATED] };
  }
}

export const awsSigV4 = defineScheme<typeof spec>({
  type: 'aws_sigv4',
  spec,
  describe: (config) => ({
    traits: traits({
      fields: fieldInfos(config.fields, [
        { name: 'access_key_id', secret: true, optional: false },
        { name: 'secret_access_key', secret: true, optional: false },
        { name: 'session_token', secret: true, optional: true },
      ]),
      defaultInject: {},
      signs: true,
    }),
  }),
  create: (definition) => new AwsSigV4Scheme(definition),
});
