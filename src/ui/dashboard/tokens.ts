import { revokeToken } from '../../tokens/entity-tokens.js';
import { CredproxyError } from '../../errors.js';
import { storeCall } from '../../store/failure.js';
import { csrfField, h, sendPage, signedIn } from './layout.js';
import { readForm } from './session.js';

/** Entity tokens: revoke one by id (the id is shown when it is issued, and in the log). */

const form = (csrf: string) =>
  `<form method="post" action="/ui/tokens/revoke" class="inline">${csrf}` +
  '<div class="field"><label for="id">Token id</label><input id="id" name="id" type="text" required maxlength="128"></div>' +
  '<div><button type="submit" class="danger">Revoke</button></div></form>';

export const tokensPage = signedIn((_rt, _req, res, s) => {
  sendPage(res, s, {
    title: 'Entity tokens',
    bodyHtml: `<p>Revoke an entity token by its id (given when it was issued: <code>id</code> in the answer of <code>POST /api/entities/{entity}/tokens</code>). A revoked token is refused at once.</p>${form(csrfField(s))}`,
  });
});

export const revokeAction = signedIn(async (rt, req, res, s) => {
  const f = await readForm(rt, req, s);
  const id = (f.get('id') ?? '').trim();
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw new CredproxyError('bad_request', 'a token id is letters, digits, _ and - (up to 128)');
  if (!(await storeCall('entity_token', () => revokeToken(rt.store.kv, id)))) throw new CredproxyError('not_found', `no live entity token with id "${id}"`);
  rt.log.info({ token_id: id, via: 'dashboard' }, 'entity token revoked');
  sendPage(res, s, { title: 'Entity tokens', bodyHtml: `<p class="ok" role="status">Token <code>${h(id)}</code> is revoked.</p>${form(csrfField(s))}` });
});
