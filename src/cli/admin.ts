import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Connection, Integration, StoredConnection } from '../client/index.js';
import { ApiError, cliClient, UnreachableError, type CredproxyClient } from './client.js';
import { COMMAND_HELP, MAIN_HELP } from './help.js';
import { cell, keyValues, table } from './table.js';

/** What a command reads and writes; the binary passes the process's, tests their own. */
export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** the whole of standard input (connections set --stdin) */
  readStdin: () => Promise<string>;
}

export const EXIT = { ok: 0, api: 1, usage: 2, unreachable: 3 } as const;

export class UsageError extends Error {}

/**
 * The exit code for an error of a command that talks to a running proxy, after saying what
 * went wrong on stderr; `usageHint` follows a usage error. Anything else is a bug: rethrown.
 */
export function exitCodeFor(err: unknown, io: CliIO, command: string, usageHint = ''): number {
  if (err instanceof UsageError) {
    io.stderr(`credproxy ${command}: ${err.message}\n${usageHint}`);
    return EXIT.usage;
  }
  if (err instanceof UnreachableError) {
    io.stderr(`credproxy: ${err.message}; is it running? (--url)\n`);
    return EXIT.unreachable;
  }
  if (err instanceof ApiError) {
    // The client asks whether the URL is a credproxy; on the command line, the URL is --url.
    const message = err.code === 'unexpected_answer' ? err.message.replace('is it a credproxy?', 'is --url a credproxy?') : err.message;
    io.stderr(`credproxy: ${err.code} (${err.status}): ${message}\n`);
    return EXIT.api;
  }
  throw err;
}

type Values = {
  url?: string;
  'token-file'?: string;
  json?: boolean;
  help?: boolean;
  scheme?: string;
  param?: string[];
  field?: string[];
  stdin?: boolean;
  'redirect-to'?: string;
  label?: string;
};

interface Ctx {
  client: CredproxyClient;
  values: Values;
  args: string[];
  io: CliIO;
}

interface Command {
  /** positional argument names, for usage errors */
  args: string[];
  /** options besides the client ones */
  options: Array<keyof Values>;
  run(ctx: Ctx): Promise<void>;
}

/** `--label` addresses a labelled connection, as `?label=` does in the API. */
const ref = (ctx: Ctx) => (ctx.values.label === undefined ? {} : { label: ctx.values.label });
/** `"alice" to "github"`, or `"alice" to "github" (label "work")`. */
const which = (ctx: Ctx) => `"${ctx.args[0]}" to "${ctx.args[1]}"${ctx.values.label === undefined ? '' : ` (label "${ctx.values.label}")`}`;

type ConnectionView = Connection | StoredConnection;

function out(ctx: Ctx, body: unknown, text: () => string): void {
  ctx.io.stdout(ctx.values.json ? `${JSON.stringify(body, null, 2)}\n` : text());
}

interface VerifyView {
  method: string;
  path: string;
  host: string;
  expect: number[] | null;
}

/** `GET api.openai.com/v1/models → 200,403`: what storing a connection checks. */
const verifyLine = (v: VerifyView | null | undefined) => (v ? `${v.method} ${v.host}${v.path} → ${v.expect ? v.expect.join(',') : '2xx'}` : '-');

function connectionDetails(c: ConnectionView): string {
  const v = 'verification' in c ? c.verification : undefined;
  return keyValues([
    ['entity', cell(c.entity)],
    ['integration', cell(c.integration)],
    ['label', labelCell(c)],
    ['scheme', cell(c.scheme)],
    ['status', cell(c.status)],
    ['reason', cell(c.reason)],
    ['params', cell(c.params)],
    ['fields', cell(c.fields)],
    ['scopes', cell(c.scopes)],
    ['expires_at', cell(c.expires_at)],
    ['created_at', cell(c.created_at)],
    ['updated_at', cell(c.updated_at)],
    ...(v ? [['verification', `${v.ok ? 'ok' : 'not verified'}: ${v.message}`] as [string, string]] : []),
  ]);
}

/** The label column: `(default)` for the connection a request without X-Connection-Label uses. */
const labelCell = (c: ConnectionView) => (typeof c.label === 'string' ? c.label : '(default)');

/** The LABEL column only once the entity has a labelled connection: otherwise the table is what it always was. */
function connectionTable(list: ConnectionView[]): string {
  const labels = list.some((c) => typeof c.label === 'string');
  const rows = list.map((c) => [c.integration, ...(labels ? [labelCell(c)] : []), cell(c.scheme), cell(c.status), cell(c.fields), cell(c.expires_at), cell(c.params), cell(c.updated_at)]);
  return table(['INTEGRATION', ...(labels ? ['LABEL'] : []), 'SCHEME', 'STATUS', 'FIELDS', 'EXPIRES', 'PARAMS', 'UPDATED'], rows);
}

