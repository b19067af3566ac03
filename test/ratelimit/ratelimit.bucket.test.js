'use strict';
// Proves the token-bucket semantics through the public API, the same for the in-process
// limiter and the Redis one: a full bucket gives exactly its capacity, steady load gets
// `points` per `duration` and no more, a refusal takes nothing, fractional intervals refill
// on time, blockDuration holds, and penalty / reward / get / block / delete behave as in
// rate-limiter-flexible. Time is real here (the C++ unit tests drive a fake clock); every
// bound below is computed from measured elapsed time, never a speed threshold.
const { createLimiter, RateLimitResult } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');
const { suiteDatabase } = require('../helpers/suite-db');
const { sleep } = require('../helpers/async');

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

let counter = 0;
const stores = [
  ['memory', (options) => createLimiter({ store: 'memory', ...options })],
  ['redis', (options) => createLimiter({ client, ...options })],
];

/** Settles consume() into { ok, res } and checks a refusal is a result, not an Error. */
async function attempt(limiter, key, points) {
  try {
    return { ok: true, res: await limiter.consume(key, points) };
  } catch (res) {
    expect(res).toBeInstanceOf(RateLimitResult);
    return { ok: false, res };
  }
}

describe.each(stores)('%s limiter', (store, make) => {
  const prefix = () => `rl:bucket:${store}:${++counter}`;

  test('a full bucket admits exactly its capacity at once, then refuses', async () => {
    const l = make({ keyPrefix: prefix(), points: 5, duration: 600 });
    const outcomes = await Promise.all(Array.from({ length: 12 }, () => attempt(l, 'ip')));
    const admitted = outcomes.filter((o) => o.ok);
    expect(admitted).toHaveLength(5);
    expect(admitted.map((o) => o.res.remainingPoints).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(admitted.filter((o) => o.res.isFirstInDuration)).toHaveLength(1);
    const refused = outcomes.find((o) => !o.ok).res;
    expect(refused.remainingPoints).toBe(0);
    expect(refused.consumedPoints).toBe(6);
    // One point comes back every 120 s.
    expect(refused.msBeforeNext).toBeGreaterThan(119000);
    expect(refused.msBeforeNext).toBeLessThanOrEqual(120000);
  });

  test('a cost above what is left is refused without taking anything', async () => {
    const l = make({ keyPrefix: prefix(), points: 10, duration: 600 });
    expect((await attempt(l, 'k', 7)).ok).toBe(true);
    const refused = await attempt(l, 'k', 4);
    expect(refused.ok).toBe(false);
    expect(refused.res.remainingPoints).toBe(3);
    expect(refused.res.consumedPoints).toBe(11);
    const fits = await attempt(l, 'k', 3);
    expect(fits.ok).toBe(true);
    expect(fits.res.remainingPoints).toBe(0);
    // More than the capacity could never be admitted, whatever the wait: an error, naming
    // the argument and the burst, rather than a refusal with a Retry-After that lies.
    await expect(l.consume('k', 11)).rejects.toThrow(RangeError);
    await expect(l.consume('fresh', 11)).rejects.toThrow(/points \(11\) must not exceed the burst \(10\)/);
  });

  test('steady load gets points per duration and never more', async () => {
    const points = 10;
    const duration = 1; // a point every 100 ms
    const l = make({ keyPrefix: prefix(), points, duration });
    const start = Date.now();
    let admitted = 0;
    while (Date.now() - start < 1500) {
      const batch = await Promise.all(Array.from({ length: 8 }, () => attempt(l, 'steady')));
      admitted += batch.filter((o) => o.ok).length;
      await sleep(2);
    }
    const elapsedMs = Date.now() - start;
    // At most the capacity plus what refilled while we hammered; at least that minus the
    // point still refilling at the end and the sleeps between batches.
    const refilled = (elapsedMs / 1000) * (points / duration);
    expect(admitted).toBeLessThanOrEqual(points + Math.ceil(refilled));
    expect(admitted).toBeGreaterThanOrEqual(points + Math.floor(refilled) - 2);
  });

  test('after idling, a bucket holds its capacity and not a point more', async () => {
    const l = make({ keyPrefix: prefix(), points: 4, duration: 0.8 }); // a point per 200 ms
    for (let i = 0; i < 4; i++) expect((await attempt(l, 'idle')).ok).toBe(true);
    await sleep(1500); // longer than a full refill
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => attempt(l, 'idle')));
    // 4, or 5 only if this batch straddled a 200 ms refill, never 8 as a window reset would give.
    const admitted = outcomes.filter((o) => o.ok).length;
    expect(admitted).toBeGreaterThanOrEqual(4);
    expect(admitted).toBeLessThanOrEqual(5);
    expect(outcomes.filter((o) => o.ok && o.res.isFirstInDuration)).toHaveLength(1);
  });

  test('fractional intervals refill on time: msBeforeNext is enough and not much more', async () => {
    const l = make({ keyPrefix: prefix(), points: 3, duration: 1 }); // 333.33 ms per point
    for (let i = 0; i < 3; i++) await attempt(l, 'frac');
    const refused = await attempt(l, 'frac');
    expect(refused.ok).toBe(false);
    expect(refused.res.msBeforeNext).toBeGreaterThan(0);
    expect(refused.res.msBeforeNext).toBeLessThanOrEqual(334);
    await sleep(refused.res.msBeforeNext + 5);
    const again = await attempt(l, 'frac');
    expect(again.ok).toBe(true);
    expect(again.res.remainingPoints).toBe(0);
  });

  test('blockDuration keeps a key refused that long after it goes over; after it, the key owes what it owed', async () => {
    const l = make({ keyPrefix: prefix(), points: 2, duration: 0.2, blockDuration: 1 });
    expect((await attempt(l, 'b')).ok).toBe(true);
    expect((await attempt(l, 'b')).ok).toBe(true);
    const over = await attempt(l, 'b');
    expect(over.ok).toBe(false);
    expect(over.res.msBeforeNext).toBeGreaterThan(900);
    expect(over.res.msBeforeNext).toBeLessThanOrEqual(1000);
    await sleep(400); // the bucket alone would have refilled by now
    const held = await attempt(l, 'b');
    expect(held.ok).toBe(false);
    expect(held.res.msBeforeNext).toBeLessThanOrEqual(over.res.msBeforeNext - 300);
    await sleep(held.res.msBeforeNext + 20);
    const after = await attempt(l, 'b');
    // The bucket alone had refilled (0.2 s) before the block ended (1 s): it is full again.
    expect(after.ok).toBe(true);
    expect(after.res.isFirstInDuration).toBe(true);
    expect(after.res.remainingPoints).toBe(1);
  });

  test('a block shorter than the refill cancels no debt: 5 per 600 s with blockDuration 0.3 admits 5, not more', async () => {
    const l = make({ keyPrefix: prefix(), points: 5, duration: 600, blockDuration: 0.3 });
    for (let i = 0; i < 5; i++) expect((await attempt(l, 'd')).ok).toBe(true);
    const over = await attempt(l, 'd');
    expect(over.ok).toBe(false);
    // The wait is the later of the block's end and the next point: about 120 s.
    expect(over.res.msBeforeNext).toBeGreaterThan(119000);
    expect(over.res.msBeforeNext).toBeLessThanOrEqual(120000);
    await sleep(400); // the block is over, the debt is not
    const after = await attempt(l, 'd');
    expect(after.ok).toBe(false);
    expect(after.res.remainingPoints).toBe(0);
    expect(after.res.msBeforeNext).toBeGreaterThan(119000);
  });

  test('block() and a penalty taken while blocked never cancel what the key owes', async () => {
    const l = make({ keyPrefix: prefix(), points: 4, duration: 400 }); // a point per 100 s
    expect((await attempt(l, 'p', 4)).ok).toBe(true);
    const b = await l.block('p', 0.2);
    expect(b.msBeforeNext).toBe(200);
    await l.penalty('p', 2); // taken while blocked: kept
    await sleep(300);
    const after = await attempt(l, 'p');
    expect(after.ok).toBe(false);
    expect(after.res.remainingPoints).toBe(0);
    // Owes 6 points, holds 4: the next one needs 3 more back, about 300 s.
    expect(after.res.msBeforeNext).toBeGreaterThan(290000);
    expect(after.res.msBeforeNext).toBeLessThanOrEqual(300000);
  });

  test('penalty takes points even past the limit, reward gives them back up to full', async () => {
    const l = make({ keyPrefix: prefix(), points: 4, duration: 400 }); // a point per 100 s
    const p = await l.penalty('u', 6);
    expect(p).toBeInstanceOf(RateLimitResult);
    expect(p.remainingPoints).toBe(0);
    expect(p.consumedPoints).toBe(6);
    expect((await attempt(l, 'u')).ok).toBe(false);
    let r = await l.reward('u', 3);
    expect(r.remainingPoints).toBe(1);
    expect((await attempt(l, 'u')).ok).toBe(true);
    r = await l.reward('u', 100);
    expect(r.remainingPoints).toBe(4);
    expect(r.consumedPoints).toBe(0);
    expect(await l.get('u')).toBeNull();
  });

  test('get reports a bucket in use and null for a full one', async () => {
    const l = make({ keyPrefix: prefix(), points: 5, duration: 50 });
    expect(await l.get('g')).toBeNull();
    await l.consume('g', 2);
    const g = await l.get('g');
    expect(g).toMatchObject({ remainingPoints: 3, consumedPoints: 2 });
    expect(g.msBeforeNext).toBeGreaterThan(19000);
    expect(g.msBeforeNext).toBeLessThanOrEqual(20000);
  });

  test('block refuses for its duration and delete lifts it', async () => {
    const l = make({ keyPrefix: prefix(), points: 5, duration: 50 });
    const b = await l.block('x', 30);
    expect(b.msBeforeNext).toBe(30000);
    const refused = await attempt(l, 'x');
    expect(refused.ok).toBe(false);
    expect(refused.res.msBeforeNext).toBeGreaterThan(29000);
    expect(await l.delete('x')).toBe(true);
    expect(await l.delete('x')).toBe(false);
    expect((await attempt(l, 'x')).ok).toBe(true);
  });

  test('block(key, 0) refuses until delete, reported as msBeforeNext -1', async () => {
    const l = make({ keyPrefix: prefix(), points: 5, duration: 50 });
    await l.block('forever', 0);
    const refused = await attempt(l, 'forever');
    expect(refused.ok).toBe(false);
    expect(refused.res.msBeforeNext).toBe(-1);
    await l.delete('forever');
    expect((await attempt(l, 'forever')).ok).toBe(true);
  });

  test('keys have buckets of their own', async () => {
    const l = make({ keyPrefix: prefix(), points: 1, duration: 60 });
    expect((await attempt(l, 'a')).ok).toBe(true);
    expect((await attempt(l, 'a')).ok).toBe(false);
    expect((await attempt(l, 'b')).ok).toBe(true);
    expect((await attempt(l, 'é漢字')).ok).toBe(true);
  });
});

