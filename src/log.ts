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

export type LogFormat = 'json' | 'pretty';

export function createLogger(opts: { level?: string; format?: LogFormat; destination?: DestinationStream } = {}): Logger {
  const base = {
    level: opts.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: undefined,
  };
  if (opts.destination) return pino(base, opts.destination);
  if (opts.format === 'pretty') {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  // Asynchronous writes keep logging off the request's critical path.
  return pino(base, pino.destination({ sync: false }));
}
