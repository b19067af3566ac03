'use strict';
// Proves the token leases of the Redis limiter (option lease, lib/ratelimit/lease.js): never
// more admissions than the global limit, in one process and in four sharing a key; an
// under-admission no larger than the tokens other processes hold in unexpired leases
// (measured), and none left once their leases expire and the unused tokens are given back;
// a lease size (k) that grows while tokens are plentiful and falls to 1 when they are scarce;
// a lease call whose outcome is unknown counted as spent and never sent again; the fallback
// deciding as without leases while the breaker is open; the option's checks; and leases off
// by default.
const { createLimiter, RATE_LIMIT_SCRIPT } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');
const { suiteDatabase } = require('../helpers/suite-db');
const { startRedis } = require('../helpers/redis-server');
const { createProxy } = require('../helpers/proxy');
const { sleep, waitFor } = require('../helpers/async');
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

/** What Redis holds for `key`: points in use (0 for a full bucket), seen by a limiter without leases. */
async function inUse(options, key, c = client) {
  const view = createLimiter({ ...options, client: c, fallback: false, rejectLocally: false });
  const g = await view.get(key);
  return g === null ? 0 : view.burst - g.remainingPoints;
}

/** Counts settled consumes: admitted, refused with a result, failed with an Error (by code). */
function tally(results) {
  const out = { admitted: 0, refused: 0, errors: {} };
  for (const r of results) {
    if (r.status === 'fulfilled') out.admitted += 1;
    else if (r.reason instanceof Error) out.errors[r.reason.code] = (out.errors[r.reason.code] || 0) + 1;
    else out.refused += 1;
  }
  return out;
}

describe('the lease option', () => {
  const base = { keyPrefix: 'rl:lease:opt', points: 1000, duration: 60 };

  test.each([
    ['yes', TypeError, /option lease\b/],
    [null, TypeError, /option lease\b/],
    [1, TypeError, /option lease\b/],
    [{ maxTokens: 0 }, RangeError, /option maxTokens of option lease/],
    [{ maxTokens: 1.5 }, RangeError, /option maxTokens of option lease/],
    [{ maxTokens: 1001 }, RangeError, /option maxTokens of option lease must be an integer from 1 to the burst \(1000\)/],
    [{ maxTokens: '8' }, TypeError, /option maxTokens of option lease/],
    [{ ttlMs: 0 }, RangeError, /option ttlMs of option lease/],
    [{ ttlMs: 3600001 }, RangeError, /option ttlMs of option lease/],
    [{ ttlMs: 'long' }, TypeError, /option ttlMs of option lease/],
    [{ maxtokens: 8 }, TypeError, /unknown option lease\.maxtokens/],
  ])('lease = %p throws %p naming the option', (lease, ErrorClass, message) => {
    expect(() => createLimiter({ ...base, client, lease })).toThrow(ErrorClass);
    expect(() => createLimiter({ ...base, client, lease })).toThrow(message);
  });

  test('only for a limiter on Redis', () => {
    expect(() => createLimiter({ ...base, store: 'memory', lease: true })).toThrow(/option lease is for a limiter on Redis/);
    expect(() => createLimiter({ ...base, store: 'memory', lease: false })).not.toThrow();
  });

  test('defaults: a sixteenth of the burst, at least 1 and at most 64 tokens, for 1 s', () => {
    const leases = (options) => createLimiter({ ...base, client, lease: true, ...options }).status().leases;
    expect(leases()).toMatchObject({ maxTokens: 62, ttlMs: 1000 });
    expect(leases({ points: 5 })).toMatchObject({ maxTokens: 1 });
    expect(leases({ points: 100000 })).toMatchObject({ maxTokens: 64 });
    expect(createLimiter({ ...base, client, lease: { maxTokens: 5, ttlMs: 250 } }).status().leases).toMatchObject({ maxTokens: 5, ttlMs: 250 });
  });

  test('off by default: every consume is a decision of Redis, and status() has no leases', async () => {
    const limiter = createLimiter({ ...base, client });
    expect(limiter.status().leases).toBeUndefined();
    for (let i = 0; i < 3; i++) await limiter.consume('k');
    // Redis holds exactly what was admitted: no token is held anywhere else.
    expect(await inUse(base, 'k')).toBe(3);
    const leased = createLimiter({ ...base, client, lease: true });
    for (let i = 0; i < 3; i++) await leased.consume('j');
    // With leases, Redis counts the tokens this process holds as consumed.
    expect(await inUse(base, 'j')).toBeGreaterThan(3);
    expect(await inUse(base, 'j')).toBe(3 + leased.status().leases.tokensHeld);
  });
});

