'use strict';
// Proves that a missing Redis never hurts the caller: with nothing listening, cache reads
// resolve null and writes resolve false, raw calls reject with ECONNREFUSED, calls fail
// fast while Redis is known to be down, the client recovers when a server appears, a
// black-holed connect is cut at the connect deadline, and no promise is ever left to
// reject unhandled.
const { createClient } = require('../../lib/redis');
const errors = require('../../lib/errors');
const { startRedis, freePort } = require('../helpers/redis-server');
const { startBlackhole } = require('../helpers/blackhole');
const { createProxy } = require('../helpers/proxy');
const { suiteDatabase } = require('../helpers/suite-db');
const { sleep, turns, waitFor, outcome, watchUnhandledRejections } = require('../helpers/async');

const DEFAULT_CONNECT_TIMEOUT = 10000;
const SLACK = 3000;

const clients = [];
const cleanups = [];
let unhandled;

function client(options) {
  const c = createClient(options);
  clients.push(c);
  return c;
}

/** Loads fresh copies of lib/redis and lib/cache configured by REDIS_URL = url. */
function loadModulesWith(url) {
  let mods;
  jest.isolateModules(() => {
    process.env.REDIS_URL = url;
    mods = { redis: require('../../lib/redis'), cache: require('../../lib/cache') };
  });
  cleanups.push(async () => {
    const c = mods.redis.getRedisClient();
    if (c) await c.disconnect();
  });
  return mods;
}

beforeAll(() => {
  unhandled = watchUnhandledRejections();
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.disconnect()));
  for (const f of cleanups) await f().catch(() => {});
  unhandled.stop();
});

describe('nothing listening on the port', () => {
  let port;
  let url;

  beforeAll(async () => {
    port = await freePort();
    url = `redis://127.0.0.1:${port}`;
  });

  test('cacheGet resolves null and cacheSet resolves false, before the connect deadline', async () => {
    const { cache } = loadModulesWith(url);
    const started = Date.now();
    const [got, set, buf] = await Promise.all([
      cache.cacheGet('k'),
      cache.cacheSet('k', 'v', 30),
      cache.cacheGetBuffer('k'),
    ]);
    expect(got).toBeNull();
    expect(set).toBe(false);
    expect(buf).toBeNull();
    expect(Date.now() - started).toBeLessThan(DEFAULT_CONNECT_TIMEOUT);
  });

  test('the other cache calls settle: reads as misses, deletes as 0, a prefix deletion rejects with the connection code', async () => {
    const { cache } = loadModulesWith(url);
    const [mget, del, prefix] = await Promise.allSettled([
      cache.cacheMGet(['a', 'b']),
      cache.cacheDel('a'),
      cache.cacheDelPrefix('p:'),
    ]);
    expect(mget).toEqual({ status: 'fulfilled', value: [null, null] });
    expect(del).toEqual({ status: 'fulfilled', value: 0 });
    // cacheDelPrefix must not report "0 keys deleted" when nothing could be scanned.
    expect(prefix.status).toBe('rejected');
    expect(prefix.reason.code).toBe('ECONNREFUSED');
  });

  test('un-awaited cache calls (fire and forget) do not reject unhandled', async () => {
    const { cache } = loadModulesWith(url);
    for (let i = 0; i < 20; i++) {
      cache.cacheSet(`k${i}`, 'v', 30);
      cache.cacheGet(`k${i}`);
    }
    await sleep(300);
    await turns();
    expect(unhandled.seen).toEqual([]);
  });

  test('client.call rejects with a ConnectionError ECONNREFUSED and status() says down', async () => {
    const c = client({ url });
    const err = await c.call('GET', 'k').catch((e) => e);
    expect(err).toBeInstanceOf(errors.ConnectionError);
    expect(err.code).toBe('ECONNREFUSED');
    const s = c.status();
    expect(s.ready).toBe(false);
    expect(s.state).toBe('down');
    expect(s.lastError).toMatchObject({ code: 'ECONNREFUSED' });
    expect(typeof s.lastError.message).toBe('string');
  });

  test('while Redis is known to be down, calls fail fast with the connection code instead of queueing', async () => {
    const c = client({ url, reconnectBaseDelay: 5000, reconnectMaxDelay: 5000 });
    await c.call('PING').catch(() => {});
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => c.call('PING')));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(r.reason.code).toBe('ECONNREFUSED');
    }
    expect(c.status().queued).toBe(0);
  });

  test('a loop awaiting calls while Redis is down still lets timers and I/O run', async () => {
    const c = client({ url });
    await outcome(c.call('GET', 'k')); // learn that Redis is down
    let ticks = 0;
    const timer = setInterval(() => { ticks += 1; }, 1);
    let failures = 0;
    const until = Date.now() + 100;
    // A queue consumer written this way would starve the event loop if failures settled
    // synchronously: each awaited failure must cost one turn of the loop.
    while (Date.now() < until) {
      try {
        await c.call('GET', 'k');
      } catch (err) {
        expect(err.code).toBe('ECONNREFUSED');
        failures += 1;
      }
    }
    clearInterval(timer);
    expect(failures).toBeGreaterThan(0);
    expect(ticks).toBeGreaterThan(0);
  });

  test('the client recovers by itself once a server listens on the port', async () => {
    const p = await freePort();
    const c = client({ url: `redis://127.0.0.1:${p}`, reconnectBaseDelay: 20, reconnectMaxDelay: 200 });
    await expect(c.call('PING')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const server = await startRedis({ port: p });
    try {
      await waitFor(async () => (await outcome(c.call('PING'))).ok, { what: 'PING to succeed after start' });
      expect(c.status()).toMatchObject({ state: 'ready', ready: true });
    } finally {
      await c.quit().catch(() => {});
      await server.stop();
    }
  });
});

