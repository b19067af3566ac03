'use strict';
// The health report: whether Redis serves, whether the cache's fallback serves in its place,
// and what the rate limiters say, in one plain object that an HTTP handler can send as it
// is. It is read from what the client and the cache already keep (no command is sent, save
// one PING to start a client that never connected), so it is cheap enough for every probe.
//
//   status 'ok'        Redis is ready and the breaker closed (or not contacted yet and no
//                      failure so far: the first command connects), or Redis is disabled by
//                      configuration (REDIS_URL=disabled) and the embedded store serves, as
//                      configured.
//          'degraded'  Redis is not usable (breaker open or half-open, connection down) and
//                      the cache's fallback store serves in its place.
//          'error'     Nothing serves (Redis not usable and no fallback), or Redis refused the
//                      credentials (WRONGPASS, NOAUTH): a mistake that will not heal by itself,
//                      whatever the fallback does meanwhile.
//   ready              true unless neither Redis nor the fallback can serve (/health/ready).
//
// No password reaches the report: the client's errors never carry one, and every message
// is passed through the URL redaction of the client's configuration on top of that.
const { RedisClient, SOFT_FAIL, BREAKER_EARLY } = require('../client/client');
const { redactUrl } = require('../client/config');
const { describe, invalidParameterError, checkKnownOptions } = require('../util/validate');


/** The error codes of a handshake whose credentials Redis refused (the client's logger's list). */
const { AUTH_CODES: AUTH_REFUSED } = require('../client/log');

// The name under which a limiter registers its report on the client, before its keyPrefix.
const LIMITER_REPORT = 'ratelimit:';

// Anything shaped like a URL with user information, inside a longer message.
const URL_IN_TEXT = /[A-Za-z][A-Za-z0-9+.-]*:\/\/\S*@\S*/g;

/** `message` with every URL's credentials replaced by ***. */
function scrub(message) {
  return String(message).replace(URL_IN_TEXT, (url) => redactUrl(url));
}

/** { code, message } of an error-like value, scrubbed; null for none. */
function errorSummary(err) {
  if (err == null) return null;
  return { code: err.code === undefined ? null : String(err.code), message: scrub(err.message === undefined ? err : err.message) };
}

/** The summary of a limiter's or component's own report: its fields, errors scrubbed. */
function componentSummary(value) {
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [name, field] of Object.entries(value)) {
    if (field instanceof Error || (name === 'lastError' && field !== null && typeof field === 'object')) {
      out[name] = errorSummary(field);
    } else if (typeof field === 'string') {
      out[name] = scrub(field);
    } else {
      out[name] = field;
    }
  }
  return out;
}

/** Calls `read`; on a throw, reports the error instead, so one bad component spoils nothing else. */
function safely(read) {
  try {
    return componentSummary(read());
  } catch (err) {
    return { error: errorSummary(err) };
  }
}

/** The `redis` section for a client that exists. */
function redisSection(client, usingFallback) {
  const s = client.status();
  const lastError = s.lastError ? errorSummary(s.lastError) : null;
  const lastErrorTime = s.lastErrorTime;
  const breaker = s.breaker;
  return {
    state: s.state,
    breaker,
    breakerReason: s.breakerReason == null ? null : s.breakerReason,
    usingFallback: usingFallback(breaker, s),
    lastError,
    lastErrorTime,
    reconnectAttempts: s.reconnectAttempts,
    inFlight: s.inFlight,
    queued: s.queued,
    ...nodeSections(s),
  };
}

/**
 * Which node serves: for a cluster, each node's connection (role, slots, state, breaker,
 * last error; a node never needed yet reads 'idle'); in Sentinel mode, the primary the
 * sentinels named. Nothing for a single Redis.
 */
function nodeSections(s) {
  if (s.cluster) {
    return {
      mode: 'cluster',
      nodes: s.cluster.nodes.map((n) => ({
        node: n.endpoint,
        role: n.role,
        slots: n.slots,
        state: n.state,
        breaker: n.breaker,
        lastError: n.lastError ? errorSummary(n.lastError) : null,
        inFlight: n.inFlight,
        queued: n.queued,
      })),
    };
  }
  if (s.sentinel) return { mode: 'sentinel', primary: s.sentinel.primary, sentinelName: s.sentinel.name };
  return {};
}

