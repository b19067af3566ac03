'use strict';
// `npm run lint`: checks the style of every file the repository tracks, and exits non-zero on
// any finding (scripts/test.js runs it as a step of `npm test`):
//   - ESLint (eslint.config.js) over the JavaScript in lib/, test/, bench/, scripts/ and
//     examples/ and the configuration files at the root, with no warning allowed;
//   - clang-format (.clang-format) over every tracked .h / .cc in src/, binding/, test/cpp/
//     and bench/native/, which must already be formatted.
// `npm run format` (--fix) rewrites instead: eslint --fix, then clang-format -i; whatever
// cannot be fixed automatically is still reported, and still fails.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const fix = process.argv.includes('--fix');

const JS_TARGETS = ['lib', 'test', 'bench', 'scripts', 'examples', 'eslint.config.js', 'jest.config.js'];
const CXX_DIRS = ['src', 'binding', 'test/cpp', 'bench/native'];
const CXX_FILE = /\.(h|cc)$/;

/** Runs a command in the repository; returns its exit status (null when it could not start). */
function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) {
    console.error(`lint: cannot run ${cmd}: ${r.error.message}`);
    return null;
  }
  return r.status;
}

/**
 * The C++ files to check: those git tracks under CXX_DIRS, so that a build tree or a scratch
 * file is never formatted; outside a git checkout, every such file on disk.
 */
function cxxFiles() {
  const git = spawnSync('git', ['ls-files', '-z', '--', ...CXX_DIRS], { cwd: root, encoding: 'utf8' });
  if (git.status === 0) return git.stdout.split('\0').filter((f) => CXX_FILE.test(f));
  const found = [];
  const visit = (dir) => {
    const abs = path.join(root, dir);
    if (!fs.existsSync(abs)) return;
    for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(rel);
      else if (CXX_FILE.test(entry.name)) found.push(rel);
    }
  };
  CXX_DIRS.forEach(visit);
  return found.sort();
}

function eslint() {
  let bin;
  try {
    // The package exports no path to its command, so it is found beside its package.json.
    bin = path.join(path.dirname(require.resolve('eslint/package.json', { paths: [root] })), 'bin', 'eslint.js');
  } catch {
    console.error('lint: ESLint is not installed; run `npm install`');
    return false;
  }
  const args = [bin, '--max-warnings', '0', ...(fix ? ['--fix'] : []), ...JS_TARGETS];
  return run(process.execPath, args) === 0;
}

function clangFormat() {
  const files = cxxFiles();
  if (files.length === 0) {
    console.error('lint: found no C++ file to check');
    return false;
  }
  const args = fix ? ['-i', ...files] : ['--dry-run', '--Werror', ...files];
  const status = run('clang-format', args);
  if (status === null) {
    console.error('lint: clang-format is needed to check the C++ style (Debian: apt-get install -y clang-format)');
    return false;
  }
  if (status !== 0) return false;
  if (fix) return run('clang-format', ['--dry-run', '--Werror', ...files]) === 0;
  return true;
}

const results = { ESLint: eslint(), 'clang-format': clangFormat() };
const failed = Object.keys(results).filter((name) => !results[name]);
if (failed.length > 0) {
  console.error(`lint: findings from ${failed.join(' and ')}${fix ? ' that could not be fixed' : ''}`);
  process.exit(1);
}
console.log(`lint: no findings (ESLint, clang-format)${fix ? ' after fixing' : ''}`);
