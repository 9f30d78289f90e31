import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch as undiciFetch, request, type Dispatcher } from 'undici';
import { OPERATIONS, type Operation, type OperationId } from '../api/operations.js';
import type {
  AuditEntryView,
  ConnectionView,
  ConnectLinkRequest,
  ConnectLinkView,
  EntityTokenRequest,
  EntityTokenView,
  IntegrationView,
  PutConnectionRequest,
  StoredConnectionView,
} from '../api/shapes.js';
import { CredproxyApiError, CredproxyUnreachableError } from './errors.js';
import { proxyDispatcher, type ActAs } from './proxy.js';

export { CredproxyApiError, CredproxyUnreachableError } from './errors.js';
export type { ActAs } from './proxy.js';
export type {
  AuditEntryView as AuditEntry,
  ConnectionView as Connection,
  ConnectLinkRequest,
  ConnectLinkView as ConnectLink,
  EntityTokenRequest,
  EntityTokenView as EntityToken,
  IntegrationView as Integration,
  PutConnectionRequest,
  StoredConnectionView as StoredConnection,
};

export interface CredproxyClientOptions {
  /** credproxy's URL: its admin API and its proxy share one port (default http://127.0.0.1:8080) */
  url?: string;
  /** the admin token, for the admin API */
  adminToken?: string;
  /** where proxy traffic goes, when not `url` */
  proxyUrl?: string;
  /** a `clients[].key`, when credproxy requires Proxy-Authorization */
  proxyKey?: string;
  /** credproxy's CA certificate (PEM, `npx credproxy ca`), trusted by dispatcher()/fetch() for intercepted HTTPS */
  ca?: string | Buffer;
  /** per admin request (default 30 s) */
  timeoutMs?: number;
  /** attempts for an answer 503 store_unavailable, the first included (default 3); nothing else is retried */
  attempts?: number;
  /** the first back-off (default 200 ms); doubled each attempt, jittered */
  backoffMs?: number;
}

export interface ConnectionRef {
  label?: string;
}

export interface AuditQuery {
  entity?: string;
  integration?: string;
  /** a Date, an ISO 8601 time or milliseconds since the epoch */
  since?: Date | string | number;
  limit?: number;
}

interface Call {
  params?: Record<string, string>;
  query?: Record<string, string | undefined>;
  body?: unknown;
}

/**
 * A typed client of credproxy's admin API (the OpenAPI document at /api/openapi.json, shipped
 * as schema/openapi.json) and of its proxy. Every method is one documented operation: see
 * `CredproxyClient.operations`. Errors are CredproxyApiError (status, X-Credproxy-Error code)
 * or CredproxyUnreachableError.
 */
export class CredproxyClient {
  /** Which method calls which operationId: test/client checks it against the document. */
  static readonly operations: Partial<Record<OperationId, string>> = {
    health: 'health',
    ready: 'ready',
    getOpenApi: 'openapi',
    listIntegrations: 'integrations.list',
    getIntegration: 'integrations.get',
    listConnections: 'connections.list',
    getConnection: 'connections.get',
    putConnection: 'connections.put',
    deleteConnection: 'connections.delete',
    createConnectLink: 'connections.connectLink',
    createEntityToken: 'tokens.issue',
    revokeEntityToken: 'tokens.revoke',
    queryAudit: 'audit.query',
  };

  readonly url: string;
  private readonly agent = new Agent({ connections: 4 });
  private readonly dispatchers = new Set<Dispatcher>();

