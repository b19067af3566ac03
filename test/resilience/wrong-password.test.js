'use strict';
// Fault: the password is wrong. Must hold: exactly one log line says so (however many calls
// are made and connection attempts fail), health() says 'error' with lastError.code
// 'WRONGPASS' (and stays ready: the cache's fallback serves), /health answers 503; and the
// password appears nowhere: not in the health report (JSON or util.inspect), the HTTP body,
// the log lines, util.inspect of the client, its options or status, or any error's message,
// stack or inspection, whichever way the password was given (URL, URL with a user name,
// option, REDIS_PASSWORD for the process-wide client), in plain or URL-encoded form.
const util = require('util');
const express = require('express');
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { createHealth, healthRouter } = require('../../lib/health');
const { startRedis } = require('../helpers/redis-server');
const { sleep, waitFor, outcome, watchUnhandledRejections } = require('../helpers/async');
const { recordingLogger } = require('./support');

const RIGHT = 'hc-Right-7Qw2Lp9v';
// A wrong password with characters a URL must encode, so both forms are looked for.
const WRONG = 'hc-Wr0ng:p@ss/w%rd#9Kx';
const SECRETS = [RIGHT, WRONG, encodeURIComponent(WRONG), encodeURIComponent(RIGHT), 'Wr0ng', 'p@ss'];

let server;
let unhandled;
const cleanups = [];

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  server = await startRedis({ args: ['--requirepass', RIGHT] });
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

afterAll(async () => {
  await server.stop();
  expect(unhandled.stop()).toEqual([]);
});

/** Every way a user could see an error. */
function errorTexts(err) {
  return [String(err), err.message, err.stack, util.inspect(err, { depth: 10, showHidden: true }), JSON.stringify(err)];
}

function expectNoSecret(texts, where) {
  for (const text of texts) {
    for (const secret of SECRETS) {
      if (String(text).includes(secret)) throw new Error(`the password (${JSON.stringify(secret)}) appears in ${where}: ${text}`);
    }
  }
}

/** GET `path` from an Express app serving the health router; { status, body, text }. */
async function httpGet(router, path) {
  const app = express();
  app.use(router);
  const srv = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    const res = await fetch(`http://127.0.0.1:${srv.address().port}${path}`);
    const text = await res.text();
    return { status: res.status, text, body: JSON.parse(text) };
  } finally {
    srv.closeAllConnections();
    await new Promise((resolve) => srv.close(resolve));
  }
}

/**
 * Makes calls of every kind for ~3 s (several failed connection attempts), collecting every
 * error a caller or an 'error' listener saw.
 */
async function callForAWhile(client, cache) {
  const errors = [];
  client.on('error', (err) => errors.push(err));
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    await cache.cacheGet('k');
    await cache.cacheSet('k', 'v', 60);
    for (const r of await Promise.all([outcome(client.get('k')), outcome(client.call('PING')), outcome(client.set('k', 'v', 60))])) {
      if (!r.ok) errors.push(r.error);
    }
    await sleep(100);
  }
  return errors;
}

