import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';

/**
 * `display.logo_file`: an integration's logo read from a file when the config loads, so the
 * connect page can show it from credproxy itself (no third-party request from the user's
 * browser, and no `img-src` beyond `'self'`). Checked here: the file exists, is at most
 * LOGO_MAX_BYTES, and is what its extension says (PNG, JPEG, WebP by their signature, SVG by
 * its root element).
 */

export const LOGO_MAX_BYTES = 256 * 1024;

export interface LogoFile {
  /** the resolved path, for messages */
  file: string;
  content_type: 'image/png' | 'image/svg+xml' | 'image/jpeg' | 'image/webp';
  bytes: Buffer;
  /** the first 16 hex digits of the content's SHA-256: the served URL changes with the file */
  hash: string;
}

const TYPES: Record<string, { type: LogoFile['content_type']; name: string; looks: (b: Buffer) => boolean }> = {
  '.png': { type: 'image/png', name: 'PNG', looks: (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  '.jpg': { type: 'image/jpeg', name: 'JPEG', looks: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  '.jpeg': { type: 'image/jpeg', name: 'JPEG', looks: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  '.webp': { type: 'image/webp', name: 'WebP', looks: (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP' },
  '.svg': { type: 'image/svg+xml', name: 'SVG', looks: (b) => /<svg[\s>]/.test(b.subarray(0, 4096).toString('utf8')) },
};

/** The logo, or a message naming the file and what is wrong with it. */
export function readLogo(file: string): LogoFile | string {
  const kind = TYPES[extname(file).toLowerCase()];
  if (!kind) return `${file}: a logo must be a .png, .svg, .jpg/.jpeg or .webp file`;
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) return `${file} is not a file`;
    size = st.size;
  } catch {
    return `${file} does not exist (a relative logo_file is read from the config folder)`;
  }
  if (size > LOGO_MAX_BYTES) return `${file} is ${size} bytes; a logo may be at most ${LOGO_MAX_BYTES} bytes (256 KiB)`;
  if (size === 0) return `${file} is empty`;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    return `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  if (!kind.looks(bytes)) return `${file} is not a ${kind.name} file, as its extension says`;
  return { file, content_type: kind.type, bytes, hash: createHash('sha256').update(bytes).digest('hex').slice(0, 16) };
}
