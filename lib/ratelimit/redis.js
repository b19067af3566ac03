'use strict';
// The Redis limiter: one Lua script per decision on one key, with a local fallback while
// the client's circuit breaker says Redis cannot be used, and a local memory of refusals
// Redis answered.
const binding = require('../binding');
const {
  ReplyError,
  ConnectionError,
  CommandTimeoutError,
  OutcomeUnknownError,
  QueueFullError,
  ClientClosedError,
  ProtocolError,
} = require('../errors');
const {
  ALLOWED, FOREVER_MS, MAX_DEBT_UNITS, KNOWN_REFUSED_TRUST_MS,
  makeResult, refuseLater, nativeLimiter, DEFAULT_FALLBACK_GRACE_MS,
  keyArgError, pointsArgError, secDurationError, keyTooLong, keyString, overBurst, validPoints,
  callOptionsError, setDurationError, BaseLimiter,
} = require('./shared');
const { MemoryRateLimiter } = require('./memory');

const { LocalLimiter } = binding;
// SCRIPT LOAD carries BREAKER_EARLY (lib/ratelimit/scripts.js): when the breaker opens while
// it waits, the client settles it at once, and the decisions waiting for it (which have not
// run) go on at once. A decision's own EVALSHA carries UNSENT_EARLY instead: one already written when the breaker
// opens for a stall waits for its reply or its deadline (settled with ERR_OUTCOME_UNKNOWN, a
// stall shorter than the grace (see _holdFor) would turn every decision in flight into an
// error, although Redis is about to answer it); one still waiting to be written (behind a
// connect that hangs) is settled at once and has not run.
const { UNSENT_EARLY } = require('../client/client');
const { luaScript, loadScript: loadLua } = require('./scripts');
const WAIT_FOR_REPLY = UNSENT_EARLY;

// The script that makes one decision on one bucket in Redis: lib/ratelimit/token_bucket.lua,
// read once when this module loads (lib/ratelimit/scripts.js).
const BUCKET_SCRIPT = luaScript('token_bucket.lua');
const SCRIPT = BUCKET_SCRIPT.text;
const SCRIPT_SHA = BUCKET_SCRIPT.sha;
// The cap on refused points, src/ratelimit/token_bucket.h's kMaxRefused.
const MAX_REFUSED = 2 ** 31 - 1;
if (!SCRIPT.includes(`\nlocal MAX_DEBT = ${MAX_DEBT_UNITS}\n`) || !SCRIPT.includes(`\nlocal MAX_REFUSED = ${MAX_REFUSED}\n`)) {
  // A script whose caps differ from the C++ core's would break the agreement between the
  // limiters.
  throw new Error(`hirecache: ${BUCKET_SCRIPT.file} must cap debts at ${MAX_DEBT_UNITS} and refused points at ${MAX_REFUSED}`);
}

// Redis answers that mean "not able to decide now", as opposed to a mistake (WRONGTYPE on
// our key, a script error) that must surface.
const UNAVAILABLE_REPLIES = new Set(['LOADING', 'BUSY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'READONLY', 'NOREPLICAS', 'OOM']);
// The client's errors that mean "Redis was not reached or did not answer". Only these let
// the fallback answer, and only while the breaker is not closed: anything else (a bug, a
// wrong argument) rejects.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH',
  'ERR_OUTCOME_UNKNOWN', 'ERR_QUEUE_FULL', 'ERR_CLIENT_CLOSED', 'ERR_BREAKER_OPEN',
]);
const UNAVAILABLE_CLASSES = [ConnectionError, CommandTimeoutError, OutcomeUnknownError, QueueFullError, ClientClosedError];

/** Loads the bucket script on `client` (after a NOSCRIPT), one load at a time per client. */
function loadScript(client) {
  return loadLua(client, BUCKET_SCRIPT);
}

// The script's reply: value * 4 + status, or -1 for a block without end; or, when the key
// holds refused points, [that number, refused points].
const statusOf = (reply) => (reply < 0 ? 2 : reply % 4);
const valueOf = (reply) => (reply < 0 ? -1 : (reply - (reply % 4)) / 4);
const isCount = (n) => Number.isSafeInteger(n) && n >= -1;
/**
 * The script's reply as [number, second] (second: refused points, or a lease's tokens; 0 when
 * the reply is one number), or null when it is neither form: a server (or something posing as
 * one) that answers otherwise never makes a decision.
 */
