'use strict';
// Proves the Redis cache's fallback store against a real server behind the fault proxy:
// while the breaker is open the cache serves from process memory and writes nothing to
// Redis; when it closes the fallback is dropped, so a value deleted in Redis meanwhile is
// never served from memory; deletions made during the outage reach the fallback, are
// counted, logged once and re-issued to Redis when it is back; commands waiting when the
// breaker opens settle at once; and with the fallback off an outage reads as misses.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { suiteDatabase } = require('../helpers/suite-db');
const { createProxy } = require('../helpers/proxy');
const { rawCommand } = require('../helpers/raw-redis');
const { outage } = require('../helpers/client-suite');
const { waitFor, track, turns, watchUnhandledRejections } = require('../helpers/async');

let db;
let unhandled;
const cleanups = [];

beforeAll(async () => {
  db = await suiteDatabase();
});

beforeEach(async () => {
  await db.flush();
  unhandled = watchUnhandledRejections();
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
  expect(unhandled.stop()).toEqual([]);
});

/** A client behind a proxy of its own, a logger that records, and a cache on the client. */
async function setup({ client: clientOptions = {}, cache: cacheOptions = {} } = {}) {
  const proxy = await createProxy({ port: db.port });
  const logs = [];
  const logger = {
    error: (m) => logs.push({ level: 'error', message: m }),
    warn: (m) => logs.push({ level: 'warn', message: m }),
    info: (m) => logs.push({ level: 'info', message: m }),
  };
  const client = createClient({ url: `${proxy.url}/${db.db}`, logger, breaker: { openMs: 50 }, ...clientOptions });
  const cache = createCache({ client, ...cacheOptions });
  cleanups.push(async () => {
    client.disconnect();
    await proxy.close();
  });
  return { proxy, client, cache, logs };
}

/** Redis is reachable again; resolves once the breaker has closed. */
async function recover({ proxy, client }) {
  await proxy.accept();
  await waitFor(() => client.breakerState === 'closed', { what: 'the breaker to close' });
}

const raw = (...args) => rawCommand(db.raw, ...args);

test('during an outage the cache serves from the fallback, and nothing reaches Redis', async () => {
  const env = await setup();
  const { cache, client } = env;
  await expect(cache.cacheSet('a', 'from-redis', 60)).resolves.toBe(true);
  await expect(cache.cacheGet('a')).resolves.toBe('from-redis');
  expect(cache.cacheStats().fallback.active).toBe(false);

  await outage(env);
  // The fallback starts empty: nothing was copied from Redis.
  await expect(cache.cacheGet('a')).resolves.toBeNull();
  await expect(cache.cacheSet('a', 'from-memory', 60)).resolves.toBe(true);
  await expect(cache.cacheSet(Buffer.from([0x62, 0]), Buffer.from([0, 0xff]), 60)).resolves.toBe(true);
  await expect(cache.cacheGet('a')).resolves.toBe('from-memory');
  expect((await cache.cacheGetBuffer(Buffer.from([0x62, 0]))).equals(Buffer.from([0, 0xff]))).toBe(true);
  await expect(cache.cacheMGet(['a', 'nope'])).resolves.toEqual(['from-memory', null]);

  const stats = cache.cacheStats();
  expect(stats.fallback).toMatchObject({ active: true, entries: 2, writes: 2, activations: 1 });
  expect(stats.fallback.bytes).toBeGreaterThan(0);
  expect(stats.fallback.reads).toBe(5);
  expect(stats.fallback.hits).toBe(3);
  expect(client.status().fallbacks).toContain('cache');
  // Redis still holds what it had; nothing written to the fallback went there.
  expect(await raw('GET', 'a')).toBe('from-redis');
  expect(await raw('EXISTS', Buffer.from([0x62, 0]))).toBe(0);

  await recover(env);
  expect(await raw('GET', 'a')).toBe('from-redis');
  expect(await raw('EXISTS', Buffer.from([0x62, 0]))).toBe(0);
});

test('a tight await loop on the fallback still lets timers run', async () => {
  const env = await setup();
  await outage(env);
  await env.cache.cacheSet('x', 'v', 60);
  let fired = false;
  setTimeout(() => { fired = true; }, 1);
  let calls = 0;
  while (!fired && calls < 200000) {
    await env.cache.cacheGet('x');
    calls += 1;
  }
  expect(fired).toBe(true);
});

