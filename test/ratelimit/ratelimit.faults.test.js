'use strict';
// Proves the Redis limiter's guarantee under faults. With Redis up (the client's breaker
// closed), never more admissions than the global limit, whatever the timing: NOSCRIPT races,
// a small commandTimeout, a stall longer than the timeout, a decision whose outcome is
// unknown. With Redis down (the breaker open), decisions are made locally at once, at most
// the limit per process, each key starting from what Redis last said about it; when Redis
// returns, decisions go back to it. A local refusal settles on a later turn of the event loop,
// so a loop of refused consumes cannot starve timers.
//
// Runs on a redis-server of its own (SCRIPT FLUSH is server-wide), behind the fault proxy
// where a test needs Redis to stall or vanish.
const { createLimiter, RateLimitResult, RATE_LIMIT_SCRIPT } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');
const { startRedis, freePort } = require('../helpers/redis-server');
const { createProxy } = require('../helpers/proxy');
const { sleep, turns, track, waitFor, outcome, watchUnhandledRejections } = require('../helpers/async');
const { inChild } = require('./in-child');

let server;
let admin;
let unhandled;
let counter = 0;
const clients = [];
const proxies = [];

function client(options = {}) {
  const c = createClient({ url: server.url, ...options });
  clients.push(c);
  return c;
}

async function proxy() {
  const p = await createProxy({ port: server.port });
  proxies.push(p);
  return p;
}

const prefix = () => `rl:faults:${++counter}`;

/**
 * What Redis holds for `key` of `limiter`: points in use (0 for a full bucket). Not
 * consumedPoints, which counts refused attempts too.
 */
async function redisConsumed(limiter, key) {
  const view = createLimiter({ keyPrefix: limiter.keyPrefix, points: limiter.points, duration: limiter.duration, client: admin, fallback: false });
  const g = await view.get(key);
  return g === null ? 0 : view.burst - g.remainingPoints;
}

/** Makes Redis unreachable through `p`: new connections refused, open ones cut. */
async function takeDown(p) {
  await p.refuse();
  p.cut();
}

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  server = await startRedis();
  admin = createClient({ url: server.url });
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all(proxies.map((p) => p.close()));
  await admin.quit();
  await server.stop();
  expect(unhandled.stop()).toEqual([]);
});

