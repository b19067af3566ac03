'use strict';
// Proves what waits is bounded and what does not wait is not refused: a burst issued in
// one tick while connected is written (a cache warm-up of 20,000 sets succeeds), while
// against a server that accepts and never answers, written-but-unanswered commands stop
// at maxInFlight, queued ones at maxQueue, and the rest fail at once with ERR_QUEUE_FULL.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { QueueFullError } = require('../../lib/errors');
const { suiteDatabase } = require('../helpers/suite-db');
const { silentServer, nonReadingServer } = require('../helpers/fake-servers');
const { waitFor } = require('../helpers/async');

let db;
const clients = [];
const servers = [];

function open(options) {
  const client = createClient(options);
  clients.push(client);
  return client;
}

/** A fake server of the given kind, closed after the test. */
async function track(server) {
  servers.push(await server);
  return servers[servers.length - 1];
}

beforeAll(async () => {
  db = await suiteDatabase();
});

afterEach(async () => {
  while (clients.length) clients.pop().disconnect();
  while (servers.length) await servers.pop().close();
});

test('20,000 cacheSet calls issued in one tick all succeed (default maxQueue 10,000)', async () => {
  const client = open({ url: db.url });
  const cache = createCache({ client });
  await client.call('PING');
  const results = await Promise.all(Array.from({ length: 20000 }, (_, i) => cache.cacheSet(`warm:${i}`, `v${i}`, 60)));
  expect(results.filter((r) => r !== true)).toHaveLength(0);
  expect(await client.call('DBSIZE')).toBe(20000);
  expect(await client.get('warm:19999')).toBe('v19999');
});

test('a burst issued before the connection is ready is bounded by maxQueue', async () => {
  const client = open({ url: db.url, maxQueue: 100 });
  const calls = Array.from({ length: 150 }, (_, i) => client.call('SET', `q:${i}`, 'x').then(() => 'ok', (e) => e));
  const results = await Promise.all(calls);
  expect(results.filter((r) => r === 'ok')).toHaveLength(100);
  const refused = results.filter((r) => r !== 'ok');
  expect(refused).toHaveLength(50);
  for (const err of refused) {
    expect(err).toBeInstanceOf(QueueFullError);
    expect(err.code).toBe('ERR_QUEUE_FULL');
    expect(err.message).toMatch(/maxQueue 100/);
  }
});

test('against a server that never answers, in-flight commands stop at maxInFlight', async () => {
  const server = await track(silentServer());
  const client = open({ url: server.url, maxInFlight: 1000, maxQueue: 200, commandTimeout: 60000 });
  const cache = createCache({ client });
  // The silent server needs no handshake: the connection is ready once TCP is up.
  const first = cache.cacheGet('first');
  await waitFor(() => client.status().state === 'ready');
  const gets = Array.from({ length: 5000 }, (_, i) => cache.cacheGet(`k${i}`));
  const refusedNow = client.call('GET', 'one-more').catch((e) => e);
  // The refused ones settle on the next turn; the written ones wait for their deadline.
  const err = await refusedNow;
  expect(err.code).toBe('ERR_QUEUE_FULL');
  await new Promise((resolve) => setImmediate(resolve)); // past this turn's write
  const s = client.status();
  expect(s.inFlight).toBe(1000);
  expect(s.queued).toBe(200);
  expect(err.message).toMatch(/maxInFlight 1000/);
  // cacheGet never rejects: the refused ones read as misses at once.
  const settled = await Promise.race([Promise.all(gets.slice(1199)), new Promise((r) => setTimeout(() => r('pending'), 5000))]);
  expect(settled).toEqual(Array(3801).fill(null));
  client.disconnect();
  expect(await Promise.all(gets.slice(0, 1199))).toEqual(Array(1199).fill(null));
  expect(await first).toBeNull();
});

