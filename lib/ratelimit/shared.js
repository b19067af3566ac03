'use strict';
// What both rate limiters share: the result class, createLimiter's option checks, the
// arguments of the limiter methods, and the native table's flags.
const { inspect } = require('util');
const { markAsUntransferable } = require('worker_threads');
const { LocalLimiter } = require('../binding');
const { RedisClient } = require('../client/client');
const {
  invalidParameterError, integerError, checkInteger, numberError, checkNumber, checkType, checkOneOf, checkKnownOptions,
} = require('../util/validate');

// Flags of the native LocalLimiter methods, as the binding defines them.
const { ALLOWED, FIRST, BLOCKED, FOUND, KEY_TOO_LONG } = LocalLimiter.FLAGS;

const DEFAULT_MAX_ENTRIES = 100000;
const DEFAULT_MAX_KEY_LENGTH = 512;
const MAX_POINTS = 2 ** 31 - 1;
const MAX_DURATION_SEC = 10 * 365 * 86400;
const MAX_BLOCK_SEC = 2 ** 31 - 1;
// The longest delay setTimeout takes.
const MAX_TIMER_MS = 2 ** 31 - 1;
// A block "for ever" is a block of 2^53 ms locally; any wait past 2^52 ms reads as -1.
const FOREVER_MS = 2 ** 52;
// The cap on a bucket's debt, defined once by the C++ core (kMaxDebtUnits); the Lua script
// applies it too (lib/ratelimit/redis.js checks that it does).
const MAX_DEBT_UNITS = LocalLimiter.MAX_DEBT_UNITS;
// How long a refusal that Redis answered is trusted locally at most (another process may
// delete or reward the key meanwhile); then Redis is asked again.
const KNOWN_REFUSED_TRUST_MS = 1000;

/** The four numbers of a result as a plain object: its JSON, and how it prints. */
function resultFields() {
  return {
    remainingPoints: this.remainingPoints,
    msBeforeNext: this.msBeforeNext,
    consumedPoints: this.consumedPoints,
    isFirstInDuration: this.isFirstInDuration,
  };
}

function resultString() {
  return JSON.stringify(resultFields.call(this));
}

/**
 * The outcome of one decision, shaped like rate-limiter-flexible's RateLimiterRes:
 * consume() resolves with it when admitted and rejects with it when refused, with its
 * toJSON() and toString(), and printed by console.log as its four numbers.
 *
 * The limiters make results as plain objects that carry those methods as properties
 * (makeResult), not as instances of this class: a promise settles with an object whose
 * prototype is Object.prototype without looking for a `then` method along its prototype
 * chain, which for a class instance cost about 20 ns of a local decision's ~150 here.
 * `x instanceof RateLimitResult` recognizes both: any object, other than an Error, with the
 * four fields.
 */
class RateLimitResult {
  // rate-limiter-flexible's defaults: 0, 0, 0, false; isFirstInDuration is a boolean whatever
  // it is given as (its RateLimiterRes coerces it too).
  constructor(remainingPoints = 0, msBeforeNext = 0, consumedPoints = 0, isFirstInDuration = false) {
    /** Whole points left after this request. */
    this.remainingPoints = remainingPoints;
    /**
     * Admitted: ms until the bucket is full again. Refused: ms until this request's points
     * are available (or the block ends); -1 for a block without end.
     */
    this.msBeforeNext = msBeforeNext;
    /** Points in use, plus the points refused since the last admission (this one's included). */
    this.consumedPoints = consumedPoints;
    /** Admitted into a full bucket. */
    this.isFirstInDuration = Boolean(isFirstInDuration);
  }

  toJSON() {
    return resultFields.call(this);
  }

  toString() {
    return resultString.call(this);
  }

  [inspect.custom]() {
    return resultFields.call(this);
  }

  static [Symbol.hasInstance](value) {
    // An instance made with `new` (or of a subclass), then the limiters' plain results.
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    return (
      this === RateLimitResult &&
      value !== null &&
      typeof value === 'object' &&
      typeof value.remainingPoints === 'number' &&
      typeof value.msBeforeNext === 'number' &&
      typeof value.consumedPoints === 'number' &&
      typeof value.isFirstInDuration === 'boolean' &&
      !(value instanceof Error)
    );
  }
}

