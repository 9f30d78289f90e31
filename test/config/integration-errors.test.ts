import t from 'tap';
import { loadConfig } from '../support/config.js';
import { problemsOf } from '../support/config.js';
import { configDir } from '../support/servers.js';

/** Every problem of one load, as `file:line: message` lines relative to the folder. */
function problems(settings: string, integrations: Record<string, string>, env: NodeJS.ProcessEnv = {}): string[] {
  return problemsOf(configDir(settings, integrations), env);
}

const oauth = (extra: string) =>
  `hosts: [api.example.com]\nauth:\n  type: oauth2\n  authorize_url: https://id.example.com/authorize\n  token_url: https://id.example.com/token\n  client_id: c\n${extra}`;

t.test('valid oauth2 and client credentials integrations load', async (t) => {
  t.same(problems('', { a: oauth('  client_secret: ${SECRET}\n  scopes: [x]\n  pkce: false\n  refresh_before: 10\n') }, { SECRET: 's' }), []);
  t.same(problems('', { b: 'hosts: [b.example.com]\nauth: { type: oauth2_client_credentials, token_url: "https://id.example.com/t" }\n' }), []);
});

t.test('bad oauth2 settings are reported with file and line', async (t) => {
  const p = problems('', { a: oauth('  client_secret: ${MISSING}\n  token_request_auth_method: jwt\n  pkce: maybe\n  refresh_before: -1\n  scopes: [""]\n  issuer: 5\n') });
  t.match(p.join('\n'), /MISSING/);
  t.match(p.join('\n'), /token_request_auth_method/);
  t.match(p.join('\n'), /pkce/);
  t.match(p.join('\n'), /refresh_before/);
  t.ok(p.every((l) => /^integrations\/a\.yaml:\d+: /.test(l)), p.join('\n'));
  t.match(problems('', { a: 'hosts: [a.example.com]\nauth: { type: oauth2, token_url: "https://x/t" }\n' }).join('\n'), /authorize_url/);
  t.match(problems('', { a: oauth('  authorization_params: [x]\n') }).join('\n'), /authorization_params/);
  t.match(problems('', { a: oauth('  unknown_key: 1\n') }).join('\n'), /unknown_key/);
  t.match(problems('', { a: 'hosts: [a.example.com]\nauth: { type: oauth2, authorize_url: "ftp://x", token_url: "nope", client_id: c }\n' }).join('\n'), /not an http/);
});

t.test('host, name, inject and settings problems', async (t) => {
  const cases: Array<[Record<string, string>, RegExp, string?]> = [
    [{ a: 'hosts: ["https://a.example.com"]\nauth: { type: bearer }\n' }, /not a host name/],
    [{ a: 'hosts: ["a.example.com:99999"]\nauth: { type: bearer }\n' }, /port out of range/],
    [{ a: 'hosts: ["a*.example.com"]\nauth: { type: bearer }\n' }, /wildcard/],
    [{ a: 'hosts: ["{{sub}}.example.com"]\nauth: { type: bearer }\n' }, /not a declared param/],
    [{ a: 'hosts: ["{{sub}}"]\nparams: [{ name: sub }]\nauth: { type: bearer }\n' }, /host template/],
    [{ a: 'hosts: ["exa mple"]\nauth: { type: bearer }\n' }, /not a host/],
    [{ a: 'hosts: ["-bad-.example.com"]\nauth: { type: bearer }\n' }, /not a valid host/],
    [{ a: 'hosts: [a.example.com]\nauth: { type: jwt, algorithm: HS256, private_key: short }\n' }, /private_key/],
    [{ a: 'hosts: [a.example.com]\nauth: { type: saml }\n' }, /saml/],
    [{ a: 'hosts: [a.example.com]\nauth: [{ type: bearer }, { type: bearer }]\n' }, /listed twice/],
    [{ a: 'hosts: [a.example.com]\nauth: { type: bearer }\ninject: { headers: { Host: x } }\n' }, /manages this header/],
    [{ a: 'hosts: [a.example.com]\nauth: { type: bearer }\ninject: { headers: { X-A: "{{nope}}" } }\n' }, /not something this scheme supplies/],
    [{ a: 'hosts: [a.example.com]\nauth: { type: bearer }\ninject: {}\n' }, /at least one/],
    [{ 'Bad Name': 'hosts: [a.example.com]\nauth: { type: bearer }\n' }, /not a valid integration name/],
    [{ a: 'hosts: [a.example.com]\nauth: { type: bearer }\n', b: 'hosts: [a.example.com]\nauth: { type: bearer }\n' }, /already owned/],
    [{ a: 'name: x\nhosts: [a.example.com]\nauth: { type: bearer }\n', b: 'name: x\nhosts: [b.example.com]\nauth: { type: bearer }\n' }, /already used/],
    [{ a: 'hosts: [a.example.com\n' }, /.+/],
    [{ a: 'hosts: [a.example.com]\nauth: { type: bearer, fields: [{ name: t, pattern: "(" }] }\n' }, /regular expression/],
    [{ a: 'hosts: [a.example.com]\nrefresh_on: [200]\nauth: { type: bearer }\n' }, /refresh_on/],
    [{ a: 'hosts: [a.example.com]\nauth: { type: nope }\n' }, /type/],
    [{ a: 'hosts: [a.example.com]\nupstream: ftp\nauth: { type: bearer }\n' }, /upstream/],
    [{ a: '- just\n- a list\n' }, /.+/],
  ];
  for (const [files, re] of cases) t.match(problems('', files).join('\n'), re, JSON.stringify(files));
  for (const [settings, re] of [
    ['listen: nope\n', /host:port/],
    ['store: mysql://x\n', /not a store/],
    ['public_url: "ftp://x"\n', /http/],
    ['admin_token: short\n', /.+/],
    ['limits: { replay_body_bytes: -5 }\n', /replay_body_bytes/],
    ['connect: { allowed_redirects: ["not a url"] }\n', /not a URL/],
    ['clients: [{ name: a, key: "0123456789abcdef", entities: ["bad id!"] }]\n', /entity/],
    ['egress: { allow_private: ["10.0.0.0"] }\n', /CIDR/],
    ['log: { level: loud }\n', /level/],
    ['passthrough: maybe\n', /passthrough/],
    ['tls: { intercept: "yes" }\n', /intercept/],
  ] as const) {
    t.match(problems(settings, {}).join('\n'), re, settings);
  }
  for (const store of ['postgres://credproxy@db:5432/credproxy', 'postgresql://u:p@db/credproxy?sslmode=require']) {
    t.same(problems(`store: "${store}"\n`, {}), [], `${store} is a store`);
  }
});

t.test('a missing folder is a config error', async (t) => {
  t.throws(() => loadConfig('/nonexistent/credproxy'), /does not exist/);
});