describe('with Redis up, never more than the global limit', () => {
  // Each child fires 50 consumes at once on one key and reports what it saw.
  const body = `async ({ createLimiter, createClient, url, arg }) => {
    const client = createClient({ url, ...arg.client });
    const limiter = createLimiter({ keyPrefix: arg.prefix, points: 10, duration: 60, client });
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => limiter.consume('shared')));
    const errors = {};
    let admitted = 0;
    let refused = 0;
    for (const r of results) {
      if (r.status === 'fulfilled') admitted += 1;
      else if (r.reason instanceof Error) errors[r.reason.code] = (errors[r.reason.code] || 0) + 1;
      else refused += 1;
    }
    const decisions = limiter.status().decisions;
    const breakerOpened = client.metrics().breakerOpened;
    client.disconnect();
    return { admitted, refused, errors, decisions, breakerOpened };
  }`;

  test.each([
    ['script not loaded, the breaker on, commandTimeout 100 ms', { client: { commandTimeout: 100 } }],
    ['script not loaded, the breaker off, commandTimeout 30 ms', { client: { commandTimeout: 30, breaker: false } }],
    ['every reply 150 ms late, commandTimeout 100 ms, the breaker on', { lateMs: 150, client: { commandTimeout: 100 } }],
    ['every reply 150 ms late, commandTimeout 100 ms, the breaker off', { lateMs: 150, client: { commandTimeout: 100, breaker: false } }],
  ])('4 processes x 50 concurrent consumes, 10 per 60 s: %s', async (_name, { lateMs = 0, client: clientOptions }) => {
    const p = prefix();
    let url = server.url;
    if (lateMs > 0) {
      // Redis decides at once; its replies reach the processes after their deadlines.
      await admin.call('SCRIPT', 'LOAD', RATE_LIMIT_SCRIPT);
      const px = await proxy();
      px.delay(lateMs, 'toClient');
      url = px.url;
    } else {
      await admin.call('SCRIPT', 'FLUSH'); // every process meets NOSCRIPT at once
    }
    const children = Array.from({ length: 4 }, () => inChild(body, { url, waitFor: true, arg: { prefix: p, client: clientOptions } }));
    await sleep(300); // every process has loaded before any of them fires
    for (const c of children) c.go();
    const results = (await Promise.all(children.map((c) => c.done))).map((r) => r.value);
    const admitted = results.reduce((n, r) => n + r.admitted, 0);
    const unknown = results.reduce((n, r) => n + (r.errors.ETIMEDOUT || 0) + (r.errors.ERR_OUTCOME_UNKNOWN || 0), 0);
    const inRedis = await redisConsumed({ keyPrefix: p, points: 10, duration: 60 }, 'shared');
    // Every admission is one of Redis's (at most 10): a late reply reaches its caller as an
    // error, or is charged and refused by the fallback, never admitted by it.
    expect(inRedis).toBeLessThanOrEqual(10);
    expect(admitted).toBeLessThanOrEqual(inRedis);
    if (lateMs === 0 && unknown === 0) expect(admitted).toBe(10);
    if (lateMs > 0) expect(admitted).toBe(0);
  }, 60000);

  test.each([
    ['the breaker on', {}],
    ['the breaker off', { breaker: false }],
  ])('a 240 ms stall with commandTimeout 200 ms on a key Redis reported exhausted admits none of 12 (%s)', async (_name, clientOptions) => {
    const px = await proxy();
    const c = client({ url: px.url, commandTimeout: 200, ...clientOptions });
    // rejectLocally off: the known-refused table would refuse this key by itself; the point
    // here is what the fallback does.
    const l = createLimiter({ keyPrefix: prefix(), points: 10, duration: 60, client: c, rejectLocally: false });
    for (let i = 0; i < 10; i++) await l.consume('k');
    await expect(l.consume('k')).rejects.toBeInstanceOf(RateLimitResult); // Redis: exhausted

    px.hold('toClient');
    const pending = [];
    for (let i = 0; i < 12; i++) {
      pending.push(outcome(l.consume('k')));
      await sleep(20);
    }
    await sleep(Math.max(0, 240 - 12 * 20));
    px.release('toClient');
    const results = await Promise.all(pending);
    expect(results.filter((r) => r.ok)).toHaveLength(0);
    // Each was refused (by the fallback, from Redis's word) or failed with an error.
    expect(results.every((r) => r.error instanceof RateLimitResult || r.error instanceof Error)).toBe(true);
    // Back on Redis afterwards: still exhausted there.
    await waitFor(() => c.breakerState === 'closed', { what: 'the breaker closed again' });
    await expect(l.consume('k')).rejects.toBeInstanceOf(RateLimitResult);
    expect(l.status().usingFallback).toBe(false);
  });

  test.each([
    ['waits for Redis: a stall shorter than fallback.graceMs', 1000, 0],
    ['goes to the fallback once the stall outlasts fallback.graceMs', 30, 5],
  ])('a decision made while the breaker is open for a stall %s', async (_name, graceMs, expectedAdmitted) => {
    const px = await proxy();
    const c = client({ url: px.url });
    const l = createLimiter({ keyPrefix: prefix(), points: 5, duration: 600, client: c, fallback: { graceMs } });
    await l.consume('warm-up'); // connected, script loaded
    // Another process has used the key up; this one never heard of it, so its fallback
    // would start from a full bucket.
    const elsewhere = createLimiter({ keyPrefix: l.keyPrefix, points: 5, duration: 600, client: admin });
    await elsewhere.consume('k', 5);

    px.hold('toClient');
    const first = outcome(l.consume('warm-up')); // written: its reply is held
    await waitFor(() => c.breakerState !== 'closed', { what: 'the breaker open for the stall' });
    const during = Array.from({ length: 5 }, () => outcome(l.consume('k')));
    await sleep(120);
    px.release('toClient');
    const results = await Promise.all(during);
    expect((await first).ok).toBe(true); // answered by Redis when the replies came
    expect(results.filter((r) => r.ok)).toHaveLength(expectedAdmitted);
    expect(results.every((r) => r.ok || r.error instanceof RateLimitResult)).toBe(true);
    expect(l.status().decisions.fallback).toBe(expectedAdmitted);
  });

  test('a timeout while the breaker is closed is no admission, and its points count as spent', async () => {
    const px = await proxy();
    // A breaker that would not open on this stall: the timeout alone is under test.
    const c = client({ url: px.url, commandTimeout: 100, breaker: { stallMs: 60000 } });
    const l = createLimiter({ keyPrefix: prefix(), points: 3, duration: 600, client: c });
    await l.consume('k');
    await l.consume('k');
    px.hold('toClient');
    const r = await outcome(l.consume('k'));
    expect(r.ok).toBe(false);
    expect(r.error).toBeInstanceOf(Error);
    expect(r.error.code).toBe('ETIMEDOUT');
    expect(l.status().decisions).toMatchObject({ allowed: 2, unknownCharged: 1, errors: 1, fallback: 0 });
    px.release('toClient');
    expect(await redisConsumed(l, 'k')).toBe(3); // it did run in Redis

    // Redis goes away: the fallback starts from Redis's 2, plus the 1 charged: exhausted.
    await takeDown(px);
    await waitFor(() => l.status().usingFallback, { what: 'the breaker open' });
    const local = await Promise.all(Array.from({ length: 5 }, () => outcome(l.consume('k'))));
    expect(local.filter((x) => x.ok)).toHaveLength(0);
    expect(local.every((x) => x.error instanceof RateLimitResult)).toBe(true);
  });
});

