import type { AuthConfig, AuthType } from '../config/types.js';
import { acceptFields, fieldInfos } from './fields.js';
import type { AcceptedCredentials, AuthScheme, CredentialRequest, FieldInfo } from './types.js';

/**
 * The shared shape of schemes whose connection simply holds the secret fields
 * (api_key, bearer, basic): each file says which fields and what it injects by default.
 */
export abstract class StaticScheme implements AuthScheme {
  abstract readonly type: AuthType;
  abstract readonly defaultInject: AuthScheme['defaultInject'];
  readonly needsConnection = true;
  readonly computed: readonly string[] = [];
  readonly fields: readonly FieldInfo[];

  constructor(
    readonly config: AuthConfig,
    defaultFields: FieldInfo[],
  ) {
    this.fields = fieldInfos(config.fields, defaultFields);
  }

  accept(input: Record<string, unknown>): AcceptedCredentials {
    return { credentials: acceptFields(this.fields, input) };
  }

  values(req: CredentialRequest): Record<string, string> {
    return req.connection?.credentials ?? {};
  }
}
