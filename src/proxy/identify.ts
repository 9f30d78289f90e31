import type { IncomingMessage } from 'node:http';
import { CredproxyError } from '../errors.js';
import { checkLabel, LABEL_HEADER } from '../store/label.js';

/** Entity ids (DESIGN.md, contract): 1 to 256 of letters, digits and `._:@+-`, starting with a letter or digit. */
export const ENTITY_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,255}$/;

export function checkEntityId(id: string, where: string): string {
  if (!ENTITY_ID.test(id)) {
    throw new CredproxyError(
      'bad_request',
      `${where}: an entity id is 1 to 256 letters, digits and ._:@+- starting with a letter or digit`,
    );
  }
  return id;
}

export interface Identity {
  entity: string | undefined;
  /** where the entity came from, for the log */
  via: 'header' | 'proxy-user' | undefined;
  /** every X-Connection-Label value, as sent (gathered in the same pass; checked by connectionLabel where a label matters) */
  labels?: string[];
}

/**
 * Who the request acts for: the entity header, else the user name of a Basic
 * Proxy-Authorization (so `HTTP_PROXY=http://ENTITY:KEY@host:8080` works for clients that
 * cannot add headers; inside a tunnel that is the CONNECT request's). The header given
 * twice is refused rather than guessed at.
 */
export function identify(
  req: IncomingMessage,
  entityHeader: string,
  proxyAuthorization: string | undefined = req.headers['proxy-authorization'],
): Identity {
  const raw = req.rawHeaders;
  const wanted = entityHeader.toLowerCase();
  let entity: string | undefined;
  let hosts = 0;
  let labels: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === wanted) {
      if (entity !== undefined) throw new CredproxyError('bad_request', `the ${entityHeader} header is given more than once`);
      entity = raw[i + 1]!;
    } else if (name === 'host' && ++hosts > 1) {
      throw new CredproxyError('bad_request', 'the Host header is given more than once');
    } else if (name === LABEL_NAME) {
      (labels ??= []).push(raw[i + 1]!);
    }
  }
  if (entity !== undefined) return { entity: checkEntityId(entity, `the ${entityHeader} header`), via: 'header', labels };
  const user = proxyUser(proxyAuthorization);
  if (user) return { entity: checkEntityId(user, 'the proxy user name'), via: 'proxy-user', labels };
  return { entity: undefined, via: undefined, labels };
}

const LABEL_NAME = LABEL_HEADER.toLowerCase();

/** The user name of `Proxy-Authorization: Basic …`, if any. */
export function proxyUser(header: string | undefined): string | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon === -1 ? decoded : decoded.slice(0, colon);
  try {
    return decodeURIComponent(user) || undefined;
  } catch {
    return user || undefined;
  }
}

/**
 * Which of the entity's connections to the integration the request wants: the label in
 * `X-Connection-Label`, or undefined for the default (unlabelled) one. Given twice, empty or
 * malformed it is refused rather than guessed at, like the entity header.
 */
export function connectionLabel(identity: Identity): string | undefined {
  const { labels } = identity;
  if (labels === undefined) return undefined;
  if (labels.length > 1) throw new CredproxyError('bad_request', `the ${LABEL_HEADER} header is given more than once`);
  return checkLabel(labels[0]!, `the ${LABEL_HEADER} header`);
}