describe('a connect that is never answered', () => {
  let blackhole;

  beforeAll(async () => {
    blackhole = await startBlackhole();
  });

  afterAll(async () => {
    if (blackhole) await blackhole.close();
  });

  test('a black-holed connect rejects with ETIMEDOUT at the connect deadline', async () => {
    const c = client({ url: blackhole.url, connectTimeout: 1000, commandTimeout: 20000 });
    const started = Date.now();
    const err = await c.call('PING').catch((e) => e);
    expect(err).toBeInstanceOf(errors.ConnectionError);
    expect(err.code).toBe('ETIMEDOUT');
    expect(Date.now() - started).toBeLessThan(1000 + SLACK);
  });

  test('cacheGet and cacheSet resolve (null / false) within the default connect deadline', async () => {
    const { cache } = loadModulesWith(blackhole.url);
    const started = Date.now();
    const [got, set] = await Promise.all([cache.cacheGet('k'), cache.cacheSet('k', 'v', 30)]);
    expect(got).toBeNull();
    expect(set).toBe(false);
    expect(Date.now() - started).toBeLessThan(DEFAULT_CONNECT_TIMEOUT + SLACK);
  });

  test('a server that accepts but never answers the handshake: the call rejects with ETIMEDOUT', async () => {
    const db = await suiteDatabase();
    const proxy = await createProxy({ port: db.port });
    try {
      proxy.hold('both');
      const c = client({ url: `${proxy.url}/${db.db}`, name: 'never-answered', connectTimeout: 1000, commandTimeout: 1500 });
      const started = Date.now();
      const err = await c.call('PING').catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe('ETIMEDOUT');
      expect(Date.now() - started).toBeLessThan(1500 + SLACK);
      expect(proxy.accepted).toBeGreaterThanOrEqual(1);
    } finally {
      await proxy.close();
    }
  });
});

test('no promise rejected unhandled during the suite', async () => {
  await sleep(200);
  await turns();
  expect(unhandled.seen).toEqual([]);
});
