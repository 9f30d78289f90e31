import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Settings } from '../config/types.js';
import type { RequestInfo } from '../proxy/handler.js';
import type { Runtime } from '../runtime.js';
import { AuditLog } from './audit-log.js';

/** One audit log per running instance, made from the settings it started with. */
const logs = new WeakMap<Runtime, AuditLog>();
export function auditLogOf(rt: Runtime): AuditLog {
  let log = logs.get(rt);
  if (!log) {
    const a: Settings['audit'] = rt.current.config.settings.audit;
    log = new AuditLog(a);
    logs.set(rt, log);
  }
  return log;
}

/** Writes the audit lines still pending (shutdown). */
export function flushAudit(rt: Runtime): void {
  logs.get(rt)?.flushSync();
}

/** Byte counters of the request's connection when its handling starts. */
export interface ByteMark {
  read: number;
  written: number;
}

export function markBytes(req: IncomingMessage): ByteMark {
  return { read: req.socket?.bytesRead ?? 0, written: req.socket?.bytesWritten ?? 0 };
}

/** Records a finished request to an integration host; passthrough is not audited. */
export function audit(rt: Runtime, info: RequestInfo, method: string | undefined, status: number, ms: number, req?: IncomingMessage, mark?: ByteMark, res?: ServerResponse): void {
  if (info.integration === 'passthrough') return;
  const socket = res?.socket ?? req?.socket;
  try {
    auditLogOf(rt).record({
      time: new Date().toISOString(),
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
