'use strict';
// hirecache's health report and its HTTP handlers: health() for the process-wide client
// and cache, createHealth() for a setup of your own, healthHandlers() / healthRouter() for
// GET /health, /health/live and /health/ready. The implementation lives in lib/health/.
const { getRedisClient } = require('./redis');
const cache = require('./cache');
const { buildReport, createHealth } = require('./health/report');
const handlers = require('./health/handlers');

/**
 * The report for the process-wide client (getRedisClient()) and cache (hirecache/cache),
 * with the limiters that registered on the client. See lib/health/report.js.
 */
function health() {
  return buildReport({ client: getRedisClient, cache, limiters: null, connect: true });
}

/** GET /health, /health/live and /health/ready as (req, res) handlers; see lib/health/handlers.js. */
function healthHandlers(options = {}) {
  return handlers.healthHandlers(options, health);
}

/** An Express Router with the three endpoints: healthRouter(require('express'), { path, health }). */
function healthRouter(express, options = {}) {
  return handlers.healthRouter(express, options, health);
}

module.exports = { health, createHealth, healthHandlers, healthRouter };
