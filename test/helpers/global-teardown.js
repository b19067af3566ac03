'use strict';
// Stops the redis-server the global setup started and removes its folder.
module.exports = async function globalTeardown() {
  const server = globalThis.__HIRECACHE_TEST_REDIS__;
  globalThis.__HIRECACHE_TEST_REDIS__ = undefined;
  if (server) await server.stop();
};
