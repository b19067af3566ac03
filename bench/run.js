'use strict';
// Runs every bench/*.bench.js in turn, each in its own Node process with the terminal as
// its output, so one benchmark's heap, JIT state and redis-server never touch the next.
//
//   node bench/run.js                 all of them
//   node bench/run.js client prefix   only those whose file name contains a filter word
//
// Exits non-zero only when a benchmark crashes (or when the filters match nothing, so a
// typo cannot pass for a run). Slow numbers are reported, never a failure.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

function benchFiles(filters) {
  const all = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.bench.js'))
    .sort();
  return filters.length ? all.filter((f) => filters.some((word) => f.includes(word))) : all;
}

function runOne(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, file)], { stdio: 'inherit' });
    child.on('error', (err) => resolve({ ok: false, why: err.message }));
    child.on('exit', (code, signal) => resolve({ ok: code === 0, why: signal ? `killed by ${signal}` : `exit code ${code}` }));
  });
}

async function main() {
  const filters = process.argv.slice(2);
  const files = benchFiles(filters);
  if (files.length === 0) {
    console.error(`bench/run.js: no bench/*.bench.js matches ${filters.map((f) => JSON.stringify(f)).join(', ')}`);
    process.exit(2);
  }
  const failed = [];
  for (const file of files) {
    const started = Date.now();
    console.log(`\n=== ${file}`);
    const { ok, why } = await runOne(file);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (ok) {
      console.log(`=== ${file}: done in ${secs} s`);
    } else {
      console.log(`=== ${file}: CRASHED (${why}) after ${secs} s`);
      failed.push(file);
    }
  }
  if (failed.length) {
    console.error(`\n${failed.length} benchmark(s) crashed: ${failed.join(', ')}`);
    process.exit(1);
  }
}

main();