/** A result as the limiters return it (see RateLimitResult). */
function makeResult(remainingPoints, msBeforeNext, consumedPoints, isFirstInDuration) {
  return {
    remainingPoints,
    msBeforeNext,
    consumedPoints,
    isFirstInDuration,
    toJSON: resultFields,
    toString: resultString,
    [inspect.custom]: resultFields,
  };
}

// ---- Options ----------------------------------------------------------------------------

// Every refusal of createLimiter says so first.
const CREATE = { where: 'createLimiter' };

function positiveInteger(options, name, fallback, max, label = `option ${name}`) {
  const v = options[name] === undefined ? fallback : options[name];
  return checkInteger(label, v, { ...CREATE, min: 1, max });
}

// At least one microsecond, the buckets' clock tick; a block may be 0 (none).
function seconds(options, name, fallback, { max, allowZero = false }, label = `option ${name}`) {
  const v = options[name] === undefined ? fallback : options[name];
  const expected = `a number of seconds ${allowZero ? '>= 0' : '> 0'} and <= ${max}`;
  return checkNumber(label, v, { ...CREATE, min: allowZero ? 0 : 1e-6, max, expected });
}

const KNOWN_OPTIONS = [
  'keyPrefix', 'points', 'duration', 'burst', 'blockDuration', 'store', 'client', 'fallback',
  'rejectLocally', 'maxEntries', 'maxKeyLength',
  // rate-limiter-flexible's, with its meaning (see docs/ratelimit.md).
  'insuranceLimiter', 'inMemoryBlockOnConsumed', 'inmemoryBlockOnConsumed', 'inMemoryBlockDuration',
  'inmemoryBlockDuration', 'execEvenly', 'execEvenlyMinDelayMs', 'rejectIfRedisNotReady',
  // Token leases for a limiter on Redis (lib/ratelimit/lease.js).
  'lease',
];
// rate-limiter-flexible's options that mean nothing here, and what to do instead.
const FOREIGN_OPTIONS = {
  storeClient: 'give a hirecache client as option client (createClient from hirecache/redis), or leave it out for the process-wide one',
  useRedisPackage: 'hirecache speaks to Redis itself: give option client',
  storeType: 'give option client',
  dbName: 'not a Redis setting',
  tableName: 'not a Redis setting',
  tableCreated: 'not a Redis setting',
  clearExpiredByTimeout: 'expired buckets are swept as they are met',
  timeoutMs: "the client's commandTimeout bounds every decision",
  customDuration: 'a per-call option of rate-limiter-flexible; a bucket refills at points per duration: make a limiter with that duration',
};
const KNOWN_FALLBACK_OPTIONS = ['points', 'duration', 'burst', 'maxEntries', 'graceMs'];
// How long after the client's breaker opened for a stall or for failures (not for an
// unreachable Redis) decisions wait for it to close before the fallback decides.
const DEFAULT_FALLBACK_GRACE_MS = 250;
const MAX_FALLBACK_GRACE_MS = 60000;
const KNOWN_LEASE_OPTIONS = ['maxTokens', 'ttlMs'];
// A lease holds at most a sixteenth of the bucket, and never more than 64 tokens, unless
// maxTokens says otherwise; it is spent within a second of its grant.
const DEFAULT_LEASE_SHARE = 16;
const DEFAULT_LEASE_MAX_TOKENS = 64;
const DEFAULT_LEASE_TTL_MS = 1000;
const MAX_LEASE_TTL_MS = 3600000;

/**
 * The lease option: false (default), true, or { maxTokens, ttlMs }; false or the numbers of
 * the leases (lib/ratelimit/lease.js). maxTokens cannot exceed the burst: a lease never holds
 * more than the bucket.
 */
function leaseOptions(lease, burst) {
  if (lease === undefined || lease === false) return false;
  if (lease !== true && (lease === null || typeof lease !== 'object')) {
    throw invalidParameterError('option lease', 'true, false or { maxTokens, ttlMs }', lease, CREATE);
  }
  const given = lease === true ? {} : lease;
  checkKnownOptions(given, KNOWN_LEASE_OPTIONS, { ...CREATE, path: 'lease.' });
  const of = (name) => `option ${name} of option lease`;
  const maxTokens = given.maxTokens === undefined
    ? Math.max(1, Math.min(DEFAULT_LEASE_MAX_TOKENS, Math.floor(burst / DEFAULT_LEASE_SHARE)))
    : checkInteger(of('maxTokens'), given.maxTokens, { ...CREATE, min: 1, max: burst, expected: `an integer from 1 to the burst (${burst})` });
  const ttlMs = checkInteger(of('ttlMs'), given.ttlMs === undefined ? DEFAULT_LEASE_TTL_MS : given.ttlMs, { ...CREATE, min: 1, max: MAX_LEASE_TTL_MS });
  return { maxTokens, ttlMs };
}