  constructor(private readonly options: CredproxyClientOptions = {}) {
    this.url = (options.url ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  }

  health = () => this.call<{ status: 'ok'; worker?: number }>(OPERATIONS.health);
  ready = () => this.call<{ status: 'ready'; integrations: number }>(OPERATIONS.ready);
  openapi = () => this.call<Record<string, unknown>>(OPERATIONS.getOpenApi);

  readonly integrations = {
    list: async (): Promise<IntegrationView[]> => (await this.call<{ integrations: IntegrationView[] }>(OPERATIONS.listIntegrations)).integrations,
    get: (name: string) => this.call<IntegrationView>(OPERATIONS.getIntegration, { params: { name } }),
  };

  readonly connections = {
    list: async (entity: string): Promise<ConnectionView[]> => (await this.call<{ connections: ConnectionView[] }>(OPERATIONS.listConnections, { params: { entity } })).connections,
    get: (entity: string, integration: string, ref: ConnectionRef = {}) =>
      this.call<ConnectionView>(OPERATIONS.getConnection, { params: { entity, integration }, query: { label: ref.label } }),
    put: (entity: string, integration: string, body: PutConnectionRequest, ref: ConnectionRef = {}) =>
      this.call<StoredConnectionView>(OPERATIONS.putConnection, { params: { entity, integration }, query: { label: ref.label }, body }),
    delete: async (entity: string, integration: string, ref: ConnectionRef = {}): Promise<void> => {
      await this.call(OPERATIONS.deleteConnection, { params: { entity, integration }, query: { label: ref.label } });
    },
    /** A single-use link (10 minutes) where the user connects with OAuth; the connection becomes initiated. */
    connectLink: (entity: string, integration: string, body: ConnectLinkRequest = {}, ref: ConnectionRef = {}) =>
      this.call<ConnectLinkView>(OPERATIONS.createConnectLink, { params: { entity, integration }, query: { label: ref.label }, body }),
  };

  readonly tokens = {
    issue: (entity: string, body: EntityTokenRequest = {}) => this.call<EntityTokenView>(OPERATIONS.createEntityToken, { params: { entity }, body }),
    revoke: async (id: string): Promise<void> => {
      await this.call(OPERATIONS.revokeEntityToken, { params: { id } });
    },
  };

  readonly audit = {
    query: async (q: AuditQuery = {}): Promise<AuditEntryView[]> => {
      const since = q.since instanceof Date ? q.since.toISOString() : q.since === undefined ? undefined : String(q.since);
      const query = { entity: q.entity, integration: q.integration, since, limit: q.limit === undefined ? undefined : String(q.limit) };
      return (await this.call<{ entries: AuditEntryView[] }>(OPERATIONS.queryAudit, { query })).entries;
    },
  };

  /** An undici Dispatcher that sends requests through credproxy as `entity` (and trusts its CA when `ca` is given). */
  dispatcher(as: ActAs): Dispatcher {
    const d = proxyDispatcher({ proxyUrl: this.options.proxyUrl ?? this.url, proxyKey: this.options.proxyKey, ca: this.options.ca }, as);
    this.dispatchers.add(d);
    return d;
  }

  /** A fetch that calls APIs as `entity` through credproxy: `await client.fetch('alice')('https://api.github.com/user')`. */
  fetch(as: string | ActAs): typeof undiciFetch {
    const dispatcher = this.dispatcher(typeof as === 'string' ? { entity: as } : as);
    return ((input: Parameters<typeof undiciFetch>[0], init: Parameters<typeof undiciFetch>[1] = {}) => undiciFetch(input, { ...init, dispatcher })) as typeof undiciFetch;
  }

  /** Closes the connection pools (the admin API's and every dispatcher's), so a script can exit at once. */
  async close(): Promise<void> {
    await Promise.all([this.agent.close(), ...[...this.dispatchers].map((d) => d.close())]);
  }

  private async call<T = unknown>(op: Operation, c: Call = {}): Promise<T> {
    const path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(c.params?.[name] ?? ''));
    const query = new URLSearchParams(Object.entries(c.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined)).toString();
    const url = `${this.url}${path}${query ? `?${query}` : ''}`;
    const attempts = Math.max(1, this.options.attempts ?? 3);
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.once(op, url, c.body)) as T;
      } catch (err) {
        // Only the store's outage is worth waiting out; a 4xx will not change, and other 5xx are not ours to guess at.
        if (!(err instanceof CredproxyApiError && err.status === 503 && err.code === 'store_unavailable') || attempt >= attempts) throw err;
        const base = (this.options.backoffMs ?? 200) * 2 ** (attempt - 1);
        await sleep(base / 2 + Math.random() * (base / 2));
      }
    }
  }

  private async once(op: Operation, url: string, body: unknown): Promise<unknown> {
    const timeout = this.options.timeoutMs ?? 30_000;
    let res;
    try {
      res = await request(url, {
        method: op.method,
        dispatcher: this.agent,
        headers: {
          ...(op.admin && this.options.adminToken ? { authorization: `Bearer ${this.options.adminToken}` } : {}),
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
    } catch (err) {
      throw new CredproxyUnreachableError(this.url, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
    }
    const text = await res.body.text();
    let parsed: unknown;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new CredproxyApiError(res.statusCode, 'unexpected_answer', `${url} answered ${res.statusCode} with something that is not JSON; is it a credproxy?`);
      }
    }
    if (res.statusCode >= 400) {
      const e = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const header = res.headers['x-credproxy-error'];
      const code = typeof header === 'string' ? header : typeof e?.code === 'string' ? e.code : `http_${res.statusCode}`;
      throw new CredproxyApiError(res.statusCode, code, typeof e?.message === 'string' ? e.message : `the API answered ${res.statusCode}`, parsed);
    }
    return parsed;
  }
}
