'use strict';
// Proves HirecacheStore, the Store for express-rate-limit, through express-rate-limit's own
// middleware on an Express app driven with real HTTP requests: 429 with express-rate-limit's
// headers once the limit is passed, a fixed window that Redis ends (its expiry, on its own
// clock), resetKey, counts shared by two processes' clients, the client's keyPrefix before
// the store's prefix, NOSCRIPT after SCRIPT FLUSH recovered with every hit counted once, and
// failures never turned into counts: Redis down or a reply that never comes reject, and
// express-rate-limit's passOnStoreError decides (500 through next(err), or through with the
// error logged). Also decrement (skipSuccessfulRequests), resetExpiryOnChange, get, resetAll
// and the refusal of bad options by name.
const express = require('express');
const { rateLimit } = require('express-rate-limit');
const { RedisStore } = require('rate-limit-redis');
const { HirecacheStore, createExpressStore } = require('../../lib/ratelimit');
const { EXPRESS_STORE_SCRIPT_SHA } = require('../../lib/ratelimit/express-store');
const { createClient } = require('../../lib/redis');
const { clientSuite } = require('../helpers/client-suite');
const { rawCommand } = require('../helpers/raw-redis');
const { startRedis, freePort } = require('../helpers/redis-server');
const { sleep, waitFor, watchUnhandledRejections } = require('../helpers/async');

const suite = clientSuite({ proxy: true, defaults: { logger: false } });
const servers = [];
let unhandled;

beforeAll(() => {
  unhandled = watchUnhandledRejections();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  expect(unhandled.stop()).toEqual([]);
});

/** What express-rate-limit logged (validation failures, store errors it let through). */
function recordingLogger() {
  const logged = { errors: [], warnings: [] };
  return {
    logged,
    logger: {
      error: (...args) => logged.errors.push(args),
      warn: (...args) => logged.warnings.push(args),
    },
  };
}

/**
 * An Express app with express-rate-limit in front of GET /x, keyed by the `x-client` header;
 * `options` go to rateLimit(). Resolves with { request(client), limiter, routeHits, logged }:
 * request() resolves { status, headers, body }; routeHits counts requests the route served.
 */
async function serve(options) {
  const { logged, logger } = recordingLogger();
  const state = { routeHits: 0 };
  const limiter = rateLimit({
    windowMs: 60000,
    limit: 3,
    standardHeaders: 'draft-7',
    legacyHeaders: true,
    keyGenerator: (req) => req.get('x-client') || 'anonymous',
    logger,
    ...options,
  });
  const app = express();
  app.get('/x', limiter, (req, res) => {
    state.routeHits += 1;
    res.json({ ok: true });
  });
  // Four parameters, or Express would not take it for an error handler.
  app.use((err, req, res, _next) => res.status(500).json({ error: err.message, code: err.code }));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  const base = `http://127.0.0.1:${server.address().port}`;
  const request = async (client = 'c1') => {
    const res = await fetch(`${base}/x`, { headers: { 'x-client': client } });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text.startsWith('{') ? JSON.parse(text) : text };
  };
  return {
    request,
    limiter,
    logged,
    get routeHits() {
      return state.routeHits;
    },
  };
}

const client = (options = {}) => suite.open({ url: suite.db.url, ...options });
const raw = (...args) => rawCommand(suite.db.raw, ...args);

