'use strict';
// Proves the Redis side of the limiter: one key per bucket that expires when the bucket is
// full again, EVALSHA recovering from NOSCRIPT (SCRIPT FLUSH, a restart), keys known to be
// over their limit refused without a Redis call and never one admission too many, and a
// decision whose outcome is unknown never sent twice. Runs on a redis-server of its own,
// since SCRIPT FLUSH and the command counters are server-wide.
const express = require('express');
const { createLimiter, RateLimitResult, RATE_LIMIT_SCRIPT_SHA, rateLimitByKey } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');
const { startRedis } = require('../helpers/redis-server');
const { createProxy } = require('../helpers/proxy');
const { sleep, waitFor, outcome } = require('../helpers/async');

let server;
let admin;
let counter = 0;
const clients = [];

function client(options = {}) {
  const c = createClient({ url: server.url, ...options });
  clients.push(c);
  return c;
}

const prefix = () => `rl:redis:${++counter}`;

/** How many times Redis ran EVALSHA and EVAL since the last CONFIG RESETSTAT. */
async function scriptCalls() {
  const info = await admin.call('INFO', 'commandstats');
  const count = (name) => {
    const m = new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info);
    return m ? Number(m[1]) : 0;
  };
  return count('evalsha') + count('eval');
}

beforeAll(async () => {
  server = await startRedis();
  admin = createClient({ url: server.url });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.quit()));
  await admin.quit();
  await server.stop();
});

test('a bucket is one key, expiring when the bucket is full again', async () => {
  await admin.call('FLUSHALL');
  const p = prefix();
  const l = createLimiter({ keyPrefix: p, points: 5, duration: 10, client: client() }); // 2 s per point
  await l.consume('k');
  expect(await admin.call('KEYS', '*')).toEqual([`${p}:tb:k`]);
  const ttl1 = await admin.call('PTTL', `${p}:tb:k`);
  expect(ttl1).toBeGreaterThan(1500);
  expect(ttl1).toBeLessThanOrEqual(2000);
  await l.consume('k', 4);
  const ttl5 = await admin.call('PTTL', `${p}:tb:k`);
  expect(ttl5).toBeGreaterThan(9000);
  expect(ttl5).toBeLessThanOrEqual(10000);
  // A refusal records the refused point but owes nothing more: the expiry stays where it was,
  // to the millisecond the script's rounding up (PX of a whole ms) may add.
  await l.consume('k').catch(() => {});
  expect(await admin.call('PTTL', `${p}:tb:k`)).toBeLessThanOrEqual(ttl5 + 1);
  await l.reward('k', 5);
  expect(await admin.call('EXISTS', `${p}:tb:k`)).toBe(0);
});

test('concurrent consumes from one process on one key admit exactly the capacity', async () => {
  const l = createLimiter({ keyPrefix: prefix(), points: 50, duration: 86400, client: client() });
  const results = await Promise.all(Array.from({ length: 1000 }, () => outcome(l.consume('hot'))));
  expect(results.filter((r) => r.ok)).toHaveLength(50);
  expect(results.filter((r) => !r.ok).every((r) => r.error instanceof RateLimitResult)).toBe(true);
});

test('NOSCRIPT after SCRIPT FLUSH is recovered, every decision still counted once', async () => {
  const c = client();
  const l = createLimiter({ keyPrefix: prefix(), points: 100, duration: 86400, client: c });
  await l.consume('n');
  await admin.call('SCRIPT', 'FLUSH');
  expect(await admin.call('SCRIPT', 'EXISTS', RATE_LIMIT_SCRIPT_SHA)).toEqual([0]);
  // Many decisions in flight meet NOSCRIPT together: one SCRIPT LOAD, each sent once more.
  const results = await Promise.all(Array.from({ length: 20 }, () => l.consume('n')));
  expect(results.every((r) => r instanceof RateLimitResult)).toBe(true);
  expect(await admin.call('SCRIPT', 'EXISTS', RATE_LIMIT_SCRIPT_SHA)).toEqual([1]);
  expect((await l.get('n')).consumedPoints).toBe(21);
  expect(l.status().usingFallback).toBe(false);
});

test('a key known to be over its limit is refused locally until msBeforeNext, never admitted early', async () => {
  const l = createLimiter({ keyPrefix: prefix(), points: 2, duration: 1, client: client() }); // 500 ms per point
  await l.consume('flood');
  await l.consume('flood');
  const first = await l.consume('flood').catch((r) => r);
  expect(first).toBeInstanceOf(RateLimitResult);
  await admin.call('CONFIG', 'RESETSTAT');
  const before = await scriptCalls();
  const refusals = await Promise.all(Array.from({ length: 200 }, () => l.consume('flood').catch((r) => r)));
  expect(refusals.every((r) => r instanceof RateLimitResult && r.remainingPoints === 0)).toBe(true);
  expect(refusals.every((r) => r.msBeforeNext > 0 && r.msBeforeNext <= first.msBeforeNext)).toBe(true);
  // Only the INFO call itself shows: the 200 refusals cost Redis nothing.
  expect((await scriptCalls()) - before).toBe(0);
  // Once the point is back, Redis is asked again and admits exactly one.
  await sleep(first.msBeforeNext + 10);
  const next = await Promise.all(Array.from({ length: 20 }, () => outcome(l.consume('flood'))));
  expect(next.filter((r) => r.ok)).toHaveLength(1);
  expect(l.status().knownRefusedEntries).toBe(1);
});