function decodeReply(reply) {
  if (typeof reply === 'number') return isCount(reply) ? [reply, 0] : null;
  if (Array.isArray(reply) && reply.length === 2 && isCount(reply[0]) && isCount(reply[1]) && reply[1] >= 0) return reply;
  return null;
}

function unexpectedReply(reply) {
  return new ProtocolError(`rate limiter: Redis answered the script with ${Array.isArray(reply) ? 'an array' : typeof reply === 'string' ? 'a string' : String(reply)}, not a decision`, 'ERR_UNEXPECTED_REPLY');
}

// What distinguishes the buckets' key names from other programs' under the same keyPrefix.
const BUCKET_TAG = 'tb:';

function isUnavailable(err) {
  if (!(err instanceof Error)) return false;
  if (err instanceof ReplyError) return UNAVAILABLE_REPLIES.has(err.code);
  return UNAVAILABLE_CLASSES.some((Class) => err instanceof Class) || UNAVAILABLE_CODES.has(err.code);
}

/**
 * Whether a failed command may have run: it timed out (perhaps after it was written) or
 * the connection died, or the breaker opened, after it was written.
 */
function outcomeUnknown(err) {
  return err instanceof CommandTimeoutError || err instanceof OutcomeUnknownError;
}

const ignore = () => {};
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

// At most this many decisions of one limiter wait for a stalled breaker (see _holdFor);
// more are decided by the fallback at once.
const MAX_HELD = 10000;

// Unregisters what a limiter registered on its client once the limiter is collected.
const detachOnCollect = new FinalizationRegistry((undo) => {
  for (const fn of undo) fn();
});

/**
 * A limiter whose buckets live in Redis: one Lua script per decision (EVALSHA, reloaded on
 * NOSCRIPT), the clock read inside the script with TIME.
 *
 * The client's circuit breaker is the one judge of whether Redis can be used. While it is
 * closed every decision is Redis's: a slow reply never turns into a local admission. While
 * it is open (or half-open), decisions come from a local fallback limiter (per process),
 * with no command sent: at once when Redis is unreachable, and after up to graceMs from the
 * opening when it stalled or failed (a short stall does not hand keys to the per-process
 * fallback while Redis still decides for the other processes). The fallback's bucket for a
 * key always starts from what Redis last said about it (every reply is mirrored into it),
 * and a decision whose outcome is unknown (it timed out, or the connection died after it
 * was written) is never sent again and counts as spent: its points are charged to the
 * fallback's bucket.
 *
 * Keys known to be over their limit are refused locally until their msBeforeNext, but for
 * at most a second after Redis said so (another process may delete or reward the key).
 */
/** The client's keyPrefix as a string (a Buffer prefix must be UTF-8: limiter keys are strings). */
function clientKeyPrefix(client) {
  const kp = client._keyPrefix;
  if (kp === '' || kp === undefined) return '';
  if (typeof kp === 'string') return kp;
  const text = kp.toString();
  if (!Buffer.from(text).equals(kp)) {
    throw new RangeError('the client\'s keyPrefix is a Buffer that is not UTF-8 text; the limiter\'s keys are strings: give keyPrefix as a string');
  }
  return text;
}