describe('with Redis down, local decisions at once, at most the limit per process', () => {
  test.each([
    ['the breaker on', {}],
    ['the breaker off', { breaker: false }],
  ])('nothing listening (%s): decisions are local at once, never waiting for a timeout', async (_name, clientOptions) => {
    const port = await freePort();
    const c = client({ url: `redis://127.0.0.1:${port}`, connectTimeout: 5000, commandTimeout: 5000, ...clientOptions });
    const l = createLimiter({ keyPrefix: prefix(), points: 5, duration: 60, client: c });
    const started = Date.now();
    const serial = [];
    for (let i = 0; i < 20; i++) serial.push(await outcome(l.consume('a')));
    const concurrent = await Promise.all(Array.from({ length: 20 }, () => outcome(l.consume('b'))));
    const elapsed = Date.now() - started;
    expect(serial.filter((r) => r.ok)).toHaveLength(5);
    expect(concurrent.filter((r) => r.ok)).toHaveLength(5);
    expect([...serial, ...concurrent].every((r) => r.ok || r.error instanceof RateLimitResult)).toBe(true);
    // A hang guard, far below the 5 s timeouts a decision would otherwise wait for.
    expect(elapsed).toBeLessThan(2500);
    const s = l.status();
    expect(s.usingFallback).toBe(true);
    expect(s.lastError).toEqual(expect.objectContaining({ code: expect.any(String), at: expect.any(Number) }));
    expect(s.decisions).toMatchObject({ allowed: 10, refused: 30, fallback: 40, local: 40 });
    expect(c.status().fallbacks).toContain(`ratelimit:${l.keyPrefix}`);
  });

  test("each key's local bucket starts from what Redis last said; back on Redis when it returns", async () => {
    const px = await proxy();
    const c = client({ url: px.url, reconnectBaseDelay: 10, reconnectMaxDelay: 50 });
    const l = createLimiter({ keyPrefix: prefix(), points: 10, duration: 600, client: c });
    const other = createLimiter({ keyPrefix: prefix(), points: 10, duration: 600, client: c, fallback: { points: 5 } });
    for (let i = 0; i < 7; i++) await l.consume('seven');
    for (let i = 0; i < 10; i++) await l.consume('spent');
    await expect(l.consume('spent')).rejects.toBeInstanceOf(RateLimitResult);
    await l.block('banned', 30);
    await l.consume('rewarded', 10);
    await l.reward('rewarded', 4);
    await l.penalty('penalized', 9);
    // Another process used 8 of this key: this one learns it from a get().
    const elsewhere = createLimiter({ keyPrefix: l.keyPrefix, points: 10, duration: 600, client: admin });
    await elsewhere.consume('seen', 8);
    await l.get('seen');
    for (let i = 0; i < 6; i++) await other.consume('six');

    await takeDown(px);
    await waitFor(() => l.status().usingFallback, { what: 'the breaker open' });
    const admittedOf = async (limiter, key) => {
      const rs = [];
      for (let i = 0; i < 12; i++) rs.push(await outcome(limiter.consume(key)));
      expect(rs.every((r) => r.ok || r.error instanceof RateLimitResult)).toBe(true);
      return rs.filter((r) => r.ok).length;
    };
    expect(await admittedOf(l, 'seven')).toBe(3);
    expect(await admittedOf(l, 'spent')).toBe(0);
    expect(await admittedOf(l, 'rewarded')).toBe(4);
    expect(await admittedOf(l, 'penalized')).toBe(1);
    expect(await admittedOf(l, 'seen')).toBe(2);
    expect(await admittedOf(l, 'never-seen')).toBe(10); // the limit, per process
    const banned = await outcome(l.consume('banned'));
    expect(banned.ok).toBe(false);
    expect(banned.error.msBeforeNext).toBeGreaterThan(25000);
    // Other numbers on the fallback: the same share of the bucket. 6 of 10 in use is 3 of 5.
    expect(await admittedOf(other, 'six')).toBe(2);

    await px.accept();
    await waitFor(async () => (await outcome(l.consume('probe'))).ok && !l.status().usingFallback, { what: 'decisions back on Redis' });
    expect(c.status().fallbacks).not.toContain(`ratelimit:${l.keyPrefix}`);
    // Redis kept its own count: the local admissions were never written back.
    expect(await redisConsumed(l, 'seven')).toBe(7);
    await l.consume('seven');
    expect(await redisConsumed(l, 'seven')).toBe(8);
  });
});