test('without rejectLocally every decision goes to Redis', async () => {
  const l = createLimiter({ keyPrefix: prefix(), points: 1, duration: 60, client: client(), rejectLocally: false });
  await l.consume('k');
  await admin.call('CONFIG', 'RESETSTAT');
  await Promise.all(Array.from({ length: 10 }, () => l.consume('k').catch(() => {})));
  expect(await scriptCalls()).toBe(10);
});

test('a reward from this process ends the local refusals at once', async () => {
  const l = createLimiter({ keyPrefix: prefix(), points: 1, duration: 600, client: client() });
  await l.consume('rw');
  await expect(l.consume('rw')).rejects.toBeInstanceOf(RateLimitResult);
  await l.reward('rw', 1);
  await expect(l.consume('rw')).resolves.toBeInstanceOf(RateLimitResult);
});

describe('a decision whose outcome is unknown', () => {
  let proxy;

  beforeEach(async () => {
    proxy = await createProxy({ port: server.port });
  });

  afterEach(async () => {
    await proxy.close();
  });

  /** Loses the reply of a consume that ran; `down`: Redis stays unreachable afterwards. */
  async function lostReply(limiter, key, { down = false } = {}) {
    await limiter.consume(key); // connected, script loaded
    proxy.hold('toClient');
    const pending = outcome(limiter.consume(key));
    // The script has run on the server once the key shows the second point.
    await waitFor(async () => (await admin.call('GET', limiter.getKey(key))) !== null && (await limiterConsumed(limiter, key)) === 2, {
      what: 'the script to run',
    });
    if (down) await proxy.refuse();
    proxy.cut();
    proxy.release();
    return pending;
  }

  async function limiterConsumed(limiter, key) {
    const admin2 = createLimiter({ keyPrefix: limiter.keyPrefix, points: limiter.points, duration: limiter.duration, client: admin });
    const g = await admin2.get(key);
    return g ? admin2.burst - g.remainingPoints : 0; // in use (consumedPoints counts refusals too)
  }

  test('is never sent again; without a fallback it rejects with ERR_OUTCOME_UNKNOWN', async () => {
    const l = createLimiter({ keyPrefix: prefix(), points: 10, duration: 86400, client: client({ url: proxy.url }), fallback: false });
    const r = await lostReply(l, 'u');
    expect(r.ok).toBe(false);
    expect(r.error).toBeInstanceOf(Error);
    expect(r.error.code).toBe('ERR_OUTCOME_UNKNOWN');
    await waitFor(async () => (await outcome(l.consume('probe'))).ok, { what: 'reconnection' });
    expect(await limiterConsumed(l, 'u')).toBe(2); // counted once, not resent
  });

  test('is never sent again; Redis reachable at once: rejects with ERR_OUTCOME_UNKNOWN, its points charged locally', async () => {
    const l = createLimiter({ keyPrefix: prefix(), points: 10, duration: 86400, client: client({ url: proxy.url }) });
    const r = await lostReply(l, 'w');
    // The connection came back at once, the breaker stayed closed: no local decision.
    expect(r.ok).toBe(false);
    expect(r.error.code).toBe('ERR_OUTCOME_UNKNOWN');
    expect(l.status().decisions).toMatchObject({ unknownCharged: 1, errors: 1, fallback: 0 });
    await waitFor(async () => (await outcome(l.consume('probe'))).ok, { what: 'reconnection' });
    expect(await limiterConsumed(l, 'w')).toBe(2);
  });

  test('is never sent again; Redis unreachable afterwards: the fallback starts from its points, charged', async () => {
    const c = client({ url: proxy.url, reconnectBaseDelay: 10, reconnectMaxDelay: 50 });
    const l = createLimiter({ keyPrefix: prefix(), points: 10, duration: 86400, client: c });
    const r = await lostReply(l, 'v', { down: true });
    // The connection was lost while the breaker was still closed: an error, not a decision.
    expect(r.ok).toBe(false);
    expect(r.error.code).toBe('ERR_OUTCOME_UNKNOWN');
    await waitFor(() => l.status().usingFallback, { what: 'the breaker open' });
    // Locally: the 1 Redis reported and the 1 charged; then the fallback admits a third.
    await expect(l.get('v')).resolves.toMatchObject({ consumedPoints: 2 });
    await expect(l.consume('v')).resolves.toMatchObject({ consumedPoints: 3 });
    expect(l.status().decisions).toMatchObject({ unknownCharged: 1, fallback: 1, errors: 1 });
    await proxy.accept();
    await waitFor(async () => (await outcome(l.consume('probe'))).ok && !l.status().usingFallback, { what: 'back on Redis' });
    expect(await limiterConsumed(l, 'v')).toBe(2);
  });
});

