'use strict';
// Makes sure the Debian packages hirecache builds and tests with are installed.
// As root it installs what is missing with apt-get; otherwise it stops with one
// message naming the exact apt-get line to run. Uses nothing outside Node itself,
// because it runs before `npm install` has fetched anything.
const { execFileSync, spawnSync } = require('child_process');

const BUILD_PACKAGES = ['cmake', 'g++', 'make', 'pkg-config', 'libhiredis-dev', 'libboost-dev'];
// clang-format: `npm test` checks the C++ style (scripts/lint.js). libssl-dev: the core's unit
// tests, built without Node, link the system's OpenSSL (the addon uses the one inside Node);
// openssl: the TLS suites make their certificates with it.
const TEST_PACKAGES = ['redis-server', 'redis-tools', 'libuv1-dev', 'libgtest-dev', 'clang-format', 'libssl-dev', 'openssl'];

function isInstalled(pkg) {
  // eslint-disable-next-line no-template-curly-in-string -- dpkg-query's own format, not a template
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && /install ok installed/.test(r.stdout);
}

function missingPackages(packages) {
  const probe = spawnSync('dpkg-query', ['--version']);
  if (probe.error) return []; // Not a Debian system: leave it to CMake to report what is missing.
  return packages.filter((p) => !isInstalled(p));
}

function aptInstall(packages) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => spawnSync('apt-get', args, { stdio: 'inherit', env });
  let r = run(['install', '-y', '--no-install-recommends', ...packages]);
  if (r.status !== 0) {
    // A fresh machine may have no package lists yet.
    run(['update']);
    r = run(['install', '-y', '--no-install-recommends', ...packages]);
  }
  return r.status === 0;
}

/**
 * Ensures the packages for `purpose` ('build' or 'test') are installed.
 * Throws an Error whose message is the apt-get line to run when it cannot install them.
 */
function ensureSystemPackages({ test = false } = {}) {
  const wanted = test ? [...BUILD_PACKAGES, ...TEST_PACKAGES] : BUILD_PACKAGES;
  const missing = missingPackages(wanted);
  if (missing.length === 0) return;
  const line = `apt-get install -y ${missing.join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot) {
    console.error(`hirecache: installing missing system packages: ${missing.join(' ')}`);
    if (aptInstall(missing) && missingPackages(missing).length === 0) return;
  }
  throw new Error(`hirecache needs system packages that are not installed. Run:\n\n    sudo ${line}\n`);
}

module.exports = { ensureSystemPackages, BUILD_PACKAGES, TEST_PACKAGES };

if (require.main === module) {
  try {
    ensureSystemPackages({ test: process.argv.includes('--test') });
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
  // Quiet success: callers print their own progress.
  void execFileSync;
}
