'use strict';
// Proves status() reports what the contract lists: the state machine from idle to closed,
// in-flight counts, the last error, and the fallbacks other modules announce.
const fs = require('fs');
const path = require('path');
const { createClient, CLIENT_STATES } = require('../../lib/redis');
const { createProxy } = require('../helpers/proxy');
const { suiteDatabase } = require('../helpers/suite-db');
const { freePort } = require('../helpers/redis-server');
const { waitFor } = require('../helpers/async');

const STATES = CLIENT_STATES;

test('the states are one list: the native client, the runtime export and the types agree', () => {
  expect(STATES).toEqual(['idle', 'connecting', 'ready', 'down', 'closing', 'closed']);
  const dts = fs.readFileSync(path.join(__dirname, '..', '..', 'lib', 'redis.d.ts'), 'utf8');
  const union = /export type ClientState = ([^;]+);/.exec(dts)[1];
  expect(union.split('|').map((s) => s.trim().replace(/'/g, ''))).toEqual([...STATES]);
});

let db;
let proxy;
const clients = [];
function client(options) {
  const c = createClient(options);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  db = await suiteDatabase();
  proxy = await createProxy({ port: db.port });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.disconnect()));
  await proxy.close();
});

test('status() has every documented field with the documented types', () => {
  const s = client({ url: db.url }).status();
  expect(STATES).toContain(s.state);
  expect(typeof s.ready).toBe('boolean');
  expect(s.lastError).toBeNull();
  expect(Number.isInteger(s.reconnectAttempts)).toBe(true);
  expect(Number.isInteger(s.inFlight)).toBe(true);
  expect(Number.isInteger(s.queued)).toBe(true);
  expect(Array.isArray(s.fallbacks)).toBe(true);
});

test('idle -> connecting -> ready -> closed', async () => {
  const c = client({ url: db.url });
  expect(c.status().state).toBe('idle');
  const ping = c.call('PING');
  expect(c.status().state).toBe('connecting');
  await ping;
  expect(c.status()).toMatchObject({ state: 'ready', ready: true, inFlight: 0, queued: 0 });
  await c.quit();
  expect(c.status()).toMatchObject({ state: 'closed', ready: false });
});

test('inFlight counts written commands whose replies are not back', async () => {
  const c = client({ url: `${proxy.url}/${db.db}`, commandTimeout: 20000 });
  await c.call('PING');
  proxy.hold('toClient');
  const pending = Array.from({ length: 5 }, () => c.call('PING'));
  await waitFor(() => c.status().inFlight === 5, { what: 'inFlight to reach 5' });
  proxy.release('toClient');
  await Promise.all(pending);
  expect(c.status().inFlight).toBe(0);
});

test('a failed connect is recorded in lastError with code, message and time', async () => {
  const port = await freePort();
  const c = client({ url: `redis://127.0.0.1:${port}`, reconnectBaseDelay: 20, reconnectMaxDelay: 50 });
  const before = Date.now();
  await c.call('PING').catch(() => {});
  const s = c.status();
  expect(s.ready).toBe(false);
  expect(s.lastError.code).toBe('ECONNREFUSED');
  expect(typeof s.lastError.message).toBe('string');
  const at = s.lastError.at instanceof Date ? s.lastError.at.getTime() : Number(new Date(s.lastError.at));
  expect(at).toBeGreaterThanOrEqual(before - 1000);
  await waitFor(() => c.status().reconnectAttempts >= 1, { what: 'a reconnect attempt' });
});

test('noteFallback() counts the components using a source in status().fallbacks', () => {
  const c = client({ url: db.url });
  c.noteFallback('ratelimit:login', true);
  c.noteFallback('ratelimit:ip', true);
  expect([...c.status().fallbacks].sort()).toEqual(['ratelimit:ip', 'ratelimit:login']);
  // Two limiters with one prefix: the source stays until both are done with it.
  c.noteFallback('ratelimit:login', true);
  expect(c.status().fallbacks).toHaveLength(2);
  c.noteFallback('ratelimit:login', false);
  expect(c.status().fallbacks).toHaveLength(2);
  c.noteFallback('ratelimit:login', false);
  expect(c.status().fallbacks).toEqual(['ratelimit:ip']);
  c.noteFallback('ratelimit:login', false); // one too many never goes negative
  c.noteFallback('ratelimit:login', true);
  c.noteFallback('ratelimit:login', false);
  expect(c.status().fallbacks).toEqual(['ratelimit:ip']);
  // Mutating the returned array does not change the client's state.
  c.status().fallbacks.push('bogus');
  expect(c.status().fallbacks).toEqual(['ratelimit:ip']);
});
