'use strict';
// `npm test`: the style check (scripts/lint.js: ESLint and clang-format, any finding fails
// the run), the C++ core's unit tests (plain, then under AddressSanitizer + UBSan), then
// every Jest suite against a real redis-server that Jest's global setup starts. Ends with
// one line counting every test: "tests: N passed, N failed"; a failed step (the lint
// included) makes the run fail whatever the count.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const totals = { passed: 0, failed: 0 };
const failedSteps = [];

function step(name, cmd, args, parse) {
  console.log(`\n=== ${name}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: parse ? ['inherit', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8' });
  if (parse) {
    process.stdout.write(r.stdout || '');
    parse(r.stdout || '');
  }
  if (r.status !== 0) failedSteps.push(`${name} (exit ${r.status})`);
}

function parseCtest(out) {
  const m = out.match(/(\d+)% tests passed, (\d+) tests failed out of (\d+)/);
  if (m) {
    totals.failed += Number(m[2]);
    totals.passed += Number(m[3]) - Number(m[2]);
  }
}

step('Lint (ESLint, clang-format)', process.execPath, ['scripts/lint.js']);

const skipNative = process.env.HIRECACHE_SKIP_NATIVE_TESTS === '1';
if (!skipNative) {
  step('C++ core unit tests', process.execPath, ['scripts/test-native.js'], parseCtest);
  step('C++ core unit tests under AddressSanitizer + UBSan', process.execPath, ['scripts/test-native.js', '--sanitize'], parseCtest);
}

const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hirecache-jest-')), 'report.json');
const jest = require.resolve('jest/bin/jest', { paths: [root] });
step('Jest suites (real redis-server)', process.execPath, [jest, '--ci', '--json', `--outputFile=${report}`, ...process.argv.slice(2)]);
if (fs.existsSync(report)) {
  const r = JSON.parse(fs.readFileSync(report, 'utf8'));
  totals.passed += r.numPassedTests;
  totals.failed += r.numFailedTests;
  if (r.numTotalTests === 0) failedSteps.push('Jest ran no test');
} else {
  failedSteps.push('Jest wrote no report');
}

console.log('');
if (failedSteps.length) console.log(`failed steps: ${failedSteps.join('; ')}`);
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed`);
process.exit(failedSteps.length || totals.failed ? 1 : 0);
