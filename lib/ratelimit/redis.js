'use strict';
// The Redis limiter: one Lua script per decision on one key, with a local fallback while
// Redis cannot be reached and a local memory of refusals Redis answered.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { performance } = require('perf_hooks');
const { LocalLimiter } = require('../binding');
const {
  ReplyError,
  ConnectionError,
  CommandTimeoutError,
  OutcomeUnknownError,
  QueueFullError,
  ClientClosedError,
} = require('../errors');
const {
  ALLOWED, STATE_CHECK_MS, FOREVER_MS, MAX_DEBT_UNITS, KNOWN_REFUSED_TRUST_MS,
  makeResult, nativeLimiter,
  keyArgError, pointsArgError, secDurationError, keyTooLong, keyString, overBurst, validPoints,
  BaseLimiter,
} = require('./shared');
const { MemoryRateLimiter } = require('./memory');

// The script that makes one decision on one bucket in Redis: lib/ratelimit/token_bucket.lua,
// read once when this module loads. Its SHA1 (for EVALSHA) is computed from the file's bytes,
// which are exactly what SCRIPT LOAD sends: the file is ASCII, so the string is the bytes.
const SCRIPT_BYTES = fs.readFileSync(path.join(__dirname, 'token_bucket.lua'));
const SCRIPT = SCRIPT_BYTES.toString('latin1');
const SCRIPT_SHA = crypto.createHash('sha1').update(SCRIPT_BYTES).digest('hex');
if (/[\u0080-\uffff]/.test(SCRIPT) || !SCRIPT.includes(`\nlocal MAX_DEBT = ${MAX_DEBT_UNITS}\n`)) {
  // A script whose bytes differ from what Redis hashes, or whose debt cap differs from the
  // C++ core's, would break EVALSHA or the agreement between the limiters.
  throw new Error(`hirecache: ${path.join(__dirname, 'token_bucket.lua')} must be ASCII and cap debts at ${MAX_DEBT_UNITS}`);
}

// Redis answers that mean "not reachable or not able to decide now", as opposed to a
// mistake (WRONGTYPE on our key, a script error) that must surface.
const UNAVAILABLE_REPLIES = new Set(['LOADING', 'BUSY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'READONLY', 'NOREPLICAS', 'OOM']);
// The client's errors that mean "Redis cannot be reached or did not answer": only these
// send a decision to the fallback. Anything else (a bug, a wrong argument) rejects.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH',
  'ERR_OUTCOME_UNKNOWN', 'ERR_QUEUE_FULL', 'ERR_CLIENT_CLOSED',
]);
const UNAVAILABLE_CLASSES = [ConnectionError, CommandTimeoutError, OutcomeUnknownError, QueueFullError, ClientClosedError];

// One SCRIPT LOAD at a time per client, shared by every limiter on it.
const scriptLoads = new WeakMap();

function loadScript(client) {
  let p = scriptLoads.get(client);
  if (!p) {
    p = client.call('SCRIPT', 'LOAD', SCRIPT).then(
      (sha) => {
        scriptLoads.delete(client);
        if (sha !== SCRIPT_SHA) throw new Error(`rate limiter: Redis answered SCRIPT LOAD with ${sha}, expected ${SCRIPT_SHA}`);
      },
      (err) => {
        scriptLoads.delete(client);
        throw err;
      },
    );
    scriptLoads.set(client, p);
  }
  return p;
}

// The script's reply: value * 4 + status, or -1 for a block without end.
const statusOf = (reply) => (reply < 0 ? 2 : reply % 4);
const valueOf = (reply) => (reply < 0 ? -1 : (reply - (reply % 4)) / 4);

function isUnavailable(err) {
  if (!(err instanceof Error)) return false;
  if (err instanceof ReplyError) return UNAVAILABLE_REPLIES.has(err.code);
  return UNAVAILABLE_CLASSES.some((Class) => err instanceof Class) || UNAVAILABLE_CODES.has(err.code);
}

