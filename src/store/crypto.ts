import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for credentials at rest. A fresh 12-byte IV per write, the full 16-byte tag
 * enforced on read, and the entity and integration bound as additional authenticated data,
 * so a blob copied onto another entity's key fails to decrypt instead of leaking.
 */
const VERSION = 'v1';

export function encrypt(key: Buffer, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [VERSION, iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join('.');
}

export function decrypt(key: Buffer, blob: string, aad: string): string {
  const [version, iv, tag, ct] = blob.split('.');
  if (version !== VERSION || iv === undefined || tag === undefined || ct === undefined) {
    throw new Error('stored credentials are not in a format this version can read');
  }
  const tagBytes = Buffer.from(tag, 'base64');
  if (tagBytes.length !== 16) throw new Error('stored credentials have a truncated authentication tag');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'), { authTagLength: 16 });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tagBytes);
  return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
}

/** Parses a 32-byte key given as base64 or hex; undefined when it is neither. */
export function parseKey(text: string): Buffer | undefined {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
    const b = Buffer.from(t, 'base64');
    if (b.length === 32) return b;
  }
  return undefined;
}
