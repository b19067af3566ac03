'use strict';
// Proves the drop-in cache API keeps its meaning with REDIS_URL=disabled, on the embedded
// native store: no client and no socket, values (binary too) with TTLs honoured, literal
// prefix deletion, the entry bound evicting least recently used first, the same argument
// checks as on Redis, and expired entries swept without being read.
const { MemoryStore } = require('../../lib/store/memory-store');
const { sleep, waitFor } = require('../helpers/async');

let redis;
let cache;

beforeAll(() => {
  process.env.REDIS_URL = 'disabled';
  process.env.HIRECACHE_MEMORY_MAX_ENTRIES = '50';
  redis = require('../../lib/redis');
  cache = require('../../lib/cache');
});

test('Redis is off: no client, and the cache runs on the embedded store', () => {
  expect(redis.isRedisEnabled()).toBe(false);
  expect(redis.getRedisClient()).toBeNull();
  expect(cache.cacheBackend()).toBe('memory');
});

test('get / set / del / mget keep their Redis meaning', async () => {
  await expect(cache.cacheGet('e:1')).resolves.toBeNull();
  await expect(cache.cacheSet('e:1', '{"a":1}', 30)).resolves.toBe(true);
  await expect(cache.cacheGet('e:1')).resolves.toBe('{"a":1}');
  await cache.cacheSet('e:2', '', 30);
  await expect(cache.cacheGet('e:2')).resolves.toBe('');
  await expect(cache.cacheMGet(['e:1', 'nope', 'e:2'])).resolves.toEqual(['{"a":1}', null, '']);
  await expect(cache.cacheDel('e:1', 'nope')).resolves.toBe(1);
  await expect(cache.cacheGet('e:1')).resolves.toBeNull();
});

test('binary values and keys round-trip exactly', async () => {
  const value = Buffer.from([0, 13, 10, 0xff, 0xfe, 0]);
  const key = Buffer.from([0x6b, 0, 0xff]);
  await cache.cacheSet(key, value, 30);
  const got = await cache.cacheGetBuffer(key);
  expect(Buffer.isBuffer(got) && got.equals(value)).toBe(true);
});

test('a 1 s TTL expires', async () => {
  await cache.cacheSet('ttl:short', 'v', 1);
  await expect(cache.cacheGet('ttl:short')).resolves.toBe('v');
  await sleep(1300);
  await expect(cache.cacheGet('ttl:short')).resolves.toBeNull();
});

test('prefix deletion is literal and counts what went', async () => {
  await cache.cacheSet('p:*:1', 'x', 30);
  await cache.cacheSet('p:*:2', 'x', 30);
  await cache.cacheSet('p:a:1', 'decoy', 30);
  await cache.cacheSet('p:?:1', 'decoy', 30);
  await expect(cache.cacheDelPrefix('p:*:')).resolves.toBe(2);
  await expect(cache.cacheMGet(['p:*:1', 'p:a:1', 'p:?:1'])).resolves.toEqual([null, 'decoy', 'decoy']);
  expect(() => cache.cacheDelPrefix('')).toThrow(RangeError);
});

test('bad arguments throw synchronously as on Redis', () => {
  expect(() => cache.cacheSet('k', 'v', 0)).toThrow(RangeError);
  expect(() => cache.cacheSet('k', 'v', 1.5)).toThrow(RangeError);
  expect(() => cache.cacheSet('k', 'v', '30')).toThrow(TypeError);
  expect(() => cache.cacheSet('', 'v', 30)).toThrow(/key/);
  expect(() => cache.cacheSet('k', undefined, 30)).toThrow(TypeError);
});

test('HIRECACHE_MEMORY_MAX_ENTRIES bounds the store; the least recently used entry goes first', async () => {
  for (let i = 0; i < 50; i++) await cache.cacheSet(`lru:${i}`, 'v', 60);
  // Touch lru:0 so lru:1 becomes the least recently used.
  await expect(cache.cacheGet('lru:0')).resolves.toBe('v');
  await cache.cacheSet('lru:new', 'v', 60);
  await expect(cache.cacheGet('lru:0')).resolves.toBe('v');
  await expect(cache.cacheGet('lru:1')).resolves.toBeNull();
  await expect(cache.cacheGet('lru:new')).resolves.toBe('v');
  const kept = await cache.cacheMGet(Array.from({ length: 50 }, (_, i) => `lru:${i}`));
  expect(kept.filter((v) => v !== null)).toHaveLength(49);
});

test('expired entries are swept without being read', async () => {
  const store = new MemoryStore({ maxEntries: 1000, sweepIntervalMs: 50 });
  try {
    for (let i = 0; i < 100; i++) store.set(`s:${i}`, 'v', 200);
    store.set('stays', 'v', 60000);
    expect(store.stats().entries).toBe(101);
    await waitFor(() => store.stats().entries === 1, { what: 'the sweep to drop 100 expired entries' });
    expect(store.get('stays')).toBe('v');
  } finally {
    store.close();
  }
});
