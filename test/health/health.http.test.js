'use strict';
// Proves the three health endpoints over real HTTP, through Express and through plain
// node:http: /health answers the report (503 only when its status is 'error'), /health/live
// is always 200, /health/ready is 503 only when neither Redis nor the fallback can serve;
// answers are JSON and never cached; a report that throws is a 503, never a crash. And the
// example API serves them, keeping its routes up through an outage.
const http = require('http');
const express = require('express');
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { createHealth, healthHandlers, healthRouter } = require('../../lib/health');
const { suiteDatabase } = require('../helpers/suite-db');
const { createProxy } = require('../helpers/proxy');
const { outage } = require('../helpers/client-suite');
const { waitFor } = require('../helpers/async');

let db;
const cleanups = [];

beforeAll(async () => {
  db = await suiteDatabase();
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

/** Listens on a free loopback port; resolves with the base URL. */
async function serve(handler) {
  const server = http.createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

async function get(url) {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), cache: res.headers.get('cache-control'), body: await res.json() };
}

async function setup({ fallback } = {}) {
  const proxy = await createProxy({ port: db.port });
  const client = createClient({ url: `${proxy.url}/${db.db}`, logger: false, breaker: { openMs: 50 } });
  const cache = createCache({ client, fallback });
  cleanups.push(async () => {
    client.disconnect();
    await proxy.close();
  });
  return { proxy, client, cache, health: createHealth({ client, cache }) };
}

test('through Express: ok, then degraded (still 200 and ready), then ok again', async () => {
  const env = await setup();
  const app = express();
  app.use(healthRouter(express, { health: env.health }));
  const base = await serve(app);
  await env.cache.cacheSet('k', 'v', 60);

  let r = await get(`${base}/health`);
  expect(r).toMatchObject({ status: 200, body: { status: 'ok', ready: true, redis: { breaker: 'closed' } } });
  expect(r.type).toMatch(/^application\/json/);
  expect(r.cache).toBe('no-store');
  expect(await get(`${base}/health/live`)).toMatchObject({ status: 200, body: { status: 'ok' } });
  expect(await get(`${base}/health/ready`)).toMatchObject({ status: 200, body: { status: 'ok', ready: true } });

  await outage(env);
  r = await get(`${base}/health`);
  expect(r).toMatchObject({ status: 200, body: { status: 'degraded', redis: { usingFallback: true } } });
  expect(await get(`${base}/health/ready`)).toMatchObject({ status: 200, body: { status: 'degraded', ready: true } });
  expect(await get(`${base}/health/live`)).toMatchObject({ status: 200 });

  await env.proxy.accept();
  await waitFor(async () => (await get(`${base}/health`)).body.status === 'ok', { what: 'ok again' });
});

test('through node:http with the plain handlers: error is 503 on /health and /health/ready, live stays 200', async () => {
  const env = await setup({ fallback: false });
  const h = healthHandlers({ health: env.health });
  const base = await serve((req, res) => {
    if (req.url === '/healthz') return h.health(req, res);
    if (req.url === '/livez') return h.live(req, res);
    if (req.url === '/readyz') return h.ready(req, res);
    res.statusCode = 404;
    return res.end();
  });
  await env.cache.cacheGet('k');
  await outage(env);
  expect(await get(`${base}/healthz`)).toMatchObject({ status: 503, body: { status: 'error', ready: false } });
  expect(await get(`${base}/readyz`)).toMatchObject({ status: 503, body: { status: 'error', ready: false } });
  expect(await get(`${base}/livez`)).toMatchObject({ status: 200, body: { status: 'ok' } });
});

test('a report that throws is a 503 with no detail, never a crash; live never reads it', () => {
  const sent = [];
  const res = {
    headers: {},
    statusCode: 0,
    setHeader(name, value) { this.headers[name.toLowerCase()] = value; },
    end(text) { sent.push({ status: this.statusCode, headers: this.headers, body: JSON.parse(text) }); },
  };
  let reads = 0;
  const h = healthHandlers({
    health: () => {
      reads += 1;
      throw Object.assign(new Error('boom redis://u:hunter2@x'), { code: 'EBOOM' });
    },
  });
  h.health({}, res);
  h.ready({}, res);
  h.live({}, res);
  expect(sent[0]).toMatchObject({ status: 503, body: { status: 'error', ready: false, error: { code: 'EBOOM' } } });
  expect(sent[1]).toMatchObject({ status: 503, body: { ready: false } });
  expect(sent[2]).toMatchObject({ status: 200, body: { status: 'ok' } });
  expect(reads).toBe(2);
  expect(JSON.stringify(sent)).not.toContain('hunter2');
  expect(sent[0].headers['content-type']).toMatch(/application\/json/);
});

test('the router takes a path, and refuses what is not express', async () => {
  const env = await setup();
  const app = express();
  app.use(healthRouter(express, { health: env.health, path: '/status' }));
  const base = await serve(app);
  expect((await get(`${base}/status/live`)).status).toBe(200);
  expect((await get(`${base}/status`)).body.status).toMatch(/^(ok|degraded)$/);
  expect(() => healthRouter({})).toThrow(/healthRouter: the first argument must be the express module/);
  expect(() => healthRouter(express, { path: 'health' })).toThrow(/option path must be a path/);
  expect(() => healthHandlers({ health: 5 })).toThrow(/option health must be a function/);
});

test('the example API serves the endpoints and keeps its routes up through an outage', async () => {
  const proxy = await createProxy({ port: db.port });
  cleanups.push(() => proxy.close());
  const saved = { ...process.env };
  let mods;
  try {
    jest.isolateModules(() => {
      process.env.REDIS_URL = `${proxy.url}/${db.db}`;
      mods = {
        app: require('../../examples/api/src/app'),
        redis: require('../../examples/api/src/lib/redis'),
      };
      // The client reads REDIS_URL when it is created.
      mods.client = mods.redis.getRedisClient();
    });
  } finally {
    process.env = saved;
  }
  const { client } = mods;
  cleanups.push(async () => client.disconnect());
  const base = await serve(mods.app.createApp());

  const stats = `${base}/owners/42/campaigns/7/stats`;
  expect((await fetch(stats)).headers.get('x-cache')).toBe('miss');
  expect((await fetch(stats)).headers.get('x-cache')).toBe('hit');
  expect(await get(`${base}/health`)).toMatchObject({ status: 200, body: { status: 'ok' } });

  await outage({ proxy, client });
  // The route still answers: a miss, then a hit from the fallback.
  const during = await fetch(stats);
  expect(during.status).toBe(200);
  expect(during.headers.get('x-cache')).toBe('miss');
  expect((await fetch(stats)).headers.get('x-cache')).toBe('hit');
  expect(await get(`${base}/health`)).toMatchObject({ status: 200, body: { status: 'degraded', fallback: { active: true, entries: 1 } } });
  expect((await get(`${base}/health/ready`)).status).toBe(200);
  expect((await get(`${base}/health/live`)).status).toBe(200);

  await proxy.accept();
  await waitFor(async () => (await get(`${base}/health`)).body.status === 'ok', { what: 'ok again' });
});
