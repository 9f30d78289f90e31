import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../support/config.js';
import { problemsOf } from '../support/config.js';
import { configDir } from '../support/servers.js';


const FULL_SETTINGS = `listen: 127.0.0.1:8080
public_url: http://localhost:8080/
entity_header: X-Entity-Id
store: memory
store_prefix: credproxy
admin_token: \${ADMIN}
clients:
  - name: agent-runner
    key: \${AGENT_RUNNER_KEY}
    entities: ["*"]
allow_unauthenticated: false
passthrough: allow
egress:
  allow_private: ["10.1.0.0/16"]
tls:
  intercept: true
  ca_dir: ./data/ca
  upstream_ca: ./certs/internal-ca.pem
connect:
  allowed_redirects: ["https://app.example.com/"]
limits:
  replay_body_bytes: 1048576
events:
  webhook_url: https://app.example.com/hooks/credproxy
  secret: \${HOOK}
`;

const GITHUB = `name: github
hosts: [api.github.com]
upstream: https
paths: ["/"]
auth:
  type: oauth2
  authorize_url: https://github.com/login/oauth/authorize
  token_url: https://github.com/login/oauth/access_token
  client_id: \${GITHUB_CLIENT_ID}
  client_secret: \${GITHUB_CLIENT_SECRET}
  scopes: [repo, read:user]
  pkce: true
refresh_on: [401]
inject:
  headers:
    Authorization: "Bearer {{access_token}}"
`;

const ZENDESK = `name: zendesk
hosts: ["{{subdomain}}.zendesk.com"]
params:
  - { name: subdomain, pattern: "^[a-z0-9-]{1,63}$" }
auth:
  - type: oauth2
    authorize_url: https://{{subdomain}}.zendesk.com/oauth/authorizations/new
    token_url: https://{{subdomain}}.zendesk.com/oauth/tokens
    client_id: zid
    client_secret: zsecret
  - type: basic
`;

const ENV = { ADMIN: 'admin-token-0123456789', AGENT_RUNNER_KEY: 'runner-key-0123456789', HOOK: 'hook-secret', GITHUB_CLIENT_ID: 'gid', GITHUB_CLIENT_SECRET: 'gsecret\n' };

t.test('the configuration keys of DESIGN.md load, with ${ENV} filled in', async (t) => {
  const dir = configDir(FULL_SETTINGS, {
    github: GITHUB,
    zendesk: ZENDESK,
    maps: 'hosts: [maps.example.com]\nauth: { type: api_key, fields: [api_key] }\ninject: { query: { key: "{{api_key}}" } }\n',
  });
  const config = loadConfig(dir, { env: ENV });
  const s = config.settings;
  t.same(s.listen, { host: '127.0.0.1', port: 8080 });
  t.equal(s.public_url, 'http://localhost:8080', 'trailing slash dropped');
  t.equal(s.admin_token, ENV.ADMIN);
  t.same(s.clients, [{ name: 'agent-runner', key: ENV.AGENT_RUNNER_KEY, entities: ['*'] }]);
  t.equal(s.events?.secret, 'hook-secret');
  t.equal(s.limits.replay_body_bytes, 1048576);
  t.same([...config.integrations.keys()], ['github', 'maps', 'zendesk']);
  const gh = config.integrations.get('github')!;
  t.equal(gh.schemes[0]!.config.client_secret, 'gsecret', 'the trailing newline of a file-sourced secret is stripped');
  t.equal(config.integrations.get('zendesk')!.schemes.length, 2);
  t.ok(Object.isFrozen(config) && Object.isFrozen(s.limits), 'the config is frozen');
});

