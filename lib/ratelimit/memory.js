'use strict';
// The in-process limiter: buckets in the C++ table (src/local_limiter.h), per process.
const {
  ALLOWED, FIRST, FOUND, KEY_TOO_LONG, FOREVER_MS,
  makeResult, refuseLater, nativeLimiter,
  keyArgError, pointsArgError, secDurationError, keyTooLong, keyString, overBurst, validPoints,
  callOptionsError, setDurationError, BaseLimiter,
} = require('./shared');

/**
 * A limiter whose buckets live in this process (the C++ table): per process, bounded in
 * entries, no I/O. Every method returns a promise, as the Redis limiter's do; a refusal
 * settles on a later turn of the event loop (refuseLater), so a loop of refused consumes
 * cannot starve timers and I/O.
 */
class MemoryRateLimiter extends BaseLimiter {
  constructor(config) {
    super(config);
    this.store = 'memory';
    const { native, out } = nativeLimiter(config);
    this._native = native;
    this._out = out;
    // The hot methods, held here: a property of this plain object is found faster than one
    // the addon defined on its own object (they carry their state, `this` does not matter).
    this._consumeOne = native.consumeOne;
    this._consume = native.consume;
    // Decisions of consume(), for status().
    this._allowed = 0;
    this._refused = 0;
  }

  _result(flags) {
    const out = this._out;
    return makeResult(out[0], out[1] > FOREVER_MS ? -1 : out[1], out[2], (flags & FIRST) !== 0);
  }

  /** Takes `points` (default 1) from the key's bucket; rejects with the result when they are not there. */
  consume(key, points = 1, options) {
    const k = typeof key === 'string' ? key : keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (options !== undefined) {
      const err = callOptionsError(options);
      if (err !== null) return Promise.reject(err);
    }
    const out = this._out;
    let flags;
    try {
      if (points === 1) {
        this._consumeOne(k);
        flags = out[3];
      } else {
        if (!validPoints(points)) return Promise.reject(pointsArgError(points));
        if (points > this.burst) return Promise.reject(overBurst(this, points));
        flags = this._consume(k, points);
      }
    } catch (err) {
      return Promise.reject(err); // ERR_OUT_OF_MEMORY: the table could not grow
    }
    if (flags === KEY_TOO_LONG) return Promise.reject(keyTooLong(this));
    if ((flags & ALLOWED) !== 0) {
      this._allowed += 1;
      return Promise.resolve(makeResult(out[0], out[1], out[2], (flags & FIRST) !== 0));
    }
    this._refused += 1;
    return refuseLater(this._result(flags));
  }

  /** The key's current numbers, or null when it has no bucket in use (a full bucket). */
  get(key) {
    return this._sync(key, 0, (k) => this._native.get(k), true);
  }

  /** Takes `points` even if they are not there. */
  penalty(key, points = 1, options) {
    const err = options === undefined ? null : callOptionsError(options);
    if (err !== null) return Promise.reject(err);
    return this._sync(key, points, (k, p) => this._native.penalty(k, p));
  }

  /** Gives back `points`, never more than a full bucket. */
  reward(key, points = 1, options) {
    const err = options === undefined ? null : callOptionsError(options);
    if (err !== null) return Promise.reject(err);
    return this._sync(key, points, (k, p) => this._native.reward(k, p));
  }

  /**
   * Sets the points in use to `points` exactly (rate-limiter-flexible's set), ending any
   * block and forgetting refused attempts. `secDuration` must be left out: a bucket repays at
   * its own rate (to hold a key for a time, use block()).
   */
  set(key, points, secDuration) {
    const err = setDurationError(secDuration);
    if (err !== null) return Promise.reject(err);
    let wasFull = true;
    return this._sync(key, points, (k, p) => {
      // isFirstInDuration says whether the bucket was full before, as the Redis limiter's does.
      wasFull = (this._native.get(k) & FOUND) === 0;
      this._native.delete(k);
      return this._native.penalty(k, p);
    }).then((result) => {
      result.isFirstInDuration = wasFull;
      return result;
    });
  }

  /**
   * Refuses the key for `secDuration` seconds (0: until delete()); afterwards the key still
   * owes what it owed (less the refill meanwhile): a block never cancels a debt.
   */
  block(key, secDuration) {
    const err = secDurationError(secDuration);
    if (err !== null) return Promise.reject(err);
    const ms = secDuration === 0 ? 2 ** 53 : Math.ceil(secDuration * 1000);
    return this._sync(key, 0, (k) => this._native.block(k, ms));
  }

  /** Forgets the key; resolves whether it had a bucket. */
  delete(key) {
    const k = keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    const r = this._native.delete(k);
    return r === KEY_TOO_LONG ? Promise.reject(keyTooLong(this)) : Promise.resolve(r);
  }

  _sync(key, points, op, nullable = false) {
    const k = keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (!validPoints(points)) return Promise.reject(pointsArgError(points));
    let flags;
    try {
      flags = op(k, points);
    } catch (err) {
      return Promise.reject(err); // ERR_OUT_OF_MEMORY: the table could not grow
    }
    if (flags === KEY_TOO_LONG) return Promise.reject(keyTooLong(this));
    if (nullable && (flags & FOUND) === 0) return Promise.resolve(null);
    return Promise.resolve(this._result(flags));
  }

  /**
   * { store: 'memory', usingFallback: false, lastError: null, entries, maxEntries, evicted,
   * decisions } where decisions counts consume()'s outcomes (see the Redis limiter's status();
   * here every decision is local).
   */
  status() {
    const s = this._native.stats();
    const allowed = this._allowed;
    const refused = this._refused;
    return {
      store: 'memory',
      usingFallback: false,
      lastError: null,
      entries: s.entries,
      maxEntries: s.maxEntries,
      evicted: s.evicted,
      decisions: { allowed, refused, local: allowed + refused, fallback: 0, unknownCharged: 0, errors: 0 },
    };
  }
}

module.exports = { MemoryRateLimiter };
