'use strict';
// The example API: what an Express service looks like after swapping its lib/redis.js and
// lib/cache.js and lib/ratelimit.js for hirecache's.
const express = require('express');
const { getRedisClient } = require('./lib/redis');
const { cacheBackend } = require('./lib/cache');
const campaigns = require('./routes/campaigns');
const auth = require('./routes/auth');

function createApp() {
  const app = express();
  app.use(express.json());

  app.get('/health', (req, res) => {
    const client = getRedisClient();
    if (!client) return res.json({ status: 'ok', cache: cacheBackend() });
    const s = client.status();
    const status = s.ready || s.state === 'idle' ? 'ok' : s.state === 'connecting' ? 'degraded' : 'error';
    return res.status(status === 'error' ? 503 : 200).json({ status, cache: cacheBackend(), redis: s });
  });

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
