'use strict';
// Token leases for the Redis limiter (createLimiter's `lease` option): this process takes a
// few tokens of a key's bucket from Redis at a time, in one script call (the script's 'l'
// operation), and admits that key's consumes from them without asking Redis again, while
// they last and for at most the lease's lifetime. Every admission made here spends a token
// that Redis already took from the global bucket for this process, so no more are ever
// admitted than Redis granted; what a lease costs is under-admission: tokens held here are
// refused to the other processes until they are spent, given back or expired.
//
// How many tokens a lease asks for (k) adapts per key: it grows when a lease is used up
// within its lifetime (to what the key would use in half a lifetime at the rate it used the
// last one), shrinks when a lease expires with tokens left (by half; they are given back in
// one reward call) or when the demand comes back after the lease expired, and it never asks
// for more than maxTokens, nor for more than a quarter of what Redis said was left in the
// bucket, nor more than one token once Redis could give fewer than asked. Consumes of one key
// that find no token wait for one lease call together, which asks for all of their points;
// whatever is left once they are served, past maxTokens, goes back at once. So a process
// holds at most maxTokens of a key's tokens (of consumes of one point; for bigger ones, also
// fewer than the points of one consume while it waits for more), each for at most ttlMs
// after it was asked for.
const { performance } = require('perf_hooks');
const { ReplyError } = require('../errors');
const { UNSENT_EARLY } = require('../client/client');
const { makeResult } = require('./shared');
const { SCRIPT_SHA, loadScript, outcomeUnknown, isUnavailable, statusOf, valueOf, decodeReply, unexpectedReply } = require('./redis');

// A lease asks for at most this share of the whole tokens Redis last reported left in the
// key's bucket: P processes holding a quarter of what each saw leave most of it to the rest.
const SHARE_OF_LEFT = 4;
// Expired leases are given back by a sweep every quarter lifetime, but at least every 250 ms.
const MAX_SWEEP_MS = 250;
// An entry whose lease expired is kept one more lifetime (with its k), then dropped.
const KEEP_LIFETIMES = 1;

// An entry's place: in the table, evicted from it (its leftovers are given back), or
// forgotten because the key was deleted, set or blocked (its leftovers are dropped: given
// back after a reset, they would be tokens the reset already forgave).
const LIVE = 0;
const EVICTED = 1;
const FORGOTTEN = 2;

const ignore = () => {};
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * The leases of one RedisRateLimiter, per key, and a sweep (one timer, unref'd, while any
 * lease is held) that gives back what expired leases left. The limiter's consume() hands a
 * key here once its arguments are checked; everything else (get, penalty, reward, block,
 * set, delete) stays the limiter's, and delete, set and block here drop the key's lease.
 * While the client's breaker is not closed, consume() goes the limiter's own way (the
 * fallback decides as without leases) and no token held here is spent.
 */
class TokenLeases {
  /**
   * `limiter`: the RedisRateLimiter served (its script arguments, fallback and counters);
   * `maxTokens`, `ttlMs`: the lease option's numbers; `maxEntries`: the most keys holding a
   * lease at once (at the cap, the oldest lease is given back to make room).
   */
  constructor(limiter, { maxTokens, ttlMs }, maxEntries) {
    this._limiter = limiter;
    this.maxTokens = maxTokens;
    this.ttlMs = ttlMs;
    this._maxEntries = maxEntries;
    this._interval = limiter._interval;
    this._tolerance = limiter._tolerance;
    this._unitsPerMs = limiter._scale * 1000;
    this._sweepMs = Math.max(1, Math.min(ttlMs / 4, MAX_SWEEP_MS));
    // key -> entry, in the order their last lease was asked for (so expired ones come first).
    this._entries = new Map();
    this._timer = null;
    this._sweep = this._sweep.bind(this);
    // Counters for status().leases.
    this._calls = 0;
    this._tokensLeased = 0;
    this._admittedLocally = 0;
    this._returns = 0;
    this._tokensReturned = 0;
    this._tokensLost = 0;
    this._unknown = 0;
    this._lastAsked = 0;
    this._lastGranted = 0;
  }