describe('never more than the global limit', () => {
  test('one process, 1,000 concurrent consumes on one key: exactly the capacity', async () => {
    const options = { keyPrefix: 'rl:lease:one', points: 137, duration: 86400 };
    const limiter = createLimiter({ ...options, client, lease: true });
    const t = tally(await Promise.allSettled(Array.from({ length: 1000 }, () => limiter.consume('shared'))));
    expect(t).toEqual({ admitted: 137, refused: 863, errors: {} });
    expect(await inUse(options, 'shared')).toBe(137);
    const { leases, decisions } = limiter.status();
    // The consumes waited for lease calls together: a handful of calls, not 1,000.
    expect(leases.calls).toBeLessThanOrEqual(4);
    expect(leases.tokensLeased).toBe(137);
    expect(decisions).toMatchObject({ allowed: 137, refused: 863, errors: 0 });
  });

  test('one process, rounds of 1,000 concurrent consumes with the bucket refilling: never past Redis', async () => {
    // 50 points per second, a burst of 50: every admission must be a token Redis granted.
    const options = { keyPrefix: 'rl:lease:refill', points: 50, duration: 1 };
    const limiter = createLimiter({ ...options, client, lease: { maxTokens: 8, ttlMs: 200 } });
    let admitted = 0;
    const started = Date.now();
    for (let round = 0; round < 5; round++) {
      admitted += tally(await Promise.allSettled(Array.from({ length: 1000 }, () => limiter.consume('shared')))).admitted;
      await sleep(100);
    }
    const elapsedS = (Date.now() - started) / 1000;
    const { leases } = limiter.status();
    expect(admitted).toBeLessThanOrEqual(leases.tokensLeased);
    expect(admitted).toBeLessThanOrEqual(50 + Math.ceil(50 * elapsedS));
    expect(admitted).toBeGreaterThan(50);
  });

  test('consumes of several points asked for together: each fits or is refused, and a lease keeps at most maxTokens', async () => {
    const options = { keyPrefix: 'rl:lease:points', points: 100, duration: 86400 };
    const limiter = createLimiter({ ...options, client, lease: { maxTokens: 10, ttlMs: 60000 } });
    const results = await Promise.allSettled([3, 50, 60, 1].map((points) => limiter.consume('k', points)));
    // 100 tokens: 3, 50 and 1 fit; 60 does not (46 are left), as without leases.
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(results[2].reason.remainingPoints).toBe(0);
    // Of the 46 left over, the lease keeps 10 and gives 36 back at once.
    await waitFor(() => limiter.status().leases.tokensReturned === 36, { what: 'the excess given back' });
    expect(limiter.status().leases).toMatchObject({ tokensHeld: 10, returns: 1 });
    expect(await inUse(options, 'k')).toBe(54 + 10);
  });

  test('4 processes x 1,000 concurrent consumes on one key admit at most the capacity', async () => {
    const capacity = 137;
    const body = `async ({ createLimiter, createClient, url }) => {
      const client = createClient({ url });
      const limiter = createLimiter({ keyPrefix: 'rl:lease:proc', points: ${capacity}, duration: 86400, client, lease: true });
      const results = await Promise.allSettled(Array.from({ length: 1000 }, () => limiter.consume('shared')));
      const admitted = results.filter((r) => r.status === 'fulfilled').length;
      const refused = results.filter((r) => r.status === 'rejected' && typeof r.reason.msBeforeNext === 'number').length;
      const unknown = results.filter((r) => r.status === 'rejected' && r.reason instanceof Error).length;
      const leases = limiter.status().leases;
      await client.quit();
      return { admitted, refused, unknown, leases };
    }`;
    const children = Array.from({ length: 4 }, () => inChild(body, { waitFor: true }));
    await sleep(300);
    for (const c of children) c.go();
    const results = (await Promise.all(children.map((c) => c.done))).map((r) => r.value);
    const admitted = results.reduce((n, r) => n + r.admitted, 0);
    const unknown = results.reduce((n, r) => n + r.unknown, 0);
    const held = results.reduce((n, r) => n + r.leases.tokensHeld, 0);
    const leased = results.reduce((n, r) => n + r.leases.tokensLeased, 0);
    // Never past the capacity: every admission is a token Redis granted to its process.
    expect(admitted).toBeLessThanOrEqual(capacity);
    expect(leased).toBeLessThanOrEqual(capacity);
    expect(await inUse({ keyPrefix: 'rl:lease:proc', points: capacity, duration: 86400 }, 'shared')).toBeLessThanOrEqual(capacity);
    // What is not admitted is held in the processes' leases (none here: each had more
    // consumes waiting than any lease gave), unless a call's outcome was unknown.
    if (unknown === 0) expect(admitted + held).toBe(capacity);
    expect(results.reduce((n, r) => n + r.refused, 0)).toBe(4000 - admitted - unknown);
  }, 60000);
});

