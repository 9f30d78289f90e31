/** Help texts: `credproxy --help`, `credproxy help CMD`, `credproxy CMD [SUB] --help`. */

export const EXIT_CODES = `Exit codes:
  0  ok
  1  the API answered with an error (or, for start/validate, the config does not validate)
  2  bad usage (unknown command or option, missing argument)
  3  cannot reach the proxy at --url`;

const CLIENT_OPTIONS = `Options for commands that talk to a running proxy:
  --url URL           the proxy's base URL; default $CREDPROXY_URL or http://127.0.0.1:8080
  --token-file PATH   file holding the admin token; default ./data/admin.token
                      ($CREDPROXY_ADMIN_TOKEN is used when set and no --token-file is given)
  --json              print the API's JSON answer (for scripts) instead of a table`;

export const MAIN_HELP = `credproxy: a forward HTTP proxy that injects credentials

Usage:
  credproxy start    [--config DIR] [--port N] [--host H] [--log-format json|pretty] [--workers N]
  credproxy validate [--config DIR]
  credproxy ca       [--config DIR] [--create]   print the local CA certificate's path
  credproxy connections list|get|set|delete|connect-link ...
  credproxy integrations list|show ...
  credproxy env      --entity E [--token] [--shell sh|fish|powershell] ...
  credproxy run      --entity E [--token] ... -- CMD ARGS...
  credproxy audit    [--entity E] [--integration I] [--since T] [--limit N] [--follow] [--json]
  credproxy migrate  --from STORE --to STORE [--prefix P]   copy every record to another store
  credproxy rekey    [--config DIR] [--limit N]   re-seal every connection with the newest storage key
  credproxy export   [--config DIR] --out FILE    back up the store to a passphrase-encrypted file
  credproxy import   [--config DIR] FILE          restore an export (idempotent; newer records win)
  credproxy help [COMMAND]          (or: credproxy COMMAND --help)

Options of start, validate and ca:
  --config DIR      config folder (credproxy.yaml, integrations/); default $CREDPROXY_CONFIG or ./config
  --port N          listen port (overrides listen: and $PORT)
  --host H          listen address (overrides listen:)
  --log-format F    json (default when not a terminal) or pretty
  --workers N       start only: N processes sharing the listen socket (needs a PostgreSQL or Redis store)

${CLIENT_OPTIONS}

Environment:
  CREDPROXY_CONFIG, PORT, CREDPROXY_SECRET_KEY, CREDPROXY_SECRET_KEYS, CREDPROXY_SECRET_KEYS_FILE,
  CREDPROXY_ADMIN_TOKEN, CREDPROXY_URL, CREDPROXY_EXPORT_PASSPHRASE

A running proxy reloads its config folder when a file changes, and on SIGHUP.

${EXIT_CODES}
`;

const AGENT_OPTIONS = `Options:
  --entity E          the entity the command acts for (required)
  --token             issue an entity token even when no integration declares placeholder_env
                      (needed when the proxy has clients:)
  --ttl SECONDS       lifetime of the entity token (default: the proxy's, one hour)
  --label LABEL       use the entity's connections labelled LABEL (one of several accounts),
                      carried by the entity token: needs --token or a placeholder_env
  --no-proxy LIST     NO_PROXY; default the inherited NO_PROXY, else localhost,127.0.0.1,::1;
                      entries covering an integration's host are always left out (stderr says so)
  --config DIR        the proxy's config folder: only tls.intercept, tls.ca_dir and the
                      integrations' placeholder_env are read (the \${VAR}s the server needs
                      need not be set); default $CREDPROXY_CONFIG or ./config
  --url URL           the proxy; default $CREDPROXY_URL or http://127.0.0.1:8080
  --token-file PATH   admin token file, for issuing the entity token; default admin.token in
                      the data folder of the config's sqlite store (<config>/data by default)
                      ($CREDPROXY_ADMIN_TOKEN is used when set and no --token-file is given)

An entity token is issued (admin API) when --token is given or an integration declares
placeholder_env. env: that variable is set to the token, which credproxy swaps for the real
key, and the token is the proxy password, so that every CONNECT tunnel of the command is
inspected and the token can never leave through one. run: the command's proxy is a loopback
relay that adds the entity and token to every CONNECT and request (git, Java and any client
that sends no proxy credentials work), the command holds no token (placeholder_env variables
are set to "credproxy-placeholder"), and the token is revoked when the command ends, also on
SIGINT/SIGTERM/SIGHUP (forwarded to the command) and when the command is killed.
With tls.intercept, a CA bundle of the system CAs plus credproxy's CA is written to
<tls.ca_dir>/bundle.pem and named in SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE,
CURL_CA_BUNDLE, GIT_SSL_CAINFO and PIP_CERT; <tls.ca_dir>/wgetrc (WGETRC) names it for wget and
<tls.ca_dir>/bundle.p12 is the Java trust store in JAVA_TOOL_OPTIONS (with the proxy).
No CA in tls.ca_dir is an error: env and run never create one.
NODE_OPTIONS gets --import <credproxy>/bin/fetch-proxy.mjs, which makes Node's built-in fetch()
use the proxy (Node 20/22 ignore HTTPS_PROXY there), and NODE_USE_ENV_PROXY=1 is set (Node 24).`;

