// Preloaded into Node commands by `credproxy run` and `credproxy env` (NODE_OPTIONS=--import).
//
// Node's built-in fetch() ignores HTTP_PROXY / HTTPS_PROXY on Node 20 and 22 (Node 24 honours
// them with NODE_USE_ENV_PROXY=1, which credproxy sets too), so an agent's fetch() would go
// straight to the API host with its cpx_ placeholder, where credproxy can neither swap nor
// refuse it. undici's EnvHttpProxyAgent as the global dispatcher makes fetch() honour
// HTTP(S)_PROXY and NO_PROXY like the other clients `credproxy env` configures; the CA bundle
// comes from NODE_EXTRA_CA_CERTS. Plain-http requests go to the proxy in absolute form (no
// tunnel), as curl and Python send them.
import { EnvHttpProxyAgent, setGlobalDispatcher } from 'undici';

setGlobalDispatcher(new EnvHttpProxyAgent({ proxyTunnel: false }));
