'use strict';
// Makes a fresh clone runnable: system packages (installed with apt-get when run as root),
// npm dependencies, and the native addon. Runs before `npm start`, `npm test` and
// `npm run bench`; does only what is missing, so a second run costs a second.
//   --test   also the packages the tests need (redis-server, libuv1-dev, GoogleTest)
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { ensureSystemPackages } = require('./system-deps');

const root = path.resolve(__dirname, '..');

function dependenciesInstalled() {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  if (!fs.existsSync(marker)) return false;
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const wanted = { ...pkg.dependencies, ...pkg.devDependencies };
  return Object.keys(wanted).every((name) => fs.existsSync(path.join(root, 'node_modules', name, 'package.json')));
}

function main() {
  ensureSystemPackages({ test: process.argv.includes('--test') });
  if (!dependenciesInstalled()) {
    console.error('hirecache: installing npm dependencies (npm install)…');
    const npm = process.env.npm_execpath;
    const [cmd, args] = npm ? [process.execPath, [npm, 'install', '--no-audit', '--no-fund']] : ['npm', ['install', '--no-audit', '--no-fund']];
    const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`hirecache: npm install failed (exit ${r.status})`);
  }
  require('./build').build();
}

try {
  main();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