describe('through express-rate-limit', () => {
  test('the limit is kept, then 429 with express-rate-limit draft-7 and legacy headers', async () => {
    const app = await serve({ store: new HirecacheStore({ client: client() }) });
    const first = await app.request();
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-policy')).toBe('3;w=60');
    expect(first.headers.get('ratelimit')).toBe('limit=3, remaining=2, reset=60');
    expect(first.headers.get('x-ratelimit-limit')).toBe('3');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('2');
    const reset = Number(first.headers.get('x-ratelimit-reset'));
    expect(Math.abs(reset - (Date.now() + 60000) / 1000)).toBeLessThan(3);
    expect((await app.request()).status).toBe(200);
    expect((await app.request()).status).toBe(200);
    const limited = await app.request();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('ratelimit')).toMatch(/^limit=3, remaining=0, reset=(59|60)$/);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(['59', '60']).toContain(limited.headers.get('retry-after'));
    expect(app.routeHits).toBe(3);
    // Another client has its own count.
    expect((await app.request('c2')).status).toBe(200);
    // One integer per key, expiring windowMs after the window's first hit.
    expect(await raw('GET', 'rl:c1')).toBe('4');
    const pttl = await raw('PTTL', 'rl:c1');
    expect(pttl).toBeGreaterThan(55000);
    expect(pttl).toBeLessThanOrEqual(60000);
    expect(app.logged).toEqual({ errors: [], warnings: [] });
  });

  test('the window ends when Redis expires the key: the count starts again', async () => {
    const app = await serve({ windowMs: 1000, limit: 2, store: new HirecacheStore({ client: client() }) });
    expect((await app.request()).status).toBe(200);
    expect((await app.request()).status).toBe(200);
    const limited = await app.request();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    // resetTime is the key's expiry: within the window.
    const info = await app.limiter.getKey('c1');
    expect(info.totalHits).toBe(3);
    const left = info.resetTime.getTime() - Date.now();
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(1000);
    await waitFor(async () => (await raw('EXISTS', 'rl:c1')) === 0, { what: 'the window to end' });
    const again = await app.request();
    expect(again.status).toBe(200);
    expect(again.headers.get('x-ratelimit-remaining')).toBe('1');
    expect(await raw('GET', 'rl:c1')).toBe('1');
    expect(await raw('PTTL', 'rl:c1')).toBeGreaterThan(0);
  });

  test('resetKey deletes the count (the middleware resetKey and the store)', async () => {
    const store = new HirecacheStore({ client: client() });
    const app = await serve({ limit: 1, store });
    expect((await app.request()).status).toBe(200);
    expect((await app.request()).status).toBe(429);
    await app.limiter.resetKey('c1');
    expect(await raw('EXISTS', 'rl:c1')).toBe(0);
    expect((await app.request()).status).toBe(200);
    expect((await app.request()).status).toBe(429);
    await store.resetKey('c1');
    expect(await store.get('c1')).toBeUndefined();
    expect((await app.request()).status).toBe(200);
  });

  test('two processes (two clients, two stores) share one count', async () => {
    const a = await serve({ limit: 5, store: new HirecacheStore({ client: client() }) });
    const b = await serve({ limit: 5, store: new HirecacheStore({ client: client() }) });
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await (i % 2 ? b : a).request('shared')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    expect(a.routeHits + b.routeHits).toBe(5);
    expect((await b.limiter.getKey('shared')).totalHits).toBe(8);
    // Concurrent hits from both: each one counted once.
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? b : a).request('burst')));
    expect(await raw('GET', 'rl:burst')).toBe('20');
    expect(a.routeHits + b.routeHits).toBe(10);
  });

  test("the client's keyPrefix comes before the store's prefix", async () => {
    const app1 = await serve({ limit: 1, store: new HirecacheStore({ client: client({ keyPrefix: 'app1:' }), prefix: 'limits:' }) });
    const app2 = await serve({ limit: 1, store: new HirecacheStore({ client: client({ keyPrefix: 'app2:' }), prefix: 'limits:' }) });
    expect((await app1.request()).status).toBe(200);
    expect((await app1.request()).status).toBe(429);
    // Another keyPrefix is another count.
    expect((await app2.request()).status).toBe(200);
    expect((await raw('KEYS', '*')).sort()).toEqual(['app1:limits:c1', 'app2:limits:c1']);
    expect(await raw('GET', 'app1:limits:c1')).toBe('2');
  });

  test('skipSuccessfulRequests takes hits back (decrement); a count never goes below zero', async () => {
    const app = await serve({ limit: 2, skipSuccessfulRequests: true, store: new HirecacheStore({ client: client() }) });
    for (let i = 0; i < 5; i++) expect((await app.request()).status).toBe(200);
    // The decrement runs after the response: wait for it.
    await waitFor(async () => (await raw('GET', 'rl:c1')) === '0', { what: 'the decrements' });
    expect(app.logged.errors).toEqual([]);
    const store = new HirecacheStore({ client: client() });
    store.init({ windowMs: 60000 });
    await store.decrement('c1');
    expect(await raw('GET', 'rl:c1')).toBe('0');
    // A decrement never creates a key (one reset or expired meanwhile stays absent).
    await store.decrement('never-counted');
    expect(await raw('EXISTS', 'rl:never-counted')).toBe(0);
    // A key at zero keeps its window, as rate-limit-redis's does.
    const pttl = await raw('PTTL', 'rl:c1');
    expect(pttl).toBeGreaterThan(0);
    await store.increment('c1');
    expect(await raw('PTTL', 'rl:c1')).toBeLessThanOrEqual(pttl);
  });
});

