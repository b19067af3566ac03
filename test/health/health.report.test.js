'use strict';
// Proves the health report in each state against a real server: ok while Redis serves,
// degraded while the breaker is open and the cache's fallback serves, error when nothing
// serves or the password is refused (WRONGPASS, NOAUTH), ok with Redis disabled by
// configuration; the limiters' own reports included; and no password anywhere in the
// report or in what the client logged, even when it was in the URL.
const util = require('util');
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { createLimiter } = require('../../lib/ratelimit');
const { createHealth } = require('../../lib/health');
const { suiteDatabase } = require('../helpers/suite-db');
const { startRedis } = require('../helpers/redis-server');
const { createProxy } = require('../helpers/proxy');
const { outage } = require('../helpers/client-suite');
const { waitFor } = require('../helpers/async');

const PASSWORD = 'hc-Pw-9f3Kq7Zx';
const WRONG = 'hc-Wrong-4Lm8Tb';

let db;
let authServer;
const cleanups = [];

beforeAll(async () => {
  db = await suiteDatabase();
  authServer = await startRedis({ args: ['--requirepass', PASSWORD] });
});

afterAll(async () => {
  await authServer.stop();
});

beforeEach(() => db.flush());

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

function recordingLogger() {
  const lines = [];
  return {
    lines,
    logger: { error: (m) => lines.push(m), warn: (m) => lines.push(m), info: (m) => lines.push(m) },
  };
}

async function setup({ url, cache: cacheOptions = {}, client: clientOptions = {} } = {}) {
  const proxy = await createProxy({ port: db.port });
  const log = recordingLogger();
  const client = createClient({ url: url || `${proxy.url}/${db.db}`, logger: log.logger, breaker: { openMs: 50 }, ...clientOptions });
  const cache = createCache({ client, ...cacheOptions });
  cleanups.push(async () => {
    client.disconnect();
    await proxy.close();
  });
  return { proxy, client, cache, log, health: createHealth({ client, cache }) };
}

/** Every text a user could see of the report. */
function texts(report) {
  return [JSON.stringify(report), util.inspect(report, { depth: 10 })];
}

test('ok while Redis serves', async () => {
  const env = await setup();
  await env.cache.cacheSet('k', 'v', 60);
  const report = env.health();
  expect(report).toMatchObject({
    status: 'ok',
    ready: true,
    redis: { state: 'ready', breaker: 'closed', usingFallback: false, lastError: null, lastErrorTime: null, reconnectAttempts: 0, inFlight: 0, queued: 0 },
    fallback: { enabled: true, active: false, entries: 0, bytes: 0 },
    cache: { backend: 'redis', lostInvalidations: { count: 0, pending: 0, unrecorded: 0, reissued: 0 } },
    limiters: {},
  });
});

test('a client that never connected is ok, and reading its health starts the connection', async () => {
  const env = await setup();
  expect(env.client.status().state).toBe('idle');
  expect(env.health()).toMatchObject({ status: 'ok', ready: true, redis: { state: 'idle', breaker: 'closed' } });
  await waitFor(() => env.client.status().state === 'ready', { what: 'the connection' });
  expect(env.health().status).toBe('ok');
  const idle = createClient({ url: `${env.proxy.url}/${db.db}` });
  cleanups.push(async () => idle.disconnect());
  const quiet = createHealth({ client: idle, connect: false });
  quiet();
  expect(quiet().redis.state).toBe('idle');
});

test('degraded while the breaker is open and the fallback serves; ok again after', async () => {
  const env = await setup();
  await env.cache.cacheSet('k', 'v', 60);
  await outage(env);
  await env.cache.cacheSet('k', 'memory', 60);
  const report = env.health();
  expect(report.status).toBe('degraded');
  expect(report.ready).toBe(true);
  expect(report.redis.breaker).toBe('open');
  expect(report.redis.usingFallback).toBe(true);
  expect(report.redis.state).not.toBe('ready');
  expect(report.redis.lastError).toEqual({ code: expect.any(String), message: expect.any(String) });
  expect(report.redis.lastError.code).toMatch(/^(ECONNREFUSED|ECONNRESET|EPIPE|ERR_CONNECTION_CLOSED|ERR_.*)$/);
  expect(report.redis.lastErrorTime).toBeGreaterThan(Date.now() - 60000);
  expect(report.fallback).toMatchObject({ enabled: true, active: true, entries: 1 });
  expect(report.fallback.bytes).toBeGreaterThan(0);

  await env.proxy.accept();
  await waitFor(() => env.health().status === 'ok', { what: 'ok again' });
  const after = env.health();
  expect(after.redis).toMatchObject({ state: 'ready', breaker: 'closed', usingFallback: false });
  expect(after.fallback).toMatchObject({ active: false, entries: 0 });
});

test('error when Redis is down and there is no fallback', async () => {
  const env = await setup({ cache: { fallback: false } });
  await env.cache.cacheGet('k');
  await outage(env);
  const report = env.health();
  expect(report).toMatchObject({ status: 'error', ready: false, redis: { usingFallback: false }, fallback: { enabled: false, entries: 0 } });
  // Without any cache in the report, nothing can serve either.
  expect(createHealth({ client: env.client })()).toMatchObject({ status: 'error', ready: false });
});

