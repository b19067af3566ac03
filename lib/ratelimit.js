'use strict';
// Drop-in for an API's lib/ratelimit.js: token-bucket rate limiters with the API of
// rate-limiter-flexible (consume / get / penalty / reward / block / delete, results shaped
// like its RateLimiterRes), on Redis or in process, plus Express middleware.
//
//   const { createLimiter, rateLimitByIp, rateLimitByKey } = require('hirecache/ratelimit');
//   const loginByIp = createLimiter({ keyPrefix: 'rl:login:ip', points: 20, duration: 600 });
//   router.post('/login', rateLimitByIp(loginByIp), handler);
//
// The bucket arithmetic is the C++ core's (src/token_bucket.h): exact integer GCRA, in units
// of 1/scale microsecond. The Redis limiter runs the same arithmetic in one Lua script per
// decision, on one key, with Redis's own clock. See docs/ratelimit.md.
const crypto = require('crypto');
const net = require('net');
const { performance } = require('perf_hooks');
const { LocalLimiter } = require('./binding');
const {
  ReplyError,
  ConnectionError,
  CommandTimeoutError,
  OutcomeUnknownError,
  QueueFullError,
  ClientClosedError,
} = require('./errors');
const { RedisClient } = require('./client');

// Flags of the native LocalLimiter methods (binding/rate_limiter_wrap.h).
const ALLOWED = 1;
const FIRST = 2;
const BLOCKED = 4;
const FOUND = 8;
const KEY_TOO_LONG = -1;

const DEFAULT_MAX_ENTRIES = 100000;
const DEFAULT_MAX_KEY_LENGTH = 512;
const MAX_POINTS = 2 ** 31 - 1;
const MAX_DURATION_SEC = 10 * 365 * 86400;
const MAX_BLOCK_SEC = 2 ** 31 - 1;
// How often a limiter serving from its fallback looks at the client's state.
const STATE_CHECK_MS = 50;
// A block "for ever" is a block of 2^53 ms locally; any wait past 2^52 ms reads as -1.
const FOREVER_MS = 2 ** 52;
// The Lua script caps a penalty's debt here (the C++ core's kMaxDebtUnits).
const MAX_DEBT_UNITS = 2 ** 50;
// How long a refusal that Redis answered is trusted locally at most (another process may
// delete or reward the key meanwhile); then Redis is asked again.
const KNOWN_REFUSED_TRUST_MS = 1000;

