import type { AuthDefinition, SchemeConfig } from '../config/scheme-definition.js';
import { common } from '../config/schema.js';
import { obj } from '../config/spec.js';
import { CredproxyError } from '../errors.js';
import { fieldInfos, traits } from './fields.js';
import { StaticScheme } from './static-scheme.js';
import { defineScheme, type AcceptedCredentials, type CredentialRequest } from './types.js';

const spec = obj({ ...common });
type BasicConfig = SchemeConfig<typeof spec>;

/** A user name and password, sent as `Authorization: Basic base64(username:password)`. */
export class BasicScheme extends StaticScheme<BasicConfig> {
  readonly type = 'basic';

  constructor(definition: AuthDefinition<BasicConfig>) {
    super(definition);
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

export const basic = defineScheme<typeof spec>({
  type: 'basic',
  spec,
  describe: (config) => ({
    traits: traits({
      fields: fieldInfos(config.fields, [
        { name: 'username', secret: false, optional: false },
        { name: 'password', secret: true, optional: false },
      ]),
      computed: ['basic_auth'],
      defaultInject: { headers: { Authorization: 'Basic {{basic_auth}}' } },
    }),
  }),
  create: (definition) => new BasicScheme(definition),
});