  /**
   * Decides consume(`key`, `points`) (arguments already checked): from a lease held here
   * when it has the points and has not expired; else refused here when the key is known to
   * be over its limit (the limiter's shadow), else with a lease call shared with the other
   * consumes of the key waiting for one.
   */
  consume(key, points) {
    const limiter = this._limiter;
    const closed = limiter._client.breakerState === 'closed';
    const now = performance.now();
    let e = this._entries.get(key);
    if (e !== undefined && e.tokens >= points && now < e.expiresAt && closed && points > 0) {
      e.tokens -= points;
      this._admittedLocally += 1;
      limiter._allowed += 1;
      return Promise.resolve(this._result(e, points, now));
    }
    if (limiter._shadow !== null) {
      const refused = limiter._knownRefusal(key, points);
      if (refused !== null) return refused;
    }
    if (!closed || points === 0) return limiter._route('c', key, points, false);
    if (e === undefined) e = this._add(key);
    else if (e.waiters !== null) return new Promise((resolve, reject) => e.waiters.push({ points, resolve, reject }));
    if (limiter._rejectIfNotReady && limiter._clientState() !== 'ready') return limiter._notReady('c', key, points);
    this._adapt(e, now);
    return new Promise((resolve, reject) => {
      e.waiters = [{ points, resolve, reject }];
      // Sent once the consumes of this turn have joined it, so that a burst asks once.
      queueMicrotask(() => this._send(e, false));
    });
  }

  /**
   * Sets the next lease's k from how the last one went (`now`: when more is needed).
   * Expired with tokens left: they are given back and k halves. Used up within its lifetime:
   * k grows to what half a lifetime takes at the rate the last lease was used (never less
   * than before). Used up, and the demand came back after it expired: k falls to that rate.
   */
  _adapt(e, now) {
    if (e.tokens > 0 && now >= e.expiresAt) {
      this._giveBack(e, e.tokens, true);
      return;
    }
    if (e.granted === 0) return;
    const target = Math.floor((e.granted * this.ttlMs) / (2 * Math.max(now - e.sentAt, 1e-3)));
    if (now < e.expiresAt) e.k = Math.min(this.maxTokens, Math.max(e.k, target));
    else e.k = Math.max(1, Math.min(e.k, target));
  }

  /**
   * Sends the lease call for the consumes waiting on `e`: a consume of what the first of
   * them lacks (`need`) that takes up to `want` tokens. `reloaded`: the script was just
   * loaded for this call (a NOSCRIPT now is not retried).
   */
  _send(e, reloaded) {
    const limiter = this._limiter;
    if (limiter._client.breakerState !== 'closed') {
      this._reroute(e);
      return;
    }
    const now = performance.now();
    // Tokens of an expired lease cannot be spent: given back before more are asked for.
    if (e.tokens > 0 && now >= e.expiresAt) this._giveBack(e, e.tokens, true);
    const waiters = e.waiters;
    let demand = 0;
    for (let i = 0; i < waiters.length; i++) demand += waiters[i].points;
    // The first consume waiting does not fit in the tokens held (see _next).
    const need = Math.max(1, waiters[0].points - e.tokens);
    const want = Math.max(need, demand - e.tokens, Math.min(e.k, e.cap));
    e.need = need;
    e.sentAt = now;
    if (e.tokens === 0) {
      // A new lease: it may be spent until ttlMs after this moment, which is no later than
      // ttlMs after Redis granted it. (Tokens still held keep their lease's lifetime, and
      // the new ones join it.)
      e.expiresAt = now + this.ttlMs;
      if (e.state === LIVE) {
        this._entries.delete(e.key);
        this._entries.set(e.key, e);
      }
    }
    this._calls += 1;
    this._lastAsked = want;
    limiter._client
      ._command(UNSENT_EARLY, 'EVALSHA', SCRIPT_SHA, 1, limiter._prefix + e.key, 'l', String(need), limiter._argInterval, limiter._argTolerance, limiter._argScale, limiter._argBlock, String(want))
      .then(
        (reply) => this._settle(e, reply, want),
        (err) => {
          if (!reloaded && err instanceof ReplyError && err.code === 'NOSCRIPT') {
            // NOSCRIPT: the lease did not run.
            return loadScript(limiter._client).then(
              () => this._send(e, true),
              (loadErr) => this._failed(e, loadErr, false, want),
            );
          }
          return this._failed(e, err, outcomeUnknown(err), want);
        },
      );
  }