describe('when Redis fails, express-rate-limit passOnStoreError decides; no count is made up', () => {
  test('Redis unreachable: passOnStoreError false → next(err), a 500, the route not reached', async () => {
    const port = await freePort(); // nothing listens there
    const down = client({ url: `redis://127.0.0.1:${port}`, connectTimeout: 200, commandTimeout: 200 });
    const app = await serve({ store: new HirecacheStore({ client: down }) });
    for (let i = 0; i < 3; i++) {
      const r = await app.request();
      expect(r.status).toBe(500);
      expect(['ECONNREFUSED', 'ERR_BREAKER_OPEN']).toContain(r.body.code);
    }
    expect(app.routeHits).toBe(0);
  });

  test('Redis unreachable: passOnStoreError true → the request passes, the error logged', async () => {
    const port = await freePort();
    const down = client({ url: `redis://127.0.0.1:${port}`, connectTimeout: 200, commandTimeout: 200 });
    const app = await serve({ passOnStoreError: true, store: new HirecacheStore({ client: down }) });
    const r = await app.request();
    expect(r.status).toBe(200);
    // No count: express-rate-limit sets no rate-limit headers for a request it let through.
    expect(r.headers.has('x-ratelimit-remaining')).toBe(false);
    expect(app.routeHits).toBe(1);
    expect(app.logged.errors).toHaveLength(1);
    const [err] = app.logged.errors[0];
    expect(err).toBeInstanceOf(Error);
    expect(['ECONNREFUSED', 'ERR_BREAKER_OPEN']).toContain(err.code);
  });

  test.each([
    ['passOnStoreError false: a 500', false],
    ['passOnStoreError true: through, but logged', true],
  ])('a reply that never comes is never an admission nor sent twice (%s)', async (_name, passOnStoreError) => {
    const c = client({ url: `${suite.proxy.url}/${suite.db.db}`, commandTimeout: 300 });
    const app = await serve({ passOnStoreError, store: new HirecacheStore({ client: c }) });
    expect((await app.request()).status).toBe(200); // the script is loaded, the connection up
    suite.proxy.hold('toClient');
    const held = await app.request();
    if (passOnStoreError) {
      expect(held.status).toBe(200);
      expect(app.logged.errors).toHaveLength(1);
      expect(['ETIMEDOUT', 'ERR_OUTCOME_UNKNOWN']).toContain(app.logged.errors[0][0].code);
      expect(app.routeHits).toBe(2);
    } else {
      expect(held.status).toBe(500);
      expect(['ETIMEDOUT', 'ERR_OUTCOME_UNKNOWN']).toContain(held.body.code);
      expect(app.routeHits).toBe(1);
    }
    suite.proxy.release('toClient');
    // Redis ran the held hit once: it is in the count, and was not sent again.
    await sleep(50);
    expect(await raw('GET', 'rl:c1')).toBe('2');
    await waitFor(async () => (await app.request()).status === 200, { what: 'Redis to answer again' });
    expect(await raw('GET', 'rl:c1')).toBe('3');
  });
});