/** Validates createLimiter's options; throws a TypeError / RangeError naming the option. */
function normalizeOptions(options) {
  checkType('options', options, 'object', CREATE);
  for (const name of Object.keys(options)) {
    if (Object.prototype.hasOwnProperty.call(FOREIGN_OPTIONS, name)) {
      throw invalidParameterError(`option ${name}`, `left out (${FOREIGN_OPTIONS[name]})`, options[name], CREATE);
    }
  }
  checkKnownOptions(options, KNOWN_OPTIONS, CREATE);
  const keyPrefix = checkType('option keyPrefix', options.keyPrefix === undefined ? 'rl' : options.keyPrefix, 'string', CREATE);
  // Points as an integer string ('5', from an environment variable), as rate-limiter-flexible takes them.
  const pointsGiven = typeof options.points === 'string' && /^\d+$/.test(options.points.trim()) ? Number(options.points.trim()) : options.points;
  const points = positiveInteger({ points: pointsGiven }, 'points', undefined, MAX_POINTS);
  // duration 0: rate-limiter-flexible's "never expires". A bucket must refill at some rate:
  // the slowest one (points over ten years), so the key in effect never refills.
  const durationGiven = options.duration === 0 ? MAX_DURATION_SEC : options.duration;
  const duration = seconds({ duration: durationGiven }, 'duration', undefined, { max: MAX_DURATION_SEC });
  const burst = positiveInteger(options, 'burst', points, MAX_POINTS);
  const blockDuration = seconds(options, 'blockDuration', 0, { max: MAX_BLOCK_SEC, allowZero: true });
  const store = checkOneOf('option store', options.store, ['redis', 'memory', undefined], "'redis', 'memory' or undefined (Redis when REDIS_URL enables it)", CREATE);
  if (options.client !== undefined && !(options.client instanceof RedisClient)) {
    throw invalidParameterError('option client', 'a hirecache RedisClient (from createClient or getRedisClient)', options.client, CREATE);
  }
  const maxEntries = positiveInteger(options, 'maxEntries', DEFAULT_MAX_ENTRIES, 2 ** 30);
  const maxKeyLength = positiveInteger(options, 'maxKeyLength', DEFAULT_MAX_KEY_LENGTH, LocalLimiter.MAX_KEY_LENGTH);
  const rejectLocally = checkType('option rejectLocally', options.rejectLocally === undefined ? true : options.rejectLocally, 'boolean', CREATE);

  let fallback = options.fallback === undefined ? true : options.fallback;
  if (fallback === true) {
    fallback = { points, duration, burst, graceMs: DEFAULT_FALLBACK_GRACE_MS };
  } else if (fallback !== false) {
    if (fallback === null || typeof fallback !== 'object') {
      throw invalidParameterError('option fallback', 'true, false or { points, duration, burst, maxEntries, graceMs }', fallback, CREATE);
    }
    checkKnownOptions(fallback, KNOWN_FALLBACK_OPTIONS, { ...CREATE, path: 'fallback.' });
    const of = (name) => `option ${name} of option fallback`;
    const fPoints = positiveInteger(fallback, 'points', points, MAX_POINTS, of('points'));
    fallback = {
      points: fPoints,
      duration: seconds(fallback, 'duration', duration, { max: MAX_DURATION_SEC }, of('duration')),
      burst: positiveInteger(fallback, 'burst', fallback.points === undefined ? burst : fPoints, MAX_POINTS, of('burst')),
      maxEntries: positiveInteger(fallback, 'maxEntries', maxEntries, 2 ** 30, of('maxEntries')),
      graceMs: checkInteger(of('graceMs'), fallback.graceMs === undefined ? DEFAULT_FALLBACK_GRACE_MS : fallback.graceMs, { ...CREATE, min: 0, max: MAX_FALLBACK_GRACE_MS }),
    };
  }
  const insurance = options.insuranceLimiter;
  if (insurance !== undefined) {
    const methods = ['consume', 'get', 'penalty', 'reward', 'block', 'delete'];
    if (insurance === null || typeof insurance !== 'object' || methods.some((m) => typeof insurance[m] !== 'function')) {
      throw invalidParameterError('option insuranceLimiter', `a limiter with ${methods.join(', ')} (a rate-limiter-flexible limiter or a hirecache one)`, insurance, CREATE);
    }
    if (options.fallback !== undefined && options.fallback !== false) {
      throw invalidParameterError('option fallback', 'left out with insuranceLimiter (the insurance limiter is the fallback)', options.fallback, CREATE);
    }
    fallback = false;
  }
  const pick = (a, b) => (options[a] !== undefined ? a : b);
  const blockOnName = pick('inMemoryBlockOnConsumed', 'inmemoryBlockOnConsumed');
  const blockForName = pick('inMemoryBlockDuration', 'inmemoryBlockDuration');
  const inMemoryBlockOnConsumed = options[blockOnName] === undefined || options[blockOnName] === 0 ? 0 : positiveInteger(options, blockOnName, undefined, MAX_POINTS);
  const inMemoryBlockDuration = seconds(options, blockForName, 0, { max: MAX_BLOCK_SEC, allowZero: true });
  if (inMemoryBlockDuration > 0 && inMemoryBlockOnConsumed === 0) {
    throw invalidParameterError(`option ${blockForName}`, `given with ${blockOnName} (what starts the block)`, inMemoryBlockDuration, CREATE);
  }
  // At least the bucket: below it, keys still admitted would be blocked.
  if (inMemoryBlockOnConsumed > 0 && inMemoryBlockOnConsumed < Math.max(points, burst)) {
    throw integerError(`option ${blockOnName}`, inMemoryBlockOnConsumed, { ...CREATE, min: Math.max(points, burst), max: MAX_POINTS });
  }
  const execEvenly = checkType('option execEvenly', options.execEvenly === undefined ? false : options.execEvenly, 'boolean', CREATE);
  const execEvenlyMinDelayMs = options.execEvenlyMinDelayMs === undefined
    ? Math.min(Math.ceil((duration * 1000) / points), MAX_TIMER_MS)
    : checkInteger('option execEvenlyMinDelayMs', options.execEvenlyMinDelayMs, { ...CREATE, min: 0, max: 2 ** 31 - 1 });
  const rejectIfRedisNotReady = checkType('option rejectIfRedisNotReady', options.rejectIfRedisNotReady === undefined ? false : options.rejectIfRedisNotReady, 'boolean', CREATE);
  const lease = leaseOptions(options.lease, burst);
  const config = {
    keyPrefix, points, duration, burst, blockDuration, store, client: options.client, fallback, rejectLocally, maxEntries, maxKeyLength,
    insuranceLimiter: insurance, inMemoryBlockOnConsumed, inMemoryBlockDuration, execEvenly, execEvenlyMinDelayMs, rejectIfRedisNotReady,
    lease,
  };
  // The bucket must fit the exact-integer range of the script (see token_bucket.h).
  if (LocalLimiter.shape(points, Math.round(duration * 1e6), burst) === null) {
    const err = new RangeError(`createLimiter: options burst (${burst}) and duration (${duration}) make a bucket too large to represent`);
    err.code = 'ERR_OUT_OF_RANGE';
    throw err;
  }
  return config;
}

