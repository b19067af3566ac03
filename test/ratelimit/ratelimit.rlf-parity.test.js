'use strict';
// What users of rate-limiter-flexible rely on, held against rate-limiter-flexible itself
// (a dev dependency) on the same redis-server:
//   - the login idiom `(await limiter.get(key))?.consumedPoints > points`: true once an
//     attempt was refused, and for a blocked key, on either store;
//   - `new RateLimitResult(…) instanceof RateLimitResult`, and its defaults;
//   - migrating on the same keyPrefix, both ways and side by side (a rolling deploy): neither
//     library ever reads a key the other wrote; each keeps its own count.
const IORedis = require('ioredis');
const { RateLimiterRedis, RateLimiterMemory } = require('rate-limiter-flexible');
const { createLimiter, RateLimitResult } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');
const { suiteDatabase } = require('../helpers/suite-db');

let db;
let client;
let io;
let counter = 0;
const prefix = () => `rl:parity:${++counter}`;

beforeAll(async () => {
  db = await suiteDatabase();
  client = createClient({ url: db.url });
  io = new IORedis(db.url);
});

beforeEach(() => db.flush());

afterAll(async () => {
  await client.quit();
  io.disconnect();
});

const settle = (p) => p.then((r) => ({ ok: true, r }), (r) => ({ ok: false, r }));

/** Runs the login idiom's attempts: consume `attempts` times, then get(). */
async function attempts(limiter, key, n) {
  const outcomes = [];
  for (let i = 0; i < n; i++) outcomes.push(await settle(limiter.consume(key)));
  return { outcomes, got: await limiter.get(key) };
}

describe('the login idiom: consumedPoints > points once an attempt was refused', () => {
  // On Redis, rejectLocally: false: a key known to be over its limit is refused in-process
  // by default, and such refusals never reach Redis's count (see the next test).
  const stores = {
    memory: () => createLimiter({ store: 'memory', keyPrefix: prefix(), points: 5, duration: 600 }),
    redis: () => createLimiter({ client, keyPrefix: prefix(), points: 5, duration: 600, rejectLocally: false }),
  };

  test.each(Object.keys(stores))('%s: 5 points, 7 attempts read 7, as rate-limiter-flexible reads', async (store) => {
    const ours = stores[store]();
    const theirs = store === 'memory'
      ? new RateLimiterMemory({ keyPrefix: prefix(), points: 5, duration: 600 })
      : new RateLimiterRedis({ storeClient: io, keyPrefix: prefix(), points: 5, duration: 600 });
    const a = await attempts(ours, 'user@example.com', 7);
    const b = await attempts(theirs, 'user@example.com', 7);
    expect(a.outcomes.map((o) => o.ok)).toEqual(b.outcomes.map((o) => o.ok));
    expect(a.got.consumedPoints).toBe(b.got.consumedPoints);
    expect(a.got.consumedPoints).toBe(7);
    expect(a.outcomes[6].r.consumedPoints).toBe(7);
  });

  test('redis with rejectLocally (the default): refusals made in-process are not counted, yet the count passes the points at the first refusal', async () => {
    const ours = createLimiter({ client, keyPrefix: prefix(), points: 5, duration: 600 });
    const { outcomes, got } = await attempts(ours, 'k', 7);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(5);
    expect(got.consumedPoints).toBeGreaterThan(5);
    expect(got.consumedPoints).toBeLessThanOrEqual(7);
    expect(outcomes[5].r.consumedPoints).toBe(6);
  });

  test.each(Object.keys(stores))('%s: after 5 attempts, none refused, the idiom still lets the 6th through to the password check', async (store) => {
    const ours = stores[store]();
    const { got } = await attempts(ours, 'k', 5);
    expect(got.consumedPoints > ours.points).toBe(false);
    const sixth = await settle(ours.consume('k'));
    expect(sixth.ok).toBe(false);
    expect((await ours.get('k')).consumedPoints > ours.points).toBe(true);
  });

  test.each(Object.keys(stores))('%s: a blocked key reads more than its points, as after block(key, 60) in rate-limiter-flexible', async (store) => {
    const ours = stores[store]();
    const theirs = new RateLimiterMemory({ keyPrefix: prefix(), points: 5, duration: 600 });
    await ours.block('k', 60);
    await theirs.block('k', 60);
    const [a, b] = [await ours.get('k'), await theirs.get('k')];
    expect(a.consumedPoints).toBe(b.consumedPoints);
    expect(a.consumedPoints).toBeGreaterThan(5);
  });

  test.each(Object.keys(stores))('%s: an admission starts the count again; delete() forgets it', async (store) => {
    const ours = createLimiter(store === 'memory'
      ? { store: 'memory', keyPrefix: prefix(), points: 2, duration: 2 }
      : { client, keyPrefix: prefix(), points: 2, duration: 2, rejectLocally: false });
    await attempts(ours, 'k', 4);
    expect((await ours.get('k')).consumedPoints).toBe(4);
    await new Promise((r) => setTimeout(r, 1100)); // one point back (the second comes at 2 s)
    await expect(ours.consume('k')).resolves.toMatchObject({ consumedPoints: 2 });
    await ours.delete('k');
    expect(await ours.get('k')).toBeNull();
  });
});

