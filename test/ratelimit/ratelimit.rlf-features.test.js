'use strict';
// rate-limiter-flexible's options and methods that users' code calls, on hirecache's
// limiters: points as an integer string, duration 0, insuranceLimiter (any limiter object),
// inMemoryBlockOnConsumed / inMemoryBlockDuration, execEvenly, set(), parseKey(),
// rejectIfRedisNotReady, per-call { customDuration } (refused by name), RateLimiterUnion.
const { RateLimiterMemory } = require('rate-limiter-flexible');
const { createLimiter, RateLimiterUnion } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');
const { suiteDatabase } = require('../helpers/suite-db');
const { freePort } = require('../helpers/redis-server');

let db;
let client;
let counter = 0;
const prefix = () => `rl:features:${++counter}`;
const clients = [];
const settle = (p) => p.then((r) => ({ ok: true, r }), (r) => ({ ok: false, r }));

beforeAll(async () => {
  db = await suiteDatabase();
  client = createClient({ url: db.url });
});

beforeEach(() => db.flush());

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await client.quit();
});

/** A client for a port nothing listens on: Redis down from the start. */
async function deadClient(options = {}) {
  const c = createClient({ url: `redis://127.0.0.1:${await freePort()}`, logger: false, connectTimeout: 200, ...options });
  clients.push(c);
  return c;
}

describe('options as rate-limiter-flexible takes them', () => {
  test('points given as an integer string', async () => {
    const l = createLimiter({ store: 'memory', points: '3', duration: 60 });
    expect(l.points).toBe(3);
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push((await settle(l.consume('k'))).ok);
    expect(outcomes).toEqual([true, true, true, false]);
  });

  test.each(['memory', 'redis'])('%s: duration 0 never refills (the slowest bucket: points over ten years)', async (store) => {
    const l = createLimiter(store === 'memory' ? { store, points: 2, duration: 0 } : { client, keyPrefix: prefix(), points: 2, duration: 0 });
    await l.consume('k');
    await l.consume('k');
    const refused = await settle(l.consume('k'));
    expect(refused.ok).toBe(false);
    expect(refused.r.msBeforeNext).toBeGreaterThan(365 * 86400 * 1000);
  });

  test("per-call { customDuration } is refused by name, with what to do instead; other per-call options too", async () => {
    for (const l of [createLimiter({ store: 'memory', points: 2, duration: 1 }), createLimiter({ client, keyPrefix: prefix(), points: 2, duration: 1 })]) {
      await expect(l.consume('k', 1, { customDuration: 5 })).rejects.toThrow(/customDuration.*limiter with that duration/);
      await expect(l.penalty('k', 1, { customDuration: 5 })).rejects.toThrow(/customDuration/);
      await expect(l.reward('k', 1, { other: 1 })).rejects.toThrow(/options\.other/);
      await expect(l.consume('k', 1, {})).resolves.toMatchObject({ remainingPoints: 1 });
    }
  });

  test('insuranceLimiter and rejectIfRedisNotReady are for a limiter on Redis', () => {
    expect(() => createLimiter({ store: 'memory', points: 1, duration: 1, rejectIfRedisNotReady: true })).toThrow(/on Redis/);
    const insurance = new RateLimiterMemory({ points: 1, duration: 1 });
    expect(() => createLimiter({ store: 'memory', points: 1, duration: 1, insuranceLimiter: insurance })).toThrow(/on Redis/);
    expect(() => createLimiter({ client, points: 1, duration: 1, insuranceLimiter: insurance, fallback: true })).toThrow(/option fallback/);
  });
});

