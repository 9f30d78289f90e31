import type { IncomingMessage, ServerResponse } from 'node:http';
import { CredproxyError, isCredproxyError, sendError } from '../errors.js';
import { reportStoreFailure, storeCall } from '../store/failure.js';
import type { Runtime } from '../runtime.js';
import { deleteConnection, getConnection, listConnections, putConnection } from './connections.js';
import { finishFlow } from '../oauth/connect.js';
import { continueFlow, startFlow } from '../oauth/start.js';
import { createConnectLink } from './connect.js';
import { requireAdmin, sendJson } from './http.js';
import { integrationView } from './views.js';
import { createEntityToken, deleteEntityToken } from './tokens.js';
import { getAudit } from './audit.js';
import { clusterMetrics, workerId } from '../cluster.js';
import { guardBody } from '../proxy/body-guard.js';
import { OPERATIONS as OP, type Operation } from './operations.js';
import { openApiDocument } from './openapi.js';
import { dashboardHome, showSignIn, signIn, signOut } from '../ui/dashboard/sign-in.js';
import { integrationsPage } from '../ui/dashboard/integrations.js';
import { entitiesPage } from '../ui/dashboard/entities.js';
import { connectLinkAction, connectionPage, deleteAction, deletePage } from '../ui/dashboard/connection.js';
import { revokeAction, tokensPage } from '../ui/dashboard/tokens.js';
import { verifyAction } from '../ui/dashboard/verify.js';
import { activityPage } from '../ui/dashboard/activity.js';
import { allowFraming } from '../ui/page.js';
import { sendLogo } from '../ui/logo.js';