describe('under-admission: bounded by the tokens other processes hold, and given back', () => {
  test('4 processes hold leases: another process is refused at most their tokens, and gets them once the leases expire', async () => {
    const capacity = 200;
    const options = { keyPrefix: 'rl:lease:under', points: capacity, duration: 86400 };
    const maxTokens = 16;
    const ttlMs = 2000;
    // Each process admits 3 consumes, one after the other, then stays idle with what its
    // lease has left until the lease expires and the sweep gives it back.
    const body = `async ({ createLimiter, createClient, url, arg }) => {
      const client = createClient({ url });
      const limiter = createLimiter({ ...arg.options, client, lease: { maxTokens: ${maxTokens}, ttlMs: ${ttlMs} } });
      for (let i = 0; i < 3; i++) await limiter.consume('shared');
      const held = limiter.status().leases.tokensHeld;
      await new Promise((r) => setTimeout(r, ${ttlMs} + 1000));
      const after = limiter.status().leases;
      await client.quit();
      return { held, after };
    }`;
    const children = Array.from({ length: 4 }, () => inChild(body, { waitFor: true, arg: { options } }));
    await sleep(300);
    for (const c of children) c.go();
    await sleep(500); // the children have made their 3 consumes; their leases have 1.5 s left
    // Another process (here: a limiter without leases) takes everything Redis still has.
    const other = createLimiter({ ...options, client, rejectLocally: false });
    let admittedHere = 0;
    for (;;) {
      try {
        await other.consume('shared');
        admittedHere += 1;
      } catch (r) {
        if (r instanceof Error) throw r;
        break;
      }
    }
    const results = (await Promise.all(children.map((c) => c.done))).map((r) => r.value);
    const held = results.reduce((n, r) => n + r.held, 0);
    const underAdmission = capacity - 4 * 3 - admittedHere;
    // The measured under-admission is exactly what the others held, and at most 4 x maxTokens.
    expect(underAdmission).toBe(held);
    expect(underAdmission).toBeGreaterThan(0);
    expect(underAdmission).toBeLessThanOrEqual(4 * maxTokens);
    // Each process gave its unused tokens back in one reward call when its lease expired.
    for (const r of results) expect(r.after).toMatchObject({ returns: 1, tokensReturned: r.held, tokensLost: 0, tokensHeld: 0 });
    // So nothing is lost: the other process now gets them, and the key has admitted exactly its capacity.
    let more = 0;
    for (;;) {
      try {
        await other.consume('shared');
        more += 1;
      } catch (r) {
        if (r instanceof Error) throw r;
        break;
      }
    }
    expect(more).toBe(held);
    expect(4 * 3 + admittedHere + more).toBe(capacity);
    console.log(`lease under-admission, 4 processes holding leases (maxTokens ${maxTokens}): ${underAdmission} of ${capacity} tokens refused while held (bound ${4 * maxTokens}); ${more} given back after ${ttlMs} ms`);
  }, 60000);
});

