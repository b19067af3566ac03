'use strict';
// Loads the compiled addon. When it is missing, throws one error that lists every path
// tried and how to build it.
const path = require('path');

const root = path.resolve(__dirname, '..');
const candidates = [
  process.env.HIRECACHE_ADDON_PATH,
  path.join(root, 'build', 'Release', 'hirecache.node'),
  path.join(root, 'build', 'Debug', 'hirecache.node'),
].filter(Boolean);

function load() {
  const tried = [];
  for (const file of candidates) {
    try {
      return require(file);
    } catch (err) {
      if (err.code !== 'MODULE_NOT_FOUND' || !String(err.message).includes(file)) throw err;
      tried.push(file);
    }
  }
  const err = new Error(
    'hirecache: the native addon is not built. Tried:\n' +
      tried.map((p) => `  - ${p}`).join('\n') +
      '\nBuild it with `npm run build` (needs: apt-get install -y cmake g++ pkg-config libhiredis-dev libboost-dev).',
  );
  err.code = 'ERR_HIRECACHE_NOT_BUILT';
  throw err;
}

module.exports = load();
