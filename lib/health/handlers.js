'use strict';
// HTTP handlers for the health report, as plain (req, res) functions: they work with
// Express, with node:http, with anything that passes Node's request and response, and
// hirecache does not depend on Express. healthRouter() takes the application's own express
// to build a Router.
//
//   GET /health        the report; 200, or 503 when its status is 'error'
//   GET /health/live   200 while the process runs (it never looks at Redis)
//   GET /health/ready  200 unless neither Redis nor the fallback can serve, then 503
const { checkType, invalidParameterError, checkKnownOptions } = require('../util/validate');

function send(res, statusCode, body) {
  const text = JSON.stringify(body);
  res.statusCode = statusCode;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  // A probe must see the state now, never a copy a proxy kept.
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/** The report, or a report of the failure to build one (never a throw into the server). */
function readReport(health) {
  try {
    return health();
  } catch (err) {
    return { status: 'error', ready: false, error: { code: err && err.code !== undefined ? String(err.code) : null, message: 'the health report failed' } };
  }
}

/**
 * { health, live, ready }: three (req, res) handlers over `options.health` (a function
 * returning a report, such as one made by createHealth()), `defaultHealth` when it is not
 * given (lib/health.js passes the process-wide report).
 */
function healthHandlers(options = {}, defaultHealth = undefined) {
  checkType('options', options, 'object', { where: 'healthHandlers' });
  checkKnownOptions(options, ['health'], { where: 'healthHandlers' });
  const health = options.health === undefined ? defaultHealth : options.health;
  checkType('option health', health, 'function', { where: 'healthHandlers' });
  return {
    health(req, res) {
      const report = readReport(health);
      send(res, report.status === 'error' ? 503 : 200, report);
    },
    live(req, res) {
      send(res, 200, { status: 'ok' });
    },
    ready(req, res) {
      const report = readReport(health);
      send(res, report.ready ? 200 : 503, { status: report.status, ready: report.ready });
    },
  };
}

/**
 * An Express Router answering GET `${path}`, `${path}/live` and `${path}/ready`:
 *   app.use(healthRouter(require('express')));
 * `express` is the application's own (hirecache does not depend on it); options: health (as
 * for healthHandlers), path (default '/health'); defaultHealth as for healthHandlers.
 */
function healthRouter(express, options = {}, defaultHealth = undefined) {
  if (express === null || (typeof express !== 'function' && typeof express !== 'object') || typeof express.Router !== 'function') {
    throw invalidParameterError('the first argument', 'the express module', express, { where: 'healthRouter' });
  }
  checkType('options', options, 'object', { where: 'healthRouter' });
  checkKnownOptions(options, ['health', 'path'], { where: 'healthRouter' });
  const { path = '/health', ...rest } = options;
  if (typeof path !== 'string' || !path.startsWith('/') || path.endsWith('/')) {
    throw invalidParameterError('option path', "a path such as '/health' (a leading /, no trailing /)", path, { where: 'healthRouter' });
  }
  const handlers = healthHandlers(rest, defaultHealth);
  const router = express.Router();
  router.get(path, handlers.health);
  router.get(`${path}/live`, handlers.live);
  router.get(`${path}/ready`, handlers.ready);
  return router;
}

module.exports = { healthHandlers, healthRouter };
