'use strict';
// hirecache/metrics: what the client, the cache and the limiters count, as a plain object
// (metricsSnapshot), as Prometheus text (prometheusText, metricsHandler for a /metrics
// route), or as collectors in an application's own prom-client registry (registerMetrics,
// without prom-client being a dependency of hirecache). The implementation lives in
// lib/metrics/.
const { metricsSnapshot } = require('./metrics/snapshot');
const { prometheusText, CONTENT_TYPE } = require('./metrics/exposition');
const { registerMetrics } = require('./metrics/prom-client');
const { metricsHandler } = require('./metrics/handler');

module.exports = {
  metricsSnapshot,
  prometheusText,
  registerMetrics,
  metricsHandler,
  PROMETHEUS_CONTENT_TYPE: CONTENT_TYPE,
};
