import type { AuthConfig, AuthType } from '../config/types.js';
import { ApiKeyScheme } from './api-key.js';
import { AwsSigV4Scheme } from './aws-sigv4.js';
import { BasicScheme } from './basic.js';
import { BearerScheme } from './bearer.js';
import { JwtBearerScheme } from './jwt-bearer.js';
import { JwtScheme } from './jwt.js';
import { OAuth1Scheme } from './oauth1.js';
import { OAuth2Scheme } from './oauth2.js';
import { OAuth2ClientCredentialsScheme } from './oauth2-client-credentials.js';
import type { AuthScheme, SchemeFactory } from './types.js';

/** The lookup table of schemes, keyed by `auth.type`. A new scheme is one file and one line here. */
export const SCHEMES: Record<AuthType, SchemeFactory> = {
  api_key: (c) => new ApiKeyScheme(c),
  bearer: (c) => new BearerScheme(c),
  basic: (c) => new BasicScheme(c),
  oauth2: (c) => new OAuth2Scheme(c),
  oauth2_client_credentials: (c) => new OAuth2ClientCredentialsScheme(c),
  jwt: (c) => new JwtScheme(c),
  jwt_bearer: (c) => new JwtBearerScheme(c),
  oauth1: (c) => new OAuth1Scheme(c),
  aws_sigv4: (c) => new AwsSigV4Scheme(c),
};

export function createScheme(config: AuthConfig): AuthScheme | undefined {
  return SCHEMES[config.type]?.(config);
}