describe('k adapts', () => {
  test('grows while tokens are plentiful, falls to 1 when Redis gives fewer than asked, halves after an idle expiry', async () => {
    const options = { keyPrefix: 'rl:lease:k', points: 1000, duration: 86400 };
    // rejectLocally off: the reward made elsewhere below is seen at once.
    const limiter = createLimiter({ ...options, client, rejectLocally: false, lease: { maxTokens: 32, ttlMs: 400 } });
    const asked = [];
    const consume = async () => {
      await limiter.consume('k');
      const { calls, lastAsked } = limiter.status().leases;
      if (calls > asked.length) asked.push(lastAsked);
    };
    // Plentiful: the first lease asks 1, the next (used up within its lifetime, at once) the most.
    await consume();
    await consume();
    expect(asked).toEqual([1, 32]);
    expect(limiter.status().leases).toMatchObject({ calls: 2, tokensLeased: 33, tokensHeld: 31 });
    // Scarce: another process takes all but 3 of the tokens Redis still has.
    const other = createLimiter({ ...options, client });
    await other.penalty('k', 1000 - 33 - 3);
    for (let i = 0; i < 31; i++) await consume(); // from the lease, no call
    expect(limiter.status().leases.calls).toBe(2);
    await consume(); // asks 32, Redis has 3
    expect(limiter.status().leases).toMatchObject({ calls: 3, lastAsked: 32, lastGranted: 3 });
    await consume();
    await consume();
    // Spent; the next lease asks for 1 (and Redis has none).
    await expect(limiter.consume('k')).rejects.toMatchObject({ remainingPoints: 0 });
    expect(limiter.status().leases).toMatchObject({ lastAsked: 1, lastGranted: 3 });
    // Plenty again: a lease that expires with tokens left is given back, and k halves.
    await other.reward('k', 500);
    await limiter.consume('k'); // asks 1; Redis reports plenty
    await limiter.consume('k'); // asks up to 32
    const before = limiter.status().leases;
    expect(before.lastAsked).toBeGreaterThan(1);
    expect(before.tokensHeld).toBe(before.lastGranted - 1);
    await waitFor(() => limiter.status().leases.returns === 1, { what: 'the idle lease given back' });
    await waitFor(() => limiter.status().leases.tokensReturned === before.tokensHeld, { what: 'the reward answered' });
    // The demand comes back after the lease expired: the next lease asks at most half.
    await limiter.consume('k');
    expect(limiter.status().leases.lastAsked).toBeLessThanOrEqual(before.lastAsked / 2);
  });

  test('a key used now and then is leased one token at a time (no call is wasted on returns)', async () => {
    const options = { keyPrefix: 'rl:lease:sparse', points: 1000, duration: 60 };
    const limiter = createLimiter({ ...options, client, lease: { maxTokens: 32, ttlMs: 50 } });
    for (let i = 0; i < 4; i++) {
      await limiter.consume('k');
      await sleep(120);
    }
    expect(limiter.status().leases).toMatchObject({ calls: 4, tokensLeased: 4, returns: 0, lastAsked: 1 });
  });
});