  /** Redis answered the lease call of `e` (which asked for up to `want` tokens). */
  _settle(e, raw, want) {
    const limiter = this._limiter;
    if (limiter._unreachable) limiter._answered();
    const decoded = decodeReply(raw);
    // Not a decision: whatever Redis did with the lease is unknown, so its tokens count as taken.
    if (decoded === null) return this._failed(e, unexpectedReply(raw), true, want);
    const [reply, second] = decoded;
    const status = statusOf(reply);
    const value = valueOf(reply);
    const waiters = e.waiters;
    e.waiters = null;
    if (status === 1) {
      this._granted(e, waiters, value, second, want);
      return;
    }
    // Refused or blocked: nothing was taken.
    e.k = 1;
    e.cap = 1;
    const kept = [];
    let refusedPoints = second;
    if (status === 0) {
      limiter._mirror(e.key, value);
      const head = limiter._refusedResult(value, waiters[0].points, refusedPoints);
      if (limiter._shadow !== null) limiter._remember(e.key, value, head.msBeforeNext);
      // Redis had fewer than `need` tokens: a waiter needing less than the first might
      // still fit, and asks again; the others are refused, as consumes sent one by one
      // would have been then.
      for (let i = 0; i < waiters.length; i++) {
        const w = waiters[i];
        if (i > 0 && w.points - e.tokens < e.need) {
          kept.push(w);
          continue;
        }
        limiter._refused += 1;
        w.reject(i === 0 ? head : limiter._refusedResult(value, w.points, refusedPoints));
        refusedPoints += w.points;
      }
    } else {
      limiter._mirrorBlock(e.key, value);
      if (limiter._shadow !== null) limiter._rememberBlock(e.key, value, waiters[0].points);
      for (const w of waiters) {
        limiter._refused += 1;
        w.reject(limiter._blocked(value, w.points));
      }
    }
    this._next(e, kept, false);
  }

  /**
   * Redis granted `n` tokens to the lease of `e` (its bucket owed `before` units before): the
   * waiting consumes take their points (see _next).
   */
  _granted(e, waiters, before, n, want) {
    const interval = this._interval;
    this._tokensLeased += n;
    this._lastGranted = n;
    e.granted = n;
    e.tokens += n;
    e.debt = before + n * interval;
    e.at = performance.now();
    // Fewer than asked: tokens are scarce, one at a time from now on (until Redis reports
    // more). Else at most a quarter of what is left.
    const left = Math.floor((this._tolerance - e.debt) / interval);
    e.cap = n < want ? 1 : Math.max(1, Math.floor(left / SHARE_OF_LEFT));
    this._limiter._mirror(e.key, e.debt);
    this._next(e, waiters, true);
  }