/** A LocalLimiter on the native table, with the array its numbers come back in. */
function nativeLimiter({ points, duration, burst, blockDuration = 0, maxEntries, maxKeyLength }) {
  const native = new LocalLimiter({
    points,
    durationUs: Math.round(duration * 1e6),
    burst,
    blockUs: Math.round(blockDuration * 1e6),
    maxEntries,
    maxKeyLength,
  });
  // The native table writes a decision's numbers into memory it owns, seen here as `out`;
  // kept from postMessage and structuredClone, which would detach it from this limiter.
  const out = native.out;
  markAsUntransferable(out.buffer);
  return { native, out };
}

// ---- Arguments of the limiter methods ---------------------------------------------------

// Every refusal of a limiter method says so first.
const METHOD = { where: 'rate limiter' };

function keyArgError(key) {
  return invalidParameterError('key', 'a string or a number', key, METHOD);
}

function pointsArgError(points) {
  return integerError('points', points, { ...METHOD, min: 0, max: MAX_POINTS });
}

/** The error for block()'s secDuration, or null when it is a number of seconds from 0 to MAX_BLOCK_SEC. */
function secDurationError(secDuration) {
  return numberError('secDuration', secDuration, { ...METHOD, min: 0, max: MAX_BLOCK_SEC, expected: `a number of seconds from 0 to ${MAX_BLOCK_SEC}` });
}

