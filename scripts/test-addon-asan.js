'use strict';
// Runs Jest suites against the addon built with AddressSanitizer and UBSan, so the C++
// core's paths that only Node reaches (the binding, TLS through Node's OpenSSL) are checked
// too. The addon goes to build-asan/ and is loaded through HIRECACHE_ADDON_PATH; node, which
// is not instrumented, runs with libasan preloaded. Leak checking is off: node's own
// allocations at exit would drown the report (the core's leaks are checked by valgrind and
// the ASan build of its unit tests).
//
//   node scripts/test-addon-asan.js test/client/tls      (default: the TLS suites)
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'build-asan');

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
run(process.execPath, [cmakeJs, 'compile', '--out', out, '--config', 'Release', '--CDHIRECACHE_SANITIZE=ON']);

const libasan = spawnSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout.trim();
const suites = process.argv.slice(2);
run(process.execPath, [require.resolve('jest/bin/jest', { paths: [root] }), '--runInBand', ...(suites.length ? suites : ['test/client/tls'])], {
  env: {
    ...process.env,
    HIRECACHE_ADDON_PATH: path.join(out, 'Release', 'hirecache.node'),
    LD_PRELOAD: libasan,
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
    UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  },
});
