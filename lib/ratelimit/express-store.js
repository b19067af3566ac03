'use strict';
// A Store for express-rate-limit on a hirecache client, so that an application keeps
// express-rate-limit and all its options and only swaps its store:
//
//   const { rateLimit } = require('express-rate-limit');
//   const { HirecacheStore } = require('hirecache/ratelimit');
//   app.use(rateLimit({ windowMs: 60000, limit: 100, store: new HirecacheStore() }));
//
// Its counts are rate-limit-redis's fixed window: one integer per key, expiring windowMs
// after the window's first hit. Every hit is one EVALSHA of the script below (loaded with
// SCRIPT LOAD on NOSCRIPT, one load per client). A failure of Redis rejects with the
// client's error and is never turned into a count: express-rate-limit's own
// passOnStoreError option decides what the request gets. See docs/ratelimit.md.
const { ReplyError } = require('../errors');
const { RedisClient, UNSENT_EARLY } = require('../client/client');
const { groupBySlot } = require('../client/cluster');
const { luaScript, loadScript } = require('./scripts');
const { prefixKey } = require('../client/commands');
const { escapeGlob } = require('../cache/cache');
const { describe, invalidParameterError, checkType, checkNumber, checkKnownOptions } = require('../util/validate');

const WHERE = { where: 'HirecacheStore' };
const KNOWN_OPTIONS = ['client', 'prefix', 'resetExpiryOnChange'];
// rate-limit-redis's ways to reach Redis; this store takes a hirecache client instead.
const FOREIGN_CLIENT_OPTIONS = ['sendCommand', 'sendCommandCluster'];
const DEFAULT_PREFIX = 'rl:';
// Ten years: the same bound as createLimiter's duration. express-rate-limit's own
// MemoryStore stops at 2^31 - 1 ms (its timers); a Redis expiry has no such limit.
const MAX_WINDOW_MS = 10 * 365 * 86400 * 1000;
// SCAN's COUNT and the keys per UNLINK of resetAll(), as the cache's cacheDelPrefix uses.
const SCAN_COUNT = 1000;
const UNLINK_BATCH = 500;

// One counter per key. KEYS[1]: the counter. ARGV[1]: '+' counts a hit, '-' takes one back,
// 'g' reads, 'x' deletes every one of KEYS that holds a count (resetAll(): a key under the
// prefix that is not a count, such as a hirecache limiter's bucket, stays). ARGV[2]:
// windowMs. ARGV[3]: '1' restarts the window on every change (resetExpiryOnChange).
//
// '+' answers the count and the ms left in the window as ONE integer, count * (windowMs + 1)
// + ms, when that is exact (below 2^53, and ms <= windowMs, which only a key written with a
// longer window breaks); otherwise as the pair { count, ms }. The ms left are the key's own
// expiry read on Redis's clock (PTTL): the expiry is an absolute time kept by Redis, so
// every app server, whatever its own clock says, hears how long the window still runs.
// A count below 1 after INCR (a foreign DECR took it below zero) starts over as a new key;
// a key without expiry (a foreign SET) gets one, the count kept. '-' never creates a key
// and never takes a count below zero; a key at zero keeps its window, as rate-limit-redis's.
// lib/ratelimit/express_store.lua.
const SCRIPT = luaScript('express_store.lua');


/** NOSCRIPT: the script is not loaded (SCRIPT FLUSH, a restart, a failover); the call did not run. */
const isNoScript = (err) => err instanceof ReplyError && err.code === 'NOSCRIPT';

const nothing = () => undefined;

/** The error of a method called before express-rate-limit called init(). */
function notInitialized(method) {
  const err = new Error(
    `HirecacheStore: ${method}() before init(): give the store to express-rate-limit (rateLimit({ store })), which calls init() with its windowMs`,
  );
  err.code = 'ERR_INVALID_STATE';
  return err;
}

/** The ms of a window from express-rate-limit's windowMs: whole ms, rounded up (a window never shorter). */
function windowOf(options) {
  checkType('init(options)', options, 'object', WHERE);
  const ms = checkNumber('init(options): windowMs', options.windowMs, {
    ...WHERE,
    min: 1,
    max: MAX_WINDOW_MS,
    expected: `a number of ms from 1 to ${MAX_WINDOW_MS}`,
  });
  return Math.ceil(ms);
}

