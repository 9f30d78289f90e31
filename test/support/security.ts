import type { Test } from 'tap';
import { ADMIN, configDir, startProxy, startUpstream, type TestProxy, type Upstream } from './servers.js';

/** The credential the fixture's integration injects; it must only ever reach `owned`. */
export const TOKEN = 'sec-token-7f3a9c-do-not-leak';

/**
 * A proxy with one integration (`demo`, bearer, owning `owned` by IP and by `localhost`),
 * alice connected to it, and a second loopback server (`internal`) that no integration owns
 * and the egress policy does not allow: the place an attacker would like to reach.
 */
export interface Fixture {
  proxy: TestProxy;
  owned: Upstream;
  internal: Upstream;
  /** requests seen by either upstream so far */
  seenCount(): number;
}

export async function securityFixture(
  t: Test,
  settings = '',
  opts: { env?: Record<string, string>; integrations?: Record<string, string> } = {},
): Promise<Fixture> {
  const owned = await startUpstream();
  const internal = await startUpstream();
  const dir = configDir(`store: memory\n${settings}`, {
    demo: `hosts: ["127.0.0.1:${owned.port}", "localhost:${owned.port}"]\nupstream: http\nauth: { type: bearer }\n`,
    ...opts.integrations,
  });
  const proxy = await startProxy(dir, opts.env ? { env: { CREDPROXY_ADMIN_TOKEN: ADMIN, ...opts.env } } : {});
  t.teardown(async () => {
    await proxy.close();
    await owned.close();
    await internal.close();
  });
  const put = await proxy.connect('alice', 'demo', { credentials: { token: TOKEN } });
  if (put.status !== 200) throw new Error(`fixture: storing the connection answered ${put.status}`);
  return { proxy, owned, internal, seenCount: () => owned.seen.length + internal.seen.length };
}

/** What every refusal must look like: the documented status, code in header and body, and nothing forwarded. */
export function assertRefused(
  t: Test,
  fx: Fixture,
  before: number,
  r: { status: number; headers: Record<string, string | string[] | undefined>; body: string | Buffer },
  status: number,
  code: string,
): void {
  t.equal(r.status, status, `status ${status}`);
  t.equal(r.headers['x-credproxy-error'], code, `X-Credproxy-Error: ${code}`);
  let parsed: { error?: { code?: string } } = {};
  try {
    parsed = JSON.parse(r.body.toString()) as typeof parsed;
  } catch {
    t.fail(`the body is JSON: ${r.body.toString().slice(0, 200)}`);
  }
  t.equal(parsed.error?.code, code, 'the body names the code');
  t.equal(fx.seenCount(), before, 'nothing reached an upstream');
  t.notMatch(r.body.toString(), TOKEN, 'the answer carries no credential');
}
