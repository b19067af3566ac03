'use strict';
// Proves that separate processes share one bucket through Redis: 4 processes firing 1,000
// concurrent consumes each on one key get exactly the capacity between them, and processes
// whose clocks disagree by minutes still agree on the bucket, because the script reads
// Redis's clock (TIME), never the app server's.
const { createLimiter } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');
const { suiteDatabase } = require('../helpers/suite-db');
const { inChild: runInChild } = require('./in-child');

let db;
let client;

beforeAll(async () => {
  db = await suiteDatabase();
  client = createClient({ url: db.url });
});

afterAll(async () => {
  await client.quit();
});

beforeEach(async () => {
  await db.flush();
});

const inChild = (body, options = {}) => runInChild(body, { url: db.url, ...options });

test('4 processes x 1,000 concurrent consumes on one key admit exactly the capacity', async () => {
  const capacity = 137;
  const body = `async ({ createLimiter, createClient, url }) => {
    const client = createClient({ url });
    const limiter = createLimiter({ keyPrefix: 'rl:proc', points: ${capacity}, duration: 86400, client });
    const results = await Promise.allSettled(Array.from({ length: 1000 }, () => limiter.consume('shared')));
    const admitted = results.filter((r) => r.status === 'fulfilled').length;
    const refusedAsResults = results.filter((r) => r.status === 'rejected' && typeof r.reason.msBeforeNext === 'number').length;
    // A stall of Redis longer than the breaker's stallMs (on a busy machine) settles the
    // decisions then waiting with ERR_OUTCOME_UNKNOWN: errors, never admissions.
    const unknown = results.filter((r) => r.status === 'rejected' && r.reason instanceof Error && r.reason.code === 'ERR_OUTCOME_UNKNOWN').length;
    await client.quit();
    return { admitted, refusedAsResults, unknown };
  }`;
  const children = Array.from({ length: 4 }, () => inChild(body, { waitFor: true }));
  // Every process has loaded before any of them fires (they wait for 'go' on stdin).
  await new Promise((r) => setTimeout(r, 300));
  for (const c of children) c.go();
  const results = (await Promise.all(children.map((c) => c.done))).map((r) => r.value);
  const admitted = results.reduce((n, r) => n + r.admitted, 0);
  const unknown = results.reduce((n, r) => n + r.unknown, 0);
  // Exactly the capacity, unless Redis stalled with decisions waiting: then those whose
  // outcome is unknown make up the difference, and still none is admitted past it.
  expect(admitted).toBeLessThanOrEqual(capacity);
  expect(admitted + unknown).toBeGreaterThanOrEqual(capacity);
  if (unknown === 0) expect(admitted).toBe(capacity);
  expect(results.reduce((n, r) => n + r.refusedAsResults, 0)).toBe(4000 - admitted - unknown);
  const check = createLimiter({ keyPrefix: 'rl:proc', points: capacity, duration: 86400, client });
  // Every point in use, and the attempts Redis refused counted on top, as rate-limiter-flexible
  // counts them (the ones refused in-process, known to be over the limit, never reached it).
  const after = await check.get('shared');
  expect(after.remainingPoints).toBe(0);
  expect(after.consumedPoints).toBeGreaterThan(capacity);
  expect(after.consumedPoints).toBeLessThanOrEqual(capacity + (4000 - admitted - unknown));
}, 60000);

test('processes with clocks minutes apart agree on the bucket', async () => {
  // 5 points per 10 minutes: a point every 2 minutes. If either process read its own clock,
  // the one 10 minutes "later" would find the bucket full again.
  const body = `async ({ createLimiter, createClient, url, arg }) => {
    const client = createClient({ url });
    const limiter = createLimiter({ keyPrefix: 'rl:skew', points: 5, duration: 600, client });
    const out = [];
    for (let i = 0; i < arg; i++) {
      try { out.push({ ok: true, ...(await limiter.consume('user')).toJSON() }); }
      catch (r) { out.push({ ok: false, ...r.toJSON() }); }
    }
    await client.quit();
    return out;
  }`;
  const behind = await inChild(body, { skewMs: -5 * 60000, arg: 3 }).done;
  const ahead = await inChild(body, { skewMs: +5 * 60000, arg: 1 }).done;
  // The children's clocks really were 10 minutes apart.
  expect(ahead.clock - behind.clock).toBeGreaterThan(9 * 60000);
  expect(behind.value.map((r) => r.remainingPoints)).toEqual([4, 3, 2]);
  expect(ahead.value).toEqual([expect.objectContaining({ ok: true, remainingPoints: 1, consumedPoints: 4, isFirstInDuration: false })]);
  const again = await inChild(body, { skewMs: -5 * 60000, arg: 2 }).done;
  expect(again.value.map((r) => r.ok)).toEqual([true, false]);
  // Both report the same wait: about 2 minutes until the next point.
  expect(again.value[1].msBeforeNext).toBeGreaterThan(110000);
  expect(again.value[1].msBeforeNext).toBeLessThanOrEqual(120000);
}, 60000);
