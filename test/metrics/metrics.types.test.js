'use strict';
// Proves lib/metrics.d.ts: test/metrics/types/usage.ts (the metrics API used as an
// application would) compiles with `tsc --noEmit`, its deliberate misuses are rejected, and
// the declared value exports are exactly the runtime exports of lib/metrics.js.
const path = require('path');
const { spawnSync } = require('child_process');
const ts = require('typescript');

const root = path.resolve(__dirname, '..', '..');
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });

test('usage.ts type-checks against lib/metrics.d.ts, misuses included', () => {
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types', 'tsconfig.json'), '--pretty', 'false'], {
    cwd: root,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`tsc failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
}, 120000);

test('the declared exports of lib/metrics.d.ts are the runtime exports of lib/metrics.js', () => {
  const file = path.join(root, 'lib', 'metrics.d.ts');
  const program = ts.createProgram([file], { strict: true, types: [], noEmit: true });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(file));
  const declared = checker
    .getExportsOfModule(moduleSymbol)
    .filter((s) => (s.flags & ts.SymbolFlags.Value) !== 0)
    .map((s) => s.getName())
    .sort();
  expect(declared).toEqual(Object.keys(require('../../lib/metrics')).sort());
}, 60000);