test('TTLs hold in the fallback', async () => {
  const env = await setup();
  await outage(env);
  await env.cache.cacheSet('short', 'v', 1);
  await expect(env.cache.cacheGet('short')).resolves.toBe('v');
  await waitFor(async () => (await env.cache.cacheGet('short')) === null, { what: 'the entry to expire' });
});

test('when Redis is back the fallback is dropped and Redis serves again', async () => {
  const env = await setup();
  const { cache, client } = env;
  await cache.cacheSet('k', 'redis', 60);
  await outage(env);
  await cache.cacheSet('k', 'memory', 60);
  await cache.cacheSet('only-in-memory', 'x', 60);
  await expect(cache.cacheGet('k')).resolves.toBe('memory');

  await recover(env);
  expect(cache.cacheStats().fallback).toMatchObject({ active: false, entries: 0, bytes: 0 });
  expect(client.status().fallbacks).not.toContain('cache');
  await expect(cache.cacheGet('k')).resolves.toBe('redis');
  await expect(cache.cacheGet('only-in-memory')).resolves.toBeNull();

  // A second outage starts from an empty fallback again.
  await outage(env);
  await expect(cache.cacheGet('k')).resolves.toBeNull();
  expect(cache.cacheStats().fallback.activations).toBe(2);
});

test('a value deleted in Redis during the outage is not served after recovery', async () => {
  const env = await setup();
  const { cache } = env;
  await cache.cacheSet('user:1', 'v1', 60);
  await outage(env);
  // The route recomputes and caches during the outage: the value lands in the fallback.
  await expect(cache.cacheGet('user:1')).resolves.toBeNull();
  await cache.cacheSet('user:1', 'v1', 60);
  await expect(cache.cacheGet('user:1')).resolves.toBe('v1');
  // Meanwhile another process, which still reaches Redis, deletes it there.
  expect(await raw('DEL', 'user:1')).toBe(1);

  await recover(env);
  await expect(cache.cacheGet('user:1')).resolves.toBeNull();
  await expect(cache.cacheMGet(['user:1'])).resolves.toEqual([null]);
});

test('deletions during an outage reach the fallback, are counted, logged once and re-issued when Redis is back', async () => {
  const env = await setup();
  const { cache, logs } = env;
  for (const key of ['d:1', 'd:2', 'd:3', 'p:1', 'p:2', 'q:1']) await cache.cacheSet(key, 'stale', 60);
  await outage(env);
  const before = logs.length;

  await cache.cacheSet('d:1', 'memory', 60);
  await cache.cacheSet('p:9', 'memory', 60);
  await expect(cache.cacheDel('d:1', 'd:2')).resolves.toBe(1); // only d:1 was in the fallback
  await expect(cache.cacheDelPrefix('p:')).resolves.toBe(1); // p:9, in the fallback
  await expect(cache.cacheDel(['d:3'])).resolves.toBe(0);
  await expect(cache.cacheGet('d:1')).resolves.toBeNull();
  await expect(cache.cacheGet('p:9')).resolves.toBeNull();

  expect(cache.cacheStats().lostInvalidations).toEqual({ count: 4, pending: 4, unrecorded: 0, reissued: 0 });
  expect(cache.cacheLostInvalidations()).toEqual({ keys: ['d:1', 'd:2', 'd:3'], prefixes: ['p:'] });
  // Redis did not see them: the stale values are still there.
  expect(await raw('EXISTS', 'd:1', 'd:2', 'd:3', 'p:1', 'p:2')).toBe(5);
  // One line for the outage's lost deletions, however many there were.
  const lostLines = logs.slice(before).filter((l) => /deletion did not reach Redis/.test(l.message));
  expect(lostLines).toHaveLength(1);
  expect(lostLines[0].level).toBe('warn');
  expect(lostLines[0].message).toMatch(/re-issued when Redis is back/);

  await recover(env);
  await waitFor(() => cache.cacheStats().lostInvalidations.pending === 0, { what: 'the deletions to be re-issued' });
  await waitFor(async () => (await raw('EXISTS', 'd:1', 'd:2', 'd:3', 'p:1', 'p:2')) === 0, { what: 'the stale keys to go' });
  expect(await raw('GET', 'q:1')).toBe('stale');
  expect(cache.cacheStats().lostInvalidations).toEqual({ count: 4, pending: 0, unrecorded: 0, reissued: 4 });
  expect(cache.cacheLostInvalidations()).toEqual({ keys: [], prefixes: [] });
  expect(logs.some((l) => l.level === 'info' && /4 deletions it missed were re-issued/.test(l.message))).toBe(true);

  // The next outage logs its own lost deletion again, once.
  await outage(env);
  const mark = logs.length;
  await cache.cacheDel('q:1');
  await cache.cacheDel('q:2');
  expect(logs.slice(mark).filter((l) => /deletion did not reach Redis/.test(l.message))).toHaveLength(1);
});

