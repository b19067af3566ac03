'use strict';
// Proves that the ES module entries (lib/esm/*.mjs, written by scripts/gen-esm.js) cannot
// drift from the CommonJS modules: each exports every name its CommonJS module exports, as
// the very same value, and that module as its default; the checked-in files are exactly what
// the script generates now (so a new export in lib/*.js fails here until the script is run);
// and package.json's "exports", "typesVersions", "main" and "types" name the same files.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { generate, esmEntries } = require('../../scripts/gen-esm');

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const entries = esmEntries(pkg);
const rel = (file) => path.relative(root, file);

/**
 * Imports every ES module entry and requires its CommonJS module in one Node child process
 * (Jest's own module system cannot import ES modules). Per subpath: the entry's names (without
 * `default`), those whose value is not the CommonJS module's, and whether `default` is the
 * CommonJS module itself; plus what require() resolves each subpath to, by the package name.
 */
function inspectInNode() {
  const script = `
    import { createRequire } from 'node:module';
    import { pathToFileURL } from 'node:url';
    const require = createRequire(${JSON.stringify(path.join(root, 'package.json'))});
    const entries = ${JSON.stringify(entries)};
    const report = {};
    for (const e of entries) {
      const ns = await import(pathToFileURL(e.esm).href);
      const cjs = require(e.cjs);
      const names = Object.keys(ns).filter((n) => n !== 'default');
      report[e.subpath] = {
        names,
        differing: names.filter((n) => ns[n] !== cjs[n]),
        defaultIsModule: ns.default === cjs,
        requireResolves: require.resolve(e.subpath === '.' ? 'hirecache' : 'hirecache/' + e.subpath.slice(2)),
      };
    }
    console.log(JSON.stringify(report));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, REDIS_URL: 'disabled' },
  });
  if (r.status !== 0) throw new Error(`node exited with ${r.status}:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

let report;
beforeAll(() => {
  report = inspectInNode();
});

test('every subpath of "exports" has an ES module entry', () => {
  const subpaths = Object.keys(pkg.exports).filter((s) => s !== './package.json');
  expect(entries.map((e) => e.subpath)).toEqual(subpaths);
  expect(subpaths).toEqual(expect.arrayContaining(['.', './redis', './cache', './ratelimit', './health', './metrics']));
});

test.each(entries.map((e) => [e.subpath, e]))('the ES module entry of %s exports every name of its CommonJS module, as the same values', (subpath, entry) => {
  const cjsNames = Object.keys(require(entry.cjs));
  const seen = report[subpath];
  expect({ missing: cjsNames.filter((n) => !seen.names.includes(n)), extra: seen.names.filter((n) => !cjsNames.includes(n)) }).toEqual({
    missing: [],
    extra: [],
  });
  expect(seen.differing).toEqual([]);
  expect(seen.defaultIsModule).toBe(true);
});

test.each(entries.map((e) => [e.subpath, e]))('require() of %s resolves to the CommonJS module, as before the ES entries', (subpath, entry) => {
  expect(report[subpath].requireResolves).toBe(fs.realpathSync(entry.cjs));
});

test('the checked-in ES module entries and declarations are what scripts/gen-esm.js generates', () => {
  const stale = [];
  for (const [file, content] of generate()) {
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== content) stale.push(rel(file));
  }
  if (stale.length) throw new Error(`out of date, run \`node scripts/gen-esm.js\`: ${stale.join(', ')}`);
  const generated = [...generate().keys()].map(rel).sort();
  const onDisk = fs.readdirSync(path.join(root, 'lib', 'esm')).map((f) => path.join('lib', 'esm', f)).sort();
  expect(onDisk).toEqual(generated);
});

test('"main", "types" and "typesVersions" (TypeScript\'s node10 resolution) name the files of "exports"', () => {
  const [main] = entries.filter((e) => e.subpath === '.');
  expect(path.join(root, pkg.main)).toBe(main.cjs);
  expect(path.join(root, pkg.types)).toBe(main.cjsTypes);
  const mapped = pkg.typesVersions['*'];
  const expected = {};
  for (const e of entries) if (e.subpath !== '.') expected[e.subpath.slice(2)] = [rel(e.cjsTypes)];
  expect(mapped).toEqual(expected);
  for (const e of entries) {
    for (const file of [e.cjs, e.cjsTypes, e.esm, e.esmTypes]) expect(fs.existsSync(file) ? rel(file) : `missing ${rel(file)}`).toBe(rel(file));
  }
});
