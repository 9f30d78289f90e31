import type { AuthDefinition, SchemeConfig } from '../config/scheme-definition.js';
import { common, stringMap } from '../config/schema.js';
import { obj } from '../config/spec.js';
import { fieldInfos, traits } from './fields.js';
import { keyFiles } from './keys.js';
import { StaticScheme } from './static-scheme.js';
import { defineScheme } from './types.js';
import { UserJwtVerifier } from './user-jwt.js';

const spec = obj({ ...common, jwt_verify: stringMap });
type BearerConfig = SchemeConfig<typeof spec>;

/** A token the user pasted, sent as `Authorization: Bearer`. */
export class BearerScheme extends StaticScheme<BearerConfig> {
  readonly type = 'bearer';

  constructor(definition: AuthDefinition<BearerConfig>) {
    super(definition, true, definition.config.jwt_verify);
  }
}

export const bearer = defineScheme<typeof spec>({
  type: 'bearer',
  spec,
  describe: (config) => ({
    traits: traits({
      fields: fieldInfos(config.fields, [{ name: 'token', secret: true, optional: false }]),
      defaultInject: { headers: { Authorization: 'Bearer {{token}}' } },
    }),
    // jwt_verify problems (a key that does not parse, an unknown setting) are config errors.
    problems: config.jwt_verify ? new UserJwtVerifier(config.jwt_verify).problems : [],
    resolved: keyFiles(config.jwt_verify?.public_key),
  }),
  create: (definition) => new BearerScheme(definition),
});