/**
 * The primaries of a cluster that cannot serve their slots now (breaker not closed, or down
 * after a failure): with some of them, Redis serves part of the keys, which is 'degraded'.
 */
function primariesDown(redis) {
  if (redis.mode !== 'cluster') return [];
  return redis.nodes.filter((n) => n.role === 'primary' && (n.breaker !== 'closed' || n.state === 'down')).map((n) => n.node);
}

const NO_FALLBACK = Object.freeze({ enabled: false, active: false, entries: 0, bytes: 0 });

/** The `fallback` and `cache` sections from cacheStats(). */
function cacheSections(stats) {
  if (stats === null) return { fallback: NO_FALLBACK, cache: null };
  const fb = stats.fallback;
  const fallback = fb
    ? { enabled: true, active: fb.active, entries: fb.entries, bytes: fb.bytes, maxEntries: fb.maxEntries, maxBytes: fb.maxBytes }
    : NO_FALLBACK;
  const cache = { backend: stats.backend };
  if (stats.store) {
    cache.entries = stats.store.entries;
    cache.bytes = stats.store.bytes;
  }
  if (stats.lostInvalidations) cache.lostInvalidations = { ...stats.lostInvalidations };
  return { fallback, cache };
}

/** The limiters' reports: those registered on the client, then those passed in. */
function limiterSection(client, limiters) {
  const out = {};
  if (client !== null && typeof client._reports === 'function') {
    // Limiters register as 'ratelimit:<keyPrefix>'; a collected one reports null.
    for (const [name, report] of Object.entries(safelyRead(() => client._reports()))) {
      if (name.startsWith(LIMITER_REPORT) && report != null) out[name.slice(LIMITER_REPORT.length)] = componentSummary(report);
    }
  }
  if (limiters) {
    const entries = Array.isArray(limiters)
      ? limiters.map((limiter, i) => [limiter.keyPrefix ? String(limiter.keyPrefix) : String(i), limiter])
      : Object.entries(limiters);
    for (const [name, limiter] of entries) out[name] = safely(() => limiter.status());
  }
  return out;
}

function safelyRead(read) {
  try {
    return read() || {};
  } catch {
    return {};
  }
}

/**
 * Decides status and ready from what serves:
 *   redisServes     the breaker is closed and Redis ready (or starting, with no failure yet);
 *   fallbackServes  the cache has a fallback store;
 *   authRefused     the last failure was a refused password and Redis is not ready.
 */
function decide({ redisServes, fallbackServes, authRefused }) {
  let status;
  if (authRefused) status = 'error';
  else if (redisServes) status = 'ok';
  else if (fallbackServes) status = 'degraded';
  else status = 'error';
  return { status, ready: redisServes || fallbackServes };
}

/**
 * Builds the report once.
 *   client    the RedisClient, null when Redis is disabled by configuration, or a function
 *             returning either (it may throw a ConfigError: the report then says 'error');
 *   cache     an object with cacheStats() (hirecache/cache, or what createCache returned), or null;
 *   limiters  limiters to include, by name ({ login: limiter }) or as an array;
 *   connect   whether an idle client is started (one PING) so that the next report knows.
 */