describe('RateLimitResult', () => {
  test('an instance made with new is an instance, whatever isFirstInDuration was given as', () => {
    const r = new RateLimitResult(1, 2, 3, 1);
    expect(r instanceof RateLimitResult).toBe(true);
    expect(r.isFirstInDuration).toBe(true);
    expect(r).toEqual(expect.objectContaining({ remainingPoints: 1, msBeforeNext: 2, consumedPoints: 3 }));
  });

  test("rate-limiter-flexible's defaults: 0, 0, 0, false", () => {
    const r = new RateLimitResult();
    expect(r.toJSON()).toEqual({ remainingPoints: 0, msBeforeNext: 0, consumedPoints: 0, isFirstInDuration: false });
  });

  test('results of both limiters are instances; an Error or a partial object is not', async () => {
    const l = createLimiter({ store: 'memory', points: 1, duration: 60 });
    expect((await l.consume('k')) instanceof RateLimitResult).toBe(true);
    expect(new Error('x') instanceof RateLimitResult).toBe(false);
    expect({ remainingPoints: 1 } instanceof RateLimitResult).toBe(false);
  });
});

describe('migrating from rate-limiter-flexible on the same keyPrefix', () => {
  // Both libraries on one Redis and one keyPrefix, as during a rolling deploy: old instances
  // on rate-limiter-flexible, new ones on hirecache.
  function pair(points, duration) {
    const keyPrefix = prefix();
    return {
      keyPrefix,
      ours: createLimiter({ client, keyPrefix, points, duration, fallback: false }),
      theirs: new RateLimiterRedis({ storeClient: io, keyPrefix, points, duration }),
    };
  }

  test('keys rate-limiter-flexible wrote are never read as buckets (128 per second: no 14-year wait)', async () => {
    const { ours, theirs } = pair(128, 1);
    await theirs.consume('k');
    await theirs.consume('k');
    const r = await ours.consume('k');
    expect(r.msBeforeNext).toBeLessThanOrEqual(1000);
    expect(r.consumedPoints).toBe(1);
    // rate-limiter-flexible's counter is untouched.
    expect((await theirs.get('k')).consumedPoints).toBe(2);
  });

  test('keys hirecache wrote are never read by rate-limiter-flexible: it keeps its own count', async () => {
    const { ours, theirs } = pair(5, 60);
    for (let i = 0; i < 5; i++) await ours.consume('k');
    await expect(theirs.consume('k')).resolves.toMatchObject({ consumedPoints: 1, remainingPoints: 4 });
    await expect(ours.consume('k')).rejects.toMatchObject({ remainingPoints: 0 });
  });

  test('side by side, each library holds its own limit: a key gets at most both limits until the old instances stop', async () => {
    const { keyPrefix, ours, theirs } = pair(3, 60);
    const results = [];
    for (let i = 0; i < 5; i++) {
      results.push((await settle(ours.consume('ip'))).ok, (await settle(theirs.consume('ip'))).ok);
    }
    expect(results.filter(Boolean)).toHaveLength(6); // 3 + 3, never more
    const keys = (await client.call('KEYS', `${keyPrefix}:*`)).sort();
    expect(keys).toEqual([`${keyPrefix}:ip`, `${keyPrefix}:tb:ip`]);
    expect(ours.getKey('ip')).toBe(`${keyPrefix}:tb:ip`);
  });

  test('a key in the bucket namespace holding a value hirecache did not write is refused with FOREIGNKEY, never misread', async () => {
    const { ours } = pair(5, 60);
    await client.call('SET', ours.getKey('k'), '2', 'PX', 60000);
    const err = await ours.consume('k').catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('FOREIGNKEY');
    expect(err.message).toMatch(/did not write/);
    await client.call('SET', ours.getKey('k'), 'b:not-a-number:', 'PX', 60000);
    await expect(ours.get('k')).rejects.toMatchObject({ code: 'FOREIGNKEY' });
  });
});