// One decision on one bucket, in one call: the Redis form of src/token_bucket.cc.
//
// KEYS[1] is the bucket. Its value is the theoretical arrival time (TAT) in units of
// 1/scale microsecond, modulo 2^52 so that every number stays exact in Lua's doubles (a
// debt is always below 2^51, so the difference to "now" decodes unambiguously), or, while
// the key is blocked, 'b:<block end>:<TAT>': the block's end in microseconds of Redis's
// clock (-1: no end) and the TAT (empty for a full bucket). A block only adds refusal
// time: the TAT, what the key owes, outlives it. The key expires when the block has ended
// and the bucket is full again, so an absent key is a full bucket; when nothing is owed the
// key is deleted (never written with PX 0). The clock is Redis's TIME: every app server
// sees the same one.
// ARGV: op ('c' consume, 'p' penalty, 'r' reward, 'g' get, 'b' block), cost in tokens (in
// ms for 'b', 0 for a block without end), interval and tolerance in units, scale in units
// per microsecond, and the block in ms that a refused consume starts (0 for none).
// Replies one integer, value * 4 + status (cheaper for Redis and for the client than an
// array): status 1 admitted (or the answer to p/r/g), value the debt before the operation;
// 0 refused, nothing taken, value the debt; 2 blocked, value the ms until the block has
// ended and the cost fits; -1 blocked for ever.
// A number passed to redis.call reaches Redis written exactly (below 2^53 it is an integer).
const SCRIPT = `local key = KEYS[1]
local op = ARGV[1]
local M, H = 4503599627370496, 67108864
local scale = tonumber(ARGV[5])
local t = redis.call('TIME')
local us = t[1] * 1000000 + t[2]
local hi = math.floor(us / H)
local now = ((hi * scale) % H * H + (us - hi * H) * scale) % M
local v = redis.call('GET', key)
local exists = v
local bend = false
local debt = 0
if v then
  if string.byte(v, 1) == 98 then
    local i = string.find(v, ':', 3, true)
    bend = tonumber(string.sub(v, 3, i - 1))
    v = string.sub(v, i + 1)
    if bend >= 0 and bend <= us then bend = false end
  end
  if v ~= '' then
    debt = (tonumber(v) - now) % M
    if debt >= 2251799813685248 then debt = 0 end
  end
end
local cost = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local tolerance = tonumber(ARGV[4])
local function save(owed, ends)
  local px = 0
  if owed > 0 then px = math.ceil(owed / scale / 1000) end
  if ends then
    local tat = ''
    if owed > 0 then tat = string.format('%.0f', (now + owed) % M) end
    local val = 'b:' .. string.format('%.0f', ends) .. ':' .. tat
    if ends < 0 then
      redis.call('SET', key, val)
    else
      redis.call('SET', key, val, 'PX', math.max(px, math.ceil((ends - us) / 1000)))
    end
  elseif owed > 0 then
    redis.call('SET', key, (now + owed) % M, 'PX', px)
  elseif exists then
    redis.call('DEL', key)
  end
end
local function blocked(ends, owed, c)
  if ends < 0 then return -1 end
  local ms = math.ceil((ends - us) / 1000)
  local over = owed + c * interval - tolerance
  if over > 0 then ms = math.max(ms, math.ceil(over / scale / 1000)) end
  return ms * 4 + 2
end
if op == 'b' then
  local ends = -1
  if cost > 0 then ends = us + cost * 1000 end
  save(debt, ends)
  return blocked(ends, debt, 0)
end
if bend then
  if op == 'p' then
    debt = math.min(debt + cost * interval, ${MAX_DEBT_UNITS})
    save(debt, bend)
    return blocked(bend, debt, 0)
  end
  if op == 'c' then return blocked(bend, debt, cost) end
  return blocked(bend, debt, 0)
end
if op == 'g' then return debt * 4 + 1 end
local after = cost * interval
if op == 'c' then
  after = debt + after
  if after > tolerance then
    local block = tonumber(ARGV[6])
    if block > 0 then
      local ends = us + block * 1000
      save(debt, ends)
      return blocked(ends, debt, cost)
    end
    return debt * 4
  end
elseif op == 'p' then
  after = math.min(debt + after, ${MAX_DEBT_UNITS})
else
  after = math.max(debt - after, 0)
end
save(after, false)
return debt * 4 + 1
`;
const SCRIPT_SHA = crypto.createHash('sha1').update(SCRIPT).digest('hex');

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

/**
 * The outcome of one decision, shaped like rate-limiter-flexible's RateLimiterRes:
 * consume() resolves with it when admitted and rejects with it when refused.
 */
class RateLimitResult {
  constructor(remainingPoints, msBeforeNext, consumedPoints, isFirstInDuration) {
    /** Whole points left after this request. */
    this.remainingPoints = remainingPoints;
    /**
     * Admitted: ms until the bucket is full again. Refused: ms until this request's points
     * are available (or the block ends); -1 for a block without end.
     */
    this.msBeforeNext = msBeforeNext;
    /** Points in use; when refused, plus the refused request's points. */
    this.consumedPoints = consumedPoints;
    /** Admitted into a full bucket. */
    this.isFirstInDuration = isFirstInDuration;
  }

  toJSON() {
    return {
      remainingPoints: this.remainingPoints,
      msBeforeNext: this.msBeforeNext,
      consumedPoints: this.consumedPoints,
      isFirstInDuration: this.isFirstInDuration,
    };
  }