describe('a local refusal settles on a later turn of the event loop', () => {
  /** Runs `await limiter.consume(key)` in a tight loop until a setTimeout(0) fires (or 100,000 turns). */
  async function loopUntilTimer(limiter, key) {
    let fired = false;
    const timer = setTimeout(() => {
      fired = true;
    }, 0);
    let refused = 0;
    let n = 0;
    for (; n < 100000 && !fired; n++) {
      try {
        await limiter.consume(key);
      } catch (r) {
        if (r instanceof RateLimitResult) refused += 1;
      }
    }
    clearTimeout(timer);
    return { fired, refused, n };
  }

  test('on the memory store', async () => {
    const l = createLimiter({ store: 'memory', keyPrefix: prefix(), points: 1, duration: 600 });
    await l.consume('k');
    const r = await loopUntilTimer(l, 'k');
    expect(r.fired).toBe(true);
    expect(r.refused).toBe(r.n);
  });

  test('a synchronous burst past 10,000 refusals in one turn has the rest settle at once (memory stays bounded)', async () => {
    const l = createLimiter({ store: 'memory', keyPrefix: prefix(), points: 1, duration: 600 });
    await l.consume('k');
    const burst = Array.from({ length: 10005 }, () => track(l.consume('k')));
    await null;
    await null;
    expect(burst[0].settled).toBe(false); // waits for the next turn
    expect(burst[10004].settled).toBe(true); // past the cap
    await turns(2);
    expect(burst.every((t) => t.settled && t.error instanceof RateLimitResult)).toBe(true);
  });

  test('for a key Redis reported over its limit (refused without asking Redis)', async () => {
    const l = createLimiter({ keyPrefix: prefix(), points: 1, duration: 600, client: client() });
    await l.consume('k');
    await expect(l.consume('k')).rejects.toBeInstanceOf(RateLimitResult);
    const r = await loopUntilTimer(l, 'k');
    expect(r.fired).toBe(true);
    expect(r.refused).toBe(r.n);
    expect(l.status().decisions.local).toBeGreaterThanOrEqual(r.n);
  });

  test('on the fallback, Redis down', async () => {
    const port = await freePort();
    const c = client({ url: `redis://127.0.0.1:${port}` });
    const l = createLimiter({ keyPrefix: prefix(), points: 1, duration: 600, client: c, rejectLocally: false });
    await l.consume('k');
    await waitFor(() => l.status().usingFallback, { what: 'the breaker open' });
    const r = await loopUntilTimer(l, 'k');
    expect(r.fired).toBe(true);
    expect(r.refused).toBe(r.n);
  });
});

test("the limiter's status is in the client's health report, and leaves it with the limiter", async () => {
  const c = client();
  const l = createLimiter({ keyPrefix: prefix(), points: 2, duration: 60, client: c });
  await l.consume('k');
  await l.consume('k');
  await outcome(l.consume('k'));
  await outcome(l.consume('k'));
  const report = c._reports()[`ratelimit:${l.keyPrefix}`];
  expect(report).toMatchObject({ store: 'redis', usingFallback: false });
  expect(report.decisions).toEqual({ allowed: 2, refused: 2, local: 1, fallback: 0, unknownCharged: 0, errors: 0 });
});
