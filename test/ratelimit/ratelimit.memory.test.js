'use strict';
// Proves the in-process table stays bounded: a million distinct keys (a flood of random
// IPs) never hold more buckets than maxEntries, buckets that are full again leave the table
// without any timer, and one busy key keeps its state through the flood.
const { createLimiter, RateLimitResult } = require('../../lib/ratelimit');
const { sleep } = require('../helpers/async');

test('1,000,000 distinct keys keep the table under its cap', async () => {
  const cap = 20000;
  const l = createLimiter({ store: 'memory', keyPrefix: 'rl:flood', points: 5, duration: 600, maxEntries: cap });
  await l.consume('regular', 3);
  let peak = 0;
  for (let batch = 0; batch < 100; batch++) {
    const pending = [];
    for (let i = 0; i < 10000; i++) {
      const n = batch * 10000 + i;
      pending.push(l.consume(`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`));
    }
    await Promise.all(pending);
    // A client that comes back at least once per turn of the eviction hand keeps its bucket
    // (the CLOCK gives a bucket used since the hand last passed a second chance).
    await l.consume('regular', 0);
    peak = Math.max(peak, l.status().entries);
  }
  const s = l.status();
  expect(peak).toBeLessThanOrEqual(cap);
  expect(s.entries).toBeLessThanOrEqual(cap);
  expect(s.maxEntries).toBe(cap);
  expect(s.evicted).toBeGreaterThanOrEqual(1000000 - cap);
  expect((await l.get('regular')).remainingPoints).toBe(2);
}, 60000);

test('buckets that are full again leave the table as later calls pass, without a timer, down to half the cap', async () => {
  // Full 20 ms after one point; the sweep runs once the table is half full.
  const l = createLimiter({ store: 'memory', keyPrefix: 'rl:sweep', points: 10, duration: 0.2, maxEntries: 600 });
  await Promise.all(Array.from({ length: 500 }, (_, i) => l.consume(`k${i}`)));
  expect(l.status().entries).toBe(500);
  await sleep(50);
  for (let i = 0; i < 400; i++) await l.consume('hot', 0); // each call sweeps two entries
  expect(l.status().entries).toBe(300);
  expect(l.status().evicted).toBe(0);
});

test('a Redis limiter keeps its local tables bounded too', async () => {
  const { createClient } = require('../../lib/redis');
  const dead = createClient({ url: 'redis://127.0.0.1:1', connectTimeout: 200 });
  const l = createLimiter({ keyPrefix: 'rl:bounded', points: 1, duration: 600, client: dead, maxEntries: 1000 });
  for (let i = 0; i < 5000; i++) {
    const r = await l.consume(`ip${i}`).catch((e) => e);
    expect(r).toBeInstanceOf(RateLimitResult); // answered by the fallback
  }
  expect(l.status().fallbackEntries).toBeLessThanOrEqual(1000);
  dead.disconnect();
});

test('points are never returned early: at 1 per 10 ms, no two admissions are closer than 10 ms', async () => {
  // The clock must not lag by a varying tick (CLOCK_MONOTONIC_COARSE did, by up to 4 ms).
  const l = createLimiter({ store: 'memory', keyPrefix: 'rl:clock', points: 1, duration: 0.01 });
  // The limiter reads its clock inside consume(), between `before` and `after`, so
  // after[j] - before[i] can only overstate the time between two admissions' clock readings:
  // a correct limiter passes however the process is scheduled.
  const before = [];
  const after = [];
  const end = process.hrtime.bigint() + 1500000000n;
  let t;
  while ((t = process.hrtime.bigint()) < end) {
    let ok = false;
    l.consume('k').then(
      () => {
        ok = true;
      },
      () => {},
    );
    const t2 = process.hrtime.bigint();
    await null;
    await null;
    if (ok) {
      before.push(t);
      after.push(t2);
    }
  }
  expect(before.length).toBeGreaterThan(50);
  const gaps = after.slice(1).map((x, i) => Number(x - before[i]) / 1e6);
  expect(Math.min(...gaps)).toBeGreaterThanOrEqual(9.95);
});

test('the array the native table writes its numbers to cannot be transferred away', async () => {
  const l = createLimiter({ store: 'memory', points: 3, duration: 60 });
  const bytes = l._out.buffer.byteLength;
  expect(bytes).toBeGreaterThan(0);
  // A transfer would detach the buffer and free the memory C++ writes to; an untransferable
  // one is copied instead (or the transfer refused) and stays attached.
  const attempt = (f) => {
    try {
      f();
    } catch {
      // refused: as good as copied
    }
  };
  attempt(() => structuredClone(l._out, { transfer: [l._out.buffer] }));
  const { port1, port2 } = new MessageChannel();
  attempt(() => port1.postMessage(l._out, [l._out.buffer]));
  port1.close();
  port2.close();
  expect(l._out.buffer.byteLength).toBe(bytes); // a detached buffer has 0 bytes
  await expect(l.consume('k')).resolves.toMatchObject({ remainingPoints: 2 });
  await expect(l.consume('k')).resolves.toMatchObject({ remainingPoints: 1 });
});

// ArrayBuffer.prototype.transfer() (Node 21+) detaches a buffer whatever markAsUntransferable
// says; the table's numbers live in memory C++ owns, so even then nothing is written to freed
// memory, and the limiter keeps deciding from its own table.
const canTransfer = typeof ArrayBuffer.prototype.transfer === 'function';
(canTransfer ? test : test.skip)('a detached result array never leaves C++ writing to freed memory', async () => {
  const l = createLimiter({ store: 'memory', points: 3, duration: 60 });
  const moved = l._out.buffer.transfer();
  for (let i = 0; i < 1000; i++) await l.consume(`k${i}`).catch(() => {});
  expect(moved.byteLength).toBe(32);
});