  toString() {
    return JSON.stringify(this.toJSON());
  }
}

// ---- Options ----------------------------------------------------------------------------

function describe(v) {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v;
}

// A number out of range is a RangeError; anything of the wrong type a TypeError.
function optionError(name, expected, got, numeric = false) {
  const Class = numeric && typeof got === 'number' ? RangeError : TypeError;
  return new Class(`createLimiter: option ${name} must be ${expected}, got ${describe(got)}`);
}

function positiveInteger(options, name, fallback, max) {
  const v = options[name] === undefined ? fallback : options[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw optionError(name, `a whole number from 1 to ${max}`, v, true);
  }
  return v;
}

function seconds(options, name, fallback, { min, max, allowZero }) {
  const v = options[name] === undefined ? fallback : options[name];
  if (typeof v !== 'number' || !Number.isFinite(v) || v > max || (allowZero ? v < 0 : v <= 0) || (!allowZero && v * 1e6 < min)) {
    throw optionError(name, `a number of seconds ${allowZero ? '>= 0' : '> 0'} and <= ${max}`, v, true);
  }
  return v;
}

const KNOWN_OPTIONS = new Set([
  'keyPrefix', 'points', 'duration', 'burst', 'blockDuration', 'store', 'client', 'fallback',
  'rejectLocally', 'maxEntries', 'maxKeyLength',
]);