describe('unused tokens go back to the global bucket', () => {
  test('a second limiter sees them consumed while leased, and back once the lease expired', async () => {
    const options = { keyPrefix: 'rl:lease:back', points: 1000, duration: 86400 };
    const limiter = createLimiter({ ...options, client, lease: { maxTokens: 20, ttlMs: 300 } });
    await limiter.consume('k');
    await limiter.consume('k');
    const held = limiter.status().leases.tokensHeld;
    expect(held).toBe(19);
    const view = createLimiter({ ...options, client });
    expect((await view.get('k')).consumedPoints).toBe(2 + held);
    await waitFor(() => limiter.status().leases.tokensReturned === held, { what: 'the unused tokens given back' });
    expect((await view.get('k')).consumedPoints).toBe(2);
    expect(limiter.status().leases).toMatchObject({ returns: 1, tokensLost: 0, tokensHeld: 0 });
  });

  test('delete() here drops the lease: its tokens are neither spent nor given back', async () => {
    const options = { keyPrefix: 'rl:lease:del', points: 1000, duration: 86400 };
    const limiter = createLimiter({ ...options, client, lease: { maxTokens: 20, ttlMs: 300 } });
    await limiter.consume('k');
    await limiter.consume('k');
    expect(await limiter.delete('k')).toBe(true);
    expect(limiter.status().leases).toMatchObject({ tokensHeld: 0, tokensLost: 19 });
    await sleep(500);
    expect(limiter.status().leases.returns).toBe(0);
    expect(await inUse(options, 'k')).toBe(0);
  });

  test('at most maxEntries keys hold a lease: the oldest is given back first', async () => {
    const options = { keyPrefix: 'rl:lease:cap', points: 1000, duration: 86400 };
    const limiter = createLimiter({ ...options, client, maxEntries: 2, lease: { maxTokens: 10, ttlMs: 60000 } });
    for (const key of ['a', 'b', 'c']) {
      await limiter.consume(key);
      await limiter.consume(key);
    }
    expect(limiter.status().leases.keys).toBe(2);
    await waitFor(() => limiter.status().leases.tokensReturned === 9, { what: "a's tokens given back" });
    expect(await inUse(options, 'a')).toBe(2);
    expect(await inUse(options, 'c')).toBe(11);
  });
});

describe('faults', () => {
  let server;
  let admin;
  const clients = [];
  const proxies = [];

  beforeAll(async () => {
    server = await startRedis();
    admin = createClient({ url: server.url });
  });

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(proxies.map((p) => p.close()));
    await admin.quit();
    await server.stop();
  });

  const viaProxy = async (options) => {
    const p = await createProxy({ port: server.port });
    proxies.push(p);
    const c = createClient({ url: p.url, ...options });
    clients.push(c);
    return { p, c };
  };

  test('a lease call whose outcome is unknown counts as spent and is never sent again', async () => {
    await admin.call('SCRIPT', 'LOAD', RATE_LIMIT_SCRIPT);
    const { p, c } = await viaProxy({ commandTimeout: 60 });
    const options = { keyPrefix: 'rl:lease:unknown', points: 10, duration: 86400 };
    const limiter = createLimiter({ ...options, client: c, lease: true });
    await admin.call('CONFIG', 'RESETSTAT');
    // Redis decides at once; its reply reaches the process after the deadline.
    p.delay(200, 'toClient');
    const t = tally(await Promise.allSettled(Array.from({ length: 20 }, () => limiter.consume('shared'))));
    // None admitted: each consume rejects with the error, or (the breaker open) is refused
    // by the fallback, whose bucket was charged with the whole lease asked for.
    expect(t.admitted).toBe(0);
    expect(limiter.status().leases).toMatchObject({ calls: 1, unknown: 1 });
    expect(limiter.status().decisions.unknownCharged).toBe(1);
    await sleep(300);
    // The lease ran once in Redis (it took the 10 tokens) and was never sent again.
    const stats = await admin.call('INFO', 'commandstats');
    expect(/cmdstat_evalsha:calls=(\d+)/.exec(stats)[1]).toBe('1');
    expect(await inUse(options, 'shared', admin)).toBe(10);
  });

  test('while the breaker is open the fallback decides, as without leases; held tokens wait', async () => {
    const { p, c } = await viaProxy({ connectTimeout: 200 });
    const options = { keyPrefix: 'rl:lease:down', points: 1000, duration: 86400 };
    const limiter = createLimiter({ ...options, client: c, lease: { maxTokens: 10, ttlMs: 60000 } });
    await limiter.consume('k');
    await limiter.consume('k');
    expect(limiter.status().leases).toMatchObject({ tokensHeld: 9, admittedLocally: 0 });
    await p.refuse();
    p.cut();
    await waitFor(() => c.breakerState !== 'closed', { what: 'the breaker open' });
    await limiter.consume('k');
    const s = limiter.status();
    expect(s.decisions.fallback).toBe(1);
    expect(s.leases).toMatchObject({ tokensHeld: 9, admittedLocally: 0, calls: 2 });
  });
});
