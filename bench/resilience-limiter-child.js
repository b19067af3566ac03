'use strict';
// One process of the multi-process limiter scenario of bench/resilience.js (not run on its
// own). It makes a client and a Redis limiter (10 points per 60 s unless told otherwise),
// optionally warms them up on a key of its own, tells the parent it is ready, waits for the
// parent's "go" on stdin (so every process fires at the same moment), fires `concurrent`
// consumes on the shared key at once, optionally blocks its own event loop for `stallMs`
// after the first `stallAfter` of them (a GC pause, a synchronous JSON.parse of a large
// body: what a busy API process does), and prints one JSON line with what it saw.
//
//   node bench/resilience-limiter-child.js '<json options>'
//   options: { url, keyPrefix, key, points, duration, concurrent, commandTimeout,
//              warm, stallMs, stallAfter }
const path = require('path');

const ROOT = path.resolve(__dirname, '..');

function busyWait(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // Deliberately synchronous: the event loop can run nothing meanwhile.
  }
}

async function main() {
  const o = JSON.parse(process.argv[2]);
  const { createClient } = require(path.join(ROOT, 'lib', 'redis'));
  const { createLimiter } = require(path.join(ROOT, 'lib', 'ratelimit'));
  let unhandled = 0;
  process.on('unhandledRejection', () => {
    unhandled += 1;
  });
  const client = createClient({ url: o.url, commandTimeout: o.commandTimeout, logger: false });
  const limiter = createLimiter({ keyPrefix: o.keyPrefix, points: o.points, duration: o.duration, client });
  if (o.warm) {
    // Connects and loads the script, on a key nobody else uses.
    await limiter.consume(`warm:${process.pid}`).catch(() => {});
  }
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause(); // Nothing more to read: stdin must not keep the process alive.

  const calls = [];
  for (let i = 0; i < o.concurrent; i++) {
    if (o.stallMs > 0 && i === o.stallAfter) busyWait(o.stallMs);
    calls.push(limiter.consume(o.key));
  }
  if (o.stallMs > 0 && o.stallAfter >= o.concurrent) busyWait(o.stallMs);
  const settled = await Promise.allSettled(calls);
  const admitted = settled.filter((r) => r.status === 'fulfilled').length;
  const refused = settled.filter((r) => r.status === 'rejected' && typeof r.reason.msBeforeNext === 'number').length;
  const errors = settled.length - admitted - refused;
  const status = typeof limiter.status === 'function' ? limiter.status() : {};
  await client.quit().catch(() => {});
  process.stdout.write(
    `${JSON.stringify({ admitted, refused, errors, unhandled, usingFallback: !!status.usingFallback })}\n`,
  );
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${(err && err.stack) || err}\n`);
  process.exit(1);
});
