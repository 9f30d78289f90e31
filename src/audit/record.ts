import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Settings } from '../config/types.js';
import type { RequestInfo } from '../proxy/types.js';
import { AuditLog } from './audit-log.js';

/**
 * What of the runtime the audit log uses: its writer (replaced on a reload) and the log. Named
 * here rather than imported, so the runtime, which opens the writer, and this file do not
 * import each other.
 */
export interface AuditOwner {
  audit: AuditLog;
  readonly log: Logger;
}

/** An audit writer for `settings` whose write failures are logged; `after` is the writer it replaces closing. */
export function openAudit(settings: Settings['audit'], log: Logger, after?: Promise<void>): AuditLog {
  return new AuditLog(settings, { onError: (err) => log.error({ err }, 'the audit log could not be written'), after });
}

/**
 * Replaces the runtime's audit writer with one for `settings` (a reload changed `audit.*`):
 * the next request is recorded by the new one, and the old one writes what it holds first.
 * Turned off (`audit.enabled: false`), the new one records nothing and the ring is dropped;
 * turned on again, it starts empty (or appends to `audit.file`).
 */
export function swapAudit(rt: AuditOwner, settings: Settings['audit']): void {
  const old = rt.audit;
  rt.audit = openAudit(settings, rt.log, old.close());
  if (!settings.enabled) rt.log.info('audit log turned off by the reloaded settings (audit.enabled: false): no request is recorded');
  else rt.log.info({ file: settings.file ?? null }, old.enabled ? 'audit log reopened with the reloaded settings' : 'audit log turned on by the reloaded settings');
}

/** Byte counters of the request's connection when its handling starts. */
export interface ByteMark {
  read: number;
  written: number;
}

export function markBytes(req: IncomingMessage): ByteMark {
  return { read: req.socket?.bytesRead ?? 0, written: req.socket?.bytesWritten ?? 0 };
}

/**
 * Records a finished request to an integration host; passthrough is not audited. With
 * `audit.enabled: false` it returns first thing, before any of the record is built: building
 * it is the cost (about 5.6k instructions and 2k of GC per request, docs/performance.md).
 */
export function audit(rt: AuditOwner, info: RequestInfo, method: string | undefined, status: number, ms: number, req?: IncomingMessage, mark?: ByteMark, res?: ServerResponse): void {
  if (!rt.audit.enabled || info.integration === 'passthrough') return;
  const socket = res?.socket ?? req?.socket;
  try {
    rt.audit.recordAt(Date.now(), {
      entity: info.entity ?? null,
      integration: info.integration,
      label: info.label ?? null,
      method: method ?? '',
      host: info.host,
      path: info.path,
      status,
      bytes_in: bytesIn(req, mark),
      bytes_out: mark && socket ? Math.max(0, socket.bytesWritten - mark.written) : 0,
      ms: Math.round(ms * 10) / 10,
      refreshed: info.refreshed ?? false,
      replayed: info.replayed ?? false,
      client: info.client ?? null,
    });
  } catch (err) {
    rt.log.error({ err }, 'the audit log could not be written');
  }
}

/**
 * The request body's size: its Content-Length, else what the connection read while it was
 * handled (a small chunked body that came in the headers' packet counts as 0).
 */
function bytesIn(req: IncomingMessage | undefined, mark: ByteMark | undefined): number {
  const declared = Number(req?.headers['content-length']);
  if (Number.isInteger(declared) && declared >= 0) return declared;
  return mark && req?.socket ? Math.max(0, req.socket.bytesRead - mark.read) : 0;
}
