'use strict';
// The example API: what an Express service looks like after swapping its lib/redis.js and
// lib/cache.js and lib/ratelimit.js for hirecache's, with hirecache's health endpoints.
const express = require('express');
const { healthRouter } = require('./lib/health');
const campaigns = require('./routes/campaigns');
const auth = require('./routes/auth');

function createApp() {
  const app = express();
  app.use(express.json());

  // GET /health (the report; 503 when nothing serves or Redis refused the password),
  // /health/live (200 while the process runs) and /health/ready (503 only when neither
  // Redis nor the cache's fallback store can serve). With Redis down the API keeps
  // answering: the cache serves from its in-memory fallback and /health says 'degraded'.
  app.use(healthRouter(express));

  app.use(campaigns);
  app.use(auth);

  app.use((err, req, res, next) => {
    if (res.headersSent) return next(err);
    console.error(err);
    return res.status(500).json({ error: 'internal error' });
  });
  return app;
}

module.exports = { createApp };
