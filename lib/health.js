'use strict';
// hirecache's health report and its HTTP handlers: health() for the process-wide client
// and cache, createHealth() for a setup of your own, healthHandlers() / healthRouter() for
// GET /health, /health/live and /health/ready. The implementation lives in lib/health/.
const { getRedisClient } = require('./redis');
const cache = require('./cache');
const { buildReport, createHealth } = require('./health/report');
const { healthHandlers, healthRouter } = require('./health/handlers');

/**
 * The report for the process-wide client (getRedisClient()) and cache (hirecache/cache),
 * with the limiters that registered on the client. See lib/health/report.js.
 */
function health() {
  return buildReport({ client: getRedisClient, cache, limiters: null, connect: true });
}

module.exports = { health, createHealth, healthHandlers, healthRouter };
