import type { AuthDefinition, SchemeConfig } from '../config/scheme-definition.js';
import { common, stringMap } from '../config/schema.js';
import { obj } from '../config/spec.js';
import { fieldInfos, traits } from './fields.js';
import { keyFiles } from './keys.js';
import { StaticScheme } from './static-scheme.js';
import { defineScheme } from './types.js';
import { UserJwtVerifier } from './user-jwt.js';

const spec = obj({ ...common, jwt_verify: stringMap });
type ApiKeyConfig = SchemeConfig<typeof spec>;

/** One or more declared secret fields, injected in a header or the query. */
export class ApiKeyScheme extends StaticScheme<ApiKeyConfig> {
  readonly type = 'api_key';

  constructor(definition: AuthDefinition<ApiKeyConfig>) {
    super(definition, true, definition.config.jwt_verify);
  }
}

export const apiKey = defineScheme<typeof spec>({
  type: 'api_key',
  spec,
  describe: (config) => {
    const fields = fieldInfos(config.fields, [{ name: 'api_key', secret: true, optional: false }]);
    return {
      // With a single field, the default header carries it, whatever it is called.
      traits: traits({ fields, defaultInject: { headers: { Authorization: `Bearer {{${fields[0]?.name ?? 'api_key'}}}` } } }),
      // jwt_verify problems (a key that does not parse, an unknown setting) are config errors.
      problems: config.jwt_verify ? new UserJwtVerifier(config.jwt_verify).problems : [],
      resolved: keyFiles(config.jwt_verify?.public_key),
    };
  },
  create: (definition) => new ApiKeyScheme(definition),
});
