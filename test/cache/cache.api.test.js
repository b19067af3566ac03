'use strict';
// Proves the drop-in cache API (lib/cache) against a real server: get/set/del/mget and the
// Buffer variant, the TTL really set and really expiring, a single MGET for a batch, and
// bad arguments refused synchronously with TypeError/RangeError naming the argument
// before anything reaches Redis.
const { suiteDatabase } = require('../helpers/suite-db');
const { startRedis } = require('../helpers/redis-server');
const { rawCommand, rawCommandBuffer } = require('../helpers/raw-redis');
const { sleep } = require('../helpers/async');

let db;
let redis;
let cache;

beforeAll(async () => {
  db = await suiteDatabase();
  process.env.REDIS_URL = db.url;
  redis = require('../../lib/redis');
  cache = require('../../lib/cache');
});

beforeEach(() => db.flush());

afterAll(async () => {
  const c = redis && redis.getRedisClient();
  if (c) await c.quit();
});

/**
 * Calls fn and tells how it failed: { sync: err } for a synchronous throw, { async: err }
 * for a rejected promise, {} when it succeeded.
 */
async function failure(fn) {
  let result;
  try {
    result = fn();
  } catch (err) {
    return { sync: err };
  }
  try {
    await result;
  } catch (err) {
    return { async: err };
  }
  return {};
}

describe('cacheGet / cacheSet', () => {
  test('a miss is null; a set value reads back', async () => {
    await expect(cache.cacheGet('route:1')).resolves.toBeNull();
    await expect(cache.cacheSet('route:1', JSON.stringify({ a: 1 }), 30)).resolves.toBe(true);
    await expect(cache.cacheGet('route:1')).resolves.toBe('{"a":1}');
    expect(await rawCommand(db.raw, 'GET', 'route:1')).toBe('{"a":1}');
  });

  test('cacheSet without a TTL uses 30 seconds', async () => {
    await cache.cacheSet('default-ttl', 'v');
    const ttl = await rawCommand(db.raw, 'TTL', 'default-ttl');
    expect(ttl).toBeGreaterThan(25);
    expect(ttl).toBeLessThanOrEqual(30);
  });

  test('cacheSet sets the TTL it is given', async () => {
    await cache.cacheSet('ttl-3600', 'v', 3600);
    const ttl = await rawCommand(db.raw, 'TTL', 'ttl-3600');
    expect(ttl).toBeGreaterThan(3590);
    expect(ttl).toBeLessThanOrEqual(3600);
  });

  test('a key set with a 1 s TTL is gone after it expires', async () => {
    await cache.cacheSet('short', 'v', 1);
    await expect(cache.cacheGet('short')).resolves.toBe('v');
    await sleep(1600);
    await expect(cache.cacheGet('short')).resolves.toBeNull();
    expect(await rawCommand(db.raw, 'EXISTS', 'short')).toBe(0);
  });

  test('cacheSet overwrites and refreshes the TTL', async () => {
    await cache.cacheSet('ow', 'one', 100);
    await cache.cacheSet('ow', 'two', 1000);
    await expect(cache.cacheGet('ow')).resolves.toBe('two');
    expect(await rawCommand(db.raw, 'TTL', 'ow')).toBeGreaterThan(900);
  });

  test('an empty string value is stored and read back as the empty string', async () => {
    await expect(cache.cacheSet('empty', '', 30)).resolves.toBe(true);
    await expect(cache.cacheGet('empty')).resolves.toBe('');
  });

  test('Buffer keys and values are accepted', async () => {
    const value = Buffer.from([0, 1, 2, 0xff, 13, 10]);
    await expect(cache.cacheSet(Buffer.from('buf-key'), value, 30)).resolves.toBe(true);
    const got = await cache.cacheGetBuffer(Buffer.from('buf-key'));
    expect(Buffer.isBuffer(got)).toBe(true);
    expect(got.equals(value)).toBe(true);
    expect((await rawCommandBuffer(db.raw, 'GET', 'buf-key')).equals(value)).toBe(true);
  });

  test('cacheGetBuffer of a missing key is null', async () => {
    await expect(cache.cacheGetBuffer('nope')).resolves.toBeNull();
  });

  test('cacheGet of a key holding another type reads as a miss, never a rejection', async () => {
    await rawCommand(db.raw, 'RPUSH', 'a-list', 'x');
    await expect(cache.cacheGet('a-list')).resolves.toBeNull();
  });
});