class RedisRateLimiter extends BaseLimiter {
  constructor(config, client) {
    super(config);
    this.store = 'redis';
    this._client = client;
    // The client's keyPrefix (ioredis's option) comes first, as for every key it sends; then
    // the limiter's, and 'tb:', so that a bucket never shares its name with a key another
    // program wrote under the same keyPrefix (rate-limiter-flexible's `${keyPrefix}:${key}`).
    this._prefix = clientKeyPrefix(client) + this._namespace();
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
    this._mirrorTo = null;
    if (config.fallback) {
      // Only the numbers: execEvenly and the in-memory block wrap this limiter's consume, not
      // the fallback's as well (they would apply twice).
      const fb = new MemoryRateLimiter({
        ...config, ...config.fallback, maxEntries: config.fallback.maxEntries || config.maxEntries, execEvenly: false, inMemoryBlockOnConsumed: 0,
      });
      this._fallback = fb;
      this._mirrorTo = fb._native.observe;
      this._mirrorBlockTo = fb._native.block;
      // Redis's debt in units of this limiter's bucket, as a debt of the fallback's: the
      // same share of the bucket in use (with the same numbers, the same debt; with the
      // same time to fill, the same time owed). So a key Redis reported exhausted is
      // exhausted locally, whatever the fallback's numbers.
      const [, , fbTolerance] = LocalLimiter.shape(fb.points, Math.round(fb.duration * 1e6), fb.burst);
      this._mirrorRatio = fbTolerance === tolerance ? 1 : fbTolerance / tolerance;
    }
    // What decides while Redis cannot: the insurance limiter given (any limiter object, as
    // rate-limiter-flexible's insuranceLimiter), else the fallback.
    this._insurance = config.insuranceLimiter || null;
    this._local = this._insurance || this._fallback;
    // Consume decisions by their outcome; the fallback's own are added in status().
    this._allowed = 0;
    this._refused = 0;
    this._knownRefused = 0;
    this._unknownCharged = 0;
    this._errors = 0;
    this._lastError = null;
    // Decisions went local because Redis could not be reached while the client's breaker is
    // off (see _unusable), until Redis answers again; and whether the client was told the
    // fallback is in use.
    this._unreachable = false;
    // Whether this limiter's fallback is noted in use on the client; an object of its own so
    // that the cleanup run when the limiter is collected can un-note it.
    this._noteState = { noted: false };
    const options = client.options;
    this._breakerOff = options !== undefined && options.breaker !== undefined && options.breaker.enabled === false;
    // While the breaker is open for a stall or for failures, decisions wait up to graceMs
    // after it opened for it to close (see _holdFor): the open period's reason and start,
    // read once, and the decisions waiting.
    this._graceMs = config.fallback ? config.fallback.graceMs : this._insurance !== null ? DEFAULT_FALLBACK_GRACE_MS : 0;
    this._rejectIfNotReady = config.rejectIfRedisNotReady;
    // rejectIfRedisNotReady: the client's state, read once (status() is a native call) and
    // forgotten at each client event, since every change of state comes with one.
    this._stateSeen = null;
    // Consume decisions the insurance limiter made.
    this._insAllowed = 0;
    this._insRefused = 0;
    this._openInfo = null;
    this._held = null;
    // Token leases (option lease): consume() takes tokens from Redis a few at a time and
    // spends them here (lib/ratelimit/lease.js, loaded only when asked for).
    this._leases = null;
    if (config.lease) {
      const { TokenLeases } = require('./lease');
      this._leases = new TokenLeases(this, config.lease, config.maxEntries);
    }
    attachToClient(this, client);
  }

  /** `${keyPrefix}:tb:`, or 'tb:' without a keyPrefix: where this limiter's buckets live. */
  _namespace() {
    return this.keyPrefix === '' ? BUCKET_TAG : `${this.keyPrefix}:${BUCKET_TAG}`;
  }

  /**
   * The Redis key of `key`'s bucket (before the client's own keyPrefix):
   * `${keyPrefix}:tb:${key}`. Not rate-limiter-flexible's `${keyPrefix}:${key}`: the two
   * never read each other's keys (see docs/ratelimit.md, "Migrating").
   */
  getKey(key) {
    return this._namespace() + key;
  }

  /**
   * After a command failed with `err` (an unavailability, see isUnavailable): whether Redis
   * counts as unusable, so that the fallback may decide. It does when the breaker is not
   * closed (the client's breakerState is written by the core at the transition, so a call
   * the breaker settled already sees it open). With the client's breaker turned off, a
   * command that could not be sent because Redis could not be reached (a ConnectionError) is
   * the only word that Redis is down, and counts too. A timeout or an unknown outcome while
   * the breaker is closed never does: one slow reply is not an outage.
   */
  _unusable(err) {
    if (this._client.breakerState !== 'closed') return true;
    if (!this._breakerOff || !(err instanceof ConnectionError)) return false;
    if (!this._unreachable) {
      this._unreachable = true;
      this._lastError = { code: err.code || 'ERR', message: err.message, at: Date.now() };
      this._updateNote();
    }
    return true;
  }

