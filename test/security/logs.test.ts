import t from 'tap';
import { prettyFactory } from 'pino-pretty';
import { rawRequest } from '../support/raw.js';
import { securityFixture, TOKEN } from '../support/security.js';
import { ADMIN, viaProxy } from '../support/servers.js';

const PROXY_KEY = 'proxy-key-for-log-test-0001';
const FORGED = '[00:00:00.000] INFO: forged line';

/**
 * Logs an attacker can write into must stay one record per line and carry no secret: the
 * JSON lines (pino escapes) and the pretty output an operator reads in a terminal.
 */
t.test('hostile requests cannot forge log lines or leak secrets into them', async (t) => {
  const fx = await securityFixture(t, `clients: [{ name: runner, key: "${PROXY_KEY}" }]\n`);
  const auth = { 'Proxy-Authorization': `Bearer ${PROXY_KEY}` };
  const o = fx.owned.origin;
  // Injection attempts through every client-controlled field that reaches a log line.
  await viaProxy(fx.proxy.port, `${o}/a%0d%0a${encodeURIComponent(FORGED)}`, { headers: { ...auth, 'X-Entity-Id': 'alice' } });
  await viaProxy(fx.proxy.port, `${o}/b%E2%80%A8%C2%85x`, { headers: { ...auth, 'X-Entity-Id': 'alice' } });
  await viaProxy(fx.proxy.port, `${o}/c?code=oauth-code-secret&state=oauth-state-secret&access_token=qs-token-secret`, {
    headers: { ...auth, 'X-Entity-Id': 'alice', Cookie: 'session=cookie-secret-value' },
  });
  await rawRequest(fx.proxy.port, `GET ${o}/d HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer ${PROXY_KEY}\r\nX-Entity-Id: a\u0085\u2028b\r\n\r\n`);
  await rawRequest(fx.proxy.port, `GET ${o}/e HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer wrong-key-but-secret-1\r\nX-Entity-Id: alice\r\n\r\n`);
  await rawRequest(fx.proxy.port, `GET ${o}/f HTTP/1.1\r\nHost: x\r\nX-Entity-Id: alice\r\nProxy-Authorization: Basic ${Buffer.from(`alice\n${FORGED}:${PROXY_KEY}`).toString('base64')}\r\n\r\n`);
  await fx.proxy.admin('PUT', '/api/entities/bob/connections/demo', { credentials: { token: 'admin-put-secret-1' } });
  await fx.proxy.admin('PUT', '/api/entities/bob%0aforged/connections/demo', { credentials: { token: 'admin-put-secret-2' } });

  const lines = fx.proxy.logs.lines;
  t.ok(lines.length >= 8, `${lines.length} log lines`);
  const pretty = prettyFactory({ colorize: false });
  for (const line of lines) {
    t.notOk(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(line), 'no raw control character in a JSON line');
    const record = JSON.parse(line) as Record<string, unknown>;
    t.type(record, 'object');
    const text = pretty(record as never);
    t.notOk(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/.test(text), 'no raw control character (beyond its own newlines) in the pretty form');
    t.notOk(text.split('\n').some((l) => l.startsWith(FORGED)), 'no line of the pretty form is a forged record');
  }
  for (const secret of [TOKEN, PROXY_KEY, ADMIN, 'wrong-key-but-secret-1', 'oauth-code-secret', 'oauth-state-secret', 'qs-token-secret', 'cookie-secret-value', 'admin-put-secret-1', 'admin-put-secret-2']) {
    t.notMatch(fx.proxy.logs.text, secret, `no ${secret} in the logs`);
  }
  const paths = lines.map((l) => (JSON.parse(l) as { path?: string }).path).filter(Boolean);
  t.ok(paths.some((p) => p?.startsWith('/a%0d%0a%5B00')), 'CRLF in the path is logged as the escapes the client sent');
});