type Handler = (rt: Runtime, req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void> | void;
interface Route {
  method: string;
  pattern: RegExp;
  admin: boolean;
  handler: Handler;
  /**
   * what the route answers, for the OpenAPI document and the client (api/operations.ts).
   * Absent only for the dashboard's pages under /ui/ (src/ui/dashboard): they are for a person
   * in a browser with a session cookie, not part of the API a program calls, so the admin
   * API document leaves them out (test/api/openapi.test.ts checks that only /ui/ does).
   */
  op?: Operation;
}

const SEG = '([^/]+)';
/** Exported for test/api/openapi.test.ts, which walks it against the document. */
export const routes: Route[] = [
  {
    method: 'GET',
    pattern: /^\/healthz$/,
    admin: false,
    op: OP.health,
    // Under --workers, which worker answered: how an operator (and the tests) see the load spread.
    handler: (_rt, _q, res) => sendJson(res, 200, workerId() === undefined ? { status: 'ok' } : { status: 'ok', worker: workerId() }),
  },
  {
    method: 'GET',
    pattern: /^\/readyz$/,
    admin: false,
    op: OP.ready,
    handler: async (rt, _q, res) => {
      await storeCall('ping', () => rt.store.ping());
      sendJson(res, 200, { status: 'ready', integrations: rt.current.config.integrations.size });
    },
  },
  {
    method: 'GET',
    pattern: /^\/metrics$/,
    admin: false,
    op: OP.metrics,
    handler: async (rt, _q, res) => {
      // Under --workers, every worker's counts summed by the primary, whichever worker took the scrape.
      const text = workerId() === undefined ? await rt.metrics.registry.metrics() : await clusterMetrics();
      res.writeHead(200, { 'content-type': rt.metrics.registry.contentType }).end(text);
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/integrations$/,
    admin: true,
    op: OP.listIntegrations,
    handler: (rt, _q, res) => sendJson(res, 200, { integrations: [...rt.current.config.integrations.values()].map(integrationView) }),
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/api/integrations/${SEG}$`),
    admin: true,
    op: OP.getIntegration,
    handler: (rt, _q, res, [name]) => {
      const i = rt.current.config.integrations.get(name!);
      if (!i) throw new CredproxyError('not_found', `no integration named "${name}"`);
      sendJson(res, 200, integrationView(i));
    },
  },
  { method: 'GET', pattern: new RegExp(`^/api/entities/${SEG}/connections$`), admin: true, op: OP.listConnections, handler: (rt, _q, res, [e]) => listConnections(rt, res, e!) },
  { method: 'GET', pattern: new RegExp(`^/api/entities/${SEG}/connections/${SEG}$`), admin: true, op: OP.getConnection, handler: (rt, req, res, [e, i]) => getConnection(rt, req, res, e!, i!) },
  { method: 'PUT', pattern: new RegExp(`^/api/entities/${SEG}/connections/${SEG}$`), admin: true, op: OP.putConnection, handler: (rt, req, res, [e, i]) => putConnection(rt, req, res, e!, i!) },
  { method: 'DELETE', pattern: new RegExp(`^/api/entities/${SEG}/connections/${SEG}$`), admin: true, op: OP.deleteConnection, handler: (rt, req, res, [e, i]) => deleteConnection(rt, req, res, e!, i!) },
  { method: 'POST', pattern: new RegExp(`^/api/entities/${SEG}/connections/${SEG}/connect$`), admin: true, op: OP.createConnectLink, handler: (rt, req, res, [e, i]) => createConnectLink(rt, req, res, e!, i!) },
  { method: 'POST', pattern: new RegExp(`^/api/entities/${SEG}/tokens$`), admin: true, op: OP.createEntityToken, handler: (rt, req, res, [e]) => createEntityToken(rt, req, res, e!) },
  { method: 'DELETE', pattern: new RegExp(`^/api/tokens/${SEG}$`), admin: true, op: OP.revokeEntityToken, handler: (rt, _q, res, [id]) => deleteEntityToken(rt, res, id!) },
  { method: 'GET', pattern: /^\/api\/openapi\.json$/, admin: true, op: OP.getOpenApi, handler: (_rt, _q, res) => sendJson(res, 200, openApiDocument()) },
  { method: 'GET', pattern: /^\/api\/audit$/, admin: true, op: OP.queryAudit, handler: getAudit },
  // The callback before /connect/{integration}, which would otherwise take it.
  { method: 'GET', pattern: /^\/connect\/callback$/, admin: false, op: OP.connectCallback, handler: finishFlow },
  { method: 'GET', pattern: new RegExp(`^/connect/${SEG}$`), admin: false, op: OP.connectPage, handler: startFlow },
  // An integration's display.logo_file (src/ui/logo.ts), by the hash of its content.
  { method: 'GET', pattern: new RegExp(`^/connect/${SEG}/logo/${SEG}$`), admin: false, op: OP.connectLogo, handler: sendLogo },
  // The connect page's button: the link is used up here, never by the GET.
  { method: 'POST', pattern: new RegExp(`^/connect/${SEG}$`), admin: false, op: OP.connectContinue, handler: continueFlow },
  // The operator dashboard: signed in by its own session cookie (src/ui/dashboard/session.ts), not the Bearer header.
  { method: 'GET', pattern: /^\/ui\/?$/, admin: false, handler: dashboardHome },
  { method: 'GET', pattern: /^\/ui\/sign-in$/, admin: false, handler: showSignIn },
  { method: 'POST', pattern: /^\/ui\/sign-in$/, admin: false, handler: signIn },
  { method: 'POST', pattern: /^\/ui\/sign-out$/, admin: false, handler: signOut },
  { method: 'GET', pattern: /^\/ui\/integrations$/, admin: false, handler: integrationsPage },
  { method: 'GET', pattern: /^\/ui\/entities$/, admin: false, handler: entitiesPage },
  { method: 'POST', pattern: new RegExp(`^/ui/entities/${SEG}/connect$`), admin: false, handler: connectLinkAction },
  { method: 'GET', pattern: new RegExp(`^/ui/entities/${SEG}/connections/${SEG}$`), admin: false, handler: connectionPage },
  { method: 'GET', pattern: new RegExp(`^/ui/entities/${SEG}/connections/${SEG}/delete$`), admin: false, handler: deletePage },
  { method: 'POST', pattern: new RegExp(`^/ui/entities/${SEG}/connections/${SEG}/delete$`), admin: false, handler: deleteAction },
  { method: 'POST', pattern: new RegExp(`^/ui/entities/${SEG}/connections/${SEG}/verify$`), admin: false, handler: verifyAction },
  { method: 'GET', pattern: /^\/ui\/activity$/, admin: false, handler: activityPage },
  { method: 'GET', pattern: /^\/ui\/tokens$/, admin: false, handler: tokensPage },
  { method: 'POST', pattern: /^\/ui\/tokens\/revoke$/, admin: false, handler: revokeAction },
];

/** credproxy's own API: origin-form requests (`GET /healthz`). */
export function createApiHandler(rt: Runtime) {
  return async function handleApiRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // An API body that stops arriving (even one refused before it is read) ends too.
    const idle = guardBody(req, res, rt.current.config.settings.limits.body_idle_ms);
    try {
      const url = new URL(req.url ?? '/', 'http://credproxy.invalid');
      let pathMatched = false;
      for (const r of routes) {
        const m = r.pattern.exec(url.pathname);
        if (!m) continue;
        pathMatched = true;
        if (r.method !== req.method && !(r.method === 'GET' && req.method === 'HEAD')) continue;
        if (r.admin) requireAdmin(req, rt.adminToken);
        if (url.pathname.startsWith('/connect/')) allowFraming(res, rt.current.config.settings.connect.frame_ancestors);
        const params = m.slice(1).map((p) => {
          try {
            return decodeURIComponent(p);
          } catch {
            throw new CredproxyError('bad_request', 'the path has a malformed %-escape');
          }
        });
        await r.handler(rt, req, res, params);
        return;
      }
      if (pathMatched) throw new CredproxyError('method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
      throw new CredproxyError('not_found', `no such endpoint: ${url.pathname}`);
    } catch (err) {
      const stalled = idle();
      if (!stalled && !isCredproxyError(err)) rt.log.error({ err }, 'unexpected error in the API');
      reportStoreFailure(rt, err);
      sendError(res, stalled ?? (isCredproxyError(err) ? err : new CredproxyError('internal_error')));
    }
  };
}