describe('cacheDel / cacheMGet', () => {
  test('cacheDel returns how many of the keys existed', async () => {
    await rawCommand(db.raw, 'MSET', 'a', '1', 'b', '2', 'c', '3');
    await expect(cache.cacheDel('a', 'b', 'missing')).resolves.toBe(2);
    await expect(cache.cacheDel('a')).resolves.toBe(0);
    expect(await rawCommand(db.raw, 'KEYS', '*')).toEqual(['c']);
  });

  test('cacheMGet returns values in order with null for misses', async () => {
    await rawCommand(db.raw, 'MSET', 'm1', 'one', 'm3', 'three');
    await expect(cache.cacheMGet(['m1', 'm2', 'm3', 'm1'])).resolves.toEqual(['one', null, 'three', 'one']);
  });

  test('cacheMGet of an empty list is an empty list', async () => {
    await expect(cache.cacheMGet([])).resolves.toEqual([]);
  });
});

describe('cacheMGet sends one MGET', () => {
  let server;
  let isolated;

  beforeAll(async () => {
    server = await startRedis();
    jest.isolateModules(() => {
      process.env.REDIS_URL = server.url;
      isolated = { redis: require('../../lib/redis'), cache: require('../../lib/cache') };
    });
    // The configuration is read at first use: make that happen while REDIS_URL names the
    // dedicated server.
    isolated.redis.getRedisClient();
    process.env.REDIS_URL = db.url;
  });

  afterAll(async () => {
    const c = isolated && isolated.redis.getRedisClient();
    if (c) await c.quit();
    if (server) await server.stop();
  });

  test('a batch of 100 keys is one MGET and no GET', async () => {
    const keys = Array.from({ length: 100 }, (_, i) => `b:${i}`);
    await rawCommand({ port: server.port }, 'MSET', 'b:5', 'five');
    await isolated.cache.cacheGet('warm-up');
    await rawCommand({ port: server.port }, 'CONFIG', 'RESETSTAT');
    const got = await isolated.cache.cacheMGet(keys);
    expect(got[5]).toBe('five');
    expect(got.filter((v) => v === null)).toHaveLength(99);
    const stats = await rawCommand({ port: server.port }, 'INFO', 'commandstats');
    expect(stats).toMatch(/cmdstat_mget:calls=1,/);
    expect(stats).not.toMatch(/cmdstat_get:/);
  });
});

describe('a Redis error reply never rejects cacheSet', () => {
  let server;
  let isolated;

  beforeAll(async () => {
    // maxmemory of 1 byte with noeviction: every write is answered -OOM.
    server = await startRedis({ args: ['--maxmemory', '1', '--maxmemory-policy', 'noeviction'] });
    jest.isolateModules(() => {
      process.env.REDIS_URL = server.url;
      isolated = { redis: require('../../lib/redis'), cache: require('../../lib/cache') };
    });
    isolated.redis.getRedisClient();
    process.env.REDIS_URL = db.url;
  });

  afterAll(async () => {
    const c = isolated && isolated.redis.getRedisClient();
    if (c) await c.quit();
    if (server) await server.stop();
  });

  test('an OOM reply makes cacheSet resolve false; cacheGet still reads', async () => {
    const err = await isolated.redis.getRedisClient().call('SET', 'x', 'y').catch((e) => e);
    expect(err.code).toBe('OOM');
    await expect(isolated.cache.cacheSet('k', 'v', 30)).resolves.toBe(false);
    await expect(isolated.cache.cacheGet('k')).resolves.toBeNull();
  });
});

