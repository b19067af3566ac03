'use strict';
// Fault: the Redis-backed limiter under timing faults while Redis is up. Must hold
// (docs/ratelimit.md, issue 8): with Redis up, never more admissions than the global limit,
// whatever the timing; a timeout never turns into admissions the global limit would refuse.
//   (a) 4 processes x 50 concurrent consume() on one key, 10 points per 60 s, every process
//       meeting NOSCRIPT at once (the script flushed): exactly 10 admitted in all; with small
//       commandTimeouts (100, 50, 20 ms), never more than 10 (an admission whose reply came
//       too late reaches its caller as an error, never as a second admission elsewhere).
//   (b) a 240 ms stall (replies held) with commandTimeout 200 ms on a key Redis reported
//       exhausted: 0 of 12 consume() admitted.
// Runs on a redis-server of its own (SCRIPT FLUSH is server-wide).
const { createClient } = require('../../lib/redis');
const { createLimiter, RateLimitResult } = require('../../lib/ratelimit');
const { startRedis } = require('../helpers/redis-server');
const { createProxy } = require('../helpers/proxy');
const { sleep, outcome, watchUnhandledRejections } = require('../helpers/async');
const { inChild } = require('./support');

const POINTS = 10;
const DURATION = 60;

let server;
let admin;
let unhandled;
let counter = 0;
const cleanups = [];

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  server = await startRedis();
  admin = createClient({ url: server.url, logger: false });
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

afterAll(async () => {
  admin.disconnect();
  await server.stop();
  expect(unhandled.stop()).toEqual([]);
});

const prefix = () => `rl:over:${++counter}`;

/** Points Redis holds as used for `key` (0 for a full bucket), asked with no fallback. */
async function redisConsumed(keyPrefix, key) {
  const view = createLimiter({ keyPrefix, points: POINTS, duration: DURATION, client: admin, fallback: false });
  const g = await view.get(key);
  // Points in use: consumedPoints counts the refused attempts too.
  return g === null ? 0 : view.burst - g.remainingPoints;
}

// Each child fires 50 consumes at once on one key and counts what it saw.
const FIRE_50 = `async ({ createLimiter, createClient, url, arg }) => {
  const client = createClient({ url, logger: false, ...arg.client });
  const limiter = createLimiter({ keyPrefix: arg.prefix, points: ${POINTS}, duration: ${DURATION}, client });
  const results = await Promise.allSettled(Array.from({ length: 50 }, () => limiter.consume('shared')));
  let admitted = 0;
  let refused = 0;
  const errors = {};
  for (const r of results) {
    if (r.status === 'fulfilled') admitted += 1;
    else if (r.reason instanceof Error) errors[r.reason.code] = (errors[r.reason.code] || 0) + 1;
    else refused += 1;
  }
  client.disconnect();
  return { admitted, refused, errors };
}`;

/** Runs FIRE_50 in 4 processes started together; resolves with their counts. */
async function fourProcesses(keyPrefix, clientOptions) {
  await admin.call('SCRIPT', 'FLUSH'); // every process meets NOSCRIPT at once
  const children = Array.from({ length: 4 }, () => inChild(FIRE_50, { url: server.url, arg: { prefix: keyPrefix, client: clientOptions } }));
  cleanups.push(() => children.forEach((c) => c.kill()));
  await Promise.all(children.map((c) => c.loaded));
  for (const c of children) c.go();
  return Promise.all(children.map((c) => c.done));
}

const sum = (results, f) => results.reduce((n, r) => n + f(r), 0);

describe('4 processes x 50 concurrent consumes on one key, 10 per 60 s, every process meeting NOSCRIPT', () => {
  test.each([
    ['default settings', {}],
    ['commandTimeout 100 ms', { commandTimeout: 100 }],
    ['commandTimeout 50 ms', { commandTimeout: 50 }],
    ['commandTimeout 20 ms', { commandTimeout: 20 }],
  ])('%s: never more than 10 admitted, exactly 10 when no reply came late', async (name, clientOptions) => {
    const p = prefix();
    const results = await fourProcesses(p, clientOptions);
    const admitted = sum(results, (r) => r.admitted);
    const unknown = sum(results, (r) => (r.errors.ETIMEDOUT || 0) + (r.errors.ERR_OUTCOME_UNKNOWN || 0));
    console.log(`4 x 50 consumes, ${name}: admitted ${admitted} (${results.map((r) => r.admitted).join(' + ')}), `
      + `refused ${sum(results, (r) => r.refused)}, errors ${JSON.stringify(results.map((r) => r.errors))}`);
    // Redis admitted exactly 10, and no process admitted any more on its own.
    expect(await redisConsumed(p, 'shared')).toBe(POINTS);
    expect(admitted).toBeLessThanOrEqual(POINTS);
    // Each of Redis's admissions reached its caller as an admission, or (its reply too late)
    // as an error: never turned into a refusal, never duplicated.
    expect(admitted + unknown).toBeGreaterThanOrEqual(POINTS);
    if (unknown === 0) expect(admitted).toBe(POINTS);
  }, 60000);
});

describe('a 240 ms stall with commandTimeout 200 ms on a key Redis reported exhausted', () => {
  test.each([
    ['rejectLocally off', { rejectLocally: false }, 0],
    ['default options, a second after the refusal (the local memory of it has lapsed)', {}, 1100],
  ])('admits 0 of 12 (%s)', async (_name, limiterOptions, waitMs) => {
    const proxy = await createProxy({ port: server.port });
    const client = createClient({ url: proxy.url, commandTimeout: 200, logger: false });
    cleanups.push(async () => {
      client.disconnect();
      await proxy.close();
    });
    const keyPrefix = prefix();
    const limiter = createLimiter({ keyPrefix, points: POINTS, duration: DURATION, client, ...limiterOptions });
    for (let i = 0; i < POINTS; i++) await limiter.consume('k');
    await expect(limiter.consume('k')).rejects.toBeInstanceOf(RateLimitResult); // Redis: exhausted
    await sleep(waitMs);

    proxy.hold('toClient');
    const pending = [];
    for (let i = 0; i < 12; i++) {
      pending.push(outcome(limiter.consume('k')));
      await sleep(20);
    }
    await sleep(Math.max(0, 240 - 12 * 20));
    proxy.release('toClient');
    const results = await Promise.all(pending);
    const admitted = results.filter((r) => r.ok).length;
    const how = results.map((r) => (r.ok ? 'admitted' : r.error instanceof RateLimitResult ? 'refused' : r.error.code));
    console.log(`stall 240 ms, commandTimeout 200 ms, ${_name}: admitted ${admitted} of 12 (${how.join(', ')})`);
    expect(admitted).toBe(0);
    expect(results.every((r) => r.error instanceof RateLimitResult || r.error instanceof Error)).toBe(true);
    // Redis still holds the key exhausted: nothing was admitted there either.
    expect(await redisConsumed(keyPrefix, 'k')).toBe(POINTS);
  }, 30000);
});