// (A client with no password at all on a server that wants one is not covered: the handshake
// has nothing to send, so every command is answered NOAUTH on a connection that looks ready.)
test.each([
  ['WRONGPASS', (port) => `redis://:${WRONG}@127.0.0.1:${port}`, WRONG],
  ['WRONGPASS', (port) => `redis://default:${WRONG}@127.0.0.1:${port}`, WRONG],
])('%s: error, with the code, and no password in the report or the logs', async (code, url, secret) => {
  const env = await setup({ url: url(authServer.port) });
  await expect(env.cache.cacheGet('k')).resolves.toBeNull();
  await waitFor(() => env.client.status().lastError !== null, { what: 'the refusal' });
  const report = env.health();
  expect(report.status).toBe('error');
  // The fallback still serves, so the instance stays ready.
  expect(report.ready).toBe(true);
  expect(report.redis.lastError.code).toBe(code);
  for (const text of [...texts(report), ...env.log.lines]) {
    expect(text).not.toContain(WRONG);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(encodeURIComponent(secret));
  }
});

test('the right password is ok, and the report never shows it', async () => {
  const env = await setup({ url: `redis://:${PASSWORD}@127.0.0.1:${authServer.port}` });
  await env.cache.cacheSet('k', 'v', 60);
  const report = env.health();
  expect(report.status).toBe('ok');
  for (const text of [...texts(report), ...env.log.lines]) expect(text).not.toContain(PASSWORD);
});

test('ok with Redis disabled by configuration: the embedded store is the backend', async () => {
  const cache = createCache();
  await cache.cacheSet('k', 'v', 60);
  const report = createHealth({ client: null, cache })();
  expect(report).toMatchObject({
    status: 'ok',
    ready: true,
    redis: { state: 'disabled', breaker: null, usingFallback: false, lastError: null },
    fallback: { enabled: false, active: false, entries: 0, bytes: 0 },
    cache: { backend: 'memory', entries: 1 },
  });
});

test("the limiters' reports are included, from the client and from the options", async () => {
  const env = await setup();
  const onClient = createLimiter({ keyPrefix: 'rl:h', points: 5, duration: 60, client: env.client });
  const local = createLimiter({ keyPrefix: 'rl:local', points: 5, duration: 60, store: 'memory' });
  await onClient.consume('a');
  const report = createHealth({ client: env.client, cache: env.cache, limiters: { local } })();
  expect(report.limiters.local).toMatchObject({ store: 'memory', usingFallback: false });
  if (typeof env.client._reports === 'function' && Object.keys(env.client._reports()).length > 0) {
    expect(report.limiters['rl:h']).toMatchObject({ store: 'redis', usingFallback: false });
  }
  expect(createHealth({ client: env.client, limiters: [local] })().limiters['rl:local']).toMatchObject({ store: 'memory' });
});

test('createHealth refuses what it cannot use', () => {
  expect(() => createHealth({ client: 'redis://127.0.0.1' })).toThrow(/createHealth: option client must be a RedisClient/);
  expect(() => createHealth({ cache: {} })).toThrow(/option cache must be what createCache\(\) returned/);
  expect(() => createHealth({ limiters: [{}] })).toThrow(/every limiter must come from createLimiter/);
  expect(() => createHealth({ clinet: null })).toThrow(/unknown option clinet/);
  expect(() => createHealth({ connect: 'yes' })).toThrow(/option connect must be a boolean/);
});

test('the process-wide health(): a malformed REDIS_URL is an error that names the variable and hides the password', () => {
  const saved = { ...process.env };
  try {
    jest.isolateModules(() => {
      process.env.REDIS_URL = `redis://user:${PASSWORD}@127.0.0.1:notaport/0`;
      const { health } = require('../../lib/index');
      const report = health();
      expect(report.status).toBe('error');
      expect(report.ready).toBe(false);
      expect(report.redis.state).toBe('misconfigured');
      expect(report.redis.lastError.code).toBe('ERR_INVALID_CONFIG');
      expect(report.redis.lastError.message).toMatch(/REDIS_URL/);
      for (const text of texts(report)) expect(text).not.toContain(PASSWORD);
    });
  } finally {
    process.env = saved;
  }
});

test('the process-wide health() reads the shared client and cache', async () => {
  const saved = { ...process.env };
  let mods;
  try {
    jest.isolateModules(() => {
      process.env.REDIS_URL = db.url;
      mods = { redis: require('../../lib/redis'), cache: require('../../lib/cache'), health: require('../../lib/health') };
      // The client reads REDIS_URL when it is created.
      mods.redis.getRedisClient();
    });
  } finally {
    process.env = saved;
  }
  cleanups.push(() => mods.redis.getRedisClient().quit());
  await mods.cache.cacheSet('k', 'v', 60);
  expect(mods.health.health()).toMatchObject({ status: 'ok', redis: { state: 'ready' }, fallback: { enabled: true }, cache: { backend: 'redis' } });
});