// The third argument of consume/penalty/reward in rate-limiter-flexible: { customDuration }.
function callOptionsError(options) {
  if (options === null || typeof options !== 'object') {
    return invalidParameterError('options', 'an object (rate-limiter-flexible\'s { customDuration }) or left out', options, METHOD);
  }
  const [name] = Object.keys(options);
  if (name === undefined) return null;
  if (name === 'customDuration') {
    return invalidParameterError('options.customDuration', `left out (${FOREIGN_OPTIONS.customDuration})`, options.customDuration, METHOD);
  }
  return invalidParameterError(`options.${name}`, 'left out (no per-call options are taken)', options[name], METHOD);
}

/**
 * set()'s secDuration: left out. Any value is refused, 0 included: rate-limiter-flexible's
 * 0 means "never expires", and a bucket repays at its own rate.
 */
function setDurationError(secDuration) {
  if (secDuration === undefined) return null;
  return invalidParameterError('secDuration', 'left out (a bucket repays at its own rate: to hold a key for a time, or for good with 0, use block(key, secDuration))', secDuration, METHOD);
}

function keyTooLong(limiter) {
  const err = new RangeError(`rate limiter: key is longer than maxKeyLength (${limiter.maxKeyLength})`);
  err.code = 'ERR_KEY_TOO_LONG';
  return err;
}

/** The key as a string, or null when it is not one. Numbers are keys, as in rate-limiter-flexible. */
function keyString(key) {
  if (typeof key === 'string') return key;
  if (typeof key === 'number' && Number.isFinite(key)) return String(key);
  return null;
}

// A request costing more than the burst could never be admitted: no wait would be enough.
function overBurst(limiter, points) {
  const err = new RangeError(`rate limiter: points (${points}) must not exceed the burst (${limiter.burst}): a request of more points than the bucket holds can never be admitted`);
  err.code = 'ERR_OUT_OF_RANGE';
  return err;
}

function validPoints(points) {
  return points === 1 || (typeof points === 'number' && Number.isInteger(points) && points >= 0 && points <= MAX_POINTS);
}

// ---- Local refusals ----------------------------------------------------------------------

// Refusals decided in this process wait here for the next check phase of the event loop.
// Pairs of (reject, result), flat, so a turn's refusals cost one array and one setImmediate.
let refusalsDue = [];
let refusalsScheduled = false;
// At most this many refusals wait for the next turn. A loop that awaits each consume has one
// waiting at a time; only a synchronous burst of more refusals than this, in one turn, goes
// past it, and those settle at once (as every refusal did before), so that such a burst
// cannot hold hundreds of megabytes of pending results (about 650 bytes each).
const MAX_REFUSALS_DUE = 10000;

function settleRefusals() {
  const due = refusalsDue;
  refusalsDue = [];
  refusalsScheduled = false;
  for (let i = 0; i < due.length; i += 2) due[i](due[i + 1]);
}

/**
 * A promise rejected with `result` on a later turn of the event loop (setImmediate), never
 * in this one. A refusal decided without I/O would otherwise settle in the same microtask
 * queue, and a tight `while (true) await limiter.consume(key)` (a flood answered locally)
 * would keep the loop from ever reaching its timers and I/O. The refusals of one turn
 * share one setImmediate; past MAX_REFUSALS_DUE in one turn, they settle at once.
 */
function refuseLater(result) {
  if (refusalsDue.length >= 2 * MAX_REFUSALS_DUE) return Promise.reject(result);
  return new Promise((resolve, reject) => {
    refusalsDue.push(reject, result);
    if (!refusalsScheduled) {
      refusalsScheduled = true;
      setImmediate(settleRefusals);
    }
  });
}

/** Common properties of both limiters. */
class BaseLimiter {
  constructor(config) {
    this.keyPrefix = config.keyPrefix;
    this.points = config.points;
    this.duration = config.duration;
    this.burst = config.burst;
    this.blockDuration = config.blockDuration;
    this.maxKeyLength = config.maxKeyLength;
    this.execEvenly = config.execEvenly === true;
    this.execEvenlyMinDelayMs = config.execEvenlyMinDelayMs;
    this.inMemoryBlockOnConsumed = config.inMemoryBlockOnConsumed || 0;
    this.inMemoryBlockDuration = config.inMemoryBlockDuration || 0;
    this.insuranceLimiter = config.insuranceLimiter;
    // rate-limiter-flexible's in-memory block and execEvenly wrap consume() of this limiter
    // only, so that a limiter without them pays nothing.
    if (this.inMemoryBlockOnConsumed > 0) wrapInMemoryBlock(this, config.maxEntries);
    if (this.execEvenly) wrapExecEvenly(this);
  }