describe('NOSCRIPT (on a redis-server of its own: SCRIPT FLUSH is server-wide)', () => {
  let server;
  let admin;
  beforeAll(async () => {
    server = await startRedis();
    admin = createClient({ url: server.url, logger: false });
  });
  afterAll(async () => {
    await admin.quit();
    await server.stop();
  });

  test('after SCRIPT FLUSH the script is loaded once and every hit counted once', async () => {
    const c = suite.open({ url: server.url });
    const store = new HirecacheStore({ client: c });
    const app = await serve({ limit: 30, store });
    expect((await app.request()).status).toBe(200);
    await admin.call('SCRIPT', 'FLUSH');
    expect(await admin.call('SCRIPT', 'EXISTS', EXPRESS_STORE_SCRIPT_SHA)).toEqual([0]);
    await admin.call('CONFIG', 'RESETSTAT');
    // Many hits meet NOSCRIPT together: one SCRIPT LOAD, each sent once more.
    const hits = await Promise.all(Array.from({ length: 20 }, () => store.increment('c1')));
    expect(hits.map((h) => h.totalHits).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    expect(await admin.call('SCRIPT', 'EXISTS', EXPRESS_STORE_SCRIPT_SHA)).toEqual([1]);
    const stats = await admin.call('INFO', 'commandstats');
    expect(/cmdstat_script\|load:calls=(\d+)/.exec(stats)[1]).toBe('1');
    expect(/cmdstat_evalsha:calls=(\d+)/.exec(stats)[1]).toBe('40');
    // And through the middleware.
    await admin.call('SCRIPT', 'FLUSH');
    const r = await app.request();
    expect(r.status).toBe(200);
    expect(r.headers.get('x-ratelimit-remaining')).toBe(String(30 - 22));
  });
});

describe('the store itself', () => {
  test('increment resolves { totalHits, resetTime } from the ms Redis says are left', async () => {
    const store = createExpressStore({ client: client() });
    expect(store).toBeInstanceOf(HirecacheStore);
    expect(store.localKeys).toBe(false);
    expect(store.prefix).toBe('rl:');
    store.init({ windowMs: 10000 });
    const first = await store.increment('k');
    expect(first.totalHits).toBe(1);
    expect(first.resetTime).toBeInstanceOf(Date);
    expect(Math.abs(first.resetTime.getTime() - (Date.now() + 10000))).toBeLessThan(1000);
    // The window is Redis's: a key with 1.5 s left says so, whatever this clock says.
    await raw('PEXPIRE', 'rl:k', 1500);
    const second = await store.increment('k');
    expect(second.totalHits).toBe(2);
    const left = second.resetTime.getTime() - Date.now();
    expect(left).toBeGreaterThan(1000);
    expect(left).toBeLessThanOrEqual(1500);
    expect(await store.get('k')).toEqual({ totalHits: 2, resetTime: expect.any(Date) });
    expect(await store.get('absent')).toBeUndefined();
  });

  test("rate-limit-redis's keys are read as they are, and it reads this store's: a switch keeps the counts", async () => {
    const c = client();
    // rate-limit-redis, sending its commands through a hirecache client.
    const theirs = new RedisStore({ sendCommand: (...args) => c.call(...args) });
    await theirs.init({ windowMs: 60000 });
    for (let i = 0; i < 3; i++) await theirs.increment('k');
    const theirReset = (await theirs.get('k')).resetTime.getTime();
    const ours = new HirecacheStore({ client: c });
    ours.init({ windowMs: 60000 });
    const r = await ours.increment('k');
    expect(r.totalHits).toBe(4);
    // The same window: its end as rate-limit-redis reported it (both read PTTL).
    expect(Math.abs(r.resetTime.getTime() - theirReset)).toBeLessThan(100);
    await ours.increment('k');
    expect((await theirs.increment('k')).totalHits).toBe(6);
  });

  test('counts too large for one integer reply come as a pair, exactly', async () => {
    const store = new HirecacheStore({ client: client() });
    store.init({ windowMs: 86400000 });
    await raw('SET', 'rl:big', String(2 ** 40), 'PX', 5000);
    const r = await store.increment('big');
    expect(r.totalHits).toBe(2 ** 40 + 1);
    const left = r.resetTime.getTime() - Date.now();
    expect(left).toBeGreaterThan(3000);
    expect(left).toBeLessThanOrEqual(5000);
    // A key written with a longer window than this store's keeps its own expiry.
    await raw('SET', 'rl:long', '7', 'PX', 90000000);
    const l = await store.increment('long');
    expect(l.totalHits).toBe(8);
    expect(l.resetTime.getTime() - Date.now()).toBeGreaterThan(86400000);
    // A packed reply near 2^53 splits exactly.
    await raw('SET', 'rl:edge', String(Math.floor(2 ** 53 / 86400001) - 2), 'PX', 86400000);
    const e = await store.increment('edge');
    expect(e.totalHits).toBe(Math.floor(2 ** 53 / 86400001) - 1);
    expect(e.resetTime.getTime() - Date.now()).toBeGreaterThan(86000000);
  });

  test('a count left below one or without expiry by someone else is repaired, never kept for ever', async () => {
    const store = new HirecacheStore({ client: client() });
    store.init({ windowMs: 5000 });
    await raw('SET', 'rl:neg', '-3'); // rate-limit-redis's DECR after the key expired leaves this
    expect((await store.increment('neg')).totalHits).toBe(1);
    expect(await raw('PTTL', 'rl:neg')).toBeGreaterThan(4000);
    await raw('SET', 'rl:forever', '4');
    expect((await store.increment('forever')).totalHits).toBe(5);
    expect(await raw('PTTL', 'rl:forever')).toBeGreaterThan(4000);
    // Not a count at all: the error surfaces.
    await raw('SET', 'rl:text', 'hello');
    await expect(store.increment('text')).rejects.toThrow(/not an integer/);
    await expect(store.get('text')).rejects.toThrow(/not a count/);
  });

  test('resetExpiryOnChange restarts the window on every hit; without it the window runs on', async () => {
    const fixed = new HirecacheStore({ client: client(), prefix: 'fixed:' });
    const sliding = new HirecacheStore({ client: client(), prefix: 'sliding:', resetExpiryOnChange: true });
    for (const s of [fixed, sliding]) {
      s.init({ windowMs: 2000 });
      await s.increment('k');
    }
    await sleep(300);
    const f = await fixed.increment('k');
    const s = await sliding.increment('k');
    expect(await raw('PTTL', 'fixed:k')).toBeLessThanOrEqual(1750);
    expect(await raw('PTTL', 'sliding:k')).toBeGreaterThan(1900);
    expect(s.resetTime.getTime() - f.resetTime.getTime()).toBeGreaterThan(200);
    // A decrement restarts it too (about 1800 ms would be left otherwise).
    await sleep(200);
    await sliding.decrement('k');
    expect(await raw('PTTL', 'sliding:k')).toBeGreaterThan(1850);
    await fixed.decrement('k');
    expect(await raw('PTTL', 'fixed:k')).toBeLessThanOrEqual(1550);
  });

  test('resetAll deletes every count under the prefix (after the keyPrefix), nothing else', async () => {
    const store = new HirecacheStore({ client: client({ keyPrefix: 'app:' }), prefix: 'rl*[x]:' });
    store.init({ windowMs: 60000 });
    await Promise.all(Array.from({ length: 1200 }, (_, i) => store.increment(`k${i}`)));
    await raw('SET', 'app:rl-other', '1');
    await raw('SET', 'app:rlx[x]:k1', '1'); // matches the prefix as a glob, not as text
    await raw('SET', 'rl*[x]:k1', '1'); // the store's prefix without the client's
    await store.resetAll();
    expect((await raw('KEYS', '*')).sort()).toEqual(['app:rl-other', 'app:rlx[x]:k1', 'rl*[x]:k1']);
    const bare = new HirecacheStore({ client: client(), prefix: '' });
    await expect(bare.resetAll()).rejects.toThrow(RangeError);
    expect(await raw('DBSIZE')).toBe(3);
  });

  test('bad options are refused by name', () => {
    const c = client();
    expect(() => new HirecacheStore({ client: c, sendCommand: (...args) => args })).toThrow(/option sendCommand .*pass client/);
    expect(() => new HirecacheStore({ client: c, sendCommandCluster: () => {} })).toThrow(/option sendCommandCluster .*pass client/);
    expect(() => new HirecacheStore({ client: c, windowMs: 1000 })).toThrow(/unknown option windowMs/);
    expect(() => new HirecacheStore({ client: c, expiry: 60 })).toThrow(/unknown option expiry/);
    expect(() => new HirecacheStore({ client: {} })).toThrow(/option client must be a hirecache RedisClient/);
    expect(() => new HirecacheStore({ client: c, prefix: 5 })).toThrow(/option prefix must be a string/);
    expect(() => new HirecacheStore({ client: c, resetExpiryOnChange: 'yes' })).toThrow(/option resetExpiryOnChange must be a boolean/);
    expect(() => new HirecacheStore(null)).toThrow(TypeError);
    const store = new HirecacheStore({ client: c });
    expect(() => store.init({ windowMs: 0 })).toThrow(RangeError);
    expect(() => store.init({ windowMs: '60000' })).toThrow(/windowMs must be a number/);
    for (const bad of [0, -1, NaN, Infinity]) expect(() => store.init({ windowMs: bad })).toThrow(/windowMs/);
  });

  test('a key that is not a string, or a count before init(), rejects', async () => {
    const store = new HirecacheStore({ client: client() });
    await expect(store.increment('k')).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
    // What init() threw is what the counts reject with (express-rate-limit only logs it).
    expect(() => store.init({ windowMs: -5 })).toThrow(RangeError);
    await expect(store.increment('k')).rejects.toThrow(/windowMs/);
    store.init({ windowMs: 1000 });
    await expect(store.increment(42)).rejects.toThrow(/key must be a string/);
    await expect(store.resetKey(undefined)).rejects.toThrow(TypeError);
    expect(await raw('DBSIZE')).toBe(0);
  });

  test('express-rate-limit accepts it as a Store (no validation complaint) and refuses it shared', async () => {
    const store = new HirecacheStore({ client: client() });
    const { logged, logger } = recordingLogger();
    rateLimit({ windowMs: 1000, limit: 1, store, logger });
    expect(store.windowMs).toBe(1000);
    expect(logged).toEqual({ errors: [], warnings: [] });
    // express-rate-limit's own check: one store per limiter.
    rateLimit({ windowMs: 1000, limit: 1, store, logger });
    expect(logged.errors.map(([e]) => e.code)).toEqual(['ERR_ERL_STORE_REUSE']);
  });
});