t.test('defaults, PORT and command-line overrides', async (t) => {
  const dir = configDir('');
  const c = loadConfig(dir, { env: {} });
  t.same(c.settings.listen, { host: '127.0.0.1', port: 8080 });
  t.equal(c.settings.store, `sqlite:${join(dir, 'data', 'credproxy.db')}`, 'the default store is in the config folder');
  t.equal(c.settings.tls.ca_dir, join(dir, 'data', 'ca'), 'relative paths resolve against the config folder, not the working directory');
  t.equal(c.settings.passthrough, 'allow');
  t.equal(c.settings.entity_header, 'X-Entity-Id');
  t.equal(c.integrations.size, 0);
  t.equal(loadConfig(dir, { env: { PORT: '9000' } }).settings.listen.port, 9000);
  const o = loadConfig(dir, { env: { PORT: '9000' }, port: 7000, host: '0.0.0.0' }).settings;
  t.same(o.listen, { host: '0.0.0.0', port: 7000 });
  t.equal(o.public_url, 'http://localhost:7000');
  t.equal(loadConfig(configDir('listen: "[::1]:81"\n'), { env: {} }).settings.public_url, 'http://[::1]:81');
  const empty = configDir('store:\npassthrough: deny\n');
  t.equal(loadConfig(empty, { env: {} }).settings.store, `sqlite:${join(empty, 'data', 'credproxy.db')}`, 'an empty value is absent');

  const yml = configDir('');
  writeFileSync(join(yml, 'credproxy.yml'), 'passthrough: deny\n');
  t.equal(loadConfig(yml, { env: {} }).settings.passthrough, 'allow', 'credproxy.yaml wins over .yml');
  const onlyYml = join(yml, 'sub');
  mkdirSync(onlyYml);
  writeFileSync(join(onlyYml, 'credproxy.yml'), 'passthrough: deny\n');
  t.equal(loadConfig(onlyYml, { env: {} }).settings.passthrough, 'deny', 'credproxy.yml is read (no integrations folder is fine)');
});

t.test('audit.enabled: on unless set to false; anything but a boolean is refused, naming the key', async (t) => {
  t.equal(loadConfig(configDir(''), { env: {} }).settings.audit.enabled, true, 'on by default');
  t.equal(loadConfig(configDir('audit: { file: ./a.log }\n'), { env: {} }).settings.audit.enabled, true, 'on when only other audit keys are set');
  t.equal(loadConfig(configDir('audit: { enabled: false }\n'), { env: {} }).settings.audit.enabled, false);
  t.equal(loadConfig(configDir('audit:\n  enabled: true\n'), { env: {} }).settings.audit.enabled, true);
  const p = problemsOf(configDir(['audit:', '  enabled: "no"', '  keep: 2'].join('\n')));
  t.same(p, ['credproxy.yaml:2: audit.enabled: expected true or false'], 'a quoted "no" is a string, not a boolean');
  t.same(problemsOf(configDir('audit: { enabled: 0 }\n')), ['credproxy.yaml:1: audit.enabled: expected true or false']);
  t.match(problemsOf(configDir('audit: { enable: false }\n'))[0], /^credproxy\.yaml:1: audit\.enable: unknown key; allowed here: enabled, file, max_bytes, keep/, 'a typo is named, with the keys allowed');
});

t.test('metrics.requests: on unless set to false; anything but a boolean is refused, naming the key', async (t) => {
  t.equal(loadConfig(configDir(''), { env: {} }).settings.metrics.requests, true, 'on by default');
  t.equal(loadConfig(configDir('metrics: {}\n'), { env: {} }).settings.metrics.requests, true, 'an empty section changes nothing');
  t.equal(loadConfig(configDir('metrics: { requests: false }\n'), { env: {} }).settings.metrics.requests, false);
  t.same(problemsOf(configDir('log: { level: info }\nmetrics:\n  requests: off\n')), ['credproxy.yaml:3: metrics.requests: expected true or false'], 'YAML 1.2: `off` is a string');
  t.same(problemsOf(configDir('metrics: { requests: [false] }\n')), ['credproxy.yaml:1: metrics.requests: expected true or false']);
  t.same(problemsOf(configDir('metrics: false\n')), ['credproxy.yaml:1: metrics: expected a mapping'], 'the section is a mapping, not the switch');
  t.match(problemsOf(configDir('metrics: { request: false }\n'))[0], /^credproxy\.yaml:1: metrics\.request: unknown key; allowed here: requests$/);
});

t.test('a folder that does not exist, or a file, is an error', async (t) => {
  t.throws(() => loadConfig('/nonexistent/credproxy-config', { env: {} }), { name: 'ConfigError', message: /config folder does not exist/ });
  const dir = configDir('');
  t.throws(() => loadConfig(join(dir, 'credproxy.yaml'), { env: {} }), { message: /not a folder/ });
});