test('results have RateLimiterRes\'s methods, and instanceof RateLimitResult tells them from Errors', async () => {
  const { inspect } = require('util');
  const l = createLimiter({ store: 'memory', points: 1, duration: 60 });
  const admitted = await l.consume('plain');
  const refused = await l.consume('plain').catch((r) => r);
  const fields = (r) => ({ remainingPoints: r.remainingPoints, msBeforeNext: r.msBeforeNext, consumedPoints: r.consumedPoints, isFirstInDuration: r.isFirstInDuration });
  for (const r of [admitted, refused, new RateLimitResult(1, 2, 3, false)]) {
    expect(r).toBeInstanceOf(RateLimitResult);
    expect(r.toJSON()).toEqual(fields(r));
    expect(JSON.parse(String(r))).toEqual(fields(r));
    expect(JSON.parse(JSON.stringify(r))).toEqual(fields(r));
    expect(inspect(r)).toBe(inspect(fields(r))); // console.log shows the four numbers only
  }
  expect(fields(admitted)).toEqual({ remainingPoints: 0, msBeforeNext: 60000, consumedPoints: 1, isFirstInDuration: true });
  expect(refused).toMatchObject({ remainingPoints: 0, consumedPoints: 2, isFirstInDuration: false });
  // An Error never passes for a result, even one carrying a result's fields: the middleware
  // must hand it to next(err), not answer 429.
  expect(new Error('down')).not.toBeInstanceOf(RateLimitResult);
  expect(Object.assign(new Error('Too Many Requests'), fields(refused))).not.toBeInstanceOf(RateLimitResult);
  expect({ remainingPoints: 1, msBeforeNext: 2 }).not.toBeInstanceOf(RateLimitResult);
  expect(null).not.toBeInstanceOf(RateLimitResult);
});