test('NOSCRIPT after a server restart is recovered', async () => {
  const port = server.port;
  const c = client({ reconnectBaseDelay: 10, reconnectMaxDelay: 50 });
  const l = createLimiter({ keyPrefix: prefix(), points: 5, duration: 60, client: c, fallback: false });
  await l.consume('r');
  await server.stop();
  server = await startRedis({ port });
  await waitFor(async () => (await outcome(l.consume('r'))).ok, { what: 'a consume after the restart' });
  expect((await l.get('r')).consumedPoints).toBe(1); // the restarted server started empty
  await waitFor(async () => (await outcome(admin.call('PING'))).ok, { what: 'the admin client back' });
});

test('a cost of 0 is answered, never with an error: a bucket that owes nothing is deleted, not written with PX 0', async () => {
  const p = prefix();
  const l = createLimiter({ keyPrefix: p, points: 5, duration: 60, client: client(), fallback: false });
  await expect(l.consume('z', 0)).resolves.toMatchObject({ remainingPoints: 5, consumedPoints: 0, msBeforeNext: 0 });
  await expect(l.penalty('z', 0)).resolves.toMatchObject({ remainingPoints: 5, consumedPoints: 0 });
  await expect(l.reward('z', 0)).resolves.toMatchObject({ remainingPoints: 5, consumedPoints: 0 });
  expect(await admin.call('EXISTS', `${p}:tb:z`)).toBe(0);
  await l.consume('z', 2);
  await expect(l.consume('z', 0)).resolves.toMatchObject({ remainingPoints: 3, consumedPoints: 2 });
  await expect(l.penalty('z', 0)).resolves.toMatchObject({ remainingPoints: 3, consumedPoints: 2 });
  expect(await admin.call('EXISTS', `${p}:tb:z`)).toBe(1);

  const app = express();
  app.get('/free', rateLimitByKey(l, () => 'mw', { cost: 0 }), (req, res) => res.json({ ok: true }));
  // Four parameters, or Express would not take it for an error handler.
  app.use((err, req, res, _next) => res.status(500).json({ error: err.message }));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    const res = await fetch(`http://127.0.0.1:${server.address().port}/free`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a refusal is trusted locally for at most a second: a delete elsewhere is seen, a ban without end never kept', async () => {
  const p = prefix();
  const a = createLimiter({ keyPrefix: p, points: 1, duration: 600, client: client() }); // "server A"
  const b = createLimiter({ keyPrefix: p, points: 1, duration: 600, client: client() }); // "server B"
  await a.consume('k');
  const first = await a.consume('k').catch((r) => r);
  expect(first).toBeInstanceOf(RateLimitResult);
  await admin.call('CONFIG', 'RESETSTAT');
  // Answered locally, with the true wait (not the trust's).
  const local = await a.consume('k').catch((r) => r);
  expect(local).toBeInstanceOf(RateLimitResult);
  expect(local.msBeforeNext).toBeGreaterThan(598000);
  expect(await scriptCalls()).toBe(0);
  expect(await b.delete('k')).toBe(true);
  await sleep(1100);
  await expect(a.consume('k')).resolves.toBeInstanceOf(RateLimitResult);

  // A block reported by Redis refuses locally with its true wait, for at most a second.
  await b.block('x', 30);
  const blocked = await a.consume('x').catch((r) => r);
  expect(blocked.msBeforeNext).toBeGreaterThan(29000);
  await admin.call('CONFIG', 'RESETSTAT');
  const again = await a.consume('x').catch((r) => r);
  expect(again).toBeInstanceOf(RateLimitResult);
  expect(again.msBeforeNext).toBeGreaterThan(29000);
  expect(again.msBeforeNext).toBeLessThanOrEqual(blocked.msBeforeNext);
  expect(await scriptCalls()).toBe(0);

  // block(key, 0) and its delete: A asks Redis each time, so the unban is seen at once.
  await b.block('ban', 0);
  await expect(a.consume('ban')).rejects.toMatchObject({ msBeforeNext: -1 });
  await expect(a.consume('ban')).rejects.toMatchObject({ msBeforeNext: -1 });
  await b.delete('ban');
  await expect(a.consume('ban')).resolves.toBeInstanceOf(RateLimitResult);
});

test('a flood on a key over its limit is answered locally and never admits more than the limit', async () => {
  const p = prefix();
  const l = createLimiter({ keyPrefix: p, points: 3, duration: 600, client: client() });
  const results = [];
  const end = Date.now() + 2500;
  while (Date.now() < end) {
    results.push(...(await Promise.all(Array.from({ length: 50 }, () => outcome(l.consume('f'))))));
  }
  expect(results.filter((r) => r.ok)).toHaveLength(3);
});
