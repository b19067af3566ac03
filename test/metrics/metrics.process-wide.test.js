'use strict';
// Without a client, the metrics functions read the process-wide setup an application uses:
// getRedisClient() (from REDIS_URL) and the cache of hirecache/cache. Through a stall of
// Redis (the fault proxy holds its replies), GET /metrics and metricsSnapshot() show the
// breaker opening and the cache's fallback store serving, and both going back.
const http = require('http');
const { createProxy } = require('../helpers/proxy');
const { suiteDatabase } = require('../helpers/suite-db');
const { waitFor } = require('../helpers/async');
const { parseExposition, sampleValue } = require('./exposition-parser');

let db;
let proxy;
let server;
let base;
let cache;
let metrics;
let redis;

/** GET base; resolves with the parsed exposition. */
function scrape() {
  return new Promise((resolve, reject) => {
    http
      .get(base, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          try {
            expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
            resolve(parseExposition(body));
          } catch (err) {
            reject(err);
          }
        });
      })
      .on('error', reject);
  });
}

beforeAll(async () => {
  db = await suiteDatabase();
  proxy = await createProxy({ port: db.port });
  // As an application configures it, before the first use of the process-wide client.
  process.env.REDIS_URL = `${proxy.url}/${db.db}`;
  redis = require('../../lib/redis');
  cache = require('../../lib/cache');
  metrics = require('../../lib/metrics');
  server = http.createServer(metrics.metricsHandler());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}/metrics`;
});

afterAll(async () => {
  proxy.release();
  await redis.quitRedisClient();
  await new Promise((resolve) => server.close(resolve));
  await proxy.close();
  delete process.env.REDIS_URL;
});

test('the process-wide client and cache, through a stall and back', async () => {
  expect(await cache.cacheSet('a', '1')).toBe(true);
  expect(await cache.cacheGet('a')).toBe('1');
  expect(await cache.cacheGet('nope')).toBeNull();
  let f = await scrape();
  expect(sampleValue(f, 'hirecache_commands_total', { command: 'get', outcome: 'hit' })).toBe(1);
  expect(sampleValue(f, 'hirecache_commands_total', { command: 'get', outcome: 'miss' })).toBe(1);
  expect(sampleValue(f, 'hirecache_breaker_state')).toBe(0);
  expect(sampleValue(f, 'hirecache_fallback_active')).toBe(0);
  expect(metrics.metricsSnapshot().hitRate).toBe(0.5);

  // Redis stops answering: the breaker opens and the cache's fallback store takes over.
  proxy.hold('toClient');
  expect(await cache.cacheGet('a')).toBeNull();
  await waitFor(() => redis.getRedisClient().breakerState === 'open', { what: 'the breaker to open' });
  expect(await cache.cacheSet('b', '2')).toBe(true);
  expect(await cache.cacheGet('b')).toBe('2');
  const during = metrics.metricsSnapshot();
  expect(during.breakerState).toBe('open');
  expect(during.fallback).toMatchObject({ active: true, entries: 1 });
  expect(during.fallback.writes).toBeGreaterThanOrEqual(1);
  expect(during.fallback.hits).toBeGreaterThanOrEqual(1);
  f = await scrape();
  expect(sampleValue(f, 'hirecache_breaker_state')).toBe(2);
  expect(sampleValue(f, 'hirecache_fallback_active')).toBe(1);
  expect(sampleValue(f, 'hirecache_fallback_entries')).toBe(1);
  expect(sampleValue(f, 'hirecache_fallback_bytes')).toBeGreaterThan(0);

  // Back: the breaker closes, the fallback store is dropped.
  proxy.release();
  await waitFor(() => redis.getRedisClient().breakerState === 'closed', { what: 'the breaker to close' });
  await waitFor(async () => (await cache.cacheGet('a')) === '1', { what: 'Redis to serve again' });
  f = await scrape();
  expect(sampleValue(f, 'hirecache_breaker_state')).toBe(0);
  expect(sampleValue(f, 'hirecache_breaker_closed_total')).toBeGreaterThanOrEqual(1);
  expect(sampleValue(f, 'hirecache_fallback_active')).toBe(0);
  expect(sampleValue(f, 'hirecache_fallback_entries')).toBe(0);
});