/** Validates createLimiter's options; throws a TypeError / RangeError naming the option. */
function normalizeOptions(options) {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`createLimiter: options must be an object, got ${describe(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name)) {
      throw new TypeError(`createLimiter: unknown option ${name} (known: ${[...KNOWN_OPTIONS].join(', ')})`);
    }
  }
  const keyPrefix = options.keyPrefix === undefined ? 'rl' : options.keyPrefix;
  if (typeof keyPrefix !== 'string') throw optionError('keyPrefix', 'a string', keyPrefix);
  const points = positiveInteger(options, 'points', undefined, MAX_POINTS);
  const duration = seconds(options, 'duration', undefined, { min: 1, max: MAX_DURATION_SEC });
  const burst = positiveInteger(options, 'burst', points, MAX_POINTS);
  const blockDuration = seconds(options, 'blockDuration', 0, { max: MAX_BLOCK_SEC, allowZero: true });
  const store = options.store;
  if (store !== undefined && store !== 'redis' && store !== 'memory') {
    throw optionError('store', "'redis', 'memory' or undefined (Redis when REDIS_URL enables it)", store);
  }
  if (options.client !== undefined && !(options.client instanceof RedisClient)) {
    throw optionError('client', 'a hirecache RedisClient (from createClient or getRedisClient)', options.client);
  }
  const maxEntries = positiveInteger(options, 'maxEntries', DEFAULT_MAX_ENTRIES, 2 ** 30);
  const maxKeyLength = positiveInteger(options, 'maxKeyLength', DEFAULT_MAX_KEY_LENGTH, 2 ** 20);
  const rejectLocally = options.rejectLocally === undefined ? true : options.rejectLocally;
  if (typeof rejectLocally !== 'boolean') throw optionError('rejectLocally', 'a boolean', rejectLocally);

  let fallback = options.fallback === undefined ? true : options.fallback;
  if (fallback === true) {
    fallback = { points, duration, burst };
  } else if (fallback !== false) {
    if (fallback === null || typeof fallback !== 'object') {
      throw optionError('fallback', 'true, false or { points, duration, burst, maxEntries }', fallback);
    }
    for (const name of Object.keys(fallback)) {
      if (!['points', 'duration', 'burst', 'maxEntries'].includes(name)) {
        throw new TypeError(`createLimiter: unknown option fallback.${name} (known: points, duration, burst, maxEntries)`);
      }
    }
    const fPoints = positiveInteger(fallback, 'points', points, MAX_POINTS);
    fallback = {
      points: fPoints,
      duration: seconds(fallback, 'duration', duration, { min: 1, max: MAX_DURATION_SEC }),
      burst: positiveInteger(fallback, 'burst', fallback.points === undefined ? burst : fPoints, MAX_POINTS),
      maxEntries: positiveInteger(fallback, 'maxEntries', maxEntries, 2 ** 30),
    };
  }
  const config = { keyPrefix, points, duration, burst, blockDuration, store, client: options.client, fallback, rejectLocally, maxEntries, maxKeyLength };
  // The bucket must fit the exact-integer range of the script (see token_bucket.h).
  if (LocalLimiter.shape(points, Math.round(duration * 1e6), burst) === null) {
    throw new RangeError(`createLimiter: options burst (${burst}) and duration (${duration}) make a bucket too large to represent`);
  }
  return config;
}

/** A LocalLimiter on the native table, with the array its numbers come back in. */
function nativeLimiter({ points, duration, burst, blockDuration = 0, maxEntries, maxKeyLength }) {
  // An explicit ArrayBuffer: its memory never moves, so C++ may keep a pointer to it.
  const out = new Float64Array(new ArrayBuffer(4 * Float64Array.BYTES_PER_ELEMENT));
  const native = new LocalLimiter(
    {
      points,
      durationUs: Math.round(duration * 1e6),
      burst,
      blockUs: Math.round(blockDuration * 1e6),
      maxEntries,
      maxKeyLength,
    },
    out,
  );
  return { native, out };
}

// ---- Arguments of the limiter methods ---------------------------------------------------

function keyArgError(key) {
  return new TypeError(`rate limiter: key must be a string or a number, got ${describe(key)}`);
}

function pointsArgError(points) {
  return new RangeError(`rate limiter: points must be a whole number from 0 to ${MAX_POINTS}, got ${describe(points)}`);
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
  return new RangeError(`rate limiter: points (${points}) must not exceed the burst (${limiter.burst}): a request of more points than the bucket holds can never be admitted`);
}

function validPoints(points) {
  return points === 1 || (typeof points === 'number' && Number.isInteger(points) && points >= 0 && points <= MAX_POINTS);
}

// ---- The in-process limiter -------------------------------------------------------------

/** Common properties of both limiters. */
class BaseLimiter {
  constructor(config) {
    this.keyPrefix = config.keyPrefix;
    this.points = config.points;
    this.duration = config.duration;
    this.burst = config.burst;
    this.blockDuration = config.blockDuration;
    this.maxKeyLength = config.maxKeyLength;
  }

  /** The key a bucket has in Redis: `${keyPrefix}:${key}`, as rate-limiter-flexible names it. */
  getKey(key) {
    return this.keyPrefix === '' ? String(key) : `${this.keyPrefix}:${key}`;
  }
}

/**
 * A limiter whose buckets live in this process (the C++ table): per process, bounded in
 * entries, no I/O. Every method returns a promise, as the Redis limiter's do.
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
  }

  _result(flags) {
    const out = this._out;
    return new RateLimitResult(out[0], out[1] > FOREVER_MS ? -1 : out[1], out[2], (flags & FIRST) !== 0);
  }

  /** Takes `points` (default 1) from the key's bucket; rejects with the result when they are not there. */
  consume(key, points = 1) {
    const k = typeof key === 'string' ? key : keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    const out = this._out;
    let flags;
    if (points === 1) {
      this._consumeOne(k);
      flags = out[3];
    } else {
      if (!validPoints(points)) return Promise.reject(pointsArgError(points));
      if (points > this.burst) return Promise.reject(overBurst(this, points));
      flags = this._consume(k, points);
    }
    if (flags === KEY_TOO_LONG) return Promise.reject(keyTooLong(this));
    if ((flags & ALLOWED) !== 0) return Promise.resolve(new RateLimitResult(out[0], out[1], out[2], (flags & FIRST) !== 0));
    return Promise.reject(this._result(flags));
  }

  /** The key's current numbers, or null when it has no bucket in use (a full bucket). */
  get(key) {
    return this._sync(key, 0, (k) => this._native.get(k), true);
  }

  /** Takes `points` even if they are not there. */
  penalty(key, points = 1) {
    return this._sync(key, points, (k, p) => this._native.penalty(k, p));
  }

  /** Gives back `points`, never more than a full bucket. */
  reward(key, points = 1) {
    return this._sync(key, points, (k, p) => this._native.reward(k, p));
  }

  /**
   * Refuses the key for `secDuration` seconds (0: until delete()); afterwards the key still
   * owes what it owed (less the refill meanwhile): a block never cancels a debt.
   */
  block(key, secDuration) {
    if (typeof secDuration !== 'number' || !(secDuration >= 0)) {
      return Promise.reject(new RangeError(`rate limiter: secDuration must be a number >= 0, got ${describe(secDuration)}`));
    }
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
    const flags = op(k, points);
    if (flags === KEY_TOO_LONG) return Promise.reject(keyTooLong(this));
    if (nullable && (flags & FOUND) === 0) return Promise.resolve(null);
    return Promise.resolve(this._result(flags));
  }

  status() {
    const s = this._native.stats();
    return { store: 'memory', usingFallback: false, lastError: null, entries: s.entries, maxEntries: s.maxEntries, evicted: s.evicted };
  }
}

// ---- The Redis limiter ------------------------------------------------------------------

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
    return new RateLimitResult(Math.max(this.burst - consumed, 0), Math.ceil(after / this._msDivisor), consumed, debt === 0);
  }

  _refused(debt, cost) {
    const inUse = Math.ceil(debt / this._interval);
    const ms = Math.ceil((debt + cost * this._interval - this._tolerance) / this._msDivisor);
    return new RateLimitResult(Math.max(this.burst - inUse, 0), ms, inUse + cost, false);
  }

  _blocked(ms, cost) {
    return new RateLimitResult(0, ms, this.burst + cost, false);
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
    if (err) this._lastError = { code: err.code || 'ERR', message: err.message, at: new Date().toISOString() };
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
        return Promise.reject(new RateLimitResult(out[0], out[1] > FOREVER_MS ? -1 : out[1], out[2], false));
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
    return this._run(
      'g',
      k,
      0,
      (reply) => {
        if (statusOf(reply) === 2) return this._blocked(valueOf(reply), 0);
        const debt = valueOf(reply);
        return debt === 0 ? null : this._admitted(debt, 0);
      },
      (fb) => fb.get(k),
    );
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
    return this._run(
      op,
      k,
      points,
      (reply) => {
        if (statusOf(reply) === 2) return this._blocked(valueOf(reply), 0);
        const debt = valueOf(reply);
        const units = points * this._interval;
        const after = op === 'p' ? Math.min(debt + units, MAX_DEBT_UNITS) : Math.max(debt - units, 0);
        if (this._shadow !== null) {
          // A penalty only makes the shadow's refusals safer; a reward may end them.
          if (op === 'p') this._remember(k, after, Math.ceil(after / this._msDivisor));
          else this._shadow.delete(k);
        }
        const consumed = Math.ceil(after / this._interval);
        return new RateLimitResult(Math.max(this.burst - consumed, 0), Math.ceil(after / this._msDivisor), consumed, false);
      },
      (fb) => local(fb, k, points),
    );
  }

  /**
   * Refuses the key for `secDuration` seconds (0: until delete()); afterwards the key still
   * owes what it owed (less the refill meanwhile): a block never cancels a debt.
   */
  block(key, secDuration) {
    const k = keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (k.length > this.maxKeyLength) return Promise.reject(keyTooLong(this));
    if (typeof secDuration !== 'number' || !(secDuration >= 0) || secDuration > MAX_BLOCK_SEC) {
      return Promise.reject(new RangeError(`rate limiter: secDuration must be a number from 0 to ${MAX_BLOCK_SEC}, got ${describe(secDuration)}`));
    }
    const ms = Math.ceil(secDuration * 1000);
    return this._run(
      'b',
      k,
      ms,
      (reply) => {
        const ms = valueOf(reply);
        if (this._shadow !== null) this._rememberBlock(k, ms, 1);
        return this._blocked(ms, 0);
      },
      (fb) => fb.block(k, secDuration),
    );
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

// ---- createLimiter ----------------------------------------------------------------------

/**
 * Creates a limiter: `points` per `duration` seconds for each key (a token bucket holding
 * `burst`, default `points`), on Redis or in this process.
 * options.store: 'redis' | 'memory' | undefined (Redis when a client is given or REDIS_URL
 *   enables it, else memory). options.client: the Redis client (default getRedisClient()).
 * options.fallback: true (default: a local limiter with the same numbers, per process, while
 *   Redis is unreachable) | false | { points, duration, burst, maxEntries }.
 * Throws a TypeError / RangeError naming the option for any invalid option.
 */
function createLimiter(options) {
  const config = normalizeOptions(options);
  let store = config.store;
  let client = config.client;
  if (store === undefined) {
    if (client !== undefined) store = 'redis';
    else store = require('./redis').isRedisEnabled() ? 'redis' : 'memory';
  }
  if (store === 'memory') return new MemoryRateLimiter(config);
  if (client === undefined) {
    client = require('./redis').getRedisClient();
    if (client === null) {
      throw new TypeError("createLimiter: option store is 'redis' but Redis is disabled (REDIS_URL=disabled) and no client was given");
    }
  }
  return new RedisRateLimiter(config, client);
}

// ---- Express middleware -----------------------------------------------------------------

let warnedForwardedFor = false;

/** Parses an IPv6 address into its eight 16-bit groups, or returns null. */
function ipv6Groups(address) {
  const at = address.indexOf('%'); // a zone index (fe80::1%eth0) is not part of the address
  let ip = at === -1 ? address : address.slice(0, at);
  if (!net.isIPv6(ip)) return null;
  const lastColon = ip.lastIndexOf(':');
  if (ip.indexOf('.', lastColon) !== -1) {
    // A dotted IPv4 tail (::ffff:192.0.2.1) is two groups written differently.
    const o = ip.slice(lastColon + 1).split('.').map(Number);
    ip = `${ip.slice(0, lastColon + 1)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const parse = (part) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const halves = ip.split('::');
  const head = parse(halves[0]);
  if (halves.length === 1) return head;
  const tail = parse(halves[1]);
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

/**
 * The bucket key for a client address: an IPv4 address as is (IPv4-mapped IPv6 addresses
 * included), an IPv6 address as its /`subnet` network, since one IPv6 user or host
 * typically holds a whole /64 or /56 of addresses.
 */
function ipKey(address, subnet = 56) {
  if (typeof address !== 'string' || address === '') return undefined;
  if (net.isIPv4(address)) return address;
  const g = ipv6Groups(address);
  if (g === null || g.length !== 8) return address;
  // ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack socket.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6] >> 8}.${g[6] & 0xff}.${g[7] >> 8}.${g[7] & 0xff}`;
  }
  const out = [];
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, subnet - i * 16));
    const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
    out.push((g[i] & mask).toString(16));
  }
  // Trailing zero groups collapse, so one network always gives one key.
  let end = 8;
  while (end > 1 && out[end - 1] === '0') end--;
  return `${out.slice(0, end).join(':')}${end < 8 ? '::' : ''}/${subnet}`;
}

