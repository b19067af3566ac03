'use strict';
// One plain object with everything hirecache counts: the client's own counters (kept in the
// C++ core, read here once), and what the components on the client (the cache's fallback
// store, the limiters) report. The Prometheus exposition and the prom-client collectors are
// both built from it, so the three views never disagree.
const { invalidParameterError } = require('../util/validate');

const isObject = (v) => v !== null && typeof v === 'object';
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * Throws a TypeError unless `client` is null/undefined or has a metrics() method (a
 * RedisClient from hirecache/redis). `where` names the function for the message.
 */
function checkClient(client, where) {
  if (client == null) return;
  if (!isObject(client) || typeof client.metrics !== 'function') {
    throw invalidParameterError('client', 'a RedisClient from hirecache/redis, or null', client, { where });
  }
}

/**
 * The components registered on the client through client._report(name, fn), as
 * [name, report] pairs. A report that cannot be read (its component was collected, or its
 * function threw) is left out: a scrape must never fail because one component did.
 */
function reportedComponents(client) {
  if (client == null || typeof client._reports !== 'function') return [];
  let reports;
  try {
    reports = client._reports();
  } catch {
    return [];
  }
  return Object.entries(reports || {}).filter(([, report]) => isObject(report));
}

/** What a report says about metrics: its `metrics` field when it has one, else the report. */
const metricsOf = (report) => (isObject(report.metrics) ? report.metrics : report);

/** Calls `read` and returns its result, or null when it throws. */
function safely(read) {
  try {
    return read();
  } catch {
    return null;
  }
}

const FALLBACK_FIELDS = ['entries', 'bytes', 'reads', 'hits', 'writes', 'activations'];
const LOST_FIELDS = ['count', 'pending', 'unrecorded', 'reissued'];

/**
 * Adds a cache's figures (the shape of cacheStats(): { fallback, lostInvalidations }) into
 * `into`; several caches on one client are summed.
 */
function addCache(into, stats) {
  if (!isObject(stats)) return;
  if (isObject(stats.fallback)) {
    const fb = into.fallback || (into.fallback = { active: false, entries: 0, bytes: 0, reads: 0, hits: 0, writes: 0, activations: 0 });
    fb.active = fb.active || stats.fallback.active === true;
    for (const f of FALLBACK_FIELDS) fb[f] += num(stats.fallback[f]);
  }
  if (isObject(stats.lostInvalidations)) {
    const lost = into.lostInvalidations || (into.lostInvalidations = { count: 0, pending: 0, unrecorded: 0, reissued: 0 });
    for (const f of LOST_FIELDS) lost[f] += num(stats.lostInvalidations[f]);
  }
}