  /**
   * After a lease call of `e`: the consumes `waiting` whose points the tokens held cover take
   * them, in the order they came (one that does not fit does not hold up a smaller one
   * behind it); another lease call for those left, or the end. `granted`: the call just
   * granted tokens (then consumes left over mean the lease was used up at once, and k
   * doubles). At the end a lease never holds more than maxTokens: several consumes of many
   * points may have been asked for together and not all fit; the excess goes back at once.
   */
  _next(e, waiting, granted) {
    const limiter = this._limiter;
    const now = performance.now();
    const rest = [];
    for (const w of waiting) {
      if (w.points <= e.tokens && now < e.expiresAt) {
        e.tokens -= w.points;
        limiter._allowed += 1;
        w.resolve(this._result(e, w.points, now));
      } else {
        rest.push(w);
      }
    }
    if (rest.length > 0) {
      if (granted) e.k = Math.min(this.maxTokens, e.k * 2);
      e.waiters = rest;
      this._send(e, false);
      return;
    }
    if (e.state === EVICTED) {
      if (e.tokens > 0) this._giveBack(e, e.tokens, false);
    } else if (e.state === FORGOTTEN) {
      this._drop(e);
    } else if (e.tokens > this.maxTokens) {
      this._giveBack(e, e.tokens - this.maxTokens, false);
    }
  }

  /**
   * The lease call of `e` failed with `err`; `unknown` when it may have run. Such a lease
   * counts as spent: the most it could have taken is charged to the fallback's bucket (its
   * tokens are lost here, never asked for again as if it had not run). The consumes waiting
   * for it then end as a consume that failed so would: the fallback decides when Redis
   * counts as unusable, else they reject with `err`.
   */
  _failed(e, err, unknown, want) {
    const limiter = this._limiter;
    const local = limiter._local;
    const waiters = e.waiters;
    e.waiters = null;
    e.k = 1;
    const unusable = local !== null && isUnavailable(err) && limiter._unusable(err);
    if (unknown) {
      this._unknown += 1;
      this._tokensLost += want;
      if (local !== null) {
        limiter._unknownCharged += 1;
        if (limiter._fallback !== null) limiter._fallback._native.penalty(e.key, want);
        else Promise.resolve(local.penalty(e.key, want)).catch(ignore);
      }
    }
    for (const w of waiters) {
      if (!unusable) {
        limiter._errors += 1;
        w.reject(err);
        continue;
      }
      w.resolve(
        nextTurn().then(() => {
          if (unknown) return limiter._unlessUsable('c', e.key, w.points, err);
          if (limiter._unreachable) return limiter._decideLocally('c', e.key, w.points);
          return limiter._route('c', e.key, w.points, false);
        }),
      );
    }
    this._next(e, [], false);
  }

  /** The breaker opened before the lease was sent: its consumes go the limiter's way. */
  _reroute(e) {
    const waiters = e.waiters;
    e.waiters = null;
    const limiter = this._limiter;
    for (const w of waiters) w.resolve(limiter._route('c', e.key, w.points, false));
  }

  /**
   * The numbers of an admission of `points` from the lease of `e` (its tokens already
   * taken), as this process sees the bucket: what Redis said it owed after the lease, less
   * the refill since and the tokens still held here (which are this process's to spend).
   * For the first consume of a fresh lease that is what a consume sent to Redis would get.
   */
  _result(e, points, now) {
    const limiter = this._limiter;
    const interval = this._interval;
    const cost = points * interval;
    const owed = e.debt - (now - e.at) * this._unitsPerMs - e.tokens * interval;
    const after = owed > cost ? owed : cost;
    const consumed = Math.ceil(after / interval);
    return makeResult(Math.max(limiter.burst - consumed, 0), Math.ceil(after / limiter._msDivisor), consumed, owed <= cost);
  }

