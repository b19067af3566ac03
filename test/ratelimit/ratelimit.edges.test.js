'use strict';
// Edges found by reading the limiter work again: a store's resetAll() next to a limiter on
// the same prefix, a refund after the bucket refilled, the middleware given a union, set()'s
// isFirstInDuration on both stores.
const http = require('http');
const express = require('express');
const { rateLimit } = require('express-rate-limit');
const { createLimiter, rateLimitByKey, RateLimiterUnion, HirecacheStore } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');
const { suiteDatabase } = require('../helpers/suite-db');

let db;
let client;

beforeAll(async () => {
  db = await suiteDatabase();
  client = createClient({ url: db.url });
});

beforeEach(() => db.flush());

afterAll(() => client.quit());

function listen(app) {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function get(server, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: server.address().port, path }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    }).on('error', reject);
  });
}

test("a store's resetAll() deletes its counts, never a limiter's buckets under the same prefix", async () => {
  const limiter = createLimiter({ client, keyPrefix: 'rl:login', points: 2, duration: 600 });
  await limiter.consume('ip');
  await limiter.consume('ip');
  const store = new HirecacheStore({ client, prefix: 'rl:login:' });
  store.init({ windowMs: 60000 });
  await store.increment('ip');
  await store.resetAll();
  expect(await store.get('ip')).toBeUndefined();
  await expect(limiter.consume('ip')).rejects.toMatchObject({ remainingPoints: 0 });
  // express-rate-limit's own middleware on that store still counts from zero.
  const app = express();
  app.use(rateLimit({ windowMs: 60000, limit: 1, store, keyGenerator: () => 'ip', validate: false }));
  app.get('/', (req, res) => res.send('ok'));
  const server = await listen(app);
  try {
    expect(await get(server, '/')).toBe(200);
    expect(await get(server, '/')).toBe(429);
  } finally {
    server.close();
  }
});

test('skipFailedRequests gives nothing back once the bucket has refilled since the request was admitted', async () => {
  const limiter = createLimiter({ store: 'memory', points: 1, duration: 0.5 });
  const app = express();
  app.get('/slow-fail', rateLimitByKey(limiter, () => 'k', { skipFailedRequests: true }), (req, res) => {
    setTimeout(() => res.status(500).send('failed'), 700);
  });
  app.get('/fast-fail', rateLimitByKey(limiter, () => 'k', { skipFailedRequests: true }), (req, res) => res.status(500).send('failed'));
  app.get('/ok', rateLimitByKey(limiter, () => 'k', { skipFailedRequests: true }), (req, res) => res.send('ok'));
  const server = await listen(app);
  try {
    // A slow failure: its point came back by itself after 500 ms; the request admitted in
    // the meantime (at 550 ms) keeps its charge, so the next one (at ~700 ms) is refused.
    const slow = get(server, '/slow-fail');
    await new Promise((r) => setTimeout(r, 550));
    expect(await get(server, '/ok')).toBe(200);
    expect(await slow).toBe(500);
    await new Promise((r) => setTimeout(r, 10));
    expect(await get(server, '/ok')).toBe(429);
    // A fast failure is given back: the request right after it is admitted.
    await new Promise((r) => setTimeout(r, 600));
    expect(await get(server, '/fast-fail')).toBe(500);
    await new Promise((r) => setTimeout(r, 10));
    expect(await get(server, '/ok')).toBe(200);
  } finally {
    server.close();
  }
});

test('the middleware refuses a union (it needs one limiter\'s numbers for its headers)', () => {
  const a = createLimiter({ store: 'memory', keyPrefix: 'a', points: 1, duration: 1 });
  const b = createLimiter({ store: 'memory', keyPrefix: 'b', points: 1, duration: 1 });
  expect(() => rateLimitByKey(new RateLimiterUnion(a, b), () => 'k')).toThrow(/a limiter from createLimiter/);
});

test.each(['memory', 'redis'])('%s: set() says whether the bucket was full before, as on the other store', async (store) => {
  const l = createLimiter(store === 'memory' ? { store, points: 5, duration: 60 } : { client, keyPrefix: 'rl:edges', points: 5, duration: 60 });
  await expect(l.set('k', 2)).resolves.toMatchObject({ isFirstInDuration: true });
  await expect(l.set('k', 3)).resolves.toMatchObject({ isFirstInDuration: false, consumedPoints: 3 });
});

test('decisions of the insurance limiter count in status()', async () => {
  const { RateLimiterMemory } = require('rate-limiter-flexible');
  const { freePort } = require('../helpers/redis-server');
  const dead = createClient({ url: `redis://127.0.0.1:${await freePort()}`, logger: false });
  try {
    const l = createLimiter({ client: dead, points: 5, duration: 60, insuranceLimiter: new RateLimiterMemory({ points: 1, duration: 60 }) });
    await l.consume('k');
    await l.consume('k').catch(() => {});
    expect(l.status().decisions).toMatchObject({ allowed: 1, refused: 1, local: 2, fallback: 2 });
  } finally {
    dead.disconnect();
  }
});

test('inMemoryBlockOnConsumed below the burst is refused (admitted keys would be blocked); execEvenly never asks setTimeout for more than it takes', () => {
  expect(() => createLimiter({ store: 'memory', points: 5, burst: 10, duration: 60, inMemoryBlockOnConsumed: 8 })).toThrow(/inMemoryBlockOnConsumed/);
  const l = createLimiter({ store: 'memory', points: 1, duration: 0, execEvenly: true });
  expect(l.execEvenlyMinDelayMs).toBeLessThanOrEqual(2 ** 31 - 1);
});

test('a refusal of any cost reads over the points on Redis too; a value in almost our form is still foreign', async () => {
  const l = createLimiter({ client, keyPrefix: 'rl:big', points: 200000, duration: 5 * 365 * 86400, rejectLocally: false }); // no refill between the two
  await l.consume('k', 100000);
  await expect(l.consume('k', 150000)).rejects.toMatchObject({ consumedPoints: 250000 });
  for (const foreign of ['t1e15', 'tinf', 't12:x', 'b:0x10:', 'b:-1:1.5']) {
    await client.call('SET', l.getKey('f'), foreign);
    await expect(l.get('f')).rejects.toMatchObject({ code: 'FOREIGNKEY' });
  }
});

test('a server that answers the script with anything but a decision never admits: ERR_UNEXPECTED_REPLY', async () => {
  const net = require('net');
  for (const reply of ['+OK\r\n', '$-1\r\n', '*2\r\n$1\r\na\r\n$1\r\nb\r\n', ':-5\r\n', ':9223372036854775807\r\n']) {
    const fake = net.createServer((s) => s.on('data', () => s.write(reply))).listen(0, '127.0.0.1');
    await new Promise((r) => fake.once('listening', r));
    const c = createClient({ url: `redis://127.0.0.1:${fake.address().port}`, logger: false });
    try {
      for (const lease of [false, true]) {
        const l = createLimiter({ client: c, points: 5, duration: 60, fallback: false, lease });
        await expect(l.consume('k')).rejects.toMatchObject({ code: 'ERR_UNEXPECTED_REPLY' });
      }
    } finally {
      c.disconnect();
      fake.close();
    }
  }
});
