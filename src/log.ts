import pino, { type DestinationStream, type Logger } from 'pino';

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

/** Log lines are written in batches of at least this many bytes, or after LOG_FLUSH_MS. */
export const LOG_BATCH_BYTES = 4096;
export const LOG_FLUSH_MS = 200;

export type LogFormat = 'json' | 'pretty';

export function createLogger(opts: { level?: string; format?: LogFormat; destination?: DestinationStream } = {}): Logger {
  const base = {
    level: opts.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    base: undefined,
  };
  if (opts.destination) return pino(base, opts.destination);
  if (opts.format === 'pretty') {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  // Asynchronous writes keep logging off the request's critical path. Lines are gathered
  // into writes of at least LOG_BATCH_BYTES (one write per request line was the next largest
  // cost after redaction under load), and whatever is pending is written every
  // LOG_FLUSH_MS and at exit (pino flushes its destination then), so a quiet proxy's
  // lines are late by that much at most.
  return pino(base, pino.destination({ sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS }));
}
