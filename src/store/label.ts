import { CredproxyError } from '../errors.js';

/**
 * Connection labels (several accounts of one entity at one integration): spelled like entity
 * ids, at most 64 characters, so `work`, `personal` or an e-mail address fit and a label can
 * never hold `/`, a space or a control character (it appears in store keys, URLs and logs).
 */
export const LABEL = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}$/;

/** The request header that picks a labelled connection; credproxy's own, never sent upstream. */
export const LABEL_HEADER = 'X-Connection-Label';

export function checkLabel(label: string, where: string): string {
  if (!LABEL.test(label)) {
    throw new CredproxyError(
      'bad_request',
      `${where}: a connection label is 1 to 64 letters, digits and ._:@+- starting with a letter or digit (e.g. work); leave it out for the default connection`,
    );
  }
  return label;
}

/** Where a label shows up in messages: nothing for the default connection. */
export const labelled = (label: string | undefined) => (label === undefined ? '' : ` labelled "${label}"`);

/**
 * One connection's identity inside this process (refresh single-flight and backoff, minted
 * token caches): the unlabelled form is what it was before labels existed.
 */
export const connectionId = (entity: string, integration: string, label?: string) =>
  label === undefined ? `${entity}\n${integration}` : `${entity}\n${integration}\n${label}`;