t.test('settings errors name file:line and what is allowed', async (t) => {
  const dir = configDir(
    [
      'listen: 127.0.0.1:99999', // 1
      'passthrough: maybe', // 2
      'stor: memory', // 3
      'limits:', // 4
      '  replay_body_bytes: lots', // 5
      'admin_token: ${NOPE}', // 6
      'public_url: ftp://x', // 7
      'store: redisx://h', // 8
      'entity_header: "X Entity"', // 9
      'egress: { allow_private: [10.0.0.0] }', // 10
      'clients: [{ name: a, key: short }]', // 11
      'allow_unauthenticated: yes please', // 12
      'connect: { allowed_redirects: ["not a url"] }', // 13
      'events: { secret: x }', // 14
      'tls: [1]', // 15
    ].join('\n'),
  );
  const p = problemsOf(dir);
  const want = [
    /^credproxy\.yaml:2: passthrough: "maybe" is not allowed; expected one of allow, deny$/,
    /^credproxy\.yaml:3: stor: unknown key; allowed here: listen, .*store,/,
    /^credproxy\.yaml:5: limits\.replay_body_bytes: expected a whole number$/,
    /^credproxy\.yaml:6: admin_token: environment variable NOPE is not set$/,
    /^credproxy\.yaml:7: public_url: "ftp:\/\/x" must be a http or https URL$/,
    /^credproxy\.yaml:8: store: "redisx:\/\/h" is not a store/,
    /^credproxy\.yaml:9: entity_header: "X Entity" is not a valid header name$/,
    /^credproxy\.yaml:10: egress\.allow_private\[0\]: "10\.0\.0\.0" is not a CIDR/,
    /^credproxy\.yaml:11: clients\[0\]\.key: must be at least 16 characters$/,
    /^credproxy\.yaml:12: allow_unauthenticated: expected true or false$/,
    /^credproxy\.yaml:13: connect\.allowed_redirects\[0\]: "not a url" is not a URL$/,
    /^credproxy\.yaml:14: events\.webhook_url: is required$/,
    /^credproxy\.yaml:15: tls: expected a mapping$/,
    /^credproxy\.yaml:1: listen: port 99999 is out of range \(0 to 65535\)$/,
  ];
  t.equal(p.length, want.length, `every problem in one run:\n${p.join('\n')}`);
  for (const w of want) t.ok(p.some((line) => w.test(line)), `${w}`);
});

t.test('YAML syntax errors and duplicate keys carry their line', async (t) => {
  const dir = configDir('passthrough: allow\nlisten: [unclosed\n', {
    dup: 'hosts: [a.example]\nauth: { type: bearer }\nhosts: [b.example]\n',
    tabs: 'hosts:\n\t- a.example\n',
  });
  const p = problemsOf(dir);
  t.ok(p.some((l) => /^credproxy\.yaml:[23]: /.test(l)), p.join('\n'));
  t.ok(p.some((l) => /^integrations\/dup\.yaml:3: .*[Uu]nique/.test(l)), 'duplicate key');
  t.ok(p.some((l) => /^integrations\/tabs\.yaml:2: /.test(l)), 'tab indentation');
});

