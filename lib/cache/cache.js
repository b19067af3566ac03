'use strict';
// Drop-in for an API's lib/cache.js. The exact calls routes already make keep their meaning:
//   const hit = await cacheGet(key); if (hit) return JSON.parse(hit);
//   await cacheSet(key, JSON.stringify(data), 30);
//   const n = await cacheDelPrefix(prefix);
// On Redis, configured by REDIS_URL; with REDIS_URL=disabled, on the embedded in-process
// store (C++, bounded by entries and bytes, LRU).
const { getRedisClient } = require('../redis');
const { RedisClient, checkValueSize, checkTtl, REPLY_BUFFERS, SOFT_FAIL, REPLY_IS_OK, REPLY_LATIN1 } = require('../client/client');
const { HirecacheError } = require('../errors');
const { describe, checkInteger } = require('../util/validate');

const DEFAULT_MAX_VALUE_BYTES = require('../binding').clientConstants.defaults.maxValueBytes;

function checkKey(key, name = 'key') {
  if (typeof key === 'string') {
    if (key.length > 0) return;
  } else if (Buffer.isBuffer(key)) {
    if (key.length > 0) return;
  } else {
    throw new TypeError(`${name} must be a non-empty string or Buffer, got ${describe(key)}`);
  }
  throw new RangeError(`${name} must not be empty`);
}

function checkValue(value, maxValueBytes) {
  if (typeof value !== 'string' && !Buffer.isBuffer(value)) {
    throw new TypeError(`value must be a string or Buffer, got ${describe(value)}`);
  }
  checkValueSize(value, maxValueBytes);
}

// eslint-disable-next-line no-control-regex -- ASCII includes the control characters
const ASCII = /^[\x00-\x7f]*$/;

/** Escapes the glob characters of `prefix` so that SCAN MATCH treats them literally. */
function escapeGlob(prefix) {
  return prefix.replace(/[*?[\]\\]/g, '\\$&');
}

function checkPositiveInteger(name, value) {
  checkInteger(`option ${name}`, value, { min: 1 });
}

/** A cache on a Redis client. */
class RedisCache {
  constructor(client, { maxValueBytes = client.options.maxValueBytes, scanCount = 1000, deleteBatch = 500 } = {}) {
    checkPositiveInteger('maxValueBytes', maxValueBytes);
    checkPositiveInteger('scanCount', scanCount);
    checkPositiveInteger('deleteBatch', deleteBatch);
    this.client = client;
    this.maxValueBytes = maxValueBytes;
    this.scanCount = scanCount;
    this.deleteBatch = deleteBatch;
    this.backend = 'redis';
  }

  get(key) {
    return this.client._get(SOFT_FAIL, key);
  }

  getBuffer(key) {
    return this.client._get(SOFT_FAIL | REPLY_BUFFERS, key);
  }

  set(key, value, ttlSec) {
    return this.client._setex(SOFT_FAIL | REPLY_IS_OK, key, value, ttlSec);
  }

  async del(keys) {
    const n = await this.client._command(SOFT_FAIL, 'DEL', ...keys);
    return n === null ? 0 : n;
  }

  async mget(keys) {
    const values = await this.client._command(SOFT_FAIL, 'MGET', ...keys);
    return values === null ? keys.map(() => null) : values;
  }

  // SCAN with an escaped MATCH pattern and a large COUNT; each batch of keys that really start
  // with the prefix is UNLINKed without waiting, so deletes travel with the next SCAN. Key
  // names come back as Latin-1 strings (one char per byte): any bytes survive the round
  // trip, without the cost of a Buffer per key.
  async delPrefix(prefix) {
    const wanted = Buffer.from(prefix).toString('latin1');
    const pattern = Buffer.from(`${escapeGlob(wanted)}*`, 'latin1');
    let deleted = 0;
    let failure = null;
    const deletes = [];
    let batch = [];
    const flush = () => {
      if (batch.length === 0) return;
      // Handled at once: a failed UNLINK must not become an unhandled rejection while the
      // scan goes on; the first failure is rethrown at the end.
      deletes.push(this.client.call('UNLINK', ...batch).then(
        (n) => { deleted += n; },
        (err) => { failure = failure || err; },
      ));
      batch = [];
    };
    let cursor = '0';
    try {
      do {
        const [next, keys] = await this.client._command(REPLY_LATIN1, 'SCAN', cursor, 'MATCH', pattern, 'COUNT', this.scanCount);
        cursor = next;
        for (const key of keys) {
          // MATCH is only a filter: a key is deleted only if it literally starts with the prefix.
          if (key.startsWith(wanted)) {
            // ASCII names go as they are; others as their exact bytes.
            batch.push(ASCII.test(key) ? key : Buffer.from(key, 'latin1'));
            if (batch.length >= this.deleteBatch) flush();
          }
        }
        flush();
      } while (cursor !== '0' && failure === null);
    } finally {
      await Promise.all(deletes);
    }
    if (failure) throw failure;
    return deleted;
  }
}

/** A cache on the embedded in-process store. */
class MemoryCache {
  constructor(store, { maxValueBytes = DEFAULT_MAX_VALUE_BYTES } = {}) {
    checkPositiveInteger('maxValueBytes', maxValueBytes);
    this.store = store;
    this.maxValueBytes = maxValueBytes;
    this.backend = 'memory';
  }

