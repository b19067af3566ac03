'use strict';
// Builds the C++ core against the system libuv and runs its GoogleTest suite with ctest.
//   --sanitize   AddressSanitizer + UBSan build (build-native-asan/)
//   --valgrind   runs the test binary under valgrind's memcheck instead of ctest
const path = require('path');
const { spawnSync } = require('child_process');
const { ensureSystemPackages } = require('./system-deps');

const root = path.resolve(__dirname, '..');
const sanitize = process.argv.includes('--sanitize');
const valgrind = process.argv.includes('--valgrind');
const buildDir = path.join(root, sanitize ? 'build-native-asan' : 'build-native');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`hirecache: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status})`);
    process.exit(r.status || 1);
  }
}

try {
  ensureSystemPackages({ test: true });
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
const buildType = sanitize ? 'Debug' : 'RelWithDebInfo';
run('cmake', ['-S', root, '-B', buildDir, `-DCMAKE_BUILD_TYPE=${buildType}`, `-DHIRECACHE_SANITIZE=${sanitize ? 'ON' : 'OFF'}`]);
run('cmake', ['--build', buildDir, '--parallel', '2']);
if (valgrind) {
  run('valgrind', ['--error-exitcode=1', '--leak-check=full', '--errors-for-leak-kinds=definite',
    path.join(buildDir, 'hirecache_tests')]);
} else {
  const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1' };
  run('ctest', ['--test-dir', buildDir, '--output-on-failure', '--timeout', '120'], { env });
}