  /** A new entry for `key`, the oldest lease given back first when the table is full. */
  _add(key) {
    if (this._entries.size >= this._maxEntries) {
      const oldest = this._entries.values().next().value;
      this._entries.delete(oldest.key);
      oldest.state = EVICTED;
      if (oldest.waiters === null && oldest.tokens > 0) this._giveBack(oldest, oldest.tokens, false);
    }
    const e = {
      key,
      tokens: 0,
      // Until when the tokens may be spent (performance.now() ms).
      expiresAt: 0,
      // The bucket's debt in units when the last lease was granted, and when that was.
      debt: 0,
      at: 0,
      sentAt: 0,
      // The tokens the last lease got, k (what the next asks for) and the cap Redis's last
      // reply set on it; what the lease in flight needs at least.
      granted: 0,
      k: 1,
      cap: this.maxTokens,
      need: 0,
      // The consumes waiting for a lease call ({ points, resolve, reject }), null when none.
      waiters: null,
      state: LIVE,
    };
    this._entries.set(key, e);
    if (this._timer === null) this._arm();
    return e;
  }

  /**
   * Gives `n` of the tokens of `e` back to the bucket in Redis, in one reward call; `expired`:
   * they are what an expired lease had left (k halves).
   */
  _giveBack(e, n, expired) {
    e.tokens -= n;
    if (expired) e.k = Math.max(1, e.k >> 1);
    const limiter = this._limiter;
    if (limiter._client.breakerState !== 'closed') {
      // Redis cannot be used: the tokens are lost (the global bucket refills them in time).
      this._tokensLost += n;
      return;
    }
    this._returns += 1;
    limiter._run('r', e.key, n, false).then(
      () => {
        this._tokensReturned += n;
      },
      () => {
        this._tokensLost += n;
      },
    );
  }

  /** The tokens of a forgotten entry are lost, never spent nor given back. */
  _drop(e) {
    this._tokensLost += e.tokens;
    e.tokens = 0;
  }

  /**
   * The key was deleted, set or blocked here: the tokens held for it are dropped (a lease
   * in flight still serves the consumes waiting for it).
   */
  forget(key) {
    const e = this._entries.get(key);
    if (e === undefined) return;
    this._entries.delete(key);
    e.state = FORGOTTEN;
    this._drop(e);
  }

  _arm() {
    this._timer = setTimeout(this._sweep, this._sweepMs);
    this._timer.unref();
  }

  /**
   * Gives back the tokens of expired leases, oldest first, and drops entries expired for
   * more than a lifetime; runs while the table holds entries.
   */
  _sweep() {
    this._timer = null;
    const now = performance.now();
    const keepMs = this.ttlMs * KEEP_LIFETIMES;
    for (const e of this._entries.values()) {
      if (e.expiresAt > now) break;
      if (e.waiters !== null) continue;
      if (e.tokens > 0) this._giveBack(e, e.tokens, true);
      if (e.expiresAt + keepMs <= now) this._entries.delete(e.key);
    }
    if (this._entries.size > 0) this._arm();
  }

  /**
   * For status().leases: keys (entries held), tokensHeld (unexpired tokens held here now),
   * maxTokens and ttlMs, calls (lease calls sent), tokensLeased (tokens Redis granted),
   * admittedLocally (consumes admitted from a held lease without a call), returns and
   * tokensReturned (reward calls giving back unused tokens, and their tokens), tokensLost
   * (tokens neither spent nor given back: outcome unknown, forgotten, a return that failed),
   * unknown (lease calls whose outcome is unknown), lastAsked and lastGranted (the last
   * lease call's k and what Redis gave).
   */
  stats() {
    const now = performance.now();
    let tokensHeld = 0;
    for (const e of this._entries.values()) if (e.expiresAt > now) tokensHeld += e.tokens;
    return {
      keys: this._entries.size,
      tokensHeld,
      maxTokens: this.maxTokens,
      ttlMs: this.ttlMs,
      calls: this._calls,
      tokensLeased: this._tokensLeased,
      admittedLocally: this._admittedLocally,
      returns: this._returns,
      tokensReturned: this._tokensReturned,
      tokensLost: this._tokensLost,
      unknown: this._unknown,
      lastAsked: this._lastAsked,
      lastGranted: this._lastGranted,
    };
  }
}

module.exports = { TokenLeases };