/**
 * A limiter whose buckets live in Redis: one Lua script per decision (EVALSHA, reloaded on
 * NOSCRIPT), the clock read inside the script with TIME. A decision whose outcome is
 * unknown (the connection died after sending) is never sent again. When Redis cannot be
 * reached, decisions come from a local fallback limiter (per process) and status() says so.
 * Keys known to be over their limit are refused locally until their msBeforeNext, but for
 * at most a second after Redis said so (another process may delete or reward the key).
 */
class RedisRateLimiter extends BaseLimiter {
  constructor(config, client) {
    super(config);
    this.store = 'redis';
    this._client = client;
    this._prefix = config.keyPrefix === '' ? '' : `${config.keyPrefix}:`;
    const [scale, interval, tolerance] = LocalLimiter.shape(config.points, Math.round(config.duration * 1e6), config.burst);
    this._scale = scale;
    this._interval = interval;
    this._tolerance = tolerance;
    this._msDivisor = scale * 1000;
    this._blockMs = Math.ceil(config.blockDuration * 1000);
    // The script's fixed arguments, as the strings the client would make of them.
    this._argInterval = String(interval);
    this._argTolerance = String(tolerance);
    this._argScale = String(scale);
    this._argBlock = String(this._blockMs);
    this._source = `ratelimit:${config.keyPrefix}`;
    this._shadow = null;
    this._shadowOut = null;
    if (config.rejectLocally) {
      const { native, out } = nativeLimiter({ ...config, blockDuration: 0 });
      this._shadow = native;
      this._shadowOut = out;
      this._shadowCheck = native.check;
    }
    this._fallback = null;
    if (config.fallback) {
      this._fallback = new MemoryRateLimiter({ ...config, ...config.fallback, maxEntries: config.fallback.maxEntries || config.maxEntries });
    }
    this._usingFallback = false;
    this._lastError = null;
    this._stateCheckedAt = -Infinity;
    this._looksDown = false;
    this._probing = false;
  }

  // The numbers of a reply, computed here rather than in Lua: Redis's CPU is the ceiling.
  _admitted(debt, cost) {
    const after = debt + cost * this._interval;
    const consumed = Math.ceil(after / this._interval);
    return makeResult(Math.max(this.burst - consumed, 0), Math.ceil(after / this._msDivisor), consumed, debt === 0);
  }

  _refused(debt, cost) {
    const inUse = Math.ceil(debt / this._interval);
    const ms = Math.ceil((debt + cost * this._interval - this._tolerance) / this._msDivisor);
    return makeResult(Math.max(this.burst - inUse, 0), ms, inUse + cost, false);
  }

  _blocked(ms, cost) {
    return makeResult(0, ms, this.burst + cost, false);
  }

  _send(op, key, cost) {
    return this._client.call('EVALSHA', SCRIPT_SHA, 1, this._prefix + key, op, cost === 1 ? '1' : String(cost), this._argInterval, this._argTolerance, this._argScale, this._argBlock);
  }

  /**
   * Runs one operation of the script for `key`; on NOSCRIPT loads the script and sends it
   * once more (NOSCRIPT means it did not run). `settle(reply)` turns the reply into the
   * promise's outcome; `local(fallbackLimiter)` decides instead when Redis is unavailable.
   */
  _run(op, key, cost, settle, local) {
    if (this._usingFallback && this._redisLooksDown()) return local(this._fallback);
    return this._send(op, key, cost).then(
      (reply) => {
        if (this._usingFallback) this._setFallback(false, null);
        return settle(reply);
      },
      (err) => {
        if (err instanceof ReplyError && err.code === 'NOSCRIPT') {
          return loadScript(this._client)
            .then(() => this._send(op, key, cost))
            .then(
              (reply) => {
                if (this._usingFallback) this._setFallback(false, null);
                return settle(reply);
              },
              (err2) => this._unavailable(err2, local),
            );
        }
        return this._unavailable(err, local);
      },
    );
  }

  _unavailable(err, local) {
    if (this._fallback === null || !isUnavailable(err)) return Promise.reject(err);
    this._setFallback(true, err);
    return local(this._fallback);
  }

