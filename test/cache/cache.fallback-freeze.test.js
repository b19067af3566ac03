'use strict';
// Proves the cache under a frozen Redis (SIGSTOP), the case where every call used to wait
// its whole commandTimeout: the calls waiting when Redis froze settle as misses once the
// breaker opens, later calls are served by the fallback without waiting, and after SIGCONT
// the client recovers on its own, the fallback is dropped and Redis serves again, without a
// restart and without an unhandled rejection.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { startRedis } = require('../helpers/redis-server');
const { waitFor, track, sleep, watchUnhandledRejections } = require('../helpers/async');

let server;
let client;
let cache;
let unhandled;

beforeAll(async () => {
  server = await startRedis();
  unhandled = watchUnhandledRejections();
});

afterAll(async () => {
  if (client) client.disconnect();
  try {
    process.kill(server.pid, 'SIGCONT');
  } catch {
    // Already running or gone.
  }
  await server.stop();
  expect(unhandled.stop()).toEqual([]);
});

test('frozen: waiting calls settle once the breaker opens, the fallback serves, and SIGCONT brings Redis back', async () => {
  // A deadline far beyond the test, so that only the breaker can settle the waiting calls.
  client = createClient({ url: server.url, commandTimeout: 60000, logger: false });
  cache = createCache({ client });
  await expect(cache.cacheSet('hot', 'redis', 60)).resolves.toBe(true);

  process.kill(server.pid, 'SIGSTOP');
  const waiting = Array.from({ length: 50 }, (_, i) => track(cache.cacheGet(i % 2 ? 'hot' : `k:${i}`)));
  await waitFor(() => waiting.every((t) => t.settled), { timeoutMs: 20000, what: 'the waiting calls to settle' });
  expect(waiting.every((t) => t.fulfilled && t.value === null)).toBe(true);
  expect(client.breakerState).not.toBe('closed');

  // Calls made during the freeze do not wait at all: they are answered by the fallback.
  await cache.cacheSet('hot', 'memory', 60);
  const during = Array.from({ length: 200 }, () => track(cache.cacheGet('hot')));
  await sleep(0);
  await Promise.all(during.map((t) => t.promise));
  expect(during.every((t) => t.value === 'memory')).toBe(true);
  expect(cache.cacheStats().fallback).toMatchObject({ active: true, entries: 1 });

  process.kill(server.pid, 'SIGCONT');
  await waitFor(() => client.breakerState === 'closed', { timeoutMs: 20000, what: 'the breaker to close' });
  await expect(cache.cacheGet('hot')).resolves.toBe('redis');
  expect(cache.cacheStats().fallback).toMatchObject({ active: false, entries: 0 });
});
