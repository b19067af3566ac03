'use strict';
// `npm start`: the example API on PORT (default 3000). Without REDIS_URL it runs on
// hirecache's embedded in-memory store; with REDIS_URL=redis://… it uses Redis, and serves
// from the cache's in-memory fallback whenever Redis is unavailable (HIRECACHE_FALLBACK=off
// turns that off). GET /health says which.
if (!process.env.REDIS_URL && !process.env.REDIS_HOST) process.env.REDIS_URL = 'disabled';

const { createApp } = require('./src/app');
const { cacheBackend } = require('./src/lib/cache');
const { quitRedisClient } = require('./src/lib/redis');
const { health } = require('./src/lib/health');

const port = Number(process.env.PORT || 3000);
const server = createApp().listen(port, () => {
  console.log(`hirecache example API listening on http://localhost:${port} (cache: ${cacheBackend()})`);
  console.log(`  try: curl http://localhost:${port}/owners/42/campaigns/7/stats`);
  console.log(`       curl http://localhost:${port}/health   (now: ${health().status})`);
});

function shutdown() {
  server.close(() => {
    quitRedisClient().finally(() => process.exit(0));
  });
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