  get(key) {
    return Promise.resolve(this.store.get(key));
  }

  getBuffer(key) {
    return Promise.resolve(this.store.getBuffer(key));
  }

  set(key, value, ttlSec) {
    // false when the entry alone is larger than the store's byte bound.
    return Promise.resolve(this.store.set(key, value, ttlSec * 1000));
  }

  del(keys) {
    let n = 0;
    for (const key of keys) if (this.store.del(key)) n += 1;
    return Promise.resolve(n);
  }

  mget(keys) {
    return Promise.resolve(this.store.mget(keys));
  }

  delPrefix(prefix) {
    // In steps of a few milliseconds, so a large store never holds the event loop.
    return this.store.deletePrefixAsync(prefix);
  }
}

/**
 * The cache functions bound to one backend. `options.client` is a RedisClient; without it
 * (or with `options.store`) the embedded store is used.
 */
function createCache(options = {}) {
  let impl;
  if (options.client instanceof RedisClient) {
    impl = new RedisCache(options.client, options);
  } else if (options.client !== undefined && options.client !== null) {
    throw new TypeError('option client must be a RedisClient from hirecache/redis');
  } else {
    const { MemoryStore } = require('../store/memory-store');
    const store = options.store || new MemoryStore(options.memory || {});
    impl = new MemoryCache(store, options);
  }
  return bindCache(() => impl);
}

function bindCache(resolve) {
  /** The cached string, or null on a miss. Never rejects: a Redis failure reads as a miss. */
  function cacheGet(key) {
    checkKey(key);
    return resolve().get(key);
  }

  /** Like cacheGet, with the value as a Buffer (for binary values). */
  function cacheGetBuffer(key) {
    checkKey(key);
    return resolve().getBuffer(key);
  }

  /**
   * Stores `value` under `key` for `ttlSec` seconds with one atomic SET … EX. Resolves true
   * when stored, false when Redis failed; never rejects for a Redis failure. A bad key, value
   * or TTL throws at the call (TypeError / RangeError).
   */
  function cacheSet(key, value, ttlSec = 30) {
    checkKey(key);
    checkTtl(ttlSec);
    const impl = resolve();
    checkValue(value, impl.maxValueBytes);
    return impl.set(key, value, ttlSec);
  }

  /** Deletes keys; resolves how many existed (0 when Redis failed). */
  function cacheDel(...keys) {
    if (keys.length === 1 && Array.isArray(keys[0])) keys = keys[0];
    keys.forEach((k, i) => checkKey(k, `keys[${i}]`));
    if (keys.length === 0) return Promise.resolve(0);
    return resolve().del(keys);
  }

  /** One MGET: an array of string|null in the order of `keys` (all null when Redis failed). */
  function cacheMGet(keys) {
    if (!Array.isArray(keys)) throw new TypeError(`keys must be an array, got ${describe(keys)}`);
    keys.forEach((k, i) => checkKey(k, `keys[${i}]`));
    if (keys.length === 0) return Promise.resolve([]);
    return resolve().mget(keys);
  }

  /**
   * Deletes every key that starts with `prefix` (taken literally: `* ? [ ] \` are not
   * patterns) and resolves how many went. Non-blocking on Redis (SCAN + UNLINK). Rejects if
   * Redis fails midway, since the deletion is then incomplete.
   */
  function cacheDelPrefix(prefix) {
    if (typeof prefix !== 'string') throw new TypeError(`prefix must be a non-empty string, got ${describe(prefix)}`);
    if (prefix.length === 0) {
      throw new RangeError('prefix must not be empty: an empty prefix would delete every key');
    }
    return resolve().delPrefix(prefix);
  }

  /** 'redis' or 'memory': where this cache keeps its entries. */
  function cacheBackend() {
    return resolve().backend;
  }

  return { cacheGet, cacheGetBuffer, cacheSet, cacheDel, cacheMGet, cacheDelPrefix, cacheBackend };
}

// The process-wide cache: on getRedisClient(), or on the embedded store when Redis is
// disabled. Resolved at first use, so requiring this module reads no configuration.
let defaultImpl;
function defaultCache() {
  if (defaultImpl) return defaultImpl;
  const client = getRedisClient();
  if (client) {
    defaultImpl = new RedisCache(client);
  } else {
    const { MemoryStore } = require('../store/memory-store');
    defaultImpl = new MemoryCache(new MemoryStore(memoryOptionsFromEnv()));
  }
  return defaultImpl;
}

function memoryOptionsFromEnv() {
  const options = {};
  const read = (name, key) => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return;
    if (!/^\d+$/.test(raw.trim())) {
      const err = new HirecacheError(`${name} must be a positive integer, got ${JSON.stringify(raw)}`, 'ERR_INVALID_CONFIG');
      throw err;
    }
    options[key] = Number(raw);
  };
  read('HIRECACHE_MEMORY_MAX_ENTRIES', 'maxEntries');
  read('HIRECACHE_MEMORY_MAX_BYTES', 'maxBytes');
  return options;
}

module.exports = { ...bindCache(defaultCache), createCache, escapeGlob };