describe('bad arguments throw synchronously, naming the argument', () => {
  const badTtls = [
    ['0', 0, RangeError],
    ['-1', -1, RangeError],
    ['NaN', NaN, null],
    ['Infinity', Infinity, RangeError],
    ['1.5', 1.5, RangeError],
    ["'30' (a string)", '30', TypeError],
    ['null', null, TypeError],
    ['an object', {}, TypeError],
  ];

  test.each(badTtls)('ttl %s', async (_, ttl, type) => {
    const f = await failure(() => cache.cacheSet('k', 'v', ttl));
    expect(f.sync).toBeDefined();
    if (type) expect(f.sync).toBeInstanceOf(type);
    else expect([TypeError, RangeError].some((t) => f.sync instanceof t)).toBe(true);
    expect(f.sync.message).toMatch(/ttl/i);
  });

  const badKeys = [
    ["'' (empty)", ''],
    ['5 (a number)', 5],
    ['undefined', undefined],
    ['null', null],
    ['an object', { toString: () => 'k' }],
    ['an empty Buffer', Buffer.alloc(0)],
  ];

  test.each(badKeys)('key %s', async (_, key) => {
    const f = await failure(() => cache.cacheSet(key, 'v', 30));
    expect(f.sync).toBeDefined();
    expect([TypeError, RangeError].some((t) => f.sync instanceof t)).toBe(true);
    expect(f.sync.message).toMatch(/key/i);
  });

  const badValues = [
    ['undefined', undefined],
    ['null', null],
    ['an object', { a: 1 }],
  ];

  test.each(badValues)('value %s', async (_, value) => {
    const f = await failure(() => cache.cacheSet('k', value, 30));
    expect(f.sync).toBeDefined();
    expect(f.sync).toBeInstanceOf(TypeError);
    expect(f.sync.message).toMatch(/value/i);
  });

  test('nothing reached Redis from any of the bad calls', async () => {
    for (const [, ttl] of badTtls) await failure(() => cache.cacheSet('bad', 'v', ttl));
    for (const [, key] of badKeys) await failure(() => cache.cacheSet(key, 'v', 30));
    for (const [, value] of badValues) await failure(() => cache.cacheSet('bad', value, 30));
    await cache.cacheGet('flush-the-pipe');
    expect(await rawCommand(db.raw, 'DBSIZE')).toBe(0);
  });
});

describe('maxValueBytes', () => {
  test('cacheSet refuses a value over the default maximum (64 MiB) synchronously and sends nothing', async () => {
    const big = Buffer.alloc(64 * 1024 * 1024 + 1);
    const f = await failure(() => cache.cacheSet('huge', big, 30));
    expect(f.sync).toBeInstanceOf(RangeError);
    expect(f.sync.message).toMatch(/value/);
    expect(f.sync.message).toMatch(/maxValueBytes/);
    await expect(cache.cacheSet('just-fits', Buffer.alloc(64 * 1024 * 1024), 30)).resolves.toBe(true);
    expect(await rawCommand(db.raw, 'EXISTS', 'huge')).toBe(0);
    expect(await rawCommand(db.raw, 'STRLEN', 'just-fits')).toBe(64 * 1024 * 1024);
  });

  test('the maxValueBytes of a cache made with createCache({ client, maxValueBytes }) applies', async () => {
    const client = redis.createClient({ url: db.url });
    try {
      const small = cache.createCache({ client, maxValueBytes: 16 });
      await expect(small.cacheSet('ok', 'x'.repeat(16), 30)).resolves.toBe(true);
      const f = await failure(() => small.cacheSet('too-big', 'é'.repeat(9), 30));
      expect(f.sync).toBeInstanceOf(RangeError);
      expect(await rawCommand(db.raw, 'EXISTS', 'too-big')).toBe(0);
    } finally {
      await client.quit();
    }
  });

  test('a value over the client maximum is refused before it is sent, with a clear error', async () => {
    const client = redis.createClient({ url: db.url, maxValueBytes: 1024 });
    try {
      await expect(client.set('small', 'x'.repeat(1024), 30)).resolves.toBeDefined();
      const f = await failure(() => client.set('big', 'x'.repeat(1025), 30));
      const err = f.sync || f.async;
      expect(err).toBeInstanceOf(RangeError);
      expect(err.message).toMatch(/maxValueBytes|too large|bytes/i);
      const fb = await failure(() => client.set('big-buf', Buffer.alloc(2048), 30));
      expect(fb.sync || fb.async).toBeInstanceOf(RangeError);
      // Multi-byte characters count as bytes, not as characters.
      const fu = await failure(() => client.set('big-utf8', 'é'.repeat(600), 30));
      expect(fu.sync || fu.async).toBeInstanceOf(RangeError);
      expect(await rawCommand(db.raw, 'EXISTS', 'big', 'big-buf', 'big-utf8')).toBe(0);
      expect(await rawCommand(db.raw, 'EXISTS', 'small')).toBe(1);
    } finally {
      await client.quit();
    }
  });
});
