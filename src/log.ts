import pino, { type DestinationStream, type Logger } from 'pino';
import { flushAtExit } from './exit-flush.js';

/** pino's asynchronous file destination (sonic-boom). */
type SonicBoom = ReturnType<typeof pino.destination>;

/**
 * Paths pino blanks in every line. Request logs carry no headers at all (only entity,
 * integration, method, host, path, status, duration); these catch whatever a future log
 * call might pass by mistake.
 */
export const REDACT_PATHS = [
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
  'proxy-authorization', '*.headers["proxy-authorization"]', 'headers["proxy-authorization"]',
  'cookie', '*.cookie', 'headers.cookie', '*.headers.cookie', 'headers["set-cookie"]', '*.headers["set-cookie"]',
  'token', '*.token', 'access_token', '*.access_token', 'refresh_token', '*.refresh_token', 'id_token', '*.id_token',
  'api_key', '*.api_key', 'password', '*.password', 'secret', '*.secret', 'client_secret', '*.client_secret',
  'private_key', '*.private_key', 'credentials', '*.credentials', 'code', '*.code', 'state', '*.state',
  'key', '*.key', 'admin_token', '*.admin_token',
];

const CENSOR = '[redacted]';

/** The top-level names among REDACT_PATHS: the only ones that can apply to a line of scalar fields. */
const TOP_LEVEL_PATHS = REDACT_PATHS.filter((p) => !p.includes('.') && !p.includes('['));

const requestLoggers = new WeakMap<Logger, Logger>();

/**
 * The logger for the one-line-per-request log. Its fields are all scalars (strings, numbers,
 * booleans), so the nested `*.x` redaction paths can never match; pino would still run a
 * redaction pass over every field of every line for them, which profiling showed to be the
 * largest single cost of a proxied request. This child keeps the top-level paths only and
 * follows the parent's level (a reload may change it).
 */
export function requestLogger(log: Logger): Logger {
  let child = requestLoggers.get(log);
  if (!child) {
    child = log.child({}, { redact: { paths: TOP_LEVEL_PATHS, censor: CENSOR } });
    requestLoggers.set(log, child);
  }
  if (child.level !== log.level) child.level = log.level;
  return child;
}

/** Loggers made by createLogger (JSON lines, no bindings, mixin or formatters) and the stream they write to. */
const directStreams = new WeakMap<Logger, DestinationStream>();

const INFO = 30;
const REDACTED_KEYS = new Set(TOP_LEVEL_PATHS);
const CENSORED = JSON.stringify(CENSOR);

/**
 * The one-line-per-request log: `{"level":30,"time":…,<fields>,"msg":…}`, the line
 * `requestLogger(log).info(fields, msg)` writes, built here for loggers made by createLogger.
 * pino's generic path (serializer and redaction lookups per field, a format string, the
 * write hooks) cost more than the line itself; the fields here are scalars, so the line is
 * a loop of JSON.stringify calls and top-level redaction a set lookup. Any other logger, or
 * a field that is not a scalar, goes through pino.
 */
export function logRequestLine(log: Logger, fields: Readonly<Record<string, unknown>>, msg: string): void {
  const stream = directStreams.get(log);
  if (stream === undefined) return requestLogger(log).info(fields, msg);
  if (log.levelVal > INFO) return;
  let line = `{"level":${INFO},"time":${timeNow()}`;
  for (const key in fields) {
    const v = fields[key];
    let json: string;
    switch (typeof v) {
      case 'undefined':
        continue;
      case 'string':
        json = jsonOfString(v);
        break;
      case 'number':
        json = Number.isFinite(v) ? numberText(v) : 'null';
        break;
      case 'boolean':
        json = v ? 'true' : 'false';
        break;
      default:
        return requestLogger(log).info(fields, msg);
    }
    const prefix = keyPrefix(key);
    line += prefix.redacted ? prefix.text + CENSORED : prefix.text + json;
  }
  stream.write(`${line},"msg":${jsonOfString(msg)}}\n`);
}

/*
 * What follows saves work the same on most lines: counted with npm run bench:instructions,
 * the request log line was 14k of the 212k instructions of an injected request, and turning
 * a number into text (FastDtoa) and JSON.stringify's set-up per value were a third of it.
 */

/** Date.now() as text, made once per millisecond (it is a double, and its text goes through FastDtoa). */
let lastNow = 0;
let lastNowText = '0';
function timeNow(): string {
  const now = Date.now();
  if (now !== lastNow) {
    lastNow = now;
    lastNowText = String(now);
  }
  return lastNowText;
}