t.test('integration errors: hosts, templates, names, types, CR/LF — all reported in one run', async (t) => {
  const dir = configDir('store: memory\n', {
    a_hosts: [
      'hosts:', // 1
      '  - https://api.example.com/x', // 2
      '  - "api.*.example.com"', // 3
      '  - "*.com"', // 4
      '  - "api.example.com:99999"', // 5
      '  - "bad_.exa mple"', // 6
      '  - "-bad.example"', // 7
      '  - "{{tenant}}.example.com"', // 8
      '  - "{{x}}"', // 9
      'auth: { type: bearer }', // 10
    ].join('\n'),
    b_template: 'hosts: [b.example]\nauth: { type: bearer }\ninject:\n  headers:\n    Authorization: "Bearer {{tokn}}"\n',
    c_dup1: 'name: same\nhosts: [c1.example]\nauth: { type: bearer }\n',
    d_dup2: 'name: same\nhosts: [c2.example]\nauth: { type: bearer }\n',
    e_crlf: 'hosts: [e.example]\nauth: { type: bearer }\ninject:\n  headers:\n    X-Key: "a\\r\\nX-Evil: 1"\n',
    f_env: 'hosts: [f.example]\nauth:\n  type: bearer\ninject:\n  headers:\n    X-Key: "${WITH_NL}"\n',
    g_type: 'hosts: [g.example]\nauth:\n  type: jwt\n  algorithm: HS256\n  private_key: short\n',
    h_reserved: 'hosts: [h.example]\nauth: { type: bearer, inject: { headers: { Host: "{{token}}" } } }\n',
    i_twice: 'hosts: [i.example]\nauth:\n  - { type: bearer }\n  - { type: bearer }\n',
    j_unknowntype: 'hosts: [j.example]\nauth: { type: kerberos }\n',
    k_notype: 'hosts: [k.example]\nauth: { fields: [a] }\n',
    l_shape: 'hosts: []\nauth: [{ type: bearer }]\nrefresh_on: [200]\nupstream: ftp\npaths: ["v1"]\n',
    m_fields: 'hosts: [m.example]\nauth: { type: api_key, fields: [{ name: k, pattern: "(" }, [x], 9a] }\n',
    n_keys: 'hosts: [n.example]\nauth: { type: api_key }\ninject: { headers: { "Bad Header": x }, query: { "a&b": x } }\n',
    'Bad Name': 'hosts: [o.example]\nauth: { type: bearer }\n',
    p_noinject: 'hosts: [p.example]\nauth: { type: bearer }\ninject: {}\n',
    q_overlap: 'hosts: [C1.example.]\nauth: { type: bearer }\n',
    r_oauth: 'hosts: [r.example]\nauth: { type: oauth2, client_id: x }\n',
    s_notmap: '- just\n- a list\n',
    t_twice: 'hosts: [t.example]\nauth: { type: bearer }\ninject:\n  headers:\n    Authorization: "Bearer {{token}}"\n    authorization: "Token {{token}}"\n',
  });
  const p = problemsOf(dir, { WITH_NL: 'x\r\ny' });
  const want = [
    /^integrations\/a_hosts\.yaml:2: hosts\[0\]: .*is not a host name/,
    /^integrations\/a_hosts\.yaml:3: hosts\[1\]: .*a wildcard is only allowed as the whole first label/,
    /^integrations\/a_hosts\.yaml:4: hosts\[2\]: .*needs at least two labels/,
    /^integrations\/a_hosts\.yaml:5: hosts\[3\]: .*port out of range/,
    /^integrations\/a_hosts\.yaml:6: hosts\[4\]: .*is not a host name/,
    /^integrations\/a_hosts\.yaml:7: hosts\[5\]: .*is not a valid host name/,
    /^integrations\/a_hosts\.yaml:8: hosts\[6\]: \{\{tenant\}\} is not a declared param/,
    /^integrations\/a_hosts\.yaml:9: hosts\[7\]: .*is not a host template/,
    /^integrations\/b_template\.yaml:5: headers\.Authorization: \{\{tokn\}\} is not something this scheme supplies; known: entity, token$/,
    /^integrations\/d_dup2\.yaml:1: name: "same" is already used by .*c_dup1\.yaml$/,
    /^integrations\/e_crlf\.yaml:5: inject\.headers\.X-Key: control characters \(CR, LF, …\) are not allowed$/,
    /^integrations\/f_env\.yaml:6: inject\.headers\.X-Key: control characters/,
    /^integrations\/g_type\.yaml:5: .*private_key/,
    /^integrations\/h_reserved\.yaml:2: headers\.Host: credproxy manages this header itself/,
    /^integrations\/i_twice\.yaml:3: auth: the type "bearer" is listed twice/,
    /^integrations\/j_unknowntype\.yaml:2: auth\.type: "kerberos" is not allowed; expected one of oauth2, /,
    /^integrations\/k_notype\.yaml:2: auth: "type" is required/,
    /^integrations\/l_shape\.yaml:1: hosts: needs at least 1 item$/,
    /^integrations\/l_shape\.yaml:3: refresh_on\[0\]: 200 is out of range \(400 to 599\)$/,
    /^integrations\/l_shape\.yaml:4: upstream: "ftp" is not allowed/,
    /^integrations\/l_shape\.yaml:5: paths\[0\]: "v1" is not a path prefix starting with \/$/,
    /^integrations\/m_fields\.yaml:2: auth\.fields\[0\]\.pattern: not a valid regular expression/,
    /^integrations\/m_fields\.yaml:2: auth\.fields\[1\]: expected a field name or a mapping/,
    /^integrations\/m_fields\.yaml:2: auth\.fields\[2\]: "9a" is not a field name/,
    /^integrations\/n_keys\.yaml:3: inject\.headers: "Bad Header" is not a valid header name$/,
    /^integrations\/n_keys\.yaml:3: inject\.query: "a&b" is not a valid query parameter name$/,
    /^integrations\/Bad Name\.yaml:1: name: the file name "Bad Name" is not a valid integration name/,
    /^integrations\/p_noinject\.yaml:3: inject: needs at least one header or query parameter$/,
    /^integrations\/q_overlap\.yaml:1: hosts: "C1\.example\." with path "\/" is already owned by integration "same"/,
    /^integrations\/r_oauth\.yaml:2: auth\.authorize_url: is required$/,
    /^integrations\/r_oauth\.yaml:2: auth\.token_url: is required$/,
    /^integrations\/s_notmap\.yaml:1: file: expected a mapping$/,
    /^integrations\/t_twice\.yaml:6: headers\.authorization: the header is listed twice \(names are case-insensitive\)$/,
  ];
  for (const w of want) t.ok(p.some((line) => w.test(line)), `${w}`);
  t.equal(p.length, want.length, `nothing else reported:\n${p.join('\n')}`);
});