test('a prefix deletion that fails midway is recorded and re-issued, and still rejects', async () => {
  const env = await setup({ client: { commandTimeout: 200, breaker: false } });
  const { cache, proxy } = env;
  await cache.cacheSet('m:1', 'x', 60);
  proxy.hold('toClient');
  const result = track(cache.cacheDelPrefix('m:'));
  await waitFor(() => result.settled, { what: 'the deletion to fail' });
  expect(result.fulfilled).toBe(false);
  expect(result.error.code).toBe('ETIMEDOUT');
  expect(cache.cacheLostInvalidations().prefixes).toEqual(['m:']);
  proxy.release('toClient');
  // Without a breaker to wait for, the deletion is re-issued on its own shortly after.
  await waitFor(async () => (await raw('EXISTS', 'm:1')) === 0, { what: 'the prefix to be re-issued' });
  await waitFor(() => cache.cacheStats().lostInvalidations.pending === 0, { what: 'the record to empty' });
});

test('a read or write waiting when the breaker opens settles at once; a written deletion waits for its reply', async () => {
  const env = await setup({ client: { commandTimeout: 20000, breaker: { stallMs: 50, openMs: 50 } } });
  const { cache, proxy, client } = env;
  await cache.cacheSet('w', 'v', 60);
  proxy.hold('toClient');
  const get = track(cache.cacheGet('w'));
  const set = track(cache.cacheSet('w2', 'v', 60));
  const del = track(cache.cacheDel('w'));
  await waitFor(() => get.settled && set.settled, { timeoutMs: 10000, what: 'the waiting read and write to settle' });
  expect(client.breakerState).not.toBe('closed');
  expect(get.value).toBeNull();
  expect(set.value).toBe(false);
  // The DEL was written: Redis is about to run it, so it waits for its reply rather than
  // becoming a lost invalidation.
  expect(del.settled).toBe(false);
  // Calls made now go to the fallback.
  await expect(cache.cacheSet('w', 'memory', 60)).resolves.toBe(true);
  await expect(cache.cacheGet('w')).resolves.toBe('memory');
  proxy.release('toClient');
  await waitFor(() => del.settled, { what: 'the DEL to be answered' });
  expect(del.value).toBe(1);
  expect(cache.cacheLostInvalidations().keys).toEqual([]);
  await waitFor(() => client.breakerState === 'closed', { what: 'the breaker to close' });
  expect(await raw('EXISTS', 'w')).toBe(0);
  await expect(cache.cacheGet('w')).resolves.toBeNull();
});

test('with the fallback off an outage reads as misses and false, and nothing is kept', async () => {
  const env = await setup({ cache: { fallback: false } });
  const { cache, client } = env;
  await cache.cacheSet('f', 'redis', 60);
  await outage(env);
  await expect(cache.cacheGet('f')).resolves.toBeNull();
  await expect(cache.cacheSet('f', 'memory', 60)).resolves.toBe(false);
  await expect(cache.cacheGet('f')).resolves.toBeNull();
  await expect(cache.cacheGetBuffer('f')).resolves.toBeNull();
  await expect(cache.cacheMGet(['f', 'g'])).resolves.toEqual([null, null]);
  await expect(cache.cacheDel('f')).resolves.toBe(0);
  await expect(cache.cacheDelPrefix('f')).resolves.toBe(0);
  expect(cache.cacheStats().fallback).toBeNull();
  expect(client.status().fallbacks).not.toContain('cache');
  // The deletions Redis missed are still re-issued when it is back.
  expect(cache.cacheStats().lostInvalidations.pending).toBe(2);
  await recover(env);
  await waitFor(async () => (await raw('EXISTS', 'f')) === 0, { what: 'the deletion to be re-issued' });
});