describe('set() and parseKey()', () => {
  test.each(['memory', 'redis'])('%s: set(key, points) makes exactly that many in use, ending a block', async (store) => {
    const keyPrefix = prefix();
    const l = createLimiter(store === 'memory' ? { store, keyPrefix, points: 5, duration: 60 } : { client, keyPrefix, points: 5, duration: 60 });
    await l.block('k', 60);
    await expect(l.set('k', 3)).resolves.toMatchObject({ consumedPoints: 3, remainingPoints: 2 });
    await expect(l.get('k')).resolves.toMatchObject({ consumedPoints: 3, remainingPoints: 2 });
    await expect(l.consume('k')).resolves.toMatchObject({ remainingPoints: 1 });
    await expect(l.set('k', 7)).resolves.toMatchObject({ consumedPoints: 7, remainingPoints: 0 });
    await expect(l.set('k', 0)).resolves.toMatchObject({ consumedPoints: 0, remainingPoints: 5 });
    expect(await l.get('k')).toBeNull();
    await expect(l.set('k', 1, 30)).rejects.toThrow(/secDuration.*block\(key, secDuration\)/);
    // rate-limiter-flexible's 0, "never expires", is refused too: the points would refill.
    await expect(l.set('k', 1, 0)).rejects.toThrow(/secDuration/);
  });

  test('parseKey() undoes getKey() on both stores', () => {
    const m = createLimiter({ store: 'memory', keyPrefix: 'login', points: 1, duration: 1 });
    const r = createLimiter({ client, keyPrefix: 'login', points: 1, duration: 1 });
    for (const l of [m, r]) expect(l.parseKey(l.getKey('a@b.c'))).toBe('a@b.c');
    expect(r.getKey('x')).toBe('login:tb:x');
    expect(m.getKey('x')).toBe('login:x');
  });
});

describe('insuranceLimiter: any limiter object decides while Redis cannot', () => {
  test("rate-limiter-flexible's RateLimiterMemory as the insurance, Redis unreachable", async () => {
    const insurance = new RateLimiterMemory({ points: 2, duration: 60 });
    const l = createLimiter({ client: await deadClient(), keyPrefix: prefix(), points: 5, duration: 60, insuranceLimiter: insurance });
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await settle(l.consume('k')));
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, false]);
    expect(outcomes[2].r).not.toBeInstanceOf(Error);
    expect(l.status().usingFallback).toBe(true);
    await expect(insurance.get('k')).resolves.toMatchObject({ consumedPoints: 3 });
  });

  test('with Redis up the insurance is never asked', async () => {
    const insurance = new RateLimiterMemory({ points: 1, duration: 60 });
    const l = createLimiter({ client, keyPrefix: prefix(), points: 3, duration: 60, insuranceLimiter: insurance });
    for (let i = 0; i < 3; i++) await l.consume('k');
    expect(await insurance.get('k')).toBeNull();
  });
});

describe('rejectIfRedisNotReady', () => {
  test('Redis not ready: rejects at once instead of waiting, with ERR_REDIS_NOT_READY; the insurance decides when there is one', async () => {
    const dead = await deadClient({ maxRetriesPerRequest: null, commandTimeout: 5000 });
    const l = createLimiter({ client: dead, keyPrefix: prefix(), points: 5, duration: 60, rejectIfRedisNotReady: true, fallback: false });
    const started = Date.now();
    await expect(l.consume('k')).rejects.toMatchObject({ code: 'ERR_REDIS_NOT_READY' });
    expect(Date.now() - started).toBeLessThan(2500); // not the 5 s commandTimeout
    const insured = createLimiter({ client: dead, keyPrefix: prefix(), points: 5, duration: 60, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory({ points: 1, duration: 60 }) });
    await expect(insured.consume('k')).resolves.toMatchObject({ remainingPoints: 0 });
  });

  test('a ready client decides on Redis as usual; a lazy one is asked to connect', async () => {
    const lazy = createClient({ url: db.url });
    clients.push(lazy);
    const l = createLimiter({ client: lazy, keyPrefix: prefix(), points: 5, duration: 60, rejectIfRedisNotReady: true, fallback: false });
    await expect(l.consume('k')).rejects.toMatchObject({ code: 'ERR_REDIS_NOT_READY' });
    await lazy.connect();
    await expect(l.consume('k')).resolves.toMatchObject({ remainingPoints: 4 });
  });
});

