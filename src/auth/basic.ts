import type { AuthConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import { StaticScheme } from './static-scheme.js';
import type { AcceptedCredentials, CredentialRequest } from './types.js';

/** A user name and password, sent as `Authorization: Basic base64(username:password)`. */
export class BasicScheme extends StaticScheme {
  readonly type = 'basic';
  readonly defaultInject = { headers: { Authorization: 'Basic {{basic_auth}}' } };
  override readonly computed = ['basic_auth'];

  constructor(config: AuthConfig) {
    super(config, [
      { name: 'username', secret: false, optional: false },
      { name: 'password', secret: true, optional: false },
    ]);
  }

  override accept(input: Record<string, unknown>): AcceptedCredentials {
    const accepted = super.accept(input);
    // RFC 7617: the user-id cannot contain a colon; the password may.
    if (accepted.credentials.username?.includes(':')) {
      throw new CredproxyError('bad_request', 'credentials.username must not contain ":" (RFC 7617)');
    }
    return accepted;
  }

  override values(req: CredentialRequest): Record<string, string> {
    const c = req.connection?.credentials ?? {};
    const basic = Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`, 'utf8').toString('base64');
    return { ...c, basic_auth: basic };
  }
}
