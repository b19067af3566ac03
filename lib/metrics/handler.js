'use strict';
// The /metrics endpoint: an Express-style handler (it uses only Node's own
// res.statusCode / setHeader / end, so it also serves under a plain http.createServer).
const { prometheusText, resolveExpositionOptions, CONTENT_TYPE } = require('./exposition');
const { checkClient } = require('./snapshot');

/**
 * Returns (req, res, next) => void that answers with the Prometheus text exposition of
 * `client` (see prometheusText), Content-Type 'text/plain; version=0.0.4; charset=utf-8',
 * never cached. A HEAD request gets the headers only. If building the text fails, the error
 * goes to `next` when Express gives one, else the answer is a plain 500.
 *   client   a RedisClient, null, or a function returning either (read at each request).
 *   options  { prefix = 'hirecache_', cache, limiters }.
 */
function metricsHandler(client, options = {}) {
  if (typeof client !== 'function') checkClient(client, 'metricsHandler');
  // Checked now, so a wrong option fails at start-up rather than at the first scrape.
  resolveExpositionOptions(options, 'metricsHandler');
  const currentClient = typeof client === 'function' ? client : () => client;
  return function hirecacheMetrics(req, res, next) {
    let body;
    try {
      body = prometheusText(currentClient(), options);
    } catch (err) {
      if (typeof next === 'function') return next(err);
      res.statusCode = 500;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('metrics unavailable\n');
      return undefined;
    }
    res.statusCode = 200;
    res.setHeader('Content-Type', CONTENT_TYPE);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(req && req.method === 'HEAD' ? undefined : body);
    return undefined;
  };
}

module.exports = { metricsHandler };