  /**
   * Whether an operation waits before the fallback decides, the breaker being open: null to
   * decide locally now, or a promise to wait for. Redis unreachable: now. Stalled or failing:
   * the decision waits for the breaker to close, but not past graceMs after it opened (then
   * now). Redis may still be deciding for the other processes during a short stall (a slow
   * first connect on a busy machine, a fork), and a key handed to the per-process fallback
   * then could pass the global limit. At most MAX_HELD decisions wait at a time.
   */
  _holdFor() {
    let info = this._openInfo;
    if (info === null) {
      const s = this._client.status();
      info = { reason: s.breakerReason, openedAt: s.breakerOpenedAt || Date.now() };
      this._openInfo = info;
    }
    if (info.reason === 'unreachable') return null;
    const left = info.openedAt + this._graceMs - Date.now();
    if (left <= 0) return null;
    let held = this._held;
    if (held === null) {
      held = { promise: null, resolve: null, timer: null, count: 0 };
      held.promise = new Promise((resolve) => {
        held.resolve = resolve;
      });
      held.timer = setTimeout(() => this._release(), left);
      this._held = held;
    }
    if (held.count >= MAX_HELD) return null;
    held.count += 1;
    return held.promise;
  }

  /** Ends the wait of the held decisions: each looks at the breaker again. */
  _release() {
    const held = this._held;
    if (held === null) return;
    this._held = null;
    clearTimeout(held.timer);
    held.resolve();
  }

  /**
   * Runs operation `op` on `key`: on Redis while the breaker is closed, else on the
   * fallback when there is one (after the wait of _holdFor). `reloaded`: the script was just
   * loaded for this operation, so a NOSCRIPT now is not retried.
   */
  _route(op, key, cost, reloaded) {
    if (this._rejectIfNotReady && this._clientState() !== 'ready') return this._notReady(op, key, cost);
    if (this._local !== null && this._client.breakerState !== 'closed') {
      const wait = this._holdFor();
      if (wait === null) return this._decideLocally(op, key, cost);
      return wait.then(() => this._route(op, key, cost, reloaded));
    }
    return this._run(op, key, cost, reloaded);
  }

  /**
   * rejectIfRedisNotReady: Redis is not connected and ready, so the operation is not queued
   * for it: the insurance limiter or the fallback decides, else it rejects at once. A client
   * that has not connected yet is asked to (a lazy client would otherwise never be ready).
   */
  _clientState() {
    if (this._stateSeen === null) this._stateSeen = this._client.status().state;
    return this._stateSeen;
  }

  _notReady(op, key, cost) {
    const state = this._clientState();
    if (state === 'idle') this._client.connect().catch(ignore);
    if (this._local !== null) return this._decideLocally(op, key, cost);
    if (op === 'c') this._errors += 1;
    return Promise.reject(new ConnectionError(`rate limiter: Redis is not ready (${state}) and rejectIfRedisNotReady is set`, 'ERR_REDIS_NOT_READY'));
  }

  /**
   * The end of an operation that may have run in Redis (its outcome is unknown), already
   * charged to the fallback's bucket: decided by the fallback while the breaker is open
   * (after the wait of _holdFor), or, once it is closed, the error `err` (it is never sent
   * again, and a slow reply is never an admission).
   */
  _unlessUsable(op, key, cost, err) {
    if (this._client.breakerState !== 'closed') {
      const wait = this._holdFor();
      if (wait === null) return this._decideLocally(op, key, cost);
      return wait.then(() => this._unlessUsable(op, key, cost, err));
    }
    if (op === 'c') this._errors += 1;
    return Promise.reject(err);
  }

  /** Redis answered: a decision that went local because it was unreachable is over. */
  _answered() {
    this._unreachable = false;
    this._updateNote();
  }

  /**
   * A client event (see RedisClient#_watch). A breaker that leaves 'closed' sends the
   * decisions to the fallback; lastError keeps why (kept after recovery, for a health
   * report).
   */
  _onClientEvent(type, detail) {
    this._stateSeen = null;
    if (type !== 'breaker' || this._local === null) return;
    this._openInfo = null;
    // Closed: the held decisions go to Redis. Unreachable: to the fallback at once.
    if (detail.state === 'closed' || detail.reason === 'unreachable') this._release();
    if (detail.state !== 'closed' && !this._noteState.noted) {
      const last = typeof this._client.status === 'function' ? this._client.status().lastError : null;
      this._lastError = last
        ? { code: last.code || 'ERR', message: last.message, at: last.at || Date.now() }
        : { code: 'ERR_BREAKER_OPEN', message: `the circuit breaker opened (${detail.reason || 'no reason given'})`, at: Date.now() };
    }
    this._updateNote();
  }

