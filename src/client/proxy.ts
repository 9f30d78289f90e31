import { rootCertificates } from 'node:tls';
import { ProxyAgent, type Dispatcher } from 'undici';

export interface ActAs {
  /** the entity the requests act for */
  entity: string;
  /** one of the entity's labelled connections (X-Connection-Label); default: the default connection */
  label?: string;
}

export interface ProxyOptions {
  proxyUrl: string;
  /** a `clients[].key`, when credproxy requires Proxy-Authorization */
  proxyKey?: string;
  /** credproxy's CA certificate (PEM): trusted besides the system CAs, for intercepted HTTPS */
  ca?: string | Buffer;
}

const ENTITY_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,255}$/;

/**
 * A ProxyAgent to credproxy that acts for `entity`. The entity travels as the proxy user name
 * (DESIGN.md: `HTTPS_PROXY=http://ENTITY:KEY@host`), on the CONNECT request that every
 * target (http:// too, undici tunnels it) goes through: credproxy reads it there and never
 * forwards it, not even to a host it only tunnels. A label can only travel inside the tunnel,
 * as `X-Connection-Label` on each request; credproxy removes it before forwarding.
 */
export function proxyDispatcher(o: ProxyOptions, as: ActAs): Dispatcher {
  if (!ENTITY_ID.test(as.entity)) throw new TypeError(`"${as.entity}" is not an entity id (1 to 256 letters, digits and ._:@+- starting with a letter or digit)`);
  // Percent-encoded: entity ids may hold ":", which would end the user name.
  const userinfo = `${encodeURIComponent(as.entity)}:${o.proxyKey ?? ''}`;
  const agent = new ProxyAgent({
    uri: o.proxyUrl,
    token: `Basic ${Buffer.from(userinfo).toString('base64')}`,
    ...(o.ca ? { requestTls: { ca: [...rootCertificates, o.ca.toString()] } } : {}),
  });
  const label = as.label;
  if (label === undefined) return agent;
  return agent.compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: withHeader(opts.headers, 'x-connection-label', label) }, handler));
}

/** Adds one header to undici's request headers, whichever of its forms they come in. */
function withHeader(headers: Dispatcher.DispatchOptions['headers'], name: string, value: string): Dispatcher.DispatchOptions['headers'] {
  if (headers == null) return { [name]: value };
  if (Array.isArray(headers)) return Array.isArray(headers[0]) ? ([...headers, [name, value]] as unknown as string[]) : [...(headers as string[]), name, value];
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') return [...(headers as Iterable<[string, string]>), [name, value]] as unknown as Dispatcher.DispatchOptions['headers'];
  return { ...(headers as Record<string, string>), [name]: value };
}
