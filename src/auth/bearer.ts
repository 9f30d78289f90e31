import type { AuthConfig } from '../config/types.js';
import { StaticScheme } from './static-scheme.js';
import type { SchemeProblem } from './types.js';

/** A token the user pasted, sent as `Authorization: Bearer`. */
export class BearerScheme extends StaticScheme {
  readonly type = 'bearer';
  readonly defaultInject = { headers: { Authorization: 'Bearer {{token}}' } };

  constructor(config: AuthConfig) {
    super(config, [{ name: 'token', secret: true, optional: false }], true);
  }

  /** jwt_verify problems (a key that does not parse, an unknown setting) are config errors. */
  check(): SchemeProblem[] {
    return this.jwtVerifier?.problems ?? [];
  }
}