/**
 * A number as String() writes it. Integers, and tenths such as the rounded `ms` of the request
 * log, are written from integers: String() of a fraction runs the shortest-double algorithm.
 */
export function numberText(v: number): string {
  if (Number.isInteger(v)) return String(v);
  if (v > 0 && v < 1e9) {
    const tenths = Math.round(v * 10);
    // v is exactly the double nearest to tenths/10: the shortest text is that decimal
    if (tenths / 10 === v) return `${Math.trunc(tenths / 10)}.${tenths % 10}`;
  }
  return String(v);
}

/**
 * The JSON of the string values most lines repeat (an entity, an integration, a method, a
 * host, the message): JSON.stringify costs a call into the runtime and a string builder per value, a Map
 * lookup less. Bounded: short strings only, and the map starts again when full.
 */
const stringJson = new Map<string, string>();
function jsonOfString(v: string): string {
  if (v.length > 64) return JSON.stringify(v);
  let j = stringJson.get(v);
  if (j === undefined) {
    j = JSON.stringify(v);
    if (stringJson.size >= 1024) stringJson.clear();
    stringJson.set(v, j);
  }
  return j;
}

/**
 * `,"key":` per field name, and whether pino's redaction blanks it, made once: the request
 * log writes the same dozen names on every line. Bounded, in case a caller's keys vary.
 */
const keyPrefixes = new Map<string, { text: string; redacted: boolean }>();
function keyPrefix(key: string): { text: string; redacted: boolean } {
  let p = keyPrefixes.get(key);
  if (p === undefined) {
    p = { text: `,${JSON.stringify(key)}:`, redacted: REDACTED_KEYS.has(key) };
    if (keyPrefixes.size < 256) keyPrefixes.set(key, p);
  }
  return p;
}

/** Log lines are written in batches of at least this many bytes, or after LOG_FLUSH_MS. */
export const LOG_BATCH_BYTES = 65536;
export const LOG_FLUSH_MS = 200;

/**
 * Gathers log lines into batches before they reach sonic-boom. sonic-boom measures the
 * UTF-8 length of its whole pending buffer on every write (a string it keeps appending to,
 * flattened again each time), so with lines gathered there one line cost about 2 µs more
 * than pino building it; one write per batch makes that once per batch. Pending lines go
 * out when they reach LOG_BATCH_BYTES, after LOG_FLUSH_MS, on flush() and at exit.
 */
export class LineBatch {
  private pending = '';
  /** characters, not bytes: a threshold only needs to be close */
  private size = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly out: SonicBoom) {
    flushAtExit(this);
  }

  write(line: string): boolean {
    this.pending += line;
    this.size += line.length;
    if (this.size >= LOG_BATCH_BYTES) this.push();
    else this.timer ??= setTimeout(this.push, LOG_FLUSH_MS).unref();
    return true;
  }

  /** Hands the pending lines to sonic-boom, which writes them asynchronously. */
  private readonly push = (): void => {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.size === 0) return;
    const lines = this.pending;
    this.pending = '';
    this.size = 0;
    this.out.write(lines);
  };

  /** pino's logger.flush(): pending lines are handed over, then written. */
  flush(cb?: (err?: Error) => void): void {
    this.push();
    this.out.flush(cb);
  }

  flushSync(): void {
    this.push();
    try {
      this.out.flushSync();
    } catch {
      // sonic-boom not ready (its file is still opening) or already closed: nothing to save.
    }
  }
}

export type LogFormat = 'json' | 'pretty';

export function createLogger(opts: { level?: string; format?: LogFormat; destination?: DestinationStream } = {}): Logger {
  const base = {
    level: opts.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    base: undefined,
  };
  if (opts.format === 'pretty' && !opts.destination) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  // Asynchronous writes keep logging off the request's critical path. Lines are gathered
  // into writes of at least LOG_BATCH_BYTES (one write per request line was the next largest
  // cost after redaction under load), and whatever is pending is written after
  // LOG_FLUSH_MS and at exit, so a quiet proxy's lines are late by that much at most.
  const stream = opts.destination ?? new LineBatch(pino.destination({ sync: false }));
  const log = pino(base, stream);
  // A stream that wants each line's level and object (pino.multistream) gets them from pino only.
  if ((stream as { [pino.symbols.needsMetadataGsym]?: boolean })[pino.symbols.needsMetadataGsym] !== true) directStreams.set(log, stream);
  return log;
}
