'use strict';
// Builds the native addon with cmake-js, offline, against the headers of the Node that
// runs this script. Runs as the package's `install` script and from bootstrap.js.
// Skips the build when build/Release/hirecache.node is newer than every source file,
// unless --force is given.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { ensureSystemPackages } = require('./system-deps');

const root = path.resolve(__dirname, '..');
const addon = path.join(root, 'build', 'Release', 'hirecache.node');

function newestSource() {
  let newest = 0;
  const visit = (dir) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(p);
      else if (/\.(cc|h|txt)$/.test(entry.name)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  visit(path.join(root, 'src'));
  visit(path.join(root, 'binding'));
  newest = Math.max(newest, fs.statSync(path.join(root, 'CMakeLists.txt')).mtimeMs);
  return newest;
}

function isUpToDate() {
  return fs.existsSync(addon) && fs.statSync(addon).mtimeMs >= newestSource();
}

function build({ force = false } = {}) {
  if (!force && isUpToDate()) return;
  ensureSystemPackages();
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  const args = [cmakeJs, 'compile', '--out', 'build', '--config', 'Release'];
  if (process.env.HIRECACHE_DEBUG_BUILD) args.splice(2, 0, '--debug');
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`hirecache: building the native addon failed (cmake-js exit ${r.status})`);
}

module.exports = { build, isUpToDate, addon };

if (require.main === module) {
  try {
    build({ force: process.argv.includes('--force') });
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
