'use strict';
// Proves that hirecache's types resolve for an application under each of TypeScript's
// module resolution modes: node16 as an ES module ("type": "module") and as CommonJS (.cts),
// bundler (module esnext), and node10 (module commonjs, which ignores "exports" and reads
// "typesVersions"); each once with @types/express installed and once without it. For each,
// a temporary project gets hirecache installed in node_modules, the fixtures of
// test/types/modes/ and a tsconfig, and `tsc --noEmit` must pass, misuses rejected. tsc's
// --explainFiles then shows which declaration file each `hirecache…` import resolved to.
// Also: the declarations of each ES module entry export exactly the names of its runtime.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFile } = require('child_process');
const ts = require('typescript');
const { esmEntries } = require('../../scripts/gen-esm');

const root = path.resolve(__dirname, '..', '..');
const fixtures = path.join(__dirname, 'modes');
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
const nodeModules = path.join(root, 'node_modules');

// Each mode: its compiler options, its own fixture, the "type" of the application's
// package.json, and where its `hirecache…` imports must resolve ("esm": lib/esm/*.d.mts,
// "cjs": lib/*.d.ts; node16 CommonJS resolves import() to the ES entries, require to the other).
const MODES = {
  'node16, ES module': { module: 'node16', fixture: 'node16-esm.ts', type: 'module', resolvesTo: () => 'esm' },
  'node16, CommonJS': {
    module: 'node16',
    fixture: 'node16-cjs.cts',
    resolvesTo: (importer, specifier) => (importer === 'node16-cjs.cts' && /^hirecache\/(cache|redis)$/.test(specifier) ? 'both' : 'cjs'),
  },
  'bundler (module esnext)': { module: 'esnext', moduleResolution: 'bundler', fixture: 'bundler.ts', resolvesTo: () => 'esm' },
  'node10 (module commonjs)': { module: 'commonjs', fixture: 'node10.ts', resolvesTo: () => 'cjs' },
};

let scratch;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hirecache-types-'));
});
afterAll(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

/**
 * A project folder for `mode`: hirecache installed as an application would have it (a copy of
 * package.json and lib/, not a symlink, because TypeScript resolves a symlinked package from
 * its real path and would find the repository's own @types/express from there), @types/node,
 * and @types/express when `withExpress`, linked from the repository's node_modules.
 */
function makeProject(name, mode, withExpress) {
  const dir = path.join(scratch, name.replace(/\W+/g, '-') + (withExpress ? '-express' : '-plain'));
  const installed = path.join(dir, 'node_modules', 'hirecache');
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  fs.cpSync(path.join(root, 'lib'), path.join(installed, 'lib'), { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(installed, 'package.json'));
  const link = (pkg) => fs.symlinkSync(path.join(nodeModules, pkg), path.join(dir, 'node_modules', pkg), 'dir');
  link('@types/node');
  if (withExpress) link('@types/express');

  const files = [mode.fixture, 'named-imports.ts', 'middleware-node.ts', ...(withExpress ? ['middleware-express.ts'] : [])];
  for (const f of files) fs.copyFileSync(path.join(fixtures, f), path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, ...(mode.type ? { type: mode.type } : {}) }));
  const compilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    target: 'es2022',
    module: mode.module,
    ...(mode.moduleResolution ? { moduleResolution: mode.moduleResolution } : {}),
    types: ['node'],
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }, null, 2));
  return dir;
}

/** Runs tsc on the project; resolves { code, output }. */
function runTsc(dir) {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', dir, '--pretty', 'false', '--explainFiles'], { cwd: dir, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, output: `${stdout}${stderr}` });
    });
  });
}

/**
 * From tsc's --explainFiles output: for each `hirecache…` import in the project's own files,
 * the declaration files it resolved to, as { [importer]: { [specifier]: [file in the package] } };
 * and every file in the program.
 */
function parseExplain(output, dir) {
  const imports = {};
  const programFiles = [];
  let current = null;
  for (const line of output.split('\n')) {
    if (!line.startsWith(' ') && line.trim() !== '') {
      current = line.trim();
      programFiles.push(path.resolve(dir, current));
      continue;
    }
    const m = /^\s+Imported via '(hirecache[^']*)' from file '([^']+)'/.exec(line);
    if (!m || current === null) continue;
    const importer = path.relative(dir, path.resolve(dir, m[2]));
    if (importer.startsWith('node_modules')) continue;
    const resolved = path.relative(path.join(dir, 'node_modules', 'hirecache'), path.resolve(dir, current));
    ((imports[importer] ??= {})[m[1]] ??= []).push(resolved);
  }
  return { imports, programFiles };
}

/** The declaration files of `specifier` for a resolution kind: 'esm', 'cjs' or 'both'. */
function expectedFiles(specifier, kind) {
  const name = specifier === 'hirecache' ? 'index' : specifier.slice('hirecache/'.length);
  const esm = path.join('lib', 'esm', `${name}.d.mts`);
  const cjs = path.join('lib', `${name}.d.ts`);
  return { esm: [esm], cjs: [cjs], both: [cjs, esm].sort() }[kind];
}

const cases = [];
for (const [name, mode] of Object.entries(MODES)) {
  for (const withExpress of [true, false]) cases.push([name, withExpress ? 'with' : 'without', mode, withExpress]);
}

// One at a time: each tsc takes a core for seconds, and other suites measure time.
test.each(cases)('%s, %s @types/express: the usage type-checks and resolves where it should', async (name, _with, mode, withExpress) => {
  const dir = makeProject(name, mode, withExpress);
  const { code, output } = await runTsc(dir);
  const errors = output.split('\n').filter((l) => /error TS\d+/.test(l));
  if (code !== 0 || errors.length) throw new Error(`tsc failed (exit ${code}) in ${name}:\n${errors.join('\n') || output.slice(-4000)}`);

  const { imports, programFiles } = parseExplain(output, dir);
  const importers = Object.keys(imports).sort();
  expect(importers).toEqual(expect.arrayContaining([mode.fixture, 'named-imports.ts', 'middleware-node.ts']));
  for (const importer of importers) {
    for (const [specifier, files] of Object.entries(imports[importer])) {
      expect({ importer, specifier, files: [...new Set(files)].sort() }).toEqual({
        importer,
        specifier,
        files: expectedFiles(specifier, mode.resolvesTo(importer, specifier)),
      });
    }
  }
  // Without @types/express nothing of express may be in the program, or the test proves nothing.
  const expressFiles = programFiles.filter((f) => f.includes(`${path.sep}@types${path.sep}express${path.sep}`));
  expect(expressFiles.length > 0).toBe(withExpress);
}, 120000);

test.each(esmEntries().map((e) => [e.subpath, e]))(
  'the declarations of the ES module entry of %s export exactly its runtime names, and a default',
  (subpath, entry) => {
    const program = ts.createProgram([entry.esmTypes], { strict: true, noEmit: true, module: ts.ModuleKind.Node16, types: [] });
    const checker = program.getTypeChecker();
    const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry.esmTypes));
    const declared = checker
      .getExportsOfModule(moduleSymbol)
      .filter((s) => {
        const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
        return (target.flags & ts.SymbolFlags.Value) !== 0;
      })
      .map((s) => s.getName());
    expect(declared).toContain('default');
    expect(declared.filter((n) => n !== 'default').sort()).toEqual(Object.keys(require(entry.cjs)).sort());
  },
  60000,
);
