import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { AuditEntry } from '../audit/audit-log.js';
import { adminToken, EXIT, exitCodeFor, UsageError, type CliIO } from './admin.js';
import { cliClient, type CredproxyClient } from './client.js';
import { COMMAND_HELP } from './help.js';
import { cell, table } from './table.js';

const OPTIONS = {
  entity: { type: 'string' },
  integration: { type: 'string' },
  since: { type: 'string' },
  limit: { type: 'string' },
  follow: { type: 'boolean', short: 'f' },
  json: { type: 'boolean' },
  url: { type: 'string' },
  'token-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const HEADERS = ['TIME', 'ENTITY', 'INTEGRATION', 'LABEL', 'METHOD', 'HOST', 'PATH', 'STATUS', 'IN', 'OUT', 'MS', 'CLIENT', 'FLAGS'];
const row = (e: AuditEntry) => [
  e.time, cell(e.entity), e.integration, cell(e.label), e.method, e.host, e.path, String(e.status), String(e.bytes_in), String(e.bytes_out), String(e.ms), cell(e.client),
  [e.refreshed ? 'refreshed' : '', e.replayed ? 'replayed' : ''].filter(Boolean).join(',') || '-',
];

/** `credproxy audit`: the audit log of a running proxy as a table; `--follow` keeps polling for new entries. */
export async function runAuditCommand(argv: string[], io: CliIO, opts: { pollMs?: number; signal?: AbortSignal } = {}): Promise<number> {
  const help = COMMAND_HELP.audit!;
  let values;
  try {
    ({ values } = parseArgs({ args: argv.slice(1), allowPositionals: false, options: OPTIONS }));
  } catch (err) {
    io.stderr(`credproxy audit: ${(err as Error).message}\n\n${help}`);
    return EXIT.usage;
  }
  if (values.help) {
    io.stdout(help);
    return EXIT.ok;
  }
  let client: CredproxyClient | undefined;
  try {
    const url = values.url ?? io.env.CREDPROXY_URL ?? 'http://127.0.0.1:8080';
    if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--url "${url}" is not an http(s) URL`);
    client = cliClient(url, adminToken(values, io.env));
    // A bad limit (NaN too) is the server's 400, which says what it accepts.
    const limit = values.limit ?? '100';
    const fetchEntries = (since: string | undefined): Promise<AuditEntry[]> =>
      client!.audit.query({ entity: values.entity || undefined, integration: values.integration || undefined, since: since || undefined, limit: Number(limit) });
    let entries = await fetchEntries(values.since);
    const print = (list: AuditEntry[], head: boolean) => {
      if (values.json) io.stdout(list.map((e) => `${JSON.stringify(e)}\n`).join(''));
      else if (list.length > 0) io.stdout(head ? table(HEADERS, list.map(row)) : table(HEADERS, list.map(row)).split('\n').slice(1).join('\n'));
    };
    if (!values.follow) {
      if (entries.length === 0 && !values.json) io.stdout('no audit entries match\n');
      print(entries, true);
      return EXIT.ok;
    }
    print(entries, true);
    // Entries at the last printed time may be fetched again: those already shown are skipped.
    let shown = new Set(entries.map((e) => JSON.stringify(e)));
    let last = entries.at(-1)?.time ?? new Date().toISOString();
    while (!opts.signal?.aborted) {
      await sleep(opts.pollMs ?? 1000);
      entries = (await fetchEntries(last)).filter((e) => !shown.has(JSON.stringify(e)));
      if (entries.length === 0) continue;
      print(entries, shown.size === 0);
      last = entries.at(-1)!.time;
      shown = new Set([...shown, ...entries.map((e) => JSON.stringify(e))].slice(-1000));
    }
    return EXIT.ok;
  } catch (err) {
    return exitCodeFor(err, io, 'audit');
  } finally {
    await client?.close();
  }
}