async function checkWrongPassword(clientOptions) {
  const log = recordingLogger();
  const client = createClient({ ...clientOptions, logger: log.logger });
  cleanups.push(async () => client.disconnect());
  const cache = createCache({ client });
  const health = createHealth({ client, cache });
  const errors = await callForAWhile(client, cache);
  await waitFor(() => client.status().reconnectAttempts >= 3, { timeoutMs: 10000, what: 'several failed attempts' });

  const report = health();
  const http = await httpGet(healthRouter(express, { health }), '/health');
  console.log(`wrong password (${Object.keys(clientOptions).join(', ')}): ${client.status().reconnectAttempts} failed attempts, `
    + `${errors.length} errors seen; log ${JSON.stringify(log.lines.map((l) => [l.level, l.message]))}; `
    + `health ${JSON.stringify({ status: report.status, ready: report.ready, lastError: report.redis.lastError })}`);

  // One line, an error, naming the refusal.
  expect(log.lines).toHaveLength(1);
  expect(log.lines[0].level).toBe('error');
  expect(log.lines[0].message).toMatch(/WRONGPASS/);
  expect(log.lines[0].message).toMatch(/credentials/);
  // health(): error, WRONGPASS; still ready, on the fallback.
  expect(report.status).toBe('error');
  expect(report.redis.lastError.code).toBe('WRONGPASS');
  expect(report.ready).toBe(true);
  expect(http.status).toBe(503);
  expect(http.body).toMatchObject({ status: 'error', redis: { lastError: { code: 'WRONGPASS' } } });
  expect(errors.length).toBeGreaterThan(0);
  expect(errors.some((e) => e.code === 'WRONGPASS')).toBe(true);

  // The password, nowhere.
  expectNoSecret([JSON.stringify(report), util.inspect(report, { depth: 10 })], 'the health report');
  expectNoSecret([http.text], 'the /health body');
  expectNoSecret(log.lines.map((l) => l.message), 'the log');
  expectNoSecret([util.inspect(client), util.inspect(client, { depth: 10, showHidden: true }), String(client)], 'util.inspect(client)');
  expectNoSecret([JSON.stringify(client.options), util.inspect(client.options), JSON.stringify(client.status()), util.inspect(client.status(), { depth: 10 })], 'the client options / status');
  expectNoSecret([JSON.stringify(client.metrics())], 'the metrics');
  expectNoSecret([JSON.stringify(cache.cacheStats())], 'cacheStats()');
  errors.forEach((err, i) => expectNoSecret(errorTexts(err), `error ${i} (${err.code})`));
}

test('in the URL', () => checkWrongPassword({ url: `redis://:${encodeURIComponent(WRONG)}@127.0.0.1:${server.port}` }), 30000);

test('in the URL with a user name', () => checkWrongPassword({ url: `redis://default:${encodeURIComponent(WRONG)}@127.0.0.1:${server.port}/0` }), 30000);

test('as the password option', () => checkWrongPassword({ host: '127.0.0.1', port: server.port, password: WRONG }), 30000);

test('REDIS_PASSWORD for the process-wide client, cache and health(), logging to the console', async () => {
  // The process-wide client logs to the console unless NODE_ENV=test: record the console.
  const lines = [];
  for (const level of ['error', 'warn', 'info']) {
    const spy = jest.spyOn(console, level).mockImplementation((...args) => lines.push({ level, message: util.format(...args) }));
    cleanups.push(async () => spy.mockRestore());
  }
  const saved = { ...process.env };
  let hc;
  try {
    jest.isolateModules(() => {
      delete process.env.REDIS_URL;
      process.env.NODE_ENV = 'production';
      process.env.REDIS_HOST = '127.0.0.1';
      process.env.REDIS_PORT = String(server.port);
      process.env.REDIS_PASSWORD = WRONG;
      hc = require('../../lib/index');
      hc.getRedisClient();
    });
  } finally {
    process.env = saved;
  }
  const client = hc.getRedisClient();
  cleanups.push(async () => client.disconnect());
  const errors = [];
  client.on('error', (err) => errors.push(err));
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    await hc.cacheGet('k');
    await hc.cacheSet('k', 'v', 60);
    const r = await outcome(client.get('k'));
    if (!r.ok) errors.push(r.error);
    await sleep(100);
  }
  const report = hc.health();
  const http = await httpGet(hc.healthRouter(express), '/health');
  expect(client.status().reconnectAttempts).toBeGreaterThanOrEqual(3);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ level: 'error', message: expect.stringMatching(/WRONGPASS/) });
  expect(report).toMatchObject({ status: 'error', ready: true, redis: { lastError: { code: 'WRONGPASS' } } });
  expect(http.status).toBe(503);
  expectNoSecret([JSON.stringify(report), util.inspect(report, { depth: 10 }), http.text], 'the process-wide health report');
  expectNoSecret(lines.map((l) => l.message), 'the console');
  expectNoSecret([util.inspect(client, { depth: 10, showHidden: true }), JSON.stringify(client.options), JSON.stringify(client.status())], 'the process-wide client');
  errors.forEach((err, i) => expectNoSecret(errorTexts(err), `error ${i} (${err.code})`));
}, 30000);