/** Validates the constructor's options; throws a TypeError naming the option. */
function storeOptions(options) {
  checkType('options', options, 'object', WHERE);
  for (const name of FOREIGN_CLIENT_OPTIONS) {
    if (Object.prototype.hasOwnProperty.call(options, name)) {
      const err = new TypeError(
        `HirecacheStore: option ${name} is rate-limit-redis's; pass client (a hirecache RedisClient, default getRedisClient()) instead`,
      );
      err.code = 'ERR_INVALID_ARG_VALUE';
      throw err;
    }
  }
  checkKnownOptions(options, KNOWN_OPTIONS, WHERE);
  let client = options.client;
  if (client === undefined) {
    client = require('../redis').getRedisClient();
    if (client === null) {
      throw new TypeError('HirecacheStore: Redis is disabled (REDIS_URL=disabled) and no client was given');
    }
  } else if (!(client instanceof RedisClient)) {
    throw invalidParameterError('option client', 'a hirecache RedisClient (from createClient or getRedisClient)', client, WHERE);
  }
  const prefix = checkType('option prefix', options.prefix === undefined ? DEFAULT_PREFIX : options.prefix, 'string', WHERE);
  const resetExpiryOnChange = checkType(
    'option resetExpiryOnChange',
    options.resetExpiryOnChange === undefined ? false : options.resetExpiryOnChange,
    'boolean',
    WHERE,
  );
  return { client, prefix, resetExpiryOnChange };
}

/**
 * express-rate-limit's Store on a hirecache RedisClient: a fixed window per key, as
 * rate-limit-redis keeps it.
 *
 * options.client: the client (default getRedisClient()); its keyPrefix comes first in every
 *   key. options.prefix: what comes next (default 'rl:'). options.resetExpiryOnChange: every
 *   increment and decrement restarts the key's window (rate-limit-redis's option before v6).
 *   Any other option is a TypeError naming it.
 *
 * Every method rejects with the client's error when Redis fails (unreachable, the breaker
 * open, a timeout, an outcome unknown): no count is ever made up, and nothing whose outcome
 * is unknown is sent again (it may have counted). Only NOSCRIPT, which means the script did
 * not run, loads the script and sends the call once more.
 */
class HirecacheStore {
  constructor(options = {}) {
    const { client, prefix, resetExpiryOnChange } = storeOptions(options);
    /** The hirecache client the counts are kept through. */
    this.client = client;
    /** Prepended to every key (after the client's keyPrefix); express-rate-limit reads it. */
    this.prefix = prefix;
    /** Counts are shared by every store on the same Redis and prefix. */
    this.localKeys = false;
    this.resetExpiryOnChange = resetExpiryOnChange;
    /** express-rate-limit's windowMs, set by init(); undefined before. */
    this.windowMs = undefined;
    // The client's keyPrefix comes first, as for every key it sends: a string prefix joins
    // as a string; a Buffer one makes each key a Buffer (prefixKey).
    const kp = client._keyPrefix;
    this._clientPrefix = kp;
    this._stringPrefix = typeof kp === 'string' ? kp + prefix : null;
    // The script's fixed arguments, set by init().
    this._argWindow = null;
    this._argReset = resetExpiryOnChange ? '1' : '0';
    this._decodeHit = null;
    this._initError = null;
  }

  /** The counter's key as Redis stores it, or throws a TypeError for a key that is not a string. */
  _redisKey(key) {
    if (typeof key !== 'string') {
      throw invalidParameterError('key', 'a string', key, WHERE);
    }
    return this._stringPrefix !== null ? this._stringPrefix + key : prefixKey(this._clientPrefix, this.prefix + key);
  }

  /**
   * Called by express-rate-limit with its options: takes windowMs (whole ms, a fraction
   * rounded up). Throws a TypeError / RangeError naming windowMs when it is not a number from
   * 1 ms to ten years.
   */
  init(options) {
    let windowMs;
    try {
      windowMs = windowOf(options);
    } catch (err) {
      // express-rate-limit only logs what init() throws: the counts then reject with it.
      this._initError = err;
      throw err;
    }
    this._initError = null;
    const m = windowMs + 1;
    this.windowMs = windowMs;
    this._argWindow = String(windowMs);
    // The script's answer to '+': count * (windowMs + 1) + ms left, or the pair. The split
    // is exact: % of doubles is exact, and so is dividing an exact multiple.
    this._decodeHit = (reply) => {
      let hits;
      let ttl;
      if (typeof reply === 'number') {
        ttl = reply % m;
        hits = (reply - ttl) / m;
      } else {
        hits = reply[0];
        ttl = reply[1];
      }
      return { totalHits: hits, resetTime: new Date(Date.now() + ttl) };
    };
  }

  // UNSENT_EARLY: a call not yet written when the breaker opens settles at once; one written
  // waits for its reply or its deadline (then rejects, its outcome unknown). A read ('g')
  // needs no window: '0' stands in for one before init().
  _send(key, op) {
    return this.client._command(UNSENT_EARLY, 'EVALSHA', SCRIPT.sha, 1, key, op, this._argWindow || '0', this._argReset);
  }

  /**
   * Runs the script's operation `op` on Redis key `key`: on NOSCRIPT (the call did not run)
   * loads the script and sends it once more.
   */
  _run(key, op) {
    return this._send(key, op).catch((err) => {
      if (!isNoScript(err)) throw err;
      return loadScript(this.client, SCRIPT).then(() => this._send(key, op));
    });
  }