export const COMMAND_HELP: Record<string, string> = {
  audit: `Usage: credproxy audit [--entity E] [--integration I] [--since TIME] [--limit N] [--follow] [--json]

The audit log of a running proxy: one line per request to an integration host (time, entity,
integration, connection label, method, host, path without query, status, bytes in/out, ms, client,
refreshed/replayed).
--since takes an ISO 8601 time; --limit the latest N (default 100, at most 1000);
--follow keeps printing new entries until interrupted.

${CLIENT_OPTIONS}

${EXIT_CODES}
`,
  env: `Usage: credproxy env --entity E [--token] [--shell sh|fish|powershell] [options]

Prints the lines that make common clients use the proxy for entity E:
HTTP_PROXY, HTTPS_PROXY (and lower case), NO_PROXY, the CA bundle variables, and each
integration's placeholder_env.  eval "$(credproxy env --entity alice)"

${AGENT_OPTIONS}

${EXIT_CODES}
`,
  run: `Usage: credproxy run --entity E [--token] [options] -- CMD ARGS...

Runs CMD with the environment \`credproxy env\` prints, and exits with its status (128 + N
when a signal N ended it). The entity token issued for the run is revoked when CMD ends.
CMD does not inherit CREDPROXY_ADMIN_TOKEN, CREDPROXY_SECRET_KEY(S), or any variable the
config names as \${VAR}.

${AGENT_OPTIONS}

${EXIT_CODES}
`,
  start: `Usage: credproxy start [--config DIR] [--port N] [--host H] [--log-format json|pretty] [--workers N]

Runs the proxy. It reloads the config folder when a file in it changes (and on SIGHUP);
a change that does not validate is logged with file:line and the running config stays.
Changing listen or store needs a restart (the log says so).

--workers N runs N worker processes (node:cluster) that share the listen socket, for
machines with more cores. It needs a shared store (store: postgres://… or redis://…) with
CREDPROXY_SECRET_KEY and the admin token given; SIGHUP, SIGTERM and SIGINT go to the
first process, which passes them on, and a worker that dies is restarted.

${EXIT_CODES}
`,
  migrate: `Usage: credproxy migrate --from STORE --to STORE [--prefix P]

Copies every record of one store to another: connections (credentials stay sealed, they
are not decrypted to be copied), label indexes, entity token hashes, links and counts.
STORE is sqlite:PATH, redis://… or postgres://…, as in credproxy.yaml's store; --prefix is
its store_prefix (default credproxy). The source is only read, so proxies on it keep
serving; run migrate again just before switching to copy what changed meanwhile (each run
overwrites the destination's copies). Then it checks that every copied record is on the
destination and that a sample of connections decrypts there to the same credentials.

The storage key is CREDPROXY_SECRET_KEY, or the secret.key beside an SQLite source. An
SQLite destination gets that key file too.

  credproxy migrate --from sqlite:./data/credproxy.db --to postgres://credproxy@db:5432/credproxy

Exit codes:
  0  copied and checked
  1  the copy or the check failed (the source is unchanged)
  2  bad usage
`,
  rekey: `Usage: credproxy rekey [--config DIR] [--limit N] [--progress-every N]

Re-seals every stored connection with the newest key of the keyring (the last entry of
CREDPROXY_SECRET_KEYS or CREDPROXY_SECRET_KEYS_FILE), online: each record is rewritten under
the lock a token refresh takes, and only if nobody changed it meanwhile, so the proxies on
the store keep serving and refreshing. Every instance must hold the newest key first.
Records already on the newest key are skipped: an interrupted run (Ctrl-C finishes the
records under way) or one stopped by --limit is simply run again. Progress is a bar on a
terminal, else a line every --progress-every records (default 100). When every connection is
on the newest key, older keys can be removed from the keyring.

Exit codes:
  0    done (or --limit reached: the summary says how many are left)
  1    the store or the keyring failed (a keyring that opens none of the stored connections is refused)
  2    bad usage
  130  interrupted
`,
  export: `Usage: credproxy export [--config DIR] --out FILE

Writes every connection (decrypted, then encrypted as a whole to a passphrase with scrypt and
AES-256-GCM), label index and entity token record of the config's store to FILE, mode 0600.
The passphrase is CREDPROXY_EXPORT_PASSPHRASE, or asked for on a terminal; an empty one is
refused. Connections sealed with a key the keyring lacks are exported as they are stored.
The proxies keep serving meanwhile.
`,
  import: `Usage: credproxy import [--config DIR] FILE

Restores an export file into the config's store, whatever its storage key (connections are
sealed again with the newest key). Idempotent: a connection is written only when the store
has none or an older one (by updated_at), so a newer connection (a refreshed token, a
reconnect) is never replaced by an older backup, and importing twice changes nothing.
Entity tokens are restored when absent, so a token revoked after the export comes back:
revoke it again. The passphrase is CREDPROXY_EXPORT_PASSPHRASE, or asked for on a terminal.
`,
  ca: `Usage: credproxy ca [--config DIR] [--create]

Prints the absolute path of the local CA certificate that credproxy signs intercepted HTTPS
with (tls.ca_dir, relative to the config folder). credproxy start creates the CA; without
--create, a missing CA is an error naming where it was looked for. Clients trust this file:
curl --cacert, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, git http.sslCAInfo.

${EXIT_CODES}
`,
  validate: `Usage: credproxy validate [--config DIR]

Checks credproxy.yaml and integrations/*.yaml and prints every problem as file:line: message.

${EXIT_CODES}
`,
  connections: `Usage:
  credproxy connections list ENTITY
  credproxy connections get ENTITY INTEGRATION [--label LABEL]
  credproxy connections set ENTITY INTEGRATION [--label LABEL] [--scheme TYPE] [--param NAME=VALUE]...
                            [--field NAME=VALUE | --field NAME=@FILE]... [--stdin]
  credproxy connections delete ENTITY INTEGRATION [--label LABEL]
  credproxy connections connect-link ENTITY INTEGRATION [--label LABEL] [--redirect-to URL]
                            [--param NAME=VALUE]... [--scheme TYPE]

  list          the entity's connections, labelled ones included: integration, label, scheme,
                status, expiry
  get           one connection (which fields are stored, never their values)
  set           stores credentials: --field token=@token.txt reads a file, --stdin reads a JSON
                object of fields ({"api_key": "..."}); prefer these to secrets on the command line
  delete        removes the connection
  connect-link  a single-use link (10 minutes) to a page where the user connects the entity:
                OAuth at the provider, or a form for the scheme's fields (--scheme: only that one)

  --label LABEL  one of several connections of the entity to the integration (e.g. work,
                 personal); requests pick it with the X-Connection-Label header. Without it:
                 the default connection, the one requests without that header use.

${CLIENT_OPTIONS}

${EXIT_CODES}
`,
  integrations: `Usage:
  credproxy integrations list
  credproxy integrations show NAME

  list   every integration: hosts, schemes, params
  show   one integration and, per scheme, the fields a connection supplies

${CLIENT_OPTIONS}

${EXIT_CODES}
`,
};
