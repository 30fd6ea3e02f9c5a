/**
 * The house rules of mcp-tx, checked by `npm run lint`: no import circle, and every import points
 * down the layers below (a file may import its own layer and those under it, never one above).
 */
const LAYERS = [
  ['core', '^src/core/'],
  ['config', '^src/config/'],
  ['call', '^src/call/'],
  ['parts', '^src/(idempotency|breaker|limiter|events|health|transport|connection)/'],
  ['operators, server and tasks', '^(operators|src/(server|tasks))/'],
  ['client', '^src/client/'],
  ['orchestration, gateway, testing', '^src/(orchestration|gateway|testing)/'],
  ['cli', '^src/cli/'],
  ['entries', '^src/[^/]+\\.ts$'],
];

const upwardImports = LAYERS.slice(0, -1).map(([name, path], index) => ({
  name: `no-upward-import-from-${name.replace(/\W+/g, '-')}`,
  comment: `${name} may import only its own layer and those below it`,
  severity: 'error',
  from: { path },
  to: { path: LAYERS.slice(index + 1).map(([, higher]) => higher) },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import circle ties files that should stand apart',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...upwardImports,
  ],
  options: {
    includeOnly: '^(src|operators)/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
