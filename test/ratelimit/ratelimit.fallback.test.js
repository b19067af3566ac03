'use strict';
// Proves that a Redis limiter keeps deciding when Redis cannot be reached (the client's
// breaker is open): decisions come from the local fallback (per process, with its own
// numbers, each key starting from what Redis last said), the limiter's status() and the
// client's status().fallbacks say so, and both return to Redis when it recovers.
// Without a fallback a store failure rejects with an Error, never with a result, so
// middleware can tell "Redis is down" from "rate limited".
const { createLimiter, RateLimitResult } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');
const { startRedis } = require('../helpers/redis-server');
const { waitFor, outcome, watchUnhandledRejections } = require('../helpers/async');

let server;
let port;
let unhandled;
const clients = [];

function client() {
  const c = createClient({ url: `redis://127.0.0.1:${port}`, reconnectBaseDelay: 10, reconnectMaxDelay: 100, connectTimeout: 1000 });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  server = await startRedis();
  port = server.port;
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.disconnect()));
  if (server) await server.stop();
  expect(unhandled.stop()).toEqual([]);
});

async function ensureServer() {
  if (!server) server = await startRedis({ port });
}

async function killServer() {
  await server.kill();
  await server.stop();
  server = null;
}

test('Redis down: decisions come from the local fallback, status() says so, then back to Redis', async () => {
  await ensureServer();
  const c = client();
  const l = createLimiter({ keyPrefix: 'rl:fb', points: 100, duration: 600, client: c, fallback: { points: 3 } });
  expect((await l.consume('k')).remainingPoints).toBe(99);
  expect(l.status()).toMatchObject({ store: 'redis', usingFallback: false, lastError: null });

  await killServer();
  // The local fallback has its own, smaller bucket: 3 points for a key Redis never spoke of,
  // then refusals.
  const local = [];
  for (let i = 0; i < 5; i++) local.push(await outcome(l.consume('n')));
  expect(local.map((r) => r.ok)).toEqual([true, true, true, false, false]);
  expect(local[3].error).toBeInstanceOf(RateLimitResult);
  expect(local[0].value.remainingPoints).toBe(2);
  const status = l.status();
  expect(status.usingFallback).toBe(true);
  expect(status.lastError).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String), at: expect.any(Number) }));
  expect(Math.abs(status.lastError.at - Date.now())).toBeLessThan(60000);
  expect(c.status().fallbacks).toContain('ratelimit:rl:fb');
  // A key Redis spoke of starts from the same share of the bucket in use: 1 of 100 is 0.03
  // of 3 points, so 2 whole points are left.
  await expect(l.get('k')).resolves.toMatchObject({ remainingPoints: 2, consumedPoints: 1 });
  expect(status.fallbackEntries).toBe(2);
  // get / penalty / reward / block / delete keep working on the fallback too.
  await expect(l.get('n')).resolves.toMatchObject({ remainingPoints: 0 });
  await expect(l.reward('n', 1)).resolves.toMatchObject({ remainingPoints: 1 });
  await expect(l.penalty('n', 1)).resolves.toMatchObject({ remainingPoints: 0 });
  await expect(l.block('other', 10)).resolves.toMatchObject({ msBeforeNext: 10000 });
  await expect(l.delete('other')).resolves.toBe(false);

  await ensureServer();
  await waitFor(async () => (await outcome(l.consume('fresh'))).ok && !l.status().usingFallback, { what: 'decisions back on Redis' });
  expect(c.status().fallbacks).not.toContain('ratelimit:rl:fb');
  // The state is back to Redis; the reason it left is still there for a health report.
  expect(l.status().lastError).toEqual(status.lastError);
  // The restarted server is empty, so Redis has the full 100 again for this key.
  expect((await l.consume('k')).remainingPoints).toBe(99);
}, 30000);

test('without a fallback, a store failure rejects with an Error, not a result', async () => {
  await ensureServer();
  const c = client();
  const l = createLimiter({ keyPrefix: 'rl:nofb', points: 5, duration: 60, client: c, fallback: false });
  await l.consume('k');
  await killServer();
  for (let i = 0; i < 3; i++) {
    const r = await outcome(l.consume('k'));
    expect(r.ok).toBe(false);
    expect(r.error).toBeInstanceOf(Error);
    expect(r.error).not.toBeInstanceOf(RateLimitResult);
    expect(typeof r.error.code).toBe('string');
  }
  await expect(l.get('k')).rejects.toBeInstanceOf(Error);
  await expect(l.delete('k')).rejects.toBeInstanceOf(Error);
  expect(c.status().fallbacks).toEqual([]);
  await ensureServer();
}, 30000);

test('a reply error that is a mistake, not an outage, is never hidden by the fallback', async () => {
  await ensureServer();
  const c = client();
  const l = createLimiter({ keyPrefix: 'rl:wrong', points: 5, duration: 60, client: c });
  await c.call('HSET', 'rl:wrong:tb:k', 'f', 'v'); // someone else's hash where our bucket goes
  const r = await outcome(l.consume('k'));
  expect(r.ok).toBe(false);
  expect(r.error).toBeInstanceOf(Error);
  expect(r.error.code).toBe('WRONGTYPE');
  expect(l.status().usingFallback).toBe(false);
});
