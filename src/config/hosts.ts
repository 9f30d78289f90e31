import { domainToASCII } from 'node:url';

/**
 * One entry of an integration's `hosts`. `port` is undefined for "the default port", so that
 * `api.example.com` and `api.example.com:443` (with `upstream: https`) are the same thing.
 */
export interface HostPattern {
  /** lower-case ASCII host name or IP literal (IPv6 without brackets); for a wildcard, the suffix after `*.` */
  host: string;
  port: number | undefined;
  wildcard: boolean;
  /** `{{param}}` templates are filled from a connection's params (see DESIGN.md) */
  template: boolean;
  source: string;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
const TEMPLATE_LABEL = /^(?:[a-z0-9_-]|\{\{[a-z_][a-z0-9_]*\}\})+$/;

/** Lower-cases, drops a trailing dot and converts IDN to ASCII; '' when it is no host name. */
export function normalizeHostname(host: string): string {
  let h = host.trim();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.includes(':')) return isIPv6(h) ? h.toLowerCase() : '';
  if (h.endsWith('.')) h = h.slice(0, -1);
  const ascii = domainToASCII(h);
  if (!ascii) return '';
  return ascii.split('.').every((l) => LABEL.test(l)) ? ascii : '';
}

function isIPv6(h: string): boolean {
  return /^[0-9a-f:.]+$/i.test(h) && h.includes(':');
}

/** Parses a `hosts` entry; returns a message instead when it is not one. */
export function parseHostPattern(source: string, defaultPort: number): HostPattern | string {
  let rest = source.trim();
  let port: number | undefined;
  if (/[/@?#\s]/.test(rest) || rest.includes('://')) {
    return `"${source}" is not a host name: give only the host, optionally with :port (no scheme, path or user)`;
  }
  const portMatch = rest.startsWith('[') ? /^(\[[^\]]+\])(?::(\d+))?$/.exec(rest) : /^([^:]+)(?::(\d+))?$/.exec(rest);
  if (!portMatch) return `"${source}" is not a host or host:port`;
  rest = portMatch[1] ?? '';
  if (portMatch[2] !== undefined) {
    port = Number(portMatch[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return `"${source}" has a port out of range (1 to 65535)`;
    if (port === defaultPort) port = undefined;
  }
  if (rest.includes('{{')) {
    const lower = rest.toLowerCase();
    if (!lower.includes('.') || !lower.split('.').every((l) => TEMPLATE_LABEL.test(l))) {
      return `"${source}" is not a host template like "{{subdomain}}.example.com"`;
    }
    return { host: lower, port, wildcard: false, template: true, source };
  }
  const wildcard = rest.startsWith('*.');
  if (rest.includes('*') && !wildcard) {
    return `"${source}": a wildcard is only allowed as the whole first label, as in "*.example.com"`;
  }
  const host = normalizeHostname(wildcard ? rest.slice(2) : rest);
  if (!host) return `"${source}" is not a valid host name`;
  if (wildcard && !host.includes('.')) return `"${source}": a wildcard needs at least two labels after "*.", as in "*.example.com"`;
  return { host, port, wildcard, template: false, source };
}
