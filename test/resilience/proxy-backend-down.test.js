'use strict';
// Fault: Redis behind a TCP proxy or load balancer (HAProxy, Envoy, a cloud NLB, a sidecar)
// whose backend is down. The proxy still accepts every connection, then closes it when its
// own connect to Redis fails. Must hold, as with Redis unreachable directly: the breaker
// stays open until Redis itself answers, health() never says 'ok' meanwhile, what the cache
// wrote to its fallback during the outage stays readable until Redis is back, and the logger
// says "usable again" once, when Redis really is.
//
// Each case runs twice: with the default settings (db 0, no password: there is no handshake,
// so nothing but the server's first reply can say the connection works), and with db 1
// (SELECT is a handshake that must be answered). Before 5cb6da9 the first case failed all
// three tests: an accepted TCP connection counted as 'ready', so the breaker closed and
// opened again at every attempt, the fallback store was dropped each time, health() said
// 'ok' in between and the log said "usable again" 1 ms into a 10 s outage.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { createHealth } = require('../../lib/health');
const { startRedis } = require('../helpers/redis-server');
const { createProxy } = require('../helpers/proxy');
const { waitFor, sleep, watchUnhandledRejections } = require('../helpers/async');
const { recordingLogger } = require('./support');

const OUTAGE_MS = 4000;
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

/** A redis-server, a proxy in front of it, a client (db `db`) through the proxy, its cache and health. */
async function setup(db) {
  const env = { server: await startRedis() };
  env.proxy = await createProxy({ port: env.server.port });
  env.log = recordingLogger();
  env.client = createClient({ url: `${env.proxy.url}/${db}`, logger: env.log.logger });
  env.cache = createCache({ client: env.client });
  env.health = createHealth({ client: env.client, cache: env.cache });
  env.breaker = [];
  env.client.on('breaker', (b) => env.breaker.push({ ...b, at: Date.now() }));
  cleanups.push(async () => {
    env.client.disconnect();
    await env.proxy.close();
    await env.server.stop();
  });
  await env.cache.cacheSet('seed', 'redis', 600);
  return env;
}

/** Kills the backend; resolves once the breaker has opened, with the time of the kill. */
async function killBackend(env) {
  const at = Date.now();
  await env.server.kill();
  await waitFor(() => env.client.breakerState !== 'closed', { timeoutMs: 5000, what: 'the breaker to open' });
  return at;
}

/** Samples breakerState and health().status every 20 ms for `ms`. */
async function sample(env, ms) {
  const seen = { breaker: new Set(), status: new Set() };
  const until = Date.now() + ms;
  while (Date.now() < until) {
    seen.breaker.add(env.client.breakerState);
    seen.status.add(env.health().status);
    await sleep(20);
  }
  return { breaker: [...seen.breaker].sort(), status: [...seen.status].sort() };
}

describe.each([
  ['db 0, no password (no handshake)', 0],
  ['db 1 (SELECT handshake)', 1],
])('backend down behind a proxy, %s', (_name, db) => {
  test('the breaker stays open and health() never says ok until Redis answers', async () => {
    const env = await setup(db);
    const killedAt = await killBackend(env);
    const seen = await sample(env, OUTAGE_MS);
    const closedDuring = env.breaker.filter((b) => b.state === 'closed' && b.at > killedAt);
    console.log(`${_name}: breaker transitions during ${OUTAGE_MS} ms of outage: ${env.breaker.filter((b) => b.at > killedAt).length}; `
      + `states seen ${seen.breaker}; health seen ${seen.status}; proxy accepts ${env.proxy.accepted}`);
    expect(closedDuring).toEqual([]);
    // Open, or half-open while a probe (PING) on an accepted connection waits for its answer.
    expect(seen.breaker).toContain('open');
    expect(seen.breaker.filter((s) => s !== 'open' && s !== 'half-open')).toEqual([]);
    expect(seen.status).toEqual(['degraded']);
  }, 30000);

  test('what the cache wrote to its fallback during the outage stays readable until Redis is back', async () => {
    const env = await setup(db);
    await killBackend(env);
    await expect(env.cache.cacheSet('during', 'memory', 600)).resolves.toBe(true);
    await expect(env.cache.cacheGet('during')).resolves.toBe('memory');
    await sleep(OUTAGE_MS);
    await expect(env.cache.cacheGet('during')).resolves.toBe('memory');
    expect(env.cache.cacheStats().fallback).toMatchObject({ active: true, entries: 1, activations: 1 });
  }, 30000);

  test('one line when Redis went, one when it is back, and only then', async () => {
    const env = await setup(db);
    const killedAt = await killBackend(env);
    await sleep(OUTAGE_MS);
    const restartingAt = Date.now();
    env.server = await startRedis({ port: env.server.port });
    await waitFor(() => env.client.breakerState === 'closed' && env.health().status === 'ok', { timeoutMs: 10000, what: 'recovery' });
    await expect(env.cache.cacheGet('during')).resolves.toBeNull();
    await expect(env.cache.cacheSet('after', 'x', 60)).resolves.toBe(true);
    const lines = env.log.lines.map((l) => ({ level: l.level, at: l.at - killedAt, message: l.message }));
    console.log(`${_name}: log ${JSON.stringify(lines)}`);
    expect(lines.map((l) => l.level)).toEqual(['warn', 'info']);
    expect(lines[1].message).toMatch(/usable again/);
    expect(env.log.lines[1].at).toBeGreaterThanOrEqual(restartingAt);
  }, 30000);
});
