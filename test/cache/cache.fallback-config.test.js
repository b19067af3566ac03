'use strict';
// Proves how the cache's fallback is configured: createCache's `fallback` option checked at
// the call (a misspelt or out-of-range option named, never ignored), the process-wide
// cache's HIRECACHE_FALLBACK* and HIRECACHE_MEMORY_* variables refused with a ConfigError
// naming the variable, and the record of lost invalidations bounded.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { ConfigError } = require('../../lib/errors');
const { fallbackOptionsFromEnv, memoryOptionsFromEnv, FALLBACK_DEFAULTS } = require('../../lib/cache/config');
const { LostInvalidations, MAX_PENDING } = require('../../lib/cache/lost-invalidations');
const { MIN_BYTES, MAX_ENTRIES } = require('../../lib/store/memory-store');

const clients = [];
function client() {
  // Never used to send anything: no socket is opened.
  const c = createClient({ url: 'redis://127.0.0.1:1' });
  clients.push(c);
  return c;
}

afterAll(() => {
  for (const c of clients) c.disconnect();
});

describe('createCache({ fallback })', () => {
  test('on by default, off with false, sizes taken', () => {
    expect(createCache({ client: client() }).cacheStats().fallback).toMatchObject({ active: false, entries: 0, ...FALLBACK_DEFAULTS });
    expect(createCache({ client: client(), fallback: true }).cacheStats().fallback).toMatchObject(FALLBACK_DEFAULTS);
    expect(createCache({ client: client(), fallback: false }).cacheStats().fallback).toBeNull();
    const sized = createCache({ client: client(), fallback: { maxEntries: 7, maxBytes: MIN_BYTES } }).cacheStats();
    expect(sized.fallback).toMatchObject({ maxEntries: 7, maxBytes: MIN_BYTES, active: false });
    expect(sized.lostInvalidations).toEqual({ count: 0, pending: 0, unrecorded: 0, reissued: 0 });
  });

  test('the store is not created before an outage needs it', () => {
    const cache = createCache({ client: client() });
    expect(cache.cacheStats().fallback.active).toBe(false);
    expect(cache.cacheStats().fallback.activations).toBe(0);
  });

  test.each([
    [{ fallback: 'off' }, TypeError, /createCache: option fallback must be false or an object/],
    [{ fallback: null }, TypeError, /option fallback must be/],
    [{ fallback: { maxEntrys: 5 } }, TypeError, /unknown option fallback\.maxEntrys/],
    [{ fallback: { maxEntries: 0 } }, RangeError, /option fallback\.maxEntries must be an integer from 1/],
    [{ fallback: { maxEntries: 1.5 } }, RangeError, /fallback\.maxEntries/],
    [{ fallback: { maxEntries: MAX_ENTRIES + 1 } }, RangeError, /fallback\.maxEntries/],
    [{ fallback: { maxBytes: MIN_BYTES - 1 } }, RangeError, /option fallback\.maxBytes must be an integer >= /],
    [{ fallback: { maxBytes: '1000000' } }, TypeError, /option fallback\.maxBytes must be a number, got string/],
  ])('refuses %j at the call', (options, Class, message) => {
    const c = client();
    let err;
    try {
      createCache({ client: c, ...options });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Class);
    expect(err.message).toMatch(message);
  });
});