function buildReport({ client: clientSource, cache, limiters, connect }) {
  let client;
  try {
    client = typeof clientSource === 'function' ? clientSource() : clientSource;
  } catch (err) {
    // A malformed REDIS_URL: nothing can be created, and the error says which variable.
    return {
      status: 'error',
      ready: false,
      redis: {
        state: 'misconfigured', breaker: null, breakerReason: null, usingFallback: false,
        lastError: errorSummary(err), lastErrorTime: Date.now(), reconnectAttempts: 0, inFlight: 0, queued: 0,
      },
      fallback: NO_FALLBACK,
      cache: null,
      limiters: limiterSection(null, limiters),
    };
  }

  let stats = null;
  let cacheError = null;
  if (cache) {
    try {
      stats = cache.cacheStats();
    } catch (err) {
      cacheError = errorSummary(err);
    }
  }
  const { fallback, cache: cacheSection } = cacheError ? { fallback: NO_FALLBACK, cache: { backend: null, error: cacheError } } : cacheSections(stats);

  if (client === null) {
    // Redis is off by configuration: the embedded store is the backend, not a fallback.
    return {
      ...decide({ redisServes: cacheError === null, fallbackServes: false, authRefused: false }),
      redis: {
        state: 'disabled', breaker: null, breakerReason: null, usingFallback: false,
        lastError: null, lastErrorTime: null, reconnectAttempts: 0, inFlight: 0, queued: 0,
      },
      fallback,
      cache: cacheSection,
      limiters: limiterSection(null, limiters),
    };
  }

  const limiterReports = limiterSection(client, limiters);
  const limiterFallback = Object.values(limiterReports).some((r) => r && r.usingFallback === true);
  const redis = redisSection(client, (breaker, s) => (breaker !== 'closed' && fallback.enabled)
    || s.fallbacks.length > 0 || limiterFallback);

  if (connect && redis.state === 'idle') {
    // Soft: a failure only shows in the next report, never as a rejection.
    client._command(SOFT_FAIL | BREAKER_EARLY, 'PING');
  }

  const usable = redis.breaker === 'closed';
  const starting = (redis.state === 'idle' || redis.state === 'connecting') && redis.reconnectAttempts === 0 && redis.lastError === null;
  const redisServes = usable && (redis.state === 'ready' || starting);
  const authRefused = redis.state !== 'ready' && redis.lastError !== null && AUTH_REFUSED.has(redis.lastError.code);
  const decided = decide({ redisServes, fallbackServes: fallback.enabled, authRefused });
  // A cluster with a shard down serves the other shards' keys; the rest fail fast (or use the
  // fallback): degraded, and still ready.
  const down = primariesDown(redis);
  if (down.length > 0 && decided.status === 'ok') decided.status = 'degraded';
  // A cache whose settings are refused serves nothing at all.
  if (cacheError) Object.assign(decided, { status: 'error' });
  const report = {
    ...decided,
    redis,
    fallback,
    cache: cacheSection,
    limiters: limiterReports,
  };
  // Pub/sub has a connection of its own: how it fares, once anything was subscribed. It does
  // not change the status: messages are not what an API's requests wait for.
  const pubsub = safely(() => client._pubsubStatus());
  if (pubsub) report.pubsub = pubsub;
  return report;
}

/**
 * A health function for a setup of your own: createHealth({ client, cache, limiters }).
 *   client    a RedisClient from hirecache/redis, or null when the cache runs without Redis;
 *   cache     what createCache() returned (or hirecache/cache itself), for the fallback's state;
 *   limiters  limiters to report, by name ({ login: limiter }) or as an array;
 *   connect   start an idle client when the report is read (default true).
 * Returns a function that builds the report (see the top of this file) each time it is called.
 */
function createHealth(options = {}) {
  if (options === null || typeof options !== 'object') {
    throw invalidParameterError('options', 'an object', options, { where: 'createHealth' });
  }
  checkKnownOptions(options, ['client', 'cache', 'limiters', 'connect'], { where: 'createHealth' });
  const { client = null, cache = null, limiters = null, connect = true } = options;
  if (client !== null && !(client instanceof RedisClient)) {
    throw invalidParameterError('option client', 'a RedisClient from hirecache/redis, or null', client, { where: 'createHealth' });
  }
  if (cache !== null && (typeof cache !== 'object' || typeof cache.cacheStats !== 'function')) {
    throw invalidParameterError('option cache', 'what createCache() returned, or null', cache, { where: 'createHealth' });
  }
  if (limiters !== null && (typeof limiters !== 'object')) {
    throw invalidParameterError('option limiters', 'an object of limiters by name, or an array', limiters, { where: 'createHealth' });
  }
  const list = limiters === null ? [] : Array.isArray(limiters) ? limiters : Object.values(limiters);
  for (const limiter of list) {
    if (limiter === null || typeof limiter !== 'object' || typeof limiter.status !== 'function') {
      throw new TypeError(`createHealth: every limiter must come from createLimiter(), got ${describe(limiter)}`);
    }
  }
  if (typeof connect !== 'boolean') {
    throw invalidParameterError('option connect', 'a boolean', connect, { where: 'createHealth' });
  }
  return function health() {
    return buildReport({ client, cache, limiters, connect });
  };
}

module.exports = { createHealth, buildReport };
