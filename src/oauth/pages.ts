import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_HEADER, sendError, type CredproxyError } from '../errors.js';
import { sendTextPage } from '../ui/page.js';

export { escapeHtml } from '../ui/page.js';

/** The small page a browser sees at the end of a connect flow; every text is escaped. */
export function sendPage(res: ServerResponse, status: number, title: string, text: string, headers: Record<string, string> = {}): void {
  sendTextPage(res, status, title, text, headers);
}

/** An error message (lower case, no full stop, as in the JSON) as a sentence a person reads. */
export const asSentence = (message: string) => message.charAt(0).toUpperCase() + message.slice(1) + (/[.!?]$/.test(message) ? '' : '.');

/** Browsers get the error as a page, programs as the usual JSON; both carry X-Credproxy-Error. */
export function sendFlowError(req: IncomingMessage, res: ServerResponse, err: CredproxyError): void {
  if (/text\/html/.test(req.headers.accept ?? '')) {
    return sendPage(res, err.status, 'Connection not completed', asSentence(err.message), { [ERROR_HEADER]: err.code });
  }
  sendError(res, err);
}