  /** Tells the client whether this limiter's fallback decides, for its status().fallbacks. */
  _updateNote() {
    const local = this._local !== null && (this._client.breakerState !== 'closed' || this._unreachable);
    if (local === this._noteState.noted) return;
    this._noteState.noted = local;
    if (typeof this._client.noteFallback === 'function') this._client.noteFallback(this._source, local);
  }

  // The numbers of a reply, computed here rather than in Lua: Redis's CPU is the ceiling.
  _admitted(debt, cost) {
    const after = debt + cost * this._interval;
    const consumed = Math.ceil(after / this._interval);
    return makeResult(Math.max(this.burst - consumed, 0), Math.ceil(after / this._msDivisor), consumed, debt === 0);
  }

  // `refused`: the points refused since the last admission, this request's included.
  _refusedResult(debt, cost, refused) {
    const inUse = Math.ceil(debt / this._interval);
    const ms = Math.ceil((debt + cost * this._interval - this._tolerance) / this._msDivisor);
    return makeResult(Math.max(this.burst - inUse, 0), ms, inUse + refused, false);
  }

  _blocked(ms, cost) {
    return makeResult(0, ms, this.burst + Math.max(cost, 1), false);
  }

  /**
   * Sets the fallback's bucket for `key` to what Redis just said: it owes `debt` units (of
   * this limiter's bucket). One native call, about 0.1 µs. (The native observe also marks
   * the bucket as blocked for its shortest trust, a millisecond: a fallback decision on the
   * key within that millisecond is refused, the safe side.)
   */
  _mirror(key, debt) {
    if (this._mirrorTo === null) return;
    const d = this._mirrorRatio === 1 ? debt : Math.min(Math.ceil(debt * this._mirrorRatio), MAX_DEBT_UNITS);
    this._mirrorTo(key, d, 1);
  }

  /** Mirrors a block that Redis reported: `ms` left, -1 for a block without end. */
  _mirrorBlock(key, ms) {
    if (this._mirrorTo !== null) this._mirrorBlockTo(key, ms < 0 ? 2 ** 53 : ms);
  }

  _send(op, key, cost) {
    return this._client._command(WAIT_FOR_REPLY, 'EVALSHA', SCRIPT_SHA, 1, this._prefix + key, op, cost === 1 ? '1' : String(cost), this._argInterval, this._argTolerance, this._argScale, this._argBlock);
  }

  /**
   * Runs one operation of the script for `key` (op 'c', 'g', 'p', 'r' or 'b', `cost` its
   * argument) and settles with its outcome; on NOSCRIPT loads the script and sends it once
   * more (NOSCRIPT means it did not run), unless `reloaded` says that was done already.
   */
  _run(op, key, cost, reloaded) {
    return this._send(op, key, cost).then(
      (reply) => this._settle(op, key, cost, reply),
      (err) => {
        if (!reloaded && err instanceof ReplyError && err.code === 'NOSCRIPT') return this._reload(op, key, cost);
        return this._failed(op, key, cost, err, outcomeUnknown(err), reloaded);
      },
    );
  }

  _reload(op, key, cost) {
    return loadScript(this._client).then(
      // The breaker may have opened meanwhile: routed again, as the operation has not run.
      () => this._route(op, key, cost, true),
      // The operation never ran: only the SCRIPT LOAD failed.
      (err) => this._failed(op, key, cost, err, false, false),
    );
  }

  _settle(op, key, cost, raw) {
    if (this._unreachable) this._answered();
    const decoded = decodeReply(raw);
    if (decoded === null) {
      if (op === 'c') this._errors += 1;
      return Promise.reject(unexpectedReply(raw));
    }
    const [reply, refused] = decoded;
    switch (op) {
      case 'c': return this._settleConsume(key, cost, reply, refused);
      case 'g': return this._settleGet(key, reply, refused);
      case 'b': return this._settleBlock(key, reply);
      default: return this._settleChange(op, key, cost, reply, refused);
    }
  }