  /**
   * Counts one hit on `key`: resolves { totalHits, resetTime } (resetTime: now on this
   * server plus the ms Redis says the window still runs). Rejects with the client's error
   * when Redis fails; a hit whose outcome is unknown is never sent again.
   */
  increment(key) {
    if (this._argWindow === null) return Promise.reject(this._initError || notInitialized('increment'));
    let k;
    try {
      k = this._redisKey(key);
    } catch (err) {
      return Promise.reject(err);
    }
    return this._send(k, '+').then(this._decodeHit, (err) => {
      if (!isNoScript(err)) throw err;
      return loadScript(this.client, SCRIPT).then(() => this._send(k, '+').then(this._decodeHit));
    });
  }

  /**
   * Takes back one hit of `key` (express-rate-limit's skipSuccessfulRequests /
   * skipFailedRequests): never below zero, and never creates a key (one that expired or was
   * reset meanwhile stays absent). Rejects with the client's error when Redis fails.
   */
  decrement(key) {
    if (this._argWindow === null) return Promise.reject(this._initError || notInitialized('decrement'));
    let k;
    try {
      k = this._redisKey(key);
    } catch (err) {
      return Promise.reject(err);
    }
    return this._run(k, '-').then(nothing);
  }

  /**
   * The count and reset time of `key` ({ totalHits, resetTime }), or undefined when it has
   * none; resetTime is undefined for a key without expiry. express-rate-limit's getKey().
   */
  get(key) {
    let k;
    try {
      k = this._redisKey(key);
    } catch (err) {
      return Promise.reject(err);
    }
    return this._run(k, 'g').then((reply) => {
      if (reply === null) return undefined;
      const totalHits = Number(reply[0]);
      if (!Number.isSafeInteger(totalHits)) {
        throw new TypeError(`HirecacheStore: the key of ${describe(key)} holds ${describe(reply[0])}, not a count`);
      }
      const ttl = reply[1];
      return { totalHits, resetTime: ttl >= 0 ? new Date(Date.now() + ttl) : undefined };
    });
  }

  /** Deletes the count of `key` (DEL). Rejects with the client's error when Redis fails. */
  resetKey(key) {
    let k;
    try {
      k = this._redisKey(key);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.client._command(UNSENT_EARLY, 'DEL', k).then(nothing);
  }

  /**
   * Deletes every count under this store's prefix (with the client's keyPrefix before it):
   * SCAN with the prefix as a literal MATCH pattern, and UNLINK of the counts it finds (keys
   * whose value is an integer; anything else under the prefix stays), so Redis is
   * never blocked, but it walks the whole database (O(keys) in SCAN calls) and is not atomic:
   * a hit counted during the walk may or may not be deleted. Rejects with the first failure
   * (some counts may then be left), and with a RangeError when the whole prefix is empty
   * (it would delete every key of the database).
   */
  async resetAll() {
    const kp = this._clientPrefix;
    const whole = typeof kp === 'string' ? Buffer.from(kp + this.prefix) : prefixKey(kp, this.prefix);
    if (whole.length === 0) {
      throw new RangeError("HirecacheStore: resetAll() with an empty prefix (and no client keyPrefix) would delete every key; give the store a prefix");
    }
    // SCAN answers keys as Latin-1 strings (one char per byte), so any bytes survive.
    const wanted = whole.toString('latin1');
    const pattern = Buffer.from(`${escapeGlob(wanted)}*`, 'latin1');
    const unlinks = [];
    let failure = null;
    const unlink = (keys) => {
      // Only counts go (the script checks each value): a hirecache limiter's buckets under the
      // same prefix (`${keyPrefix}:tb:…`) are not this store's. Handled at once, so a failure
      // is no unhandled rejection while the walk goes on. On a cluster, one call per slot.
      const send = (some) => this.client._command(UNSENT_EARLY, 'EVALSHA', SCRIPT.sha, some.length, ...some, 'x', '0', '0');
      const groups = this.client._isCluster && keys.length > 1 ? groupBySlot(keys) : null;
      for (const some of groups === null ? [keys] : [...groups.values()].map((g) => g.keys)) {
        unlinks.push(send(some).catch((err) => (isNoScript(err) ? loadScript(this.client, SCRIPT).then(() => send(some)) : Promise.reject(err))).catch((err) => {
          failure = failure || err;
        }));
      }
    };
    try {
      await this.client._scanAll(UNSENT_EARLY, pattern, SCAN_COUNT, (keys) => {
        let batch = [];
        for (const key of keys) {
          // MATCH filters; only a key that really starts with the prefix goes.
          if (!key.startsWith(wanted)) continue;
          batch.push(Buffer.from(key, 'latin1'));
          if (batch.length === UNLINK_BATCH) {
            unlink(batch);
            batch = [];
          }
        }
        if (batch.length > 0) unlink(batch);
      }, () => failure !== null);
    } finally {
      await Promise.all(unlinks);
    }
    if (failure !== null) throw failure;
  }
}

module.exports = { HirecacheStore, EXPRESS_STORE_SCRIPT: SCRIPT.text, EXPRESS_STORE_SCRIPT_SHA: SCRIPT.sha };
