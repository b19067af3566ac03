'use strict';
// hirecache/metrics: what the client, the cache and the limiters count, as a plain object
// (metricsSnapshot), as Prometheus text (prometheusText, metricsHandler for a /metrics
// route), or as collectors in an application's own prom-client registry (registerMetrics,
// without prom-client being a dependency of hirecache). The implementation lives in
// lib/metrics/.
//
// Called without a client (undefined), each reads the process-wide setup: getRedisClient()
// and the process-wide cache of hirecache/cache, with the limiters registered on the client.
// A client (or null: no Redis) makes the caller say which cache and limiters to include.
const { getRedisClient } = require('./redis');
const processCache = require('./cache');
const snapshot = require('./metrics/snapshot');
const exposition = require('./metrics/exposition');
const promClient = require('./metrics/prom-client');
const handler = require('./metrics/handler');

/** The options with the process-wide cache added, unless the caller named one. */
const withProcessCache = (options) =>
  options !== null && typeof options === 'object' ? { cache: processCache, ...options } : options; // else refused below

/** Everything hirecache counts, as a plain object; see lib/metrics/snapshot.js. */
function metricsSnapshot(client, extras = {}) {
  if (client === undefined) return snapshot.metricsSnapshot(getRedisClient(), withProcessCache(extras));
  return snapshot.metricsSnapshot(client, extras);
}

/** The Prometheus text exposition (0.0.4); see lib/metrics/exposition.js. */
function prometheusText(client, options = {}) {
  if (client === undefined) return exposition.prometheusText(getRedisClient(), withProcessCache(options));
  return exposition.prometheusText(client, options);
}

/** Collectors for an existing prom-client Registry; see lib/metrics/prom-client.js. */
function registerMetrics(registry, client, options = {}) {
  if (client === undefined) return promClient.registerMetrics(registry, getRedisClient, withProcessCache(options));
  return promClient.registerMetrics(registry, client, options);
}

/** An Express-style GET /metrics handler; see lib/metrics/handler.js. */
function metricsHandler(client, options = {}) {
  if (client === undefined) return handler.metricsHandler(getRedisClient, withProcessCache(options));
  return handler.metricsHandler(client, options);
}

module.exports = {
  metricsSnapshot,
  prometheusText,
  registerMetrics,
  metricsHandler,
  PROMETHEUS_CONTENT_TYPE: exposition.CONTENT_TYPE,
};
