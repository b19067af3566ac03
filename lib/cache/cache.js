'use strict';
// Drop-in for an API's lib/cache.js. The exact calls routes already make keep their meaning:
//   const hit = await cacheGet(key); if (hit) return JSON.parse(hit);
//   await cacheSet(key, JSON.stringify(data), 30);
//   const n = await cacheDelPrefix(prefix);
// On Redis, configured by REDIS_URL; with REDIS_URL=disabled, on the embedded in-process
// store (C++, bounded by entries and bytes, LRU). On Redis, while the client's circuit
// breaker is not closed, the cache serves from a fallback store of the same kind, dropped
// when Redis is back (HIRECACHE_FALLBACK=off turns it off); see docs/cache.md.
const { getRedisClient } = require('../redis');
const {
  RedisClient, checkValueSize, checkTtl, REPLY_BUFFERS, SOFT_FAIL, REPLY_IS_OK, BREAKER_EARLY, UNSENT_EARLY,
} = require('../client/client');
const { describe, checkInteger, checkKnownOptions } = require('../util/validate');
const { fallbackOptions, memoryOptionsFromEnv, fallbackOptionsFromEnv } = require('./config');
const { FallbackStore } = require('./fallback-store');
const { LostInvalidations } = require('./lost-invalidations');
const { nextTurn } = require('./next-turn');
const { MemoryStore } = require('../store/memory-store');
const { prefixKey } = require('../client/commands');

const { clientConstants } = require('../binding');

const DEFAULT_MAX_VALUE_BYTES = clientConstants.defaults.maxValueBytes;

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

// Every command the cache sends resolves null / false on failure instead of rejecting
// (SOFT_FAIL), and one still waiting when the breaker opens settles at once (BREAKER_EARLY),
// so an outage costs a caller no more than the breaker's own delay.
const REDIS_FLAGS = SOFT_FAIL | BREAKER_EARLY;
// Deletions (DEL, and the SCAN + UNLINK of a prefix) wait for their reply once written: their
// outcome matters more than their latency, and a stall of a few milliseconds (a busy host)
// must not turn a deletion Redis is about to make into a lost invalidation. One not yet
// written when the breaker opens has not run, and settles at once (UNSENT_EARLY).
const DELETE_FLAGS = SOFT_FAIL | UNSENT_EARLY;
// A deletion that failed while the breaker stayed closed (one timeout, one dropped
// connection) is re-issued after this long, rather than waiting for an outage to end.
const RETRY_REISSUE_MS = 1000;
// When a cache is collected: its subscription goes, and a fallback it had noted in use is
// un-noted (a cache made per request must not leave the client saying so for ever).
const detachOnCollect = new FinalizationRegistry((held) => {
  held.unwatch();
  if (held.noted) held.client.noteFallback('cache', false);
});

/**
 * A cache on a Redis client, with a fallback store for outages.
 *
 * While client.breakerState is 'closed' every call goes to Redis, at the cost of one field
 * read. Otherwise reads and writes go to the fallback store (when there is one: `fallback:
 * false` turns it off, and calls then go to Redis, which refuses them at once: a miss, false,
 * 0). Deletions during an outage go to the fallback and are recorded as lost invalidations;
 * when the breaker closes, the fallback is dropped and the recorded deletions are re-issued
 * to Redis.
 */
class RedisCache {
  #fallback;
  #held; // what the collection cleanup needs: the unsubscription, whether a fallback is noted
  #lost = new LostInvalidations();
  // True once this outage's lost deletions were logged: one line per outage.
  #warned = false;
  #reissuing = false;
  #retryTimer = null;
  // The outage the fallback store belongs to: how many times the breaker had opened.
  #storeOutage = -1;
  // The client's keyPrefix ('' for none): every key sent to Redis carries it; the fallback
  // store holds keys as the caller names them.
  #kp;

  constructor(client, options = {}) {
    const { maxValueBytes = client.options.maxValueBytes, scanCount = 1000, deleteBatch = 500 } = options;
    checkPositiveInteger('maxValueBytes', maxValueBytes);
    checkPositiveInteger('scanCount', scanCount);
    checkPositiveInteger('deleteBatch', deleteBatch);
    const fallback = fallbackOptions(options.fallback);
    this.client = client;
    this.maxValueBytes = maxValueBytes;
    this.scanCount = scanCount;
    this.deleteBatch = deleteBatch;
    this.backend = 'redis';
    this.#kp = client._keyPrefix;
    this.#fallback = fallback === null ? null : new FallbackStore(fallback);
    // The subscription holds the cache weakly and goes when the cache is collected, so a
    // cache made per request does not live as long as the client.
    const ref = new WeakRef(this);
    const unwatch = client._watch((type, detail) => {
      const cache = ref.deref();
      if (cache !== undefined) cache.#onClientEvent(type, detail);
    });
    this.#held = { unwatch, client, noted: false };
    detachOnCollect.register(this, this.#held);
  }

  #onClientEvent(type, detail) {
    if (type === 'breaker' && detail.state === 'closed') this.#recovered();
    else if (type === 'end') this.#ended();
  }

