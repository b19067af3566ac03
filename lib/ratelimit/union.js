'use strict';
// RateLimiterUnion: one decision across several limiters (a per-second and a per-day limit,
// say), all of them or none, with rate-limiter-flexible's constructor and result shapes.
const { invalidParameterError } = require('../util/validate');

const WHERE = { where: 'RateLimiterUnion' };

class RateLimiterUnion {
  /** `new RateLimiterUnion(limiter1, limiter2, …)`: two or more limiters with distinct keyPrefixes. */
  constructor(...limiters) {
    if (limiters.length < 2) {
      throw invalidParameterError('limiters', 'two or more limiters', limiters.length, WHERE);
    }
    const prefixes = new Set();
    for (const [i, l] of limiters.entries()) {
      if (l === null || typeof l !== 'object' || typeof l.consume !== 'function' || typeof l.reward !== 'function') {
        throw invalidParameterError(`limiter ${i + 1}`, 'a limiter with consume and reward', l, WHERE);
      }
      if (prefixes.has(l.keyPrefix)) {
        throw invalidParameterError(`limiter ${i + 1}'s keyPrefix`, 'one no other limiter of the union has (results are keyed by it)', l.keyPrefix, WHERE);
      }
      prefixes.add(l.keyPrefix);
    }
    this._limiters = limiters;
  }

  /**
   * Consumes `points` on every limiter. Resolves with { [keyPrefix]: result } when all of
   * them admitted. When any refused, the points the others took are given back (reward), so
   * a refused request counts against none of the limits, and it rejects with
   * { [keyPrefix]: result } of the ones that refused (rate-limiter-flexible's shape; its union
   * keeps what the others took). When one failed with an Error (Redis down with no fallback),
   * the others are given back too and it rejects with that Error.
   */
  async consume(key, points = 1) {
    const limiters = this._limiters;
    const settled = await Promise.allSettled(limiters.map((l) => l.consume(key, points)));
    const admitted = {};
    const refused = {};
    let error = null;
    let anyRefused = false;
    settled.forEach((s, i) => {
      const prefix = limiters[i].keyPrefix;
      if (s.status === 'fulfilled') admitted[prefix] = s.value;
      else if (s.reason instanceof Error) error = error || s.reason;
      else {
        refused[prefix] = s.reason;
        anyRefused = true;
      }
    });
    if (error === null && !anyRefused) return admitted;
    await Promise.allSettled(limiters.filter((l, i) => settled[i].status === 'fulfilled').map((l) => l.reward(key, points)));
    if (error !== null) throw error;
    throw refused;
  }
}

module.exports = { RateLimiterUnion };