function clientAddress(req) {
  if (!warnedForwardedFor && req.headers && req.headers['x-forwarded-for'] !== undefined) {
    const trust = req.app && typeof req.app.get === 'function' ? req.app.get('trust proxy') : undefined;
    if (!trust) {
      warnedForwardedFor = true;
      process.emitWarning(
        "rateLimitByIp: a request carries X-Forwarded-For but Express's 'trust proxy' is off, so every " +
          'client behind the proxy shares the proxy\'s bucket. If the app runs behind a proxy, set ' +
          "app.set('trust proxy', <hops or addresses>).",
        { code: 'HIRECACHE_RATELIMIT_TRUST_PROXY' },
      );
    }
  }
  return req.ip !== undefined ? req.ip : req.socket && req.socket.remoteAddress;
}

const HEADER_MODES = new Set(['draft', 'legacy', 'both', false]);

function middlewareOptions(name, limiter, options) {
  if (!limiter || typeof limiter.consume !== 'function') {
    throw new TypeError(`${name}: the first argument must be a limiter from createLimiter()`);
  }
  if (options === null || typeof options !== 'object') throw new TypeError(`${name}: options must be an object, got ${describe(options)}`);
  const known = ['skip', 'handler', 'cost', 'headers', 'onMissingKey', 'ipv6Subnet', 'policyName', 'message'];
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) throw new TypeError(`${name}: unknown option ${k} (known: ${known.join(', ')})`);
  }
  const { skip, handler, onMissingKey = 'reject', ipv6Subnet = 56, message } = options;
  const cost = options.cost === undefined ? 1 : options.cost;
  const headers = options.headers === undefined ? 'both' : options.headers;
  if (skip !== undefined && typeof skip !== 'function') throw new TypeError(`${name}: option skip must be a function, got ${describe(skip)}`);
  if (handler !== undefined && typeof handler !== 'function') throw new TypeError(`${name}: option handler must be a function, got ${describe(handler)}`);
  if (typeof cost !== 'function' && !(Number.isInteger(cost) && cost >= 0 && cost <= MAX_POINTS)) {
    throw new RangeError(`${name}: option cost must be a whole number >= 0 or a function, got ${describe(cost)}`);
  }
  if (!HEADER_MODES.has(headers)) throw new TypeError(`${name}: option headers must be 'draft', 'legacy', 'both' or false, got ${describe(headers)}`);
  if (onMissingKey !== 'reject' && onMissingKey !== 'skip' && typeof onMissingKey !== 'function') {
    throw new TypeError(`${name}: option onMissingKey must be 'reject', 'skip' or a function, got ${describe(onMissingKey)}`);
  }
  if (!Number.isInteger(ipv6Subnet) || ipv6Subnet < 1 || ipv6Subnet > 128) {
    throw new RangeError(`${name}: option ipv6Subnet must be a whole number from 1 to 128, got ${describe(ipv6Subnet)}`);
  }
  // A structured-field string may hold printable ASCII except '"' and '\'.
  const policyName = String(options.policyName === undefined ? limiter.keyPrefix || 'default' : options.policyName).replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '_');
  return { skip, handler, cost, headers, onMissingKey, ipv6Subnet, policyName, message };
}

