import type { AuthConfig } from '../config/types.js';
import { StaticScheme } from './static-scheme.js';
import type { SchemeProblem } from './types.js';

/** One or more declared secret fields, injected in a header or the query. */
export class ApiKeyScheme extends StaticScheme {
  readonly type = 'api_key';
  readonly defaultInject;

  constructor(config: AuthConfig) {
    super(config, [{ name: 'api_key', secret: true, optional: false }], true);
    // With a single field, the default header carries it, whatever it is called.
    this.defaultInject = { headers: { Authorization: `Bearer {{${this.fields[0]?.name ?? 'api_key'}}}` } };
  }

  /** jwt_verify problems (a key that does not parse, an unknown setting) are config errors. */
  check(): SchemeProblem[] {
    return this.jwtVerifier?.problems ?? [];
  }
}
