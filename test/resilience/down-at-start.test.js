'use strict';
// Fault: Redis down when the app starts (nothing listening on its port). Must hold: the
// modules load and createClient / createCache work; the app starts and serves; health()
// says 'degraded' (ready) while the cache's fallback serves, and the cache does serve from
// it; /health, /health/ready and /health/live answer 200. Then redis-server starts on that
// port: health() says 'ok' and the cache uses Redis (what it writes is in Redis; what the
// fallback held is gone), without a restart of anything.
const express = require('express');
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { createHealth, healthRouter } = require('../../lib/health');
const { startRedis, freePort } = require('../helpers/redis-server');
const { rawCommand } = require('../helpers/raw-redis');
const { waitFor, sleep, watchUnhandledRejections } = require('../helpers/async');
const { recordingLogger } = require('./support');

let unhandled;
const cleanups = [];

beforeAll(() => {
  unhandled = watchUnhandledRejections();
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

afterAll(() => {
  expect(unhandled.stop()).toEqual([]);
});

/**
 * An Express app as an API would write it: GET /item/:id reads the cache, computes on a
 * miss and caches the result; plus the health endpoints. Resolves with { url, get(path) }.
 */
async function startApp({ cacheGet, cacheSet, router }) {
  const app = express();
  let computed = 0;
  app.get('/item/:id', async (req, res, next) => {
    try {
      const key = `item:${req.params.id}`;
      const hit = await cacheGet(key);
      if (hit) return res.json({ source: 'cache', value: hit });
      computed += 1;
      const value = `computed-${req.params.id}-${computed}`;
      await cacheSet(key, value, 600);
      return res.json({ source: 'computed', value });
    } catch (err) {
      return next(err);
    }
  });
  app.use(router);
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  cleanups.push(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  }));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    async get(path) {
      const res = await fetch(url + path);
      return { status: res.status, body: await res.json() };
    },
  };
}

/** Starts redis-server on `port`, to be stopped after the test. */
async function startRedisOn(port) {
  const server = await startRedis({ port });
  cleanups.unshift(() => server.stop());
  return server;
}

test('createClient / createCache with nothing listening: degraded, served from the fallback; Redis starts: ok, the cache uses it', async () => {
  const port = await freePort();
  const log = recordingLogger();
  const client = createClient({ url: `redis://127.0.0.1:${port}`, logger: log.logger });
  cleanups.push(async () => client.disconnect());
  const cache = createCache({ client });
  const health = createHealth({ client, cache });
  const app = await startApp({ ...cache, router: healthRouter(express, { health }) });
  const startedAt = Date.now();

  // Nothing failed yet: the first report is ok and starts the connection, which is refused.
  expect(health().status).toBe('ok');
  await waitFor(() => health().status === 'degraded', { timeoutMs: 5000, what: 'health to say degraded' });
  const degraded = health();
  expect(degraded).toMatchObject({
    status: 'degraded',
    ready: true,
    redis: { breaker: 'open', usingFallback: true, lastError: { code: 'ECONNREFUSED' } },
    fallback: { enabled: true },
  });
  expect(degraded.redis.lastErrorTime).toBeGreaterThan(Date.now() - 60000);

  // The app serves: a miss, then the value it cached in the fallback.
  expect(await app.get('/item/1')).toEqual({ status: 200, body: { source: 'computed', value: 'computed-1-1' } });
  expect(await app.get('/item/1')).toEqual({ status: 200, body: { source: 'cache', value: 'computed-1-1' } });
  await expect(cache.cacheGet('item:1')).resolves.toBe('computed-1-1');
  expect(cache.cacheStats().fallback).toMatchObject({ active: true, entries: 1 });
  const h = await app.get('/health');
  expect(h.status).toBe(200);
  expect(h.body).toMatchObject({ status: 'degraded', ready: true, fallback: { active: true, entries: 1 } });
  expect(await app.get('/health/ready')).toEqual({ status: 200, body: { status: 'degraded', ready: true } });
  expect(await app.get('/health/live')).toEqual({ status: 200, body: { status: 'ok' } });

  // Down long enough for the reconnect backoff to reach its cap; then Redis comes up on that port.
  await sleep(3000);
  const attemptsWhileDown = client.status().reconnectAttempts;
  const startingAt = Date.now();
  const server = await startRedisOn(port);
  await waitFor(() => health().status === 'ok', { timeoutMs: 10000, what: 'health to say ok' });
  console.log(`down at start: ok ${Date.now() - startingAt} ms after redis-server was started, `
    + `${attemptsWhileDown} failed connection attempts in the first ${startingAt - startedAt} ms; log ${JSON.stringify(log.lines.map((l) => l.message))}`);
  expect(health()).toMatchObject({
    status: 'ok',
    ready: true,
    redis: { state: 'ready', breaker: 'closed', usingFallback: false },
    fallback: { active: false, entries: 0 },
  });
  expect(await app.get('/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
  // The fallback's entry is gone; what the cache writes now is in Redis.
  await expect(cache.cacheGet('item:1')).resolves.toBeNull();
  expect(await app.get('/item/1')).toEqual({ status: 200, body: { source: 'computed', value: 'computed-1-2' } });
  expect(await rawCommand({ port: server.port }, 'GET', 'item:1')).toBe('computed-1-2');
  expect(await app.get('/item/1')).toEqual({ status: 200, body: { source: 'cache', value: 'computed-1-2' } });
  // Said once that Redis was unreachable, once that it is back.
  expect(log.lines.map((l) => l.level)).toEqual(['warn', 'info']);
}, 30000);

test('the process-wide modules with REDIS_URL pointing at nothing: require, start, degraded; Redis starts: ok', async () => {
  const port = await freePort();
  const saved = { ...process.env };
  let hc;
  try {
    jest.isolateModules(() => {
      process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
      delete process.env.HIRECACHE_FALLBACK;
      // Requiring opens no socket and reads nothing that could fail.
      hc = require('../../lib/index');
      hc.getRedisClient();
    });
  } finally {
    process.env = saved;
  }
  cleanups.push(() => hc.getRedisClient().disconnect());
  const app = await startApp({ cacheGet: hc.cacheGet, cacheSet: hc.cacheSet, router: hc.healthRouter(express) });

  expect((await app.get('/item/7')).status).toBe(200);
  await waitFor(() => hc.health().status === 'degraded', { timeoutMs: 5000, what: 'health to say degraded' });
  expect(await app.get('/item/8')).toMatchObject({ status: 200, body: { source: 'computed' } });
  expect(await app.get('/item/8')).toMatchObject({ status: 200, body: { source: 'cache' } });
  expect(await app.get('/health')).toMatchObject({ status: 200, body: { status: 'degraded', ready: true, redis: { usingFallback: true } } });
  expect((await app.get('/health/ready')).status).toBe(200);

  const server = await startRedisOn(port);
  await waitFor(() => hc.health().status === 'ok', { timeoutMs: 10000, what: 'health to say ok' });
  expect(await app.get('/health')).toMatchObject({ status: 200, body: { status: 'ok', fallback: { active: false, entries: 0 } } });
  await expect(hc.cacheSet('shared', 'redis', 60)).resolves.toBe(true);
  expect(await rawCommand({ port: server.port }, 'GET', 'shared')).toBe('redis');
  await expect(hc.cacheGet('shared')).resolves.toBe('redis');
}, 30000);