function setHeaders(res, limiter, result, o) {
  if (o.headers === false || res.headersSent) return;
  const remaining = Math.max(0, result.remainingPoints);
  const resetSec = result.msBeforeNext < 0 ? limiter.duration : Math.ceil(result.msBeforeNext / 1000);
  if (o.headers === 'draft' || o.headers === 'both') {
    // draft-ietf-httpapi-ratelimit-headers-09: both fields are lists; a second limiter on
    // the same route adds its own member instead of overwriting the first one's.
    res.append('RateLimit-Policy', `"${o.policyName}";q=${limiter.points};w=${Math.ceil(limiter.duration)}`);
    res.append('RateLimit', `"${o.policyName}";r=${remaining};t=${resetSec}`);
  }
  if (o.headers === 'legacy' || o.headers === 'both') {
    // With several limiters on one route the most restrictive one speaks.
    const previous = res.getHeader('X-RateLimit-Remaining');
    if (previous === undefined || Number(previous) >= remaining) {
      res.setHeader('X-RateLimit-Limit', String(limiter.points));
      res.setHeader('X-RateLimit-Remaining', String(remaining));
      res.setHeader('X-RateLimit-Reset', String(Math.ceil((Date.now() + resetSec * 1000) / 1000)));
    }
  }
}

function tooMany(req, res, result, o) {
  const retryAfter = result.msBeforeNext < 0 ? undefined : Math.max(1, Math.ceil(result.msBeforeNext / 1000));
  if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
  const body = o.message !== undefined ? o.message : { error: 'Too Many Requests', message: 'Too many requests, please try again later.', retryAfter };
  res.status(429);
  if (typeof body === 'string') res.json({ error: 'Too Many Requests', message: body, retryAfter });
  else res.json(body);
}