  /** The key as Redis stores it: with the client's keyPrefix. */
  #k(key) {
    return this.#kp === '' ? key : prefixKey(this.#kp, key);
  }

  #ks(keys) {
    return this.#kp === '' ? keys : keys.map((key) => this.#k(key));
  }

  get(key) {
    if (this.client.breakerState === 'closed') return this.client._get(REDIS_FLAGS, this.#k(key));
    const store = this.#outageStore();
    if (store === null) return this.client._get(REDIS_FLAGS, this.#k(key));
    return nextTurn(this.#countRead(store.get(key)));
  }

  getBuffer(key) {
    if (this.client.breakerState === 'closed') return this.client._get(REDIS_FLAGS | REPLY_BUFFERS, this.#k(key));
    const store = this.#outageStore();
    if (store === null) return this.client._get(REDIS_FLAGS | REPLY_BUFFERS, this.#k(key));
    return nextTurn(this.#countRead(store.getBuffer(key)));
  }

  set(key, value, ttlSec) {
    if (this.client.breakerState === 'closed') return this.client._setex(REDIS_FLAGS | REPLY_IS_OK, this.#k(key), value, ttlSec);
    const store = this.#outageStore();
    if (store === null) return this.client._setex(REDIS_FLAGS | REPLY_IS_OK, this.#k(key), value, ttlSec);
    // false when the entry alone is larger than the fallback's byte bound.
    const stored = store.set(key, value, ttlSec * 1000);
    if (stored) this.#fallback.writes += 1;
    return nextTurn(stored);
  }

  async mget(keys) {
    if (this.client.breakerState !== 'closed') {
      const store = this.#outageStore();
      if (store !== null) {
        const values = store.mget(keys);
        for (const v of values) this.#countRead(v);
        return nextTurn(values);
      }
    }
    const values = await this.client._command(REDIS_FLAGS, 'MGET', ...this.#ks(keys));
    return values === null ? keys.map(() => null) : values;
  }

  async del(keys) {
    if (this.client.breakerState !== 'closed') {
      this.#lose(keys, null);
      const store = this.#outageStore();
      let n = 0;
      if (store !== null) for (const key of keys) if (store.del(key)) n += 1;
      return nextTurn(n);
    }
    const n = await this.client._command(DELETE_FLAGS, 'DEL', ...this.#ks(keys));
    if (n !== null) return n;
    // Redis may or may not have run it: either way it is re-issued.
    this.#lose(keys, null);
    const store = this.#existingStore();
    if (store !== null) for (const key of keys) store.del(key);
    return 0;
  }

  async delPrefix(prefix) {
    if (this.client.breakerState !== 'closed') {
      this.#lose(null, prefix);
      const store = this.#outageStore();
      return nextTurn(store === null ? 0 : await store.deletePrefixAsync(prefix));
    }
    try {
      return await this.#scanAndUnlink(prefix);
    } catch (err) {
      // Some keys may be left: the deletion is re-issued whole, and the caller still hears
      // that this one did not complete.
      this.#lose(null, prefix);
      const store = this.#existingStore();
      if (store !== null) await store.deletePrefixAsync(prefix);
      throw err;
    }
  }

  // SCAN with an escaped MATCH pattern and a large COUNT; each batch of keys that really start
  // with the prefix is UNLINKed without waiting, so deletes travel with the next SCAN. Key
  // names come back as Latin-1 strings (one char per byte): any bytes survive the round
  // trip, without the cost of a Buffer per key. Rejects with the first failure.
  async #scanAndUnlink(prefix) {
    // Keys come back from SCAN as Redis stores them, with the client's keyPrefix: they are
    // UNLINKed as they are.
    const wanted = Buffer.from(this.#k(prefix)).toString('latin1');
    const pattern = Buffer.from(`${escapeGlob(wanted)}*`, 'latin1');
    let deleted = 0;
    let failure = null;
    const deletes = [];
    let batch = [];
    const flush = () => {
      if (batch.length === 0) return;
      // Handled at once: a failed UNLINK must not become an unhandled rejection while the
      // scan goes on; the first failure is rethrown at the end.
      deletes.push(this.client._command(UNSENT_EARLY, 'UNLINK', ...batch).then(
        (n) => { deleted += n; },
        (err) => { failure = failure || err; },
      ));
      batch = [];
    };
    const add = (key) => {
      batch.push(key);
      if (batch.length >= this.deleteBatch) flush();
    };
    try {
      await this.client._scanAll(UNSENT_EARLY, pattern, this.scanCount, (keys) => {
        for (const key of keys) {
          // MATCH is only a filter: a key is deleted only if it literally starts with the
          // prefix. ASCII names go as they are; others as their exact bytes.
          if (key.startsWith(wanted)) add(ASCII.test(key) ? key : Buffer.from(key, 'latin1'));
        }
        flush();
      }, () => failure !== null);
    } finally {
      await Promise.all(deletes);
    }
    if (failure) throw failure;
    return deleted;
  }

  /**
   * The fallback store for a call made while the breaker is not closed (created now if this
   * is the outage's first need), or null when the fallback is off.
   */
  #outageStore() {
    const fallback = this.#fallback;
    if (fallback === null) return null;
    // The breaker's state is read from the core at once, its events come a turn later: it
    // may have closed and opened again before the 'closed' event dropped the store. The
    // outage's identity (the count of openings, read from the core too) is checked on each
    // call, and a store from an earlier outage is dropped, never served.
    const outage = this.client._breakerOpenings;
    if (fallback.active && outage !== this.#storeOutage) fallback.drop();
    this.#storeOutage = outage;
    if (!fallback.active) this.#note(true);
    return fallback.store();
  }

  /** The fallback store if one exists already (never created for this), or null. */
  #existingStore() {
    return this.#fallback === null ? null : this.#fallback.peek();
  }

  #countRead(value) {
    this.#fallback.reads += 1;
    if (value !== null) this.#fallback.hits += 1;
    return value;
  }

  /** Records deletions Redis did not see (keys, or one prefix); logs once per outage. */
  #lose(keys, prefix) {
    if (this.#closedByApp()) return;
    if (keys !== null) this.#lost.addKeys(keys);
    else this.#lost.addPrefix(prefix);
    if (!this.#warned) {
      this.#warned = true;
      this.#log('warn', 'cache: a deletion did not reach Redis (Redis unavailable); it was applied to the '
        + 'in-memory fallback only, and other processes may serve the old value until it is re-issued when Redis '
        + 'is back. Further deletions are counted (cacheStats().lostInvalidations), not logged, until then.');
    }
    // A failure with the breaker closed gets no 'closed' event to wait for.
    if (this.client.breakerState === 'closed') this.#retryLater();
  }

  /** Tells the client whether this cache's fallback is in use, for its status().fallbacks. */
  #note(active) {
    if (this.#held.noted === active) return;
    this.#held.noted = active;
    this.client.noteFallback('cache', active);
  }

  #log(level, message) {
    this.client._log(level, message);
  }

  /** The breaker closed: Redis serves again. */
  #recovered() {
    const fallback = this.#fallback;
    if (fallback !== null && fallback.active) {
      fallback.drop();
      this.#note(false);
    }
    this.#reissue();
  }

  /** The application closed the client itself: nothing reaches Redis any more, by design. */
  #closedByApp() {
    const { state } = this.client.status();
    return state === 'closing' || state === 'closed';
  }

  /** The client closed for good: nothing will be served or re-issued any more. */
  #ended() {
    if (this.#fallback !== null) this.#fallback.drop();
    this.#note(false);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  #retryLater() {
    if (this.#retryTimer !== null || this.#closedByApp()) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#reissue();
    }, RETRY_REISSUE_MS);
    this.#retryTimer.unref();
  }

  /**
   * Sends Redis the deletions it missed, once it is back. Deleting a cache entry again is
   * harmless (at worst one more miss), so a deletion whose outcome is unknown is simply
   * sent again; one that fails again goes back in the record.
   */
  async #reissue() {
    if (this.#reissuing || this.client.breakerState !== 'closed') return;
    if (this.#lost.pending === 0) {
      // Redis is back and nothing waits: the next lost deletion is news again.
      this.#warned = false;
      return;
    }
    this.#reissuing = true;
    const { keys, prefixes, unrecorded } = this.#lost.take();
    let done = 0;
    let failed = 0;
    try {
      for (let i = 0; i < keys.length; i += this.deleteBatch) {
        const batch = keys.slice(i, i + this.deleteBatch);
        const n = await this.client._command(DELETE_FLAGS, 'UNLINK', ...this.#ks(batch));
        if (n === null) {
          this.#lost.restoreKeys(batch);
          failed += batch.length;
        } else {
          done += batch.length;
        }
      }
      for (const prefix of prefixes) {
        try {
          await this.#scanAndUnlink(prefix);
          done += 1;
        } catch {
          this.#lost.restorePrefix(prefix);
          failed += 1;
        }
      }
    } finally {
      this.#reissuing = false;
    }
    this.#lost.reissued += done;
    if (failed === 0) this.#warned = false;
    if (unrecorded > 0) {
      this.#log('warn', `cache: Redis is back; ${done} deletions it missed were re-issued, but ${unrecorded} more `
        + 'could not be recorded (too many during the outage): the values they should have removed may be served '
        + 'until their TTL ends.');
    } else if (done > 0) {
      this.#log('info', `cache: Redis is back; ${done} deletions it missed were re-issued.`);
    }
    if (failed > 0) {
      if (this.client.breakerState === 'closed') this.#retryLater();
    } else if (this.#lost.pending > 0) {
      // Deletions recorded while this pass ran.
      this.#reissue();
    }
  }

  /** { fallback, lostInvalidations } for cacheStats(). */
  stats() {
    const fallback = this.#fallback;
    const lost = this.#lost;
    return {
      backend: 'redis',
      store: null,
      fallback: fallback === null ? null : {
        active: fallback.active,
        ...fallback.size(),
        maxEntries: fallback.maxEntries,
        maxBytes: fallback.maxBytes,
        reads: fallback.reads,
        hits: fallback.hits,
        writes: fallback.writes,
        activations: fallback.activations,
      },
      lostInvalidations: { count: lost.count, pending: lost.pending, unrecorded: lost.unrecorded, reissued: lost.reissued },
    };
  }

  lostInvalidations() {
    return this.#lost.list();
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

  stats() {
    const { entries, bytes, maxEntries, maxBytes, hits, misses, evictions, expired } = this.store.stats();
    return {
      backend: 'memory',
      store: { entries, bytes, maxEntries, maxBytes, hits, misses, evictions, expired },
      fallback: null,
      lostInvalidations: null,
    };
  }

  lostInvalidations() {
    // Every deletion reaches the store: none is ever lost.
    return { keys: [], prefixes: [] };
  }
}

/**
 * The cache functions bound to one backend. `options.client` is a RedisClient; without it
 * (or with `options.store`) the embedded store is used. `options.fallback` (Redis only):
 * false, or { maxEntries, maxBytes } of the store that serves while Redis is unavailable.
 */
// createCache's options: with a client, and without one (the embedded store).
const REDIS_CACHE_OPTIONS = ['client', 'maxValueBytes', 'scanCount', 'deleteBatch', 'fallback'];
const MEMORY_CACHE_OPTIONS = ['client', 'store', 'memory', 'maxValueBytes'];

function createCache(options = {}) {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`createCache: options must be an object, got ${describe(options)}`);
  }
  const onRedis = options.client !== undefined && options.client !== null;
  // A name this cache does not use is refused, never ignored (a typo such as `fallbak`
  // would otherwise leave the fallback on without a word).
  checkKnownOptions(options, onRedis ? REDIS_CACHE_OPTIONS : MEMORY_CACHE_OPTIONS, {
    where: onRedis ? 'createCache (on a Redis client)' : 'createCache (on the embedded store)',
  });
  let impl;
  if (options.client instanceof RedisClient) {
    impl = new RedisCache(options.client, options);
  } else if (options.client !== undefined && options.client !== null) {
    throw new TypeError('option client must be a RedisClient from hirecache/redis');
  } else {
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

  /**
   * What the cache holds and has done: { backend, store, fallback, lostInvalidations } (see
   * lib/cache.d.ts). For health reports and metrics; cheap enough to call per scrape.
   */
  function cacheStats() {
    return resolve().stats();
  }

  /**
   * The deletions Redis did not see and that wait to be re-issued when it is back:
   * { keys, prefixes } (copies; at most 1000 in all).
   */
  function cacheLostInvalidations() {
    return resolve().lostInvalidations();
  }

  return {
    cacheGet,
    cacheGetBuffer,
    cacheSet,
    cacheDel,
    cacheMGet,
    cacheDelPrefix,
    cacheBackend,
    cacheStats,
    cacheLostInvalidations,
  };
}

// The process-wide cache: on getRedisClient(), or on the embedded store when Redis is
// disabled. Resolved at first use, so requiring this module reads no configuration.
let defaultImpl;
function defaultCache() {
  if (defaultImpl) return defaultImpl;
  const client = getRedisClient();
  if (client) {
    defaultImpl = new RedisCache(client, { fallback: fallbackOptionsFromEnv(process.env) });
  } else {
    defaultImpl = new MemoryCache(new MemoryStore(memoryOptionsFromEnv(process.env)));
  }
  return defaultImpl;
}

module.exports = { ...bindCache(defaultCache), createCache, escapeGlob };