t.test('an empty integration file is reported, a non-YAML file is ignored', async (t) => {
  const dir = configDir('', { empty: '' });
  writeFileSync(join(dir, 'integrations', 'README.md'), '# not an integration');
  const p = problemsOf(dir);
  t.equal(p.length, 1);
  t.match(p[0], /^integrations\/empty\.yaml:1: /);
});

t.test('PORT out of range is reported', async (t) => {
  t.match(problemsOf(configDir(''), { PORT: '70000' }), [/^credproxy\.yaml:1: listen: port 70000 is out of range/]);
  t.match(problemsOf(configDir(''), { PORT: 'eighty' }), [/^credproxy\.yaml:1: the PORT environment variable: "eighty" is not a port number/], 'a PORT that is not a number is an error, not ignored');
  t.equal(loadConfig(configDir(''), { env: { PORT: 'eighty' }, port: 8081 }).settings.listen.port, 8081, '--port wins over a broken PORT');
});

t.test('a value of the wrong shape says what was expected', async (t) => {
  const dir = configDir(
    [
      'passthrough: [allow]', // 1
      'limits: 5', // 2
      'egress: { allow_private: "10.0.0.0/8" }', // 3
      'log: { level: { a: 1 } }', // 4
      'public_url: [x]', // 5
      'tls: { intercept: 1 }', // 6
    ].join('\n'),
    {
      shapes: [
        'hosts: { a: 1 }', // 1
        'auth: 5', // 2
        'inject: { headers: [x] }', // 3
        'refresh_on: [4.5]', // 4
        'params: [{ name: p, pattern: 1 }]', // 5
      ].join('\n'),
      claims: 'hosts: [c.example]\nauth: { type: bearer, inject: { headers: { X: { a: 1 } } } }\n',
    },
  );
  const p = problemsOf(dir);
  const want = [
    /^credproxy\.yaml:1: passthrough: expected one of allow, deny$/,
    /^credproxy\.yaml:2: limits: expected a mapping$/,
    /^credproxy\.yaml:3: egress\.allow_private: expected a list$/,
    /^credproxy\.yaml:4: log\.level: expected one of trace, /,
    /^credproxy\.yaml:5: public_url: expected a string$/,
    /^credproxy\.yaml:6: tls\.intercept: expected true or false$/,
    /^integrations\/shapes\.yaml:1: hosts: expected a list$/,
    /^integrations\/shapes\.yaml:2: auth: expected an auth mapping or a list of them$/,
    /^integrations\/shapes\.yaml:3: inject\.headers: expected a mapping$/,
    /^integrations\/shapes\.yaml:4: refresh_on\[0\]: expected a whole number$/,
    /^integrations\/claims\.yaml:2: auth\.inject\.headers\.X: expected a string$/,
  ];
  for (const w of want) t.ok(p.some((line) => w.test(line)), `${w}`);
  t.equal(p.length, want.length, `nothing else (a number where a string belongs is taken as its text: \`pattern: 1\`):\n${p.join('\n')}`);
});

t.test('connect.frame_ancestors: origins, wildcard hosts and self load (a trailing / dropped); anything else names the value', async (t) => {
  const ok = ['https://app.example.com/', 'http://localhost:3000', 'https://*.example.com', "'self'", 'http://[::1]:8080'];
  const cfg = loadConfig(configDir(`store: memory\nconnect:\n  frame_ancestors: ${JSON.stringify(ok)}\n`));
  t.same(cfg.settings.connect.frame_ancestors, ['https://app.example.com', 'http://localhost:3000', 'https://*.example.com', "'self'", 'http://[::1]:8080']);
  t.same(loadConfig(configDir('store: memory\n')).settings.connect.frame_ancestors, [], "default: none, so the pages say frame-ancestors 'none'");
  const bad = ['ftp://files.example', 'https://app.example.com/embed', 'https://app.example.com?x=1', 'https://user@app.example.com', 'app.example.com', 'https://a.example; script-src *', "'none'", '*', 'https://*', 'https://a..example', 'https://a.example:99999'];
  const p = problemsOf(configDir(`store: memory\nconnect:\n  frame_ancestors: ${JSON.stringify(bad)}\n`));
  t.equal(p.length, bad.length, p.join('\n'));
  for (const [i, v] of bad.entries()) t.match(p[i], `credproxy.yaml:3: connect.frame_ancestors[${i}]: "${v}"`, v);
  t.match(p[6], "'none' is the default: leave frame_ancestors out");
  t.match(p[10], 'port 99999 is out of range');
});
