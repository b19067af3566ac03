'use strict';
// Starts the one redis-server the suites share, on a free loopback port in a temporary
// folder, and publishes its URL to the workers as HIRECACHE_TEST_REDIS_URL. Suites take a
// database each (see suite-db.js), so the server gets more databases than the default 16.
const { startRedis } = require('./redis-server');

module.exports = async function globalSetup() {
  const server = await startRedis({ args: ['--databases', '1024'] });
  process.env.HIRECACHE_TEST_REDIS_URL = server.url;
  globalThis.__HIRECACHE_TEST_REDIS__ = server;
};