function missingKey(req, res, next, o) {
  if (o.onMissingKey === 'skip') return next();
  if (typeof o.onMissingKey === 'function') return o.onMissingKey(req, res, next);
  res.status(400).json({ error: 'Bad Request', message: 'The request lacks the value it is rate-limited by.' });
}

function makeMiddleware(name, limiter, keyFn, options) {
  const o = middlewareOptions(name, limiter, options);
  const maxKeyLength = limiter.maxKeyLength || DEFAULT_MAX_KEY_LENGTH;
  return function rateLimit(req, res, next) {
    const run = async () => {
      if (o.skip !== undefined && (await o.skip(req, res))) return next();
      let key = await keyFn(req, res);
      if (typeof key === 'number' && Number.isFinite(key)) key = String(key);
      // Never a shared bucket named "undefined": no key is the caller's 400-or-skip choice.
      if (typeof key !== 'string' || key === '' || key.length > maxKeyLength) return missingKey(req, res, next, o);
      const cost = typeof o.cost === 'function' ? await o.cost(req, res) : o.cost;
      let result;
      try {
        result = await limiter.consume(key, cost);
      } catch (refusal) {
        if (!(refusal instanceof RateLimitResult)) throw refusal; // a store failure: an Error
        setHeaders(res, limiter, refusal, o);
        if (o.handler !== undefined) return o.handler(req, res, next, refusal);
        return tooMany(req, res, refusal, o);
      }
      setHeaders(res, limiter, result, o);
      return next();
    };
    run().catch(next);
  };
}

