/**
 * The layer rule of issue 19 (ARCHITECTURE: who may import whom), checked by `npm run lint:layers`.
 * No exceptions list: a rule that needs one is a design problem to fix, not to record.
 * Type-only imports count too (tsPreCompilationDeps): a circle of types is still a circle.
 */
const LOWER = '^src/(store/|config/|tls/|errors\\.ts$|log\\.ts$)';
const HIGHER = '^src/(proxy|api|auth|oauth|ui|cli)/|^src/cli\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import circles make the load order matter and hide which layer owns what.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'lower-layers-know-nothing-of-higher-ones',
      severity: 'error',
      comment: 'store, config, tls, errors and log are the foundation: they never import the pipeline, the API, the schemes, OAuth, the UI or the CLI.',
      from: { path: LOWER },
      to: { path: HIGHER },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