  /**
   * A command of operation `op` on `key` failed with `err`; `unknown` when it may have run.
   * An unknown consume or penalty counts as spent and an unknown block as made: they are
   * applied to the fallback's bucket at once, whatever happens next. When Redis counts as
   * unusable (see _unusable) the operation goes on, on the next turn of the event loop: a
   * connection that dies fails every decision written on it at once, and all of their
   * charges must be in the buckets before any of them is decided locally. Otherwise it
   * rejects with `err`: a slow reply is never an admission.
   */
  _failed(op, key, cost, err, unknown, reloaded) {
    const fb = this._local;
    const unusable = fb !== null && isUnavailable(err) && this._unusable(err);
    if (unknown && fb !== null && op !== 'g' && op !== 'r') {
      this._unknownCharged += 1;
      if (op === 'c') {
        if (this._fallback !== null) this._fallback._native.penalty(key, cost);
        else Promise.resolve(fb.penalty(key, cost)).catch(ignore);
      } else {
        // The change itself is what the fallback would decide: made once, here.
        const made = this._decideLocally(op, key, cost);
        if (unusable) return made;
        made.catch(ignore);
      }
    }
    if (unusable) {
      return nextTurn().then(() => {
        if (unknown) return this._unlessUsable(op, key, cost, err);
        // Not sent because Redis could not be reached, the client's breaker off: locally.
        if (this._unreachable) return this._decideLocally(op, key, cost);
        return this._route(op, key, cost, reloaded);
      });
    }
    if (op === 'c') this._errors += 1;
    return Promise.reject(err);
  }

  /** The answer of the insurance limiter or the fallback to operation `op` on `key`. */
  _decideLocally(op, key, cost) {
    const fb = this._local;
    switch (op) {
      case 'c':
        if (fb === this._insurance) return this._countInsured(fb.consume(key, cost));
        return fb.consume(key, cost);
      case 'g': return fb.get(key);
      case 'p': return fb.penalty(key, cost);
      case 'r': return fb.reward(key, cost);
      // An insurance limiter's own set() may mean something else (rate-limiter-flexible's takes
      // an expiry): the same through delete and penalty.
      case 's': return fb === this._fallback ? fb.set(key, cost) : Promise.resolve(fb.delete(key)).then(() => fb.penalty(key, cost));
      default: return fb.block(key, cost / 1000);
    }
  }

  /** Counts a consume the insurance limiter decided, for status(). */
  _countInsured(decision) {
    return Promise.resolve(decision).then(
      (result) => {
        this._insAllowed += 1;
        return result;
      },
      (result) => {
        if (result instanceof Error) this._errors += 1;
        else this._insRefused += 1;
        throw result;
      },
    );
  }

  /** Takes `points` (default 1) from the key's bucket; rejects with the result when they are not there. */
  consume(key, points = 1, options) {
    const k = typeof key === 'string' ? key : keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (options !== undefined) {
      const err = callOptionsError(options);
      if (err !== null) return Promise.reject(err);
    }
    if (points !== 1 && !validPoints(points)) return Promise.reject(pointsArgError(points));
    if (points > this.burst) return Promise.reject(overBurst(this, points));
    if (k.length > this.maxKeyLength) return Promise.reject(keyTooLong(this));
    // With leases, a token held here admits first (lib/ratelimit/lease.js asks the shadow
    // before anything else).
    if (this._leases !== null) return this._leases.consume(k, points);
    if (this._shadow !== null) {
      const refused = this._knownRefusal(k, points);
      if (refused !== null) return refused;
    }
    return this._route('c', k, points, false);
  }

  /**
   * Known to be over the limit: the refusal of `points` on `k` made here, without a Redis
   * call, or null. The shadow only ever refuses, and trusts what Redis said for at most
   * KNOWN_REFUSED_TRUST_MS; anything it might admit goes to Redis, so it never admits more.
   */
  _knownRefusal(k, points) {
    const flags = this._shadowCheck(k, points);
    if (flags > 0 && (flags & ALLOWED) === 0) {
      const out = this._shadowOut;
      this._knownRefused += 1;
      return refuseLater(makeResult(out[0], out[1] > FOREVER_MS ? -1 : out[1], out[2], false));
    }
    return null;
  }

