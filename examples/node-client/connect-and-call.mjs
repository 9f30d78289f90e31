// Connect a user and call an API as that user, from a Node application.
//   CREDPROXY_URL=http://127.0.0.1:8080 CREDPROXY_ADMIN_TOKEN=… INTEGRATION=openai \
//   USER_API_KEY=sk-… API_URL=https://api.openai.com/v1/models \
//   CREDPROXY_CA="$(npx credproxy ca)" node examples/node-client/connect-and-call.mjs
import { readFileSync } from 'node:fs';
import { CredproxyClient } from 'credproxy/client';

const env = process.env;
const client = new CredproxyClient({ url: env.CREDPROXY_URL, adminToken: env.CREDPROXY_ADMIN_TOKEN, ca: env.CREDPROXY_CA && readFileSync(env.CREDPROXY_CA) });

// 1. Connect alice: store her API key (for OAuth, send her client.connections.connectLink('alice', …).connect_url).
await client.connections.put('alice', env.INTEGRATION, { credentials: { api_key: env.USER_API_KEY } });

// 2. Call the API as alice: credproxy injects her key; this process never holds it again.
const res = await client.fetch('alice')(env.API_URL);
console.log(res.status, await res.text());
await client.close();