  /** The key's name in the store: `${keyPrefix}:${key}` (the Redis limiter's differs). */
  getKey(key) {
    return this.keyPrefix === '' ? String(key) : `${this.keyPrefix}:${key}`;
  }

  /** The key getKey() was given, from the name it made (rate-limiter-flexible's parseKey). */
  parseKey(rlKey) {
    const head = this.getKey('');
    return typeof rlKey === 'string' && rlKey.startsWith(head) ? rlKey.slice(head.length) : rlKey;
  }
}

/**
 * inMemoryBlockOnConsumed: once a consume reports at least that many points consumed, the
 * key is refused in this process for inMemoryBlockDuration seconds (or, with none, until its
 * msBeforeNext), without asking the store. Only ever refuses. Bounded by maxEntries (the
 * oldest block goes first).
 */
function wrapInMemoryBlock(limiter, maxEntries) {
  const blocks = new Map();
  const inner = limiter.consume.bind(limiter);
  const threshold = limiter.inMemoryBlockOnConsumed;
  const forMs = Math.ceil(limiter.inMemoryBlockDuration * 1000);
  const note = (key, result, refused) => {
    if (result instanceof Error || result.consumedPoints < threshold) return;
    const ms = forMs > 0 ? forMs : result.msBeforeNext;
    if (!(ms > 0)) return;
    blocks.delete(key);
    if (blocks.size >= maxEntries) blocks.delete(blocks.keys().next().value);
    blocks.set(key, Date.now() + ms);
    // The refusal that starts the block says how long it lasts: waiting its msBeforeNext must
    // be enough.
    if (refused && result.msBeforeNext >= 0 && result.msBeforeNext < ms) result.msBeforeNext = ms;
  };
  limiter.consume = (key, points = 1, options) => {
    const k = keyString(key);
    if (k !== null) {
      const until = blocks.get(k);
      if (until !== undefined) {
        const left = until - Date.now();
        if (left > 0) return refuseLater(makeResult(0, left, threshold, false));
        blocks.delete(k);
      }
    }
    return inner(key, points, options).then(
      (result) => {
        if (k !== null) note(k, result, false);
        return result;
      },
      (result) => {
        if (k !== null) note(k, result, true);
        throw result;
      },
    );
  };
  const innerDelete = limiter.delete.bind(limiter);
  limiter.delete = (key) => {
    const k = keyString(key);
    if (k !== null) blocks.delete(k);
    return innerDelete(key);
  };
}

/**
 * execEvenly: an admitted consume resolves after a delay that spreads the remaining points
 * over the time until the bucket is full again (msBeforeNext / (remainingPoints + 2)), never
 * less than execEvenlyMinDelayMs, as rate-limiter-flexible spaces its actions. A refusal is
 * not delayed.
 */
function wrapExecEvenly(limiter) {
  const inner = limiter.consume.bind(limiter);
  const minDelay = limiter.execEvenlyMinDelayMs;
  limiter.consume = (key, points, options) =>
    inner(key, points, options).then((result) => {
      // setTimeout takes at most 2^31 - 1 ms (a longer delay would fire at once).
      const delay = Math.min(Math.max(Math.ceil(result.msBeforeNext / (result.remainingPoints + 2)), minDelay), MAX_TIMER_MS);
      if (!(delay > 0) || result.isFirstInDuration) return result;
      return new Promise((resolve) => setTimeout(resolve, delay, result));
    });
}

module.exports = {
  ALLOWED, FIRST, BLOCKED, FOUND, KEY_TOO_LONG,
  DEFAULT_MAX_KEY_LENGTH, MAX_POINTS, MAX_BLOCK_SEC, FOREVER_MS, MAX_DEBT_UNITS, KNOWN_REFUSED_TRUST_MS, DEFAULT_FALLBACK_GRACE_MS,
  RateLimitResult, makeResult, refuseLater, normalizeOptions, nativeLimiter,
  keyArgError, pointsArgError, secDurationError, keyTooLong, keyString, overBurst, validPoints,
  callOptionsError, setDurationError, BaseLimiter,
};