  _settleConsume(key, cost, reply, refusedPoints) {
    const status = statusOf(reply);
    const value = valueOf(reply);
    if (status === 1) {
      this._allowed += 1;
      this._mirror(key, value + cost * this._interval);
      return this._admitted(value, cost);
    }
    this._refused += 1;
    if (status === 0) {
      const refused = this._refusedResult(value, cost, refusedPoints);
      this._mirror(key, value);
      if (this._shadow !== null) this._remember(key, value, refused.msBeforeNext);
      return Promise.reject(refused);
    }
    this._mirrorBlock(key, value);
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
    return this._route('g', k, 0, false);
  }

  /** The outcome of get() from the script's reply: null for a full bucket. */
  _settleGet(key, reply, refused) {
    if (statusOf(reply) === 2) {
      this._mirrorBlock(key, valueOf(reply));
      return this._blocked(valueOf(reply), 0);
    }
    const debt = valueOf(reply);
    this._mirror(key, debt);
    if (debt === 0) return null;
    const result = this._admitted(debt, 0);
    result.consumedPoints += refused;
    return result;
  }

  /** Takes `points` even if they are not there. */
  penalty(key, points = 1, options) {
    return this._change('p', key, points, options);
  }

  /** Gives back `points`, never more than a full bucket. */
  reward(key, points = 1, options) {
    return this._change('r', key, points, options);
  }

  /**
   * Sets the points in use to `points` exactly (rate-limiter-flexible's set), ending any
   * block and forgetting refused attempts. `secDuration` must be left out: a bucket repays at
   * its own rate (to hold a key for a time, use block()).
   */
  set(key, points, secDuration) {
    const err = setDurationError(secDuration);
    if (err !== null) return Promise.reject(err);
    const k = keyString(key);
    if (this._leases !== null && k !== null) this._leases.forget(k);
    return this._change('s', key, points);
  }

  _change(op, key, points, options) {
    const k = keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (options !== undefined) {
      const err = callOptionsError(options);
      if (err !== null) return Promise.reject(err);
    }
    if (!validPoints(points)) return Promise.reject(pointsArgError(points));
    if (k.length > this.maxKeyLength) return Promise.reject(keyTooLong(this));
    return this._route(op, k, points, false);
  }

  /** The outcome of a penalty ('p') or a reward ('r') of `points` on `key` from the script's reply. */
  _settleChange(op, key, points, reply, refused) {
    if (statusOf(reply) === 2) {
      this._mirrorBlock(key, valueOf(reply));
      return this._blocked(valueOf(reply), 0);
    }
    const debt = valueOf(reply);
    const units = points * this._interval;
    let after;
    if (op === 'p') after = Math.min(debt + units, MAX_DEBT_UNITS);
    else if (op === 's') after = Math.min(units, MAX_DEBT_UNITS);
    else after = Math.max(debt - units, 0);
    this._mirror(key, after);
    if (this._shadow !== null) {
      // A penalty only makes the shadow's refusals safer; a reward or a set may end them.
      if (op === 'p') this._remember(key, after, Math.ceil(after / this._msDivisor));
      else this._shadow.delete(key);
    }
    const inUse = Math.ceil(after / this._interval);
    // As the local limiter (and rate-limiter-flexible) say: first when the bucket was full.
    return makeResult(Math.max(this.burst - inUse, 0), Math.ceil(after / this._msDivisor), inUse + refused, debt === 0);
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
    if (this._leases !== null) this._leases.forget(k);
    return this._route('b', k, ms, false);
  }

  /** The outcome of block() on `key` from the script's reply. */
  _settleBlock(key, reply) {
    const ms = valueOf(reply);
    this._mirrorBlock(key, ms);
    if (this._shadow !== null) this._rememberBlock(key, ms, 1);
    return this._blocked(ms, 0);
  }

