/*
 * The principal step of the pipeline: who is calling and for whom. The parsers it uses live
 * beside it (client-auth.ts: client keys; entity-token.ts: `cpx_…` tokens; identify.ts: the
 * entity header, proxy user and label header); the decisions are made here, once, for plain
 * requests, requests inside terminated tunnels, WebSocket upgrades and CONNECT lines.
 */
import type { IncomingMessage } from 'node:http';
import type { IntegrationConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import type { EntityToken } from '../tokens/entity-tokens.js';
import { proxyAuthorizationOf } from './client-auth.js';
import { entityWithToken, labelWithToken, proxyEntityToken, takeEntityToken, verifyProxyToken } from './entity-token.js';
import { connectionLabel, identify, proxyUser } from './identify.js';
import type { RequestInfo } from './types.js';

/**
 * Who is calling, as far as it is known before the target is read: the client key (or the
 * entity token standing in for one) presented in `Proxy-Authorization`.
 */
export interface Caller {
  /** the client's name, `token:<id>` for an entity token; undefined without `clients` */
  client: string | undefined;
  /** the verified entity token of Proxy-Authorization, if it carried one */
  token: EntityToken | undefined;
  /** the request's (or, inside a tunnel, the CONNECT's) one Proxy-Authorization */
  proxyAuthorization: string | undefined;
}

/** Who a request acts for, and as whom: everything the pipeline decides about identity. */
export interface Principal {
  client: string | undefined;
  /** the entity the request acts for; undefined on passthrough without one */
  entity: string | undefined;
  /** the connection label; undefined for the default connection (and on passthrough) */
  label: string | undefined;
  /** where the entity came from */
  via: 'header' | 'proxy-user' | 'token' | undefined;
  /** the entity token the request was identified by, if any */
  token: EntityToken | undefined;
}

/** The request as it may leave credproxy: an entity token it carried is taken off it. */
export interface Outgoing {
  rawHeaders: readonly string[];
  pathWithSearch: string;
}

/**
 * The caller of a `Proxy-Authorization` whose entity token (if any) was verified already:
 * the token stands in for a client key; otherwise, with `clients` configured, the key must
 * be one of theirs (407 otherwise).
 */
export function callerOf(rt: Runtime, proxyAuthorization: string | undefined, token: EntityToken | undefined): Caller {
  const client = token ? `token:${token.id}` : rt.current.clients?.authenticate(proxyAuthorization);
  return { client, token, proxyAuthorization };
}

/**
 * Step one of every proxied request (plain, inside a terminated tunnel, or an upgrade):
 * authentication comes first, so an unauthenticated client learns nothing, not even whether
 * its target parses. Inside a tunnel the CONNECT carried the proxy credentials.
 */
export function authenticate(rt: Runtime, req: IncomingMessage, tunnelAuthorization?: { proxyAuthorization: string | undefined }): Promise<Caller> | Caller {
  const proxyAuthorization = tunnelAuthorization ? tunnelAuthorization.proxyAuthorization : proxyAuthorizationOf(req);
  // Without an entity token there is nothing to look up: no promise on the common path.
  if (proxyEntityToken(proxyAuthorization) === undefined) return callerOf(rt, proxyAuthorization, undefined);
  return verifyProxyToken(rt.store.kv, proxyAuthorization).then((token) => callerOf(rt, proxyAuthorization, token));
}

/**
 * Step two, once the route is known: the entity (entity token, else the entity header, else
 * the proxy user name), whether the client may act for it, and, on an integration's host,
 * that there is one and which of its connections (label) the request wants. `info` is
 * filled as it goes, so a refused request still logs what was known.
 */
export function resolvePrincipal(
  rt: Runtime,
  req: IncomingMessage,
  caller: Caller,
  ctx: { integration: IntegrationConfig | undefined; pathWithSearch: string; hostname: string; inTunnel?: boolean; info: RequestInfo },
): Resolved | Promise<Resolved> {
  const taken = takeEntityToken(rt.store.kv, req.rawHeaders, ctx.pathWithSearch, ctx.integration, caller.token);
  // Without an entity token in the request there is nothing to look up: no promise.
  return taken instanceof Promise ? taken.then((t) => principalOf(rt, req, caller, ctx, t)) : principalOf(rt, req, caller, ctx, taken);
}

type Resolved = { principal: Principal; outgoing: Outgoing };
type PrincipalContext = Parameters<typeof resolvePrincipal>[3];

function principalOf(rt: Runtime, req: IncomingMessage, caller: Caller, ctx: PrincipalContext, tokenUse: Awaited<ReturnType<typeof takeEntityToken>>): Resolved {
  const settings = rt.current.config.settings;
  const { integration, info } = ctx;
  const identity = identify(req, settings.entity_header, tokenUse ? undefined : caller.proxyAuthorization);
  const entity = entityWithToken(identity, tokenUse);
  info.entity = entity;
  if (caller.client !== undefined && !caller.token) rt.current.clients?.authorize(caller.client, entity);
  let label: string | undefined;
  if (integration) {
    info.integration = integration.name;
    if (!entity) {
      // Inside a tunnel the client often cannot add headers (git, SDKs): name what it can do instead.
      const how = ctx.inTunnel
        ? `name the entity with the ${settings.entity_header} header, or as the proxy user on the CONNECT (HTTPS_PROXY=http://ENTITY:KEY@proxy; git sends it only with http.proxyAuthMethod=basic), or start the client with credproxy run --entity ENTITY, whose relay names it`
        : `name the entity with the ${settings.entity_header} header, or as the proxy user (HTTP_PROXY=http://ENTITY:KEY@proxy)`;
      throw new CredproxyError('entity_required', `${ctx.hostname} belongs to integration "${integration.name}": ${how}`);
    }
    label = labelWithToken(connectionLabel(identity), tokenUse);
    info.label = label;
  }
  return {
    principal: { client: caller.client, entity, label, via: tokenUse ? 'token' : identity.via, token: tokenUse?.token },
    outgoing: tokenUse ?? { rawHeaders: req.rawHeaders, pathWithSearch: ctx.pathWithSearch },
  };
}

/**
 * The principal of a `CONNECT` line: the client (or entity token), and for a client key the
 * proxy user name it may act for (checked against its `entities` here; the requests inside
 * a terminated tunnel are identified again, one by one). The entity token of the
 * Proxy-Authorization must be verified first (verifyConnectToken).
 */
export function connectPrincipal(rt: Runtime, req: IncomingMessage, token: EntityToken | undefined): { principal: Principal; caller: Caller } {
  const caller = callerOf(rt, proxyAuthorizationOf(req), token);
  if (token) return { principal: { client: caller.client, entity: token.entity, label: token.label, via: 'token', token }, caller };
  const user = proxyUser(caller.proxyAuthorization);
  if (caller.client !== undefined) rt.current.clients?.authorize(caller.client, user);
  return { principal: { client: caller.client, entity: user, label: undefined, via: user === undefined ? undefined : 'proxy-user', token: undefined }, caller };
}

/**
 * The entity token a CONNECT's Proxy-Authorization carries, verified in the store; undefined
 * (without waiting) when it carries none. A repeated header is left to connectPrincipal to refuse.
 */
export function verifyConnectToken(rt: Runtime, req: IncomingMessage): Promise<EntityToken | undefined> | undefined {
  let header: string | undefined;
  try {
    header = proxyAuthorizationOf(req);
  } catch {
    return undefined;
  }
  return proxyEntityToken(header) === undefined ? undefined : verifyProxyToken(rt.store.kv, header);
}