test('the fallback keeps its bound', async () => {
  const env = await setup({ cache: { fallback: { maxEntries: 10 } } });
  await outage(env);
  for (let i = 0; i < 50; i++) await env.cache.cacheSet(`b:${i}`, 'v', 60);
  expect(env.cache.cacheStats().fallback.entries).toBe(10);
  await expect(env.cache.cacheGet('b:49')).resolves.toBe('v');
  await expect(env.cache.cacheGet('b:0')).resolves.toBeNull();
});

test('the process-wide cache has the fallback on, and HIRECACHE_FALLBACK=off turns it off', async () => {
  const proxy = await createProxy({ port: db.port });
  cleanups.push(() => proxy.close());
  const saved = { ...process.env };
  try {
    for (const setting of [undefined, 'off']) {
      let mods;
      jest.isolateModules(() => {
        process.env.REDIS_URL = `${proxy.url}/${db.db}`;
        if (setting === undefined) delete process.env.HIRECACHE_FALLBACK;
        else process.env.HIRECACHE_FALLBACK = setting;
        process.env.HIRECACHE_FALLBACK_MAX_ENTRIES = '123';
        mods = { redis: require('../../lib/redis'), cache: require('../../lib/cache') };
      });
      const client = mods.redis.getRedisClient();
      cleanups.push(async () => client.disconnect());
      await mods.cache.cacheSet('pw', 'redis', 60);
      await outage({ proxy, client });
      await mods.cache.cacheSet('pw', 'memory', 60);
      if (setting === undefined) {
        expect(mods.cache.cacheStats().fallback).toMatchObject({ active: true, maxEntries: 123 });
        await expect(mods.cache.cacheGet('pw')).resolves.toBe('memory');
      } else {
        expect(mods.cache.cacheStats().fallback).toBeNull();
        await expect(mods.cache.cacheGet('pw')).resolves.toBeNull();
      }
      await recover({ proxy, client });
      await expect(mods.cache.cacheGet('pw')).resolves.toBe('redis');
    }
  } finally {
    process.env = saved;
  }
});

test('nothing listening from the start: the first calls miss, then the fallback serves', async () => {
  const env = await setup();
  await env.proxy.refuse();
  // The first command finds the connection refused and opens the breaker.
  await expect(env.cache.cacheGet('s')).resolves.toBeNull();
  await waitFor(() => env.client.breakerState !== 'closed', { what: 'the breaker to open' });
  await expect(env.cache.cacheSet('s', 'memory', 60)).resolves.toBe(true);
  await expect(env.cache.cacheGet('s')).resolves.toBe('memory');
  await turns();
});

test('a deletion after the application closed the client is not a lost invalidation, and is never re-sent', async () => {
  const env = await setup();
  const { cache, client, logs } = env;
  await cache.cacheSet('q', 'v', 60);
  await client.quit();
  await expect(cache.cacheDel('q')).resolves.toBe(0);
  await new Promise((r) => setTimeout(r, 1200)); // past the re-issue delay
  expect(cache.cacheStats().lostInvalidations).toMatchObject({ count: 0, pending: 0 });
  expect(logs.filter((l) => /did not reach Redis/.test(l.message))).toEqual([]);
});

test('two caches on one client: the fallback is noted in use while either serves from it, and cleared at recovery', async () => {
  const env = await setup();
  const { client, proxy } = env;
  const other = createCache({ client });
  await outage(env);
  await env.cache.cacheSet('a', '1', 60);
  await other.cacheSet('b', '2', 60);
  expect(client.status().fallbacks).toEqual(['cache']);
  await recover({ proxy, client });
  await waitFor(() => client.status().fallbacks.length === 0, { what: 'the fallbacks to be cleared' });
});