describe('inMemoryBlockOnConsumed / inMemoryBlockDuration', () => {
  test('a key past the threshold is refused in this process for the block, without asking Redis', async () => {
    const l = createLimiter({ client, keyPrefix: prefix(), points: 3, duration: 60, inMemoryBlockOnConsumed: 4, inMemoryBlockDuration: 30, rejectLocally: false });
    for (let i = 0; i < 4; i++) await settle(l.consume('k'));
    const before = await client.call('INFO', 'commandstats');
    const calls = (info) => Number((/cmdstat_evalsha:calls=(\d+)/.exec(info) || [0, 0])[1]);
    const refused = await settle(l.consume('k'));
    expect(refused.ok).toBe(false);
    expect(refused.r).toMatchObject({ remainingPoints: 0, consumedPoints: 4 });
    expect(refused.r.msBeforeNext).toBeGreaterThan(29000);
    expect(refused.r.msBeforeNext).toBeLessThanOrEqual(30000);
    expect(calls(await client.call('INFO', 'commandstats'))).toBe(calls(before)); // no EVALSHA
    await l.delete('k');
    await expect(l.consume('k')).resolves.toMatchObject({ remainingPoints: 2 });
  });

  test('the refusal that starts the block says how long it lasts', async () => {
    const l = createLimiter({ store: 'memory', points: 1, duration: 5, inMemoryBlockOnConsumed: 2, inMemoryBlockDuration: 10 });
    await l.consume('k');
    const first = await settle(l.consume('k'));
    expect(first.ok).toBe(false);
    expect(first.r.msBeforeNext).toBeGreaterThanOrEqual(9900);
    expect(() => createLimiter({ store: 'memory', points: 1, duration: 5, inMemoryBlockDuration: 10 })).toThrow(/inMemoryBlockDuration/);
  });
});

describe('execEvenly', () => {
  test('admitted consumes are spread out: each after at least execEvenlyMinDelayMs, the first at once', async () => {
    const l = createLimiter({ store: 'memory', points: 10, duration: 1, execEvenly: true, execEvenlyMinDelayMs: 300 });
    const t0 = Date.now();
    await l.consume('k');
    const first = Date.now() - t0;
    await l.consume('k');
    const second = Date.now() - t0 - first;
    // Wide margins: only "not delayed" against "delayed by at least the minimum" is judged.
    expect(first).toBeLessThan(200);
    expect(second).toBeGreaterThanOrEqual(295);
    // A refusal is not delayed.
    const tight = createLimiter({ store: 'memory', points: 1, duration: 60, execEvenly: true, execEvenlyMinDelayMs: 1000 });
    await tight.consume('k');
    const t1 = Date.now();
    await expect(tight.consume('k')).rejects.toMatchObject({ remainingPoints: 0 });
    expect(Date.now() - t1).toBeLessThan(500);
  });
});

describe('RateLimiterUnion', () => {
  test('all of them or none: a refusal by one gives back what the others took', async () => {
    const perSecond = createLimiter({ client, keyPrefix: prefix(), points: 2, duration: 1 });
    const perDay = createLimiter({ client, keyPrefix: prefix(), points: 100, duration: 86400 });
    const union = new RateLimiterUnion(perSecond, perDay);
    const a = await union.consume('u');
    expect(Object.keys(a).sort()).toEqual([perSecond.keyPrefix, perDay.keyPrefix].sort());
    await union.consume('u');
    const refused = await settle(union.consume('u'));
    expect(refused.ok).toBe(false);
    expect(Object.keys(refused.r)).toEqual([perSecond.keyPrefix]);
    expect(refused.r[perSecond.keyPrefix].remainingPoints).toBe(0);
    // The day limit holds the two admitted requests only.
    await expect(perDay.get('u')).resolves.toMatchObject({ consumedPoints: 2 });
  });

  test('needs two limiters with distinct keyPrefixes', () => {
    const a = createLimiter({ store: 'memory', keyPrefix: 'a', points: 1, duration: 1 });
    expect(() => new RateLimiterUnion(a)).toThrow(/two or more/);
    expect(() => new RateLimiterUnion(a, createLimiter({ store: 'memory', keyPrefix: 'a', points: 1, duration: 1 }))).toThrow(/keyPrefix/);
  });
});