  /**
   * While serving from the fallback: whether the client says it is not connected. Then a
   * decision is made locally at once instead of waiting in the client for a reconnect
   * attempt; one PING at a time goes out as a probe. Reads the client's state at most every
   * 50 ms.
   */
  _redisLooksDown() {
    const now = performance.now();
    if (now - this._stateCheckedAt < STATE_CHECK_MS) return this._looksDown;
    this._stateCheckedAt = now;
    this._looksDown = typeof this._client.status === 'function' && this._client.status().ready === false;
    if (this._looksDown && !this._probing) {
      this._probing = true;
      const done = () => {
        this._probing = false;
        this._stateCheckedAt = -Infinity; // look again at the next decision
      };
      this._client.call('PING').then(done, done);
    }
    return this._looksDown;
  }

  _setFallback(active, err) {
    // Kept after recovery, as the client's is: the last reason decisions went local, and when.
    if (err) this._lastError = { code: err.code || 'ERR', message: err.message, at: Date.now() };
    if (this._usingFallback === active) return;
    this._usingFallback = active;
    if (typeof this._client.noteFallback === 'function') this._client.noteFallback(this._source, active);
  }

  /** Takes `points` (default 1) from the key's bucket; rejects with the result when they are not there. */
  consume(key, points = 1) {
    const k = typeof key === 'string' ? key : keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (points !== 1 && !validPoints(points)) return Promise.reject(pointsArgError(points));
    if (points > this.burst) return Promise.reject(overBurst(this, points));
    if (k.length > this.maxKeyLength) return Promise.reject(keyTooLong(this));
    if (this._shadow !== null) {
      // Known to be over the limit: refuse here, without a Redis call. The shadow only
      // ever refuses, and trusts what Redis said for at most KNOWN_REFUSED_TRUST_MS; anything
      // it might admit goes to Redis, so it never admits more.
      const flags = this._shadowCheck(k, points);
      if (flags > 0 && (flags & ALLOWED) === 0) {
        const out = this._shadowOut;
        return Promise.reject(makeResult(out[0], out[1] > FOREVER_MS ? -1 : out[1], out[2], false));
      }
    }
    return this._run('c', k, points, (reply) => this._settleConsume(k, points, reply), (fb) => fb.consume(k, points));
  }

  _settleConsume(key, cost, reply) {
    const status = statusOf(reply);
    const value = valueOf(reply);
    if (status === 1) return this._admitted(value, cost);
    if (status === 0) {
      const refused = this._refused(value, cost);
      if (this._shadow !== null) this._remember(key, value, refused.msBeforeNext);
      return Promise.reject(refused);
    }
    if (this._shadow !== null) this._rememberBlock(key, value, cost);
    return Promise.reject(this._blocked(value, cost));
  }

  /**
   * Remembers in the shadow that `key` owed `debt` units, refusing for `ms`: trusted for
   * min(ms, KNOWN_REFUSED_TRUST_MS), then Redis is asked again.
   */
  _remember(key, debt, ms) {
    if (debt > 0 && ms > 0) this._shadow.observe(key, debt, Math.min(ms, KNOWN_REFUSED_TRUST_MS));
    else this._shadow.observe(key, 0, 0);
  }

  /**
   * Remembers a block that Redis reported (`ms` left, -1 without end) as the debt that
   * refuses a request of `cost` points exactly that long. A block without end (or one too
   * long for a debt) is never kept locally: such a key is asked of Redis each time.
   */
  _rememberBlock(key, ms, cost) {
    const debt = ms * this._msDivisor + this._tolerance - cost * this._interval;
    if (ms > 0 && debt <= MAX_DEBT_UNITS) this._remember(key, Math.max(debt, 0), ms);
    else this._shadow.observe(key, 0, 0);
  }

  /** The key's current numbers, or null when it has no bucket in use (a full bucket). */
  get(key) {
    const k = keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (k.length > this.maxKeyLength) return Promise.reject(keyTooLong(this));
    return this._run('g', k, 0, (reply) => this._settleGet(reply), (fb) => fb.get(k));
  }

