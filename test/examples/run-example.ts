import { execFile } from 'node:child_process';
import type { Test } from 'tap';
import { ADMIN, configDir, integrationYaml, LOOPBACK_EGRESS, startProxy, startUpstream, type Upstream } from '../support/servers.js';

/** A real credproxy with an api_key integration in front of a local upstream, as the examples expect. */
export async function exampleSetup(t: Test): Promise<{ env: NodeJS.ProcessEnv; up: Upstream }> {
  const up = await startUpstream();
  const proxy = await startProxy(configDir(`store: memory\n${LOOPBACK_EGRESS}`, { demo: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key }') }));
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  // Without the caller's proxy variables: the examples must name credproxy themselves.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(https?|no|all)_proxy$/i.test(k) && k !== 'NODE_OPTIONS'));
  return {
    up,
    env: { ...env, CREDPROXY_URL: proxy.url, CREDPROXY_ADMIN_TOKEN: ADMIN, INTEGRATION: 'demo', USER_API_KEY: 'sk-alice-example', API_URL: `http://127.0.0.1:${up.port}/v1/models` },
  };
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}
