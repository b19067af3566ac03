'use strict';
// Proves the published type declarations: test/types/usage.ts (the public API of
// hirecache/redis and hirecache/cache used as an application would, resolved through the
// package's own "exports") compiles with `tsc --noEmit`, its deliberate misuses are
// rejected, every runtime export is declared and every declared export exists, and the
// check writes nothing into the repository.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const ts = require('typescript');

const root = path.resolve(__dirname, '..', '..');
const typesDir = __dirname;
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
const pkg = require('../../package.json');

function listFiles(dir) {
  const out = [];
  const visit = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) visit(p);
      else out.push(path.relative(root, p));
    }
  };
  visit(dir);
  return out.sort();
}

/** The file the package's "exports" map gives for `subpath` to require() under the "types" condition. */
function declarationFile(subpath) {
  const entry = pkg.exports[subpath];
  return path.join(root, typeof entry === 'string' ? entry : entry.default.types);
}

test('usage.ts type-checks against the package declarations, misuses included', () => {
  const before = [...listFiles(typesDir), ...listFiles(path.join(root, 'lib'))];
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(typesDir, 'tsconfig.json'), '--pretty', 'false'], {
    cwd: root,
    encoding: 'utf8',
  });
  const after = [...listFiles(typesDir), ...listFiles(path.join(root, 'lib'))];
  expect(after).toEqual(before);
  if (r.status !== 0) throw new Error(`tsc failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  expect(r.status).toBe(0);
}, 120000);

test.each(['./redis', './cache', './ratelimit'])('the declarations of %s exist and match its runtime exports', (subpath) => {
  const file = declarationFile(subpath);
  expect(fs.existsSync(file)).toBe(true);
  const program = ts.createProgram([file], { strict: true, types: [], noEmit: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  expect(moduleSymbol).toBeDefined();
  // Value exports only (functions, classes, constants), not interfaces or type aliases.
  const declared = checker
    .getExportsOfModule(moduleSymbol)
    .filter((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      return (target.flags & ts.SymbolFlags.Value) !== 0;
    })
    .map((s) => s.getName())
    .filter((n) => n !== 'default')
    .sort();
  const runtime = Object.keys(require(path.join(root, 'lib', `${subpath.slice(2)}.js`))).sort();
  expect(declared).toEqual(runtime);
}, 60000);