/**
 * Express middleware limiting each client address: req.ip (so Express's 'trust proxy'
 * decides which address that is), IPv6 clients by their /56 (options.ipv6Subnet), IPv4-mapped
 * addresses as IPv4. Answers 429 with a JSON body and Retry-After.
 * options: skip(req, res), handler(req, res, next, result), cost (number or (req, res) =>
 * number), headers ('draft' | 'legacy' | 'both' (default) | false), policyName,
 * message (string or JSON body of the 429), ipv6Subnet.
 */
function rateLimitByIp(limiter, options = {}) {
  const subnet = options && options.ipv6Subnet !== undefined ? options.ipv6Subnet : 56;
  return makeMiddleware('rateLimitByIp', limiter, (req) => ipKey(clientAddress(req), subnet), options);
}

/**
 * Express middleware limiting by keyFn(req, res) (a string, number or a promise of one),
 * e.g. the e-mail of a login. A missing key (undefined, null, '') or one longer than the
 * limiter's maxKeyLength is answered 400 (options.onMissingKey 'reject', the default), or
 * passed through ('skip'), or handed to onMissingKey(req, res, next). Other options as
 * rateLimitByIp.
 */
function rateLimitByKey(limiter, keyFn, options = {}) {
  if (typeof keyFn !== 'function') throw new TypeError(`rateLimitByKey: keyFn must be a function, got ${describe(keyFn)}`);
  return makeMiddleware('rateLimitByKey', limiter, keyFn, options);
}

module.exports = {
  createLimiter,
  rateLimitByIp,
  rateLimitByKey,
  RateLimitResult,
  ipKey,
  // For tests and the benchmark: the script and its SHA1.
  RATE_LIMIT_SCRIPT: SCRIPT,
  RATE_LIMIT_SCRIPT_SHA: SCRIPT_SHA,
};