describe('the environment of the process-wide cache', () => {
  test('on by default with the default sizes', () => {
    expect(fallbackOptionsFromEnv({})).toEqual(FALLBACK_DEFAULTS);
    expect(fallbackOptionsFromEnv({ HIRECACHE_FALLBACK: '' })).toEqual(FALLBACK_DEFAULTS);
  });

  test.each(['off', 'OFF', ' false ', '0', 'no'])('HIRECACHE_FALLBACK=%j turns it off', (value) => {
    expect(fallbackOptionsFromEnv({ HIRECACHE_FALLBACK: value })).toBe(false);
  });

  test.each(['on', 'true', '1', 'Yes'])('HIRECACHE_FALLBACK=%j keeps it on', (value) => {
    expect(fallbackOptionsFromEnv({ HIRECACHE_FALLBACK: value })).toEqual(FALLBACK_DEFAULTS);
  });

  test('the sizes are read', () => {
    const env = { HIRECACHE_FALLBACK_MAX_ENTRIES: '500', HIRECACHE_FALLBACK_MAX_BYTES: String(2 * MIN_BYTES) };
    expect(fallbackOptionsFromEnv(env)).toEqual({ maxEntries: 500, maxBytes: 2 * MIN_BYTES });
  });

  test.each([
    [{ HIRECACHE_FALLBACK: 'maybe' }, 'HIRECACHE_FALLBACK must be on or off, got string \'maybe\''],
    [{ HIRECACHE_FALLBACK_MAX_ENTRIES: '10k' }, 'HIRECACHE_FALLBACK_MAX_ENTRIES must be an integer from 1 to'],
    [{ HIRECACHE_FALLBACK_MAX_ENTRIES: '0' }, 'HIRECACHE_FALLBACK_MAX_ENTRIES must be an integer from 1 to'],
    [{ HIRECACHE_FALLBACK_MAX_BYTES: '-5' }, 'HIRECACHE_FALLBACK_MAX_BYTES must be an integer >='],
    [{ HIRECACHE_FALLBACK_MAX_BYTES: '1024' }, 'HIRECACHE_FALLBACK_MAX_BYTES must be an integer >='],
    // A typo is refused even while the fallback is off, before the day it is turned on.
    [{ HIRECACHE_FALLBACK: 'off', HIRECACHE_FALLBACK_MAX_BYTES: '16MB' }, 'HIRECACHE_FALLBACK_MAX_BYTES'],
  ])('refuses %j with a ConfigError naming the variable', (env, message) => {
    let err;
    try {
      fallbackOptionsFromEnv(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe('ERR_INVALID_CONFIG');
    expect(err.message).toContain(message);
  });

  test('HIRECACHE_MEMORY_* are refused the same way', () => {
    expect(memoryOptionsFromEnv({ HIRECACHE_MEMORY_MAX_ENTRIES: '50' })).toEqual({ maxEntries: 50 });
    expect(() => memoryOptionsFromEnv({ HIRECACHE_MEMORY_MAX_ENTRIES: 'lots' })).toThrow(ConfigError);
    expect(() => memoryOptionsFromEnv({ HIRECACHE_MEMORY_MAX_BYTES: '100' })).toThrow(/HIRECACHE_MEMORY_MAX_BYTES must be an integer >=/);
  });

  test('the process-wide cache refuses a bad variable at first use, naming it', () => {
    jest.isolateModules(() => {
      const saved = { ...process.env };
      try {
        process.env.REDIS_URL = 'redis://127.0.0.1:1';
        process.env.HIRECACHE_FALLBACK = 'sometimes';
        const cache = require('../../lib/cache');
        // The isolated registry has its own ConfigError class: told by name and code.
        expect(() => cache.cacheGet('k')).toThrow(expect.objectContaining({ name: 'ConfigError', code: 'ERR_INVALID_CONFIG' }));
        expect(() => cache.cacheStats()).toThrow(/HIRECACHE_FALLBACK must be on or off/);
        process.env.HIRECACHE_FALLBACK = 'off';
        expect(cache.cacheStats().fallback).toBeNull();
        require('../../lib/redis').getRedisClient().disconnect();
      } finally {
        process.env = saved;
      }
    });
  });
});

describe('the record of lost invalidations', () => {
  test('counts every key and prefix, keeps each once, copies Buffers', () => {
    const lost = new LostInvalidations();
    const buf = Buffer.from('k\u0000b');
    lost.addKeys(['a', 'b', buf]);
    lost.addKeys(['a']);
    lost.addPrefix('p:');
    lost.addPrefix('p:');
    buf[0] = 0x78;
    expect(lost.count).toBe(6);
    expect(lost.pending).toBe(4);
    const { keys, prefixes } = lost.list();
    expect(keys.slice(0, 2)).toEqual(['a', 'b']);
    expect(keys[2].equals(Buffer.from('k\u0000b'))).toBe(true);
    expect(prefixes).toEqual(['p:']);
    // A string and a Buffer of other bytes are different keys; the same bytes are one.
    lost.addKeys([Buffer.from('a'), 'k\u0000b']);
    expect(lost.pending).toBe(6);
  });

  test('past the bound, a deletion is counted as unrecorded, never kept', () => {
    const lost = new LostInvalidations();
    const keys = Array.from({ length: MAX_PENDING + 10 }, (_, i) => `k:${i}`);
    lost.addKeys(keys);
    lost.addPrefix('p:');
    expect(lost.pending).toBe(MAX_PENDING);
    expect(lost.count).toBe(MAX_PENDING + 11);
    expect(lost.unrecorded).toBe(11);
    const taken = lost.take();
    expect(taken.keys).toHaveLength(MAX_PENDING);
    expect(taken.unrecorded).toBe(11);
    expect(lost.pending).toBe(0);
    expect(lost.take()).toEqual({ keys: [], prefixes: [], unrecorded: 0 });
    // Put back after a failed re-issue: not counted again.
    lost.restoreKeys(['k:1']);
    lost.restorePrefix('p:');
    expect(lost.count).toBe(MAX_PENDING + 11);
    expect(lost.pending).toBe(2);
  });
});