test('250,000 cacheGets against a silent server leave at most the default bounds waiting', async () => {
  const server = await track(silentServer());
  const client = open({ url: server.url, commandTimeout: 60000 });
  const cache = createCache({ client });
  const defaults = client.options;
  // More than twice the bounds (110,000 by default), few enough that a Jest worker which has
  // already run other suites stays well inside its heap.
  const TOTAL = 250000;
  const first = cache.cacheGet('first');
  await waitFor(() => client.status().state === 'ready');
  let settledEarly = 0;
  const all = [];
  for (let i = 0; i < TOTAL; i++) {
    const p = cache.cacheGet(`key:${i % 1000}`);
    all.push(p);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  const s = client.status();
  expect(s.inFlight).toBeLessThanOrEqual(defaults.maxInFlight);
  expect(s.queued).toBeLessThanOrEqual(defaults.maxQueue);
  expect(s.inFlight + s.queued).toBeLessThan(TOTAL / 2);
  // The first cacheGet holds one in-flight slot.
  const waiting = defaults.maxInFlight - 1 + defaults.maxQueue;
  for (const p of all.slice(waiting)) p.then(() => settledEarly++);
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(settledEarly).toBe(TOTAL - waiting);
  client.disconnect();
  await Promise.all(all);
  expect(await first).toBeNull();
}, 60000);

test('commands held back by maxInFlight are written as replies make room', async () => {
  const client = open({ url: db.url, maxInFlight: 10, maxQueue: 1000 });
  await client.call('PING');
  const values = await Promise.all(Array.from({ length: 500 }, (_, i) => client.call('ECHO', `m${i}`)));
  expect(values).toEqual(Array.from({ length: 500 }, (_, i) => `m${i}`));
});

test('quit() writes commands held back by maxInFlight, answers them all, then closes', async () => {
  const client = open({ url: db.url, maxInFlight: 100, maxQueue: 1000, commandTimeout: 60000 });
  await client.call('PING');
  const replies = Array.from({ length: 350 }, (_, i) => client.call('ECHO', `q${i}`));
  await client.quit();
  expect(await Promise.all(replies)).toEqual(Array.from({ length: 350 }, (_, i) => `q${i}`));
  expect(client.status().state).toBe('closed');
});

test('bytes the socket has not taken are bounded by maxQueueBytes, not only commands', async () => {
  // A server that accepts and never reads: what the kernel does not take waits here.
  const server = await track(nonReadingServer());
  const client = open({ url: server.url, maxQueueBytes: 1024 * 1024, commandTimeout: 60000 });
  const first = client.call('PING').catch((e) => e);
  await waitFor(() => client.status().state === 'ready');
  const value = Buffer.alloc(64 * 1024, 'v');
  const calls = Array.from({ length: 200 }, (_, i) => client.call('SET', `big:${i}`, value).then(() => 'ok', (e) => e));
  // The accepted ones wait (the server never reads); the refused ones settle at once.
  const results = await Promise.all(calls.map((p) => Promise.race([p, new Promise((r) => setTimeout(() => r('waiting'), 1000))])));
  const refused = results.filter((r) => r instanceof Error);
  // About 1 MiB of 64 KiB commands is accepted; the rest fail at once, naming the bound.
  expect(refused.length).toBeGreaterThan(180);
  expect(refused[0].code).toBe('ERR_QUEUE_FULL');
  expect(refused[0].message).toMatch(/maxQueueBytes 1048576/);
  client.disconnect();
  await first;
  await Promise.all(calls);
});

test('against a server that stops reading, what waits across many turns stays bounded by maxQueueBytes', async () => {
  const server = await track(nonReadingServer());
  // Without the breaker, which would refuse these calls once the server stalls.
  const client = open({ url: server.url, maxQueueBytes: 8 * 1024 * 1024, commandTimeout: 60000, breaker: false });
  const first = client.call('PING').catch((e) => e);
  await waitFor(() => client.status().state === 'ready');
  const value = Buffer.alloc(256 * 1024, 'w');
  const calls = [];
  let refused = null;
  // 2 MiB a turn, each turn's commands written or held behind the socket: no single turn
  // reaches the bound, but what accumulates does.
  for (let turn = 0; turn < 40 && !refused; turn++) {
    for (let i = 0; i < 8; i++) calls.push(client.call('SET', `k${turn}:${i}`, value).catch((e) => e));
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const settled = await Promise.race([Promise.any(calls.map((p) => p.then((r) => (r instanceof Error ? r : Promise.reject(r))))), new Promise((r) => setTimeout(() => r(null), 20))]);
    if (settled instanceof Error) refused = settled;
  }
  expect(refused).not.toBeNull();
  expect(refused.code).toBe('ERR_QUEUE_FULL');
  expect(refused.message).toMatch(/maxQueueBytes 8388608/);
  // Far less than the 80 MiB the loop would have queued without the bound.
  expect(calls.length * value.length).toBeLessThan(48 * 1024 * 1024);
  client.disconnect();
  await first;
  await Promise.all(calls);
});