  /**
   * Forgets the key everywhere; resolves whether Redis had a bucket for it (false while the
   * fallback decides: Redis is not asked then).
   */
  delete(key) {
    const k = keyString(key);
    if (k === null) return Promise.reject(keyArgError(key));
    if (k.length > this.maxKeyLength) return Promise.reject(keyTooLong(this));
    if (this._shadow !== null) this._shadow.delete(k);
    if (this._leases !== null) this._leases.forget(k);
    if (this._fallback !== null) this._fallback._native.delete(k);
    if (this._insurance !== null) Promise.resolve(this._insurance.delete(k)).catch(ignore);
    if (this._local !== null && this._client.breakerState !== 'closed') return Promise.resolve(false);
    return this._client._command(WAIT_FOR_REPLY, 'DEL', this._prefix + k).then(
      (n) => {
        if (this._unreachable) this._answered();
        return n > 0;
      },
      (err) => (this._local !== null && isUnavailable(err) && this._unusable(err) ? false : Promise.reject(err)),
    );
  }

  /**
   * Where decisions come from: { store: 'redis', usingFallback, lastError, entries,
   * fallbackEntries, knownRefusedEntries, decisions }. usingFallback: the fallback decides
   * (the breaker is not closed, or Redis could not be reached since it last answered). entries counts the buckets this process holds
   * (fallback and known-refused keys). decisions counts consume()'s outcomes since the
   * limiter was made: allowed, refused (by Redis or here), local (decided in this process:
   * known-refused keys and the fallback), fallback (by the fallback while the breaker was
   * not closed), unknownCharged (operations whose outcome at Redis is unknown, charged to
   * the fallback's bucket) and errors (consumes rejected with an Error).
   */
  status() {
    const fb = this._fallback !== null ? this._fallback._native.stats() : null;
    const sh = this._shadow !== null ? this._shadow.stats() : null;
    // The fallback's decisions, or the insurance limiter's (counted here, as it is any object).
    const fbAllowed = (this._fallback !== null ? this._fallback._allowed : 0) + this._insAllowed;
    const fbRefused = (this._fallback !== null ? this._fallback._refused : 0) + this._insRefused;
    const leases = this._leases !== null ? { leases: this._leases.stats() } : null;
    return {
      store: 'redis',
      usingFallback: this._local !== null && (this._client.breakerState !== 'closed' || this._unreachable),
      lastError: this._lastError,
      entries: (fb ? fb.entries : 0) + (sh ? sh.entries : 0),
      fallbackEntries: fb ? fb.entries : 0,
      knownRefusedEntries: sh ? sh.entries : 0,
      decisions: {
        allowed: this._allowed + fbAllowed,
        refused: this._refused + this._knownRefused + fbRefused,
        local: this._knownRefused + fbAllowed + fbRefused,
        fallback: fbAllowed + fbRefused,
        unknownCharged: this._unknownCharged,
        errors: this._errors,
      },
      ...leases,
    };
  }
}

/**
 * Registers `limiter` with its client: its status() in the client's health report
 * (`_report`, as `ratelimit:<keyPrefix>`) and its view of the breaker (`_watch`). Both
 * hold the limiter weakly and are undone when it is collected, so a limiter made per
 * request does not live as long as the client.
 */
function attachToClient(limiter, client) {
  const ref = new WeakRef(limiter);
  const undo = [];
  if (typeof client._report === 'function') {
    const unregister = client._report(limiter._source, () => {
      const l = ref.deref();
      return l === undefined ? null : l.status();
    });
    if (typeof unregister === 'function') undo.push(unregister);
  }
  if (typeof client._watch === 'function') {
    const unwatch = client._watch((type, detail) => {
      const l = ref.deref();
      if (l !== undefined) l._onClientEvent(type, detail);
    });
    if (typeof unwatch === 'function') undo.push(unwatch);
  }
  if (typeof client.noteFallback === 'function') {
    const noteState = limiter._noteState;
    const source = limiter._source;
    undo.push(() => {
      if (noteState.noted) client.noteFallback(source, false);
    });
  }
  if (undo.length > 0) detachOnCollect.register(limiter, undo);
  // A breaker already open when the limiter is made.
  if (client.breakerState !== undefined && client.breakerState !== 'closed') {
    limiter._onClientEvent('breaker', { state: client.breakerState, reason: null });
  }
}

// loadScript and the reply and error helpers are lib/ratelimit/lease.js's too.
module.exports = {
  RedisRateLimiter, SCRIPT, SCRIPT_SHA, loadScript, isUnavailable, outcomeUnknown, statusOf, valueOf, decodeReply, unexpectedReply,
};
