import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.tap/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  {
    // One way out (issue 15 #1): every connection credproxy opens goes through
    // src/proxy/egress.ts (egressAgent, dialTcp), which resolves, checks the egress policy and
    // dials the checked address. Nothing else in src/ may dial by itself. The CLI and the
    // client (src/client/, run inside applications) talk only to credproxy and are exempt.
    files: ['src/**/*.ts'],
    ignores: ['src/proxy/egress.ts', 'src/cli.ts', 'src/cli/**', 'src/client/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...['node:net', 'net'].map((name) => ({ name, importNames: ['default', 'connect', 'createConnection', 'Socket'], allowTypeImports: true, message: 'dial through src/proxy/egress.ts (dialTcp)' })),
            ...['node:tls', 'tls'].map((name) => ({ name, importNames: ['default', 'connect'], allowTypeImports: true, message: 'dial through src/proxy/egress.ts' })),
            // node:http's default import stays (createServer, STATUS_CODES); its dialling members are caught below.
            ...['node:http', 'http'].map((name) => ({
              name,
              importNames: ['request', 'get', 'Agent', 'globalAgent'],
              allowTypeImports: true,
              message: 'send through a dispatcher from src/proxy/egress.ts (egressAgent)',
            })),
            ...['node:https', 'https', 'node:http2', 'http2'].map((name) => ({
              name,
              importNames: ['default', 'request', 'get', 'Agent', 'globalAgent', 'connect'],
              allowTypeImports: true,
              message: 'send through a dispatcher from src/proxy/egress.ts (egressAgent)',
            })),
            {
              name: 'undici',
              importNames: ['Agent', 'Pool', 'Client', 'BalancedPool', 'ProxyAgent', 'EnvHttpProxyAgent', 'RetryAgent', 'buildConnector', 'connect', 'upgrade', 'stream', 'pipeline', 'setGlobalDispatcher', 'WebSocket', 'EventSource'],
              allowTypeImports: true,
              message: 'build pools with egressAgent() from src/proxy/egress.ts',
            },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'MemberExpression[object.name=/^(http|https|http2)$/][property.name=/^(request|get|Agent|globalAgent|connect)$/]',
          message: 'send through a dispatcher from src/proxy/egress.ts (egressAgent)',
        },
        {
          // `(secure ? https : http).request(…)`, as upgrade.ts once did
          selector: "CallExpression[callee.type='MemberExpression'][callee.property.name=/^(request|get|connect|createConnection)$/][callee.object.type=/^(ConditionalExpression|LogicalExpression)$/]",
          message: 'send through a dispatcher from src/proxy/egress.ts (egressAgent)',
        },
        {
          selector: 'MemberExpression[object.name=/^(net|tls)$/][property.name=/^(connect|createConnection|Socket)$/]',
          message: 'dial through src/proxy/egress.ts (dialTcp)',
        },
        {
          // undici's request()/fetch() (and node's fetch) without a dispatcher use the global one, which checks nothing.
          selector: "CallExpression[callee.name=/^(request|fetch|undiciFetch)$/]:not(:has(Property[key.name='dispatcher']))",
          message: 'pass a dispatcher built by egressAgent() (src/proxy/egress.ts)',
        },
      ],
    },
  },
);