/** A limiter's decision counters ({ allowed, refused, local, fallback, ... }): its numbers only. */
function decisionsOf(report) {
  const d = metricsOf(report).decisions;
  if (!isObject(d)) return null;
  const out = {};
  for (const [k, v] of Object.entries(d)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

/** [name, limiter] pairs from extras.limiters: an object by name, or an array. */
function limiterEntries(limiters) {
  if (limiters == null) return [];
  if (Array.isArray(limiters)) {
    return limiters.map((l, i) => [isObject(l) && typeof l.keyPrefix === 'string' && l.keyPrefix ? l.keyPrefix : String(i), l]);
  }
  if (isObject(limiters)) return Object.entries(limiters);
  throw invalidParameterError('limiters', 'an object of limiters by name, or an array', limiters, { where: 'metricsSnapshot' });
}

/** The caches of extras.cache: one object with cacheStats(), or an array of them. */
function cacheList(cache) {
  if (cache == null) return [];
  const list = Array.isArray(cache) ? cache : [cache];
  list.forEach((c, i) => {
    if (!isObject(c) || typeof c.cacheStats !== 'function') {
      const name = Array.isArray(cache) ? `cache[${i}]` : 'cache';
      throw invalidParameterError(name, 'an object with cacheStats() (hirecache/cache, or what createCache returned)', c, {
        where: 'metricsSnapshot',
      });
    }
  });
  return list;
}

const LIMITER_REPORT = 'ratelimit:';

/**
 * Each node's connection of a cluster client ({ node, role, state, breakerState, inFlight,
 * queued }); for a Sentinel client its primary, as a one-node list; [] otherwise.
 */
function nodesOf(client) {
  const s = safely(() => client.status());
  if (!isObject(s)) return [];
  if (isObject(s.cluster) && Array.isArray(s.cluster.nodes)) {
    return s.cluster.nodes.map((n) => ({
      node: String(n.endpoint), role: n.role, state: n.state, breakerState: n.breaker, inFlight: num(n.inFlight), queued: num(n.queued),
    }));
  }
  if (isObject(s.sentinel) && s.sentinel.primary) {
    return [{ node: String(s.sentinel.primary), role: 'primary', state: s.state, breakerState: s.breaker, inFlight: num(s.inFlight), queued: num(s.queued) }];
  }
  return [];
}

/**
 * Everything hirecache counts, as a plain object (see lib/metrics.d.ts, MetricsSnapshot):
 * the client's metrics() (outcomes by command, latency histograms with per-bucket counts,
 * connection and breaker counters, in-flight and queued gauges), `hits`, `misses` and
 * `hitRate` over every cache read (Redis GET/MGET keys, plus reads served by a fallback
 * store), the fallback store's figures and lost invalidations, and each limiter's decisions.
 *   client  a RedisClient, or null (Redis disabled: only the components' figures).
 *   extras  { cache, limiters }: components that are not registered on the client, or not
 *           on any client (cache: an object with cacheStats(), or an array; limiters: by
 *           name, or an array).
 * Reading it does no I/O and sends nothing to Redis.
 */
function metricsSnapshot(client, extras = {}) {
  checkClient(client, 'metricsSnapshot');
  if (!isObject(extras)) throw invalidParameterError('extras', 'an object', extras, { where: 'metricsSnapshot' });
  const caches = cacheList(extras.cache);
  const extraLimiters = limiterEntries(extras.limiters);

  const m = client == null ? null : client.metrics();
  const snapshot = {
    redis: client != null,
    metricsEnabled: client != null && !(isObject(client.options) && client.options.metrics === false),
    commands: m ? m.commands : {},
    latency: m ? m.latency : { bucketsMs: [], byCommand: {} },
    connectionsOpened: m ? num(m.connectionsOpened) : 0,
    reconnectAttempts: m ? num(m.reconnectAttempts) : 0,
    breakerState: m ? m.breakerState || 'closed' : 'closed',
    breakerOpened: m ? num(m.breakerOpened) : 0,
    breakerClosed: m ? num(m.breakerClosed) : 0,
    inFlight: m ? num(m.inFlight) : 0,
    queued: m ? num(m.queued) : 0,
    nodes: client == null ? [] : nodesOf(client),
    hits: 0,
    misses: 0,
    hitRate: null,
    fallback: null,
    lostInvalidations: null,
    limiters: {},
  };

  for (const [name, report] of reportedComponents(client)) {
    const source = metricsOf(report);
    const decisions = decisionsOf(report);
    if (decisions !== null) {
      snapshot.limiters[name.startsWith(LIMITER_REPORT) ? name.slice(LIMITER_REPORT.length) : name] = decisions;
    }
    if (isObject(source.fallback) || isObject(source.lostInvalidations)) addCache(snapshot, source);
  }
  for (const cache of caches) addCache(snapshot, safely(() => cache.cacheStats()));
  for (const [name, limiter] of extraLimiters) {
    const status = isObject(limiter) && typeof limiter.status === 'function' ? safely(() => limiter.status()) : null;
    const decisions = isObject(status) ? decisionsOf(status) : null;
    if (decisions !== null) snapshot.limiters[name] = decisions;
  }

  // A read is a hit or a miss as the route sees it: from Redis (GET, and MGET per key), or
  // from the fallback store while Redis could not be used.
  for (const verb of ['get', 'mget']) {
    const c = snapshot.commands[verb];
    if (c) {
      snapshot.hits += num(c.hit);
      snapshot.misses += num(c.miss);
    }
  }
  if (snapshot.fallback) {
    snapshot.hits += snapshot.fallback.hits;
    snapshot.misses += Math.max(snapshot.fallback.reads - snapshot.fallback.hits, 0);
  }
  const reads = snapshot.hits + snapshot.misses;
  snapshot.hitRate = reads > 0 ? snapshot.hits / reads : null;
  return snapshot;
}

module.exports = { metricsSnapshot, checkClient };