  /** The outcome of get() from the script's reply: null for a full bucket. */
  _settleGet(reply) {
    if (statusOf(reply) === 2) return this._blocked(valueOf(reply), 0);
    const debt = valueOf(reply);
    return debt === 0 ? null : this._admitted(debt, 0);
  }

  /** Takes `points` even if they are not there. */
  penalty(key, points = 1) {
    return this._change('p', key, points, (fb, k, p) => fb.penalty(k, p));
  }

  /** Gives back `points`, never more than a full bucket. */
  reward(key, points = 1) {
    return this._change('r', key, points, (fb, k, p) => fb.reward(k, p));
  }

  _change(op, key, points, local) {
    const k = keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (!validPoints(points)) return Promise.reject(pointsArgError(points));
    if (k.length > this.maxKeyLength) return Promise.reject(keyTooLong(this));
    return this._run(op, k, points, (reply) => this._settleChange(op, k, points, reply), (fb) => local(fb, k, points));
  }

  /** The outcome of a penalty ('p') or a reward ('r') of `points` on `key` from the script's reply. */
  _settleChange(op, key, points, reply) {
    if (statusOf(reply) === 2) return this._blocked(valueOf(reply), 0);
    const debt = valueOf(reply);
    const units = points * this._interval;
    const after = op === 'p' ? Math.min(debt + units, MAX_DEBT_UNITS) : Math.max(debt - units, 0);
    if (this._shadow !== null) {
      // A penalty only makes the shadow's refusals safer; a reward may end them.
      if (op === 'p') this._remember(key, after, Math.ceil(after / this._msDivisor));
      else this._shadow.delete(key);
    }
    const consumed = Math.ceil(after / this._interval);
    // As the local limiter (and rate-limiter-flexible) say: first when the bucket was full.
    return makeResult(Math.max(this.burst - consumed, 0), Math.ceil(after / this._msDivisor), consumed, debt === 0);
  }

  /**
   * Refuses the key for `secDuration` seconds (0: until delete()); afterwards the key still
   * owes what it owed (less the refill meanwhile): a block never cancels a debt.
   */
  block(key, secDuration) {
    const k = keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (k.length > this.maxKeyLength) return Promise.reject(keyTooLong(this));
    const err = secDurationError(secDuration);
    if (err !== null) return Promise.reject(err);
    const ms = Math.ceil(secDuration * 1000);
    return this._run('b', k, ms, (reply) => this._settleBlock(k, reply), (fb) => fb.block(k, secDuration));
  }

  /** The outcome of block() on `key` from the script's reply. */
  _settleBlock(key, reply) {
    const ms = valueOf(reply);
    if (this._shadow !== null) this._rememberBlock(key, ms, 1);
    return this._blocked(ms, 0);
  }

  /** Forgets the key everywhere; resolves whether Redis had a bucket for it. */
  delete(key) {
    const k = keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (k.length > this.maxKeyLength) return Promise.reject(keyTooLong(this));
    if (this._shadow !== null) this._shadow.delete(k);
    if (this._fallback !== null) this._fallback._native.delete(k);
    if (this._usingFallback && this._redisLooksDown()) return Promise.resolve(false);
    return this._client.call('DEL', this._prefix + k).then(
      (n) => {
        if (this._usingFallback) this._setFallback(false, null);
        return n > 0;
      },
      (err) => this._unavailable(err, () => Promise.resolve(false)),
    );
  }

  /**
   * Where decisions come from: { store: 'redis', usingFallback, lastError, entries } where
   * entries counts the buckets this process holds (fallback and known-refused keys).
   */
  status() {
    const fb = this._fallback !== null ? this._fallback._native.stats() : null;
    const sh = this._shadow !== null ? this._shadow.stats() : null;
    return {
      store: 'redis',
      usingFallback: this._usingFallback,
      lastError: this._lastError,
      entries: (fb ? fb.entries : 0) + (sh ? sh.entries : 0),
      fallbackEntries: fb ? fb.entries : 0,
      knownRefusedEntries: sh ? sh.entries : 0,
    };
  }
}

module.exports = { RedisRateLimiter, SCRIPT, SCRIPT_SHA };