/** NAME=VALUE pairs of repeated options; VALUE `@path` reads a file (one final newline dropped). */
function pairs(list: string[] | undefined, option: string, files: boolean): Record<string, string> {
  const result: Record<string, string> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`--${option} "${item}": expected NAME=VALUE`);
    const name = item.slice(0, i);
    let value = item.slice(i + 1);
    if (files && value.startsWith('@')) {
      try {
        value = readFileSync(value.slice(1), 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        throw new UsageError(`--${option} ${name}: cannot read ${value.slice(1)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
    result[name] = value;
  }
  return result;
}

const COMMANDS: Record<string, Record<string, Command>> = {
  connections: {
    list: {
      args: ['ENTITY'],
      options: [],
      async run(ctx) {
        const list = await ctx.client.connections.list(ctx.args[0]!);
        const body = { entity: ctx.args[0]!, connections: list };
        out(ctx, body, () =>
          list.length === 0
            ? `entity "${ctx.args[0]}" has no connections\n`
            : connectionTable(list),
        );
      },
    },
    get: {
      args: ['ENTITY', 'INTEGRATION'],
      options: ['label'],
      async run(ctx) {
        const body = await ctx.client.connections.get(ctx.args[0]!, ctx.args[1]!, ref(ctx));
        out(ctx, body, () => connectionDetails(body));
      },
    },
    set: {
      args: ['ENTITY', 'INTEGRATION'],
      options: ['scheme', 'param', 'field', 'stdin', 'label'],
      async run(ctx) {
        let credentials: Record<string, unknown> = {};
        if (ctx.values.stdin) {
          const text = await ctx.io.readStdin();
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            throw new UsageError('--stdin: standard input is not JSON; expected an object of fields such as {"api_key": "..."}');
          }
          if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError('--stdin: expected a JSON object of fields');
          credentials = parsed as Record<string, unknown>;
        }
        credentials = { ...credentials, ...pairs(ctx.values.field, 'field', true) };
        if (Object.keys(credentials).length === 0) throw new UsageError('no credentials: give --field NAME=VALUE (or NAME=@FILE), or --stdin');
        const params = pairs(ctx.values.param, 'param', false);
        const request = {
          ...(ctx.values.scheme ? { scheme: ctx.values.scheme } : {}),
          ...(Object.keys(params).length > 0 ? { params } : {}),
          credentials,
        };
        const body = await ctx.client.connections.put(ctx.args[0]!, ctx.args[1]!, request, ref(ctx));
        out(ctx, body, () => connectionDetails(body));
      },
    },
    delete: {
      args: ['ENTITY', 'INTEGRATION'],
      options: ['label'],
      async run(ctx) {
        await ctx.client.connections.delete(ctx.args[0]!, ctx.args[1]!, ref(ctx));
        const label = ctx.values.label === undefined ? {} : { label: ctx.values.label };
        out(ctx, { deleted: true, entity: ctx.args[0], integration: ctx.args[1], ...label }, () => `deleted the connection of ${which(ctx)}\n`);
      },
    },
    'connect-link': {
      args: ['ENTITY', 'INTEGRATION'],
      options: ['redirect-to', 'param', 'label', 'scheme'],
      async run(ctx) {
        const params = pairs(ctx.values.param, 'param', false);
        const request = {
          ...(ctx.values['redirect-to'] ? { redirect_to: ctx.values['redirect-to'] } : {}),
          ...(ctx.values.scheme ? { scheme: ctx.values.scheme } : {}),
          ...(Object.keys(params).length > 0 ? { params } : {}),
        };
        let body;
        try {
          body = await ctx.client.connections.connectLink(ctx.args[0]!, ctx.args[1]!, request, ref(ctx));
        } catch (err) {
          if (err instanceof ApiError && err.status === 404 && /no such endpoint/.test(err.message)) {
            throw new ApiError(404, err.code, `${err.message}: the proxy at ${ctx.client.url} does not offer connect links (the connect page); upgrade it`);
          }
          throw err;
        }
        out(ctx, body, () => `${body.connect_url}\n(single use, valid until ${body.expires_at}; open it as the user to connect "${ctx.args[1]}")\n`);
      },
    },
  },
  integrations: {
    list: {
      args: [],
      options: [],
      async run(ctx) {
        const list = await ctx.client.integrations.list();
        const body = { integrations: list };
        out(ctx, body, () =>
          list.length === 0
            ? 'no integrations are configured\n'
            : table(
                ['NAME', 'HOSTS', 'SCHEMES', 'PARAMS'],
                list.map((i) => [i.name, cell(i.hosts), i.schemes.map((s) => s.type).join(','), cell(i.params.map((p) => p.name))]),
              ),
        );
      },
    },
    show: {
      args: ['NAME'],
      options: [],
      async run(ctx) {
        const i: Integration = await ctx.client.integrations.get(ctx.args[0]!);
        const body = i;
        out(ctx, body, () => {
          const head = keyValues([
            ['name', i.name],
            ['description', cell(i.description)],
            ['hosts', cell(i.hosts)],
            ['paths', cell(i.paths)],
            ['upstream', cell(i.upstream)],
            ['params', cell(i.params.map((p) => p.name))],
            ['verify', verifyLine(i.verify)],
          ]);
          const params = table(
            ['PARAM', 'PATTERN', 'DEFAULT', 'DESCRIPTION'],
            i.params.map((p) => [cell(p.name), cell(p.pattern), cell(p.default), cell(p.description)]),
          );
          const schemes = i.schemes
            .map((s) => {
              const rows = s.fields.map((f) => [cell(f.name), f.secret ? 'yes' : 'no', f.optional ? 'yes' : 'no', cell(f.pattern), cell(f.description)]);
              const fields = rows.length > 0 ? table(['FIELD', 'SECRET', 'OPTIONAL', 'PATTERN', 'DESCRIPTION'], rows) : '(no fields)\n';
              return `\nscheme ${s.type}${s.needs_connection ? '' : ' (needs no connection)'}\n${fields}`;
            })
            .join('');
          return head + (params ? `\n${params}` : '') + schemes;
        });
      },
    },
  },
};

const CLIENT_OPTIONS = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  scheme: { type: 'string' },
  param: { type: 'string', multiple: true },
  field: { type: 'string', multiple: true },
  stdin: { type: 'boolean' },
  'redirect-to': { type: 'string' },
  label: { type: 'string' },
} as const;

/** Whether `argv` is a command this module runs (so cli.ts can hand it over). */
export function isAdminCommand(argv: readonly string[]): boolean {
  return argv[0] !== undefined && (argv[0] in COMMANDS || argv[0] === 'help');
}

export function adminToken(values: { 'token-file'?: string }, env: NodeJS.ProcessEnv, defaultFile = './data/admin.token'): string {
  const file = values['token-file'];
  if (file === undefined && env.CREDPROXY_ADMIN_TOKEN) return env.CREDPROXY_ADMIN_TOKEN;
  const path = file ?? defaultFile;
  try {
    const token = readFileSync(path, 'utf8').trim();
    if (token) return token;
  } catch {
    // fall through to the message below
  }
  throw new UsageError(`no admin token: set CREDPROXY_ADMIN_TOKEN or give --token-file (${path} cannot be read or is empty)`);
}

/**
 * `credproxy connections …`, `credproxy integrations …` and `credproxy help …`: talk to a
 * running proxy's admin API. Returns the exit code (see EXIT and the help text).
 */
export async function runAdminCommand(argv: string[], io: CliIO): Promise<number> {
  const [group, ...rest] = argv;
  if (group === 'help') {
    const topic = rest[0];
    if (topic === undefined) {
      io.stdout(MAIN_HELP);
      return EXIT.ok;
    }
    const text = COMMAND_HELP[topic];
    if (!text) {
      io.stderr(`credproxy help: no command "${topic}"\n\n${MAIN_HELP}`);
      return EXIT.usage;
    }
    io.stdout(text);
    return EXIT.ok;
  }
  const help = COMMAND_HELP[group!]!;
  let parsed;
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, options: CLIENT_OPTIONS });
  } catch (err) {
    io.stderr(`credproxy ${group}: ${(err as Error).message}\n\n${help}`);
    return EXIT.usage;
  }
  const values = parsed.values as Values;
  const [sub, ...args] = parsed.positionals;
  if (values.help || sub === undefined) {
    (values.help ? io.stdout : io.stderr)(help);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  const command = COMMANDS[group!]![sub];
  if (!command) {
    io.stderr(`credproxy ${group}: unknown subcommand "${sub}"; expected ${Object.keys(COMMANDS[group!]!).join(', ')}\n\n${help}`);
    return EXIT.usage;
  }
  let client: CredproxyClient | undefined;
  try {
    if (args.length !== command.args.length) {
      throw new UsageError(`expected ${command.args.length === 0 ? 'no arguments' : command.args.join(' ')}, got ${args.length === 0 ? 'none' : args.map((a) => `"${a}"`).join(' ')}`);
    }
    const allowed = new Set<string>(['url', 'token-file', 'json', 'help', ...command.options]);
    const stray = Object.keys(values).filter((k) => !allowed.has(k));
    if (stray.length > 0) throw new UsageError(`${stray.map((k) => `--${k}`).join(', ')} does not apply here`);
    const url = values.url ?? io.env.CREDPROXY_URL ?? 'http://127.0.0.1:8080';
    if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--url "${url}" is not an http(s) URL`);
    client = cliClient(url, adminToken(values, io.env));
    await command.run({ client, values, args, io });
    return EXIT.ok;
  } catch (err) {
    return exitCodeFor(err, io, `${group} ${sub}`, `(see credproxy ${group} --help)\n`);
  } finally {
    await client?.close();
  }
}
