'use strict';
// Drop-in for an API's lib/ratelimit.js: token-bucket rate limiters with the API of
// rate-limiter-flexible (consume / get / penalty / reward / block / delete, results shaped
// like its RateLimiterRes), on Redis or in process, plus Express middleware.
//
//   const { createLimiter, rateLimitByIp, rateLimitByKey } = require('hirecache/ratelimit');
//   const loginByIp = createLimiter({ keyPrefix: 'rl:login:ip', points: 20, duration: 600 });
//   router.post('/login', rateLimitByIp(loginByIp), handler);
//
// The bucket arithmetic is the C++ core's (src/ratelimit/token_bucket.h): exact integer
// GCRA, in units of 1/scale microsecond. The Redis limiter runs the same arithmetic in one
// Lua script per decision (lib/ratelimit/token_bucket.lua), on one key, with Redis's own
// clock. See docs/ratelimit.md.
const { RateLimitResult, normalizeOptions } = require('./ratelimit/shared');
const { MemoryRateLimiter } = require('./ratelimit/memory');
const { RedisRateLimiter, SCRIPT, SCRIPT_SHA } = require('./ratelimit/redis');
const { rateLimitByIp, rateLimitByKey, ipKey } = require('./ratelimit/middleware');
const { RateLimiterUnion } = require('./ratelimit/union');
const { HirecacheStore } = require('./ratelimit/express-store');

/**
 * Creates a limiter: `points` per `duration` seconds for each key (a token bucket holding
 * `burst`, default `points`), on Redis or in this process.
 * options.store: 'redis' | 'memory' | undefined (Redis when a client is given or REDIS_URL
 *   enables it, else memory). options.client: the Redis client (default getRedisClient()).
 * options.fallback: true (default: a local limiter with the same numbers, per process, while
 *   Redis is unreachable) | false | { points, duration, burst, maxEntries }.
 * options.lease: false (default) | true | { maxTokens, ttlMs }: take tokens from Redis a few
 *   at a time and spend them here (lib/ratelimit/lease.js); Redis-backed limiters only.
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
  if (store === 'memory') {
    for (const name of ['insuranceLimiter', 'rejectIfRedisNotReady', 'lease']) {
      if (config[name]) throw new TypeError(`createLimiter: option ${name} is for a limiter on Redis; this one is in memory (store 'memory', or no Redis configured)`);
    }
    return new MemoryRateLimiter(config);
  }
  if (client === undefined) {
    client = require('./redis').getRedisClient();
    if (client === null) {
      throw new TypeError("createLimiter: option store is 'redis' but Redis is disabled (REDIS_URL=disabled) and no client was given");
    }
  }
  return new RedisRateLimiter(config, client);
}

module.exports = {
  createLimiter,
  rateLimitByIp,
  rateLimitByKey,
  RateLimitResult,
  RateLimiterUnion,
  ipKey,
  // A Store for express-rate-limit (docs/ratelimit.md): new HirecacheStore(options), or this.
  HirecacheStore,
  createExpressStore: (options) => new HirecacheStore(options),
  // For tests and the benchmark: the script and its SHA1.
  RATE_LIMIT_SCRIPT: SCRIPT,
  RATE_LIMIT_SCRIPT_SHA: SCRIPT_SHA,
};
