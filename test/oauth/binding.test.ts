import type { IncomingMessage } from 'node:http';
import t from 'tap';
import { cookieName, formToken, formTokenMatches, newNonce, nonceHash, nonceMatches, readNonce, setCookie } from '../../src/oauth/binding.js';

const HTTPS = 'https://proxy.example.com';
const HTTP = 'http://127.0.0.1:8080';
const withCookie = (cookie: string | undefined) => ({ headers: { cookie } }) as IncomingMessage;

t.test('the cookie: __Host- and Secure over https, HttpOnly and SameSite=Lax always', async (t) => {
  const n = newNonce();
  t.match(n, /^[A-Za-z0-9_-]{43}$/);
  t.not(newNonce(), n);
  t.equal(cookieName(HTTPS), '__Host-credproxy-connect');
  t.equal(setCookie(HTTPS, n, 600), `__Host-credproxy-connect=${n}; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure`);
  t.equal(setCookie(HTTP, n, 600), `credproxy-connect=${n}; Path=/; Max-Age=600; HttpOnly; SameSite=Lax`);
});

t.test('readNonce: only a well-formed value under our own name', async (t) => {
  const n = newNonce();
  t.equal(readNonce(withCookie(`a=b; credproxy-connect=${n}; c=d`), HTTP), n);
  t.equal(readNonce(withCookie(`credproxy-connect=${n}`), HTTPS), undefined, 'over https only the __Host- cookie counts');
  t.equal(readNonce(withCookie(`__Host-credproxy-connect=${n}`), HTTPS), n);
  t.equal(readNonce(withCookie('credproxy-connect=short'), HTTP), undefined);
  t.equal(readNonce(withCookie(`credproxy-connect=${n}x`), HTTP), undefined);
  t.equal(readNonce(withCookie(`xcredproxy-connect=${n}`), HTTP), undefined);
  t.equal(readNonce(withCookie(undefined), HTTP), undefined);
});

t.test('the state keeps a hash of the nonce; only the same nonce matches it', async (t) => {
  const n = newNonce();
  const h = nonceHash(n);
  t.not(h, n, 'the nonce itself never reaches the store');
  t.ok(nonceMatches(n, h));
  t.notOk(nonceMatches(newNonce(), h));
  t.notOk(nonceMatches(undefined, h));
  t.notOk(nonceMatches(n, undefined));
  t.notOk(nonceMatches(n, h.slice(1)), 'a different length is no match (and no throw)');
});

t.test('the form token ties admin key, link and nonce together', async (t) => {
  const n = newNonce();
  const tok = formToken('admin-token', 'link-1', n);
  t.notMatch(tok, 'admin-token');
  t.ok(formTokenMatches('admin-token', 'link-1', n, tok));
  t.notOk(formTokenMatches('admin-token', 'link-2', n, tok), 'another link');
  t.notOk(formTokenMatches('admin-token', 'link-1', newNonce(), tok), 'another browser');
  t.notOk(formTokenMatches('other-admin', 'link-1', n, tok), 'another deployment');
  t.notOk(formTokenMatches('admin-token', 'link-1', undefined, tok));
  t.notOk(formTokenMatches('admin-token', 'link-1', n, ''));
  t.notOk(formTokenMatches('admin-token', 'link-1', n, undefined));
});
