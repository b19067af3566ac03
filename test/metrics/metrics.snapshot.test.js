'use strict';
// metricsSnapshot against a real redis-server behind the fault proxy: each outcome counter
// moves when, and only when, its outcome happens (hit, miss, ok, error, timeout, unknown,
// refused); hitRate follows the reads; the components registered on the client and the
// ones passed in are included; a client with metrics: false counts nothing.
const { metricsSnapshot } = require('../../lib/metrics');
const { BREAKER_EARLY } = require('../../lib/client/client');
const { clientSuite } = require('../helpers/client-suite');
const { waitFor, outcome } = require('../helpers/async');

// The breaker is off unless a test is about it: on a busy machine a starved redis-server
// could open it and turn a counted hit into a refusal.
const suite = clientSuite({ proxy: true, defaults: { logger: false, breaker: false } });
const open = suite.open;
let db;
let proxy;
beforeAll(() => {
  ({ db, proxy } = suite);
});

/** The outcome counters of one verb that differ between two snapshots, as { outcome: delta }. */
function moved(before, after, verb) {
  const out = {};
  for (const [k, v] of Object.entries(after.commands[verb])) {
    const d = v - before.commands[verb][k];
    if (d !== 0) out[k] = d;
  }
  return out;
}

test('hit, miss, ok and error move exactly by what happened, and hitRate follows', async () => {
  const client = open({ url: db.url });
  const empty = metricsSnapshot(client);
  expect(empty.hitRate).toBeNull();
  expect(empty.hits + empty.misses).toBe(0);
  expect(empty.metricsEnabled).toBe(true);
  expect(empty.redis).toBe(true);

  await client.set('a', '1');
  await client.set('b', '2');
  await client.call('HSET', 'h', 'f', 'v');
  const s0 = metricsSnapshot(client);
  expect(s0.commands.set.ok).toBe(2);

  await client.get('a');
  await client.get('b');
  await client.get('a');
  await client.get('nope');
  await client.mget(['a', 'nope', 'b', 'none']);
  const wrong = await outcome(client.get('h')); // WRONGTYPE: an error reply
  expect(wrong.error.code).toBe('WRONGTYPE');
  const s1 = metricsSnapshot(client);

  expect(moved(s0, s1, 'get')).toEqual({ hit: 3, miss: 1, error: 1 });
  expect(moved(s0, s1, 'mget')).toEqual({ hit: 2, miss: 2 });
  expect(moved(s0, s1, 'set')).toEqual({});
  expect(s1.hits).toBe(5);
  expect(s1.misses).toBe(3);
  expect(s1.hitRate).toBeCloseTo(5 / 8, 10);
  // Every reply is in the latency histogram of its verb; the error reply too.
  const h = s1.latency.byCommand.get;
  expect(h.count).toBe(5);
  expect(h.counts.reduce((a, b) => a + b, 0)).toBe(h.count);
  expect(h.counts).toHaveLength(s1.latency.bucketsMs.length + 1);
});

test('a reply held past commandTimeout counts as a timeout, not as a hit or a miss', async () => {
  const client = open({ url: `${proxy.url}/${db.db}`, commandTimeout: 150, breaker: false });
  await client.set('k', 'v');
  const before = metricsSnapshot(client);
  proxy.hold('toClient');
  const r = await outcome(client.get('k'));
  expect(r.error.code).toBe('ETIMEDOUT');
  const after = metricsSnapshot(client);
  expect(moved(before, after, 'get')).toEqual({ timeout: 1 });
  expect(after.latency.byCommand.get.count).toBe(before.latency.byCommand.get.count);
  expect(after.hitRate).toBe(before.hitRate);
});

test('a stall opens the breaker: new flagged calls are refused, the gauges and breaker counters say so', async () => {
  const client = open({ url: `${proxy.url}/${db.db}`, commandTimeout: 5000, breaker: { stallMs: 30 } });
  await client.set('k', 'v');
  // Counted from here: on a busy machine a starved server may have opened it once already.
  const base = metricsSnapshot(client);
  proxy.hold('toClient');
  const waiting = client.get('k'); // written, its reply held
  await waitFor(() => client.breakerState === 'open', { what: 'the breaker to open' });
  const during = metricsSnapshot(client);
  expect(during.breakerState).toBe('open');
  expect(during.breakerOpened - base.breakerOpened).toBe(1);
  expect(during.inFlight).toBe(1);
  const before = metricsSnapshot(client);
  // A call with somewhere else to go (the cache's, flagged) is refused; a plain one would wait.
  const refused = await outcome(client._get(BREAKER_EARLY, 'k'));
  expect(refused.error.code).toBe('ERR_BREAKER_OPEN');
  expect(moved(before, metricsSnapshot(client), 'get')).toEqual({ refused: 1 });
  proxy.release();
  expect(await waiting).toBe('v');
  await waitFor(() => client.breakerState === 'closed', { what: 'the breaker to close' });
  const after = metricsSnapshot(client);
  expect(after).toMatchObject({ breakerState: 'closed', inFlight: 0 });
  expect(after.breakerOpened - base.breakerOpened).toBe(1);
  expect(after.breakerClosed - base.breakerClosed).toBe(1);
});

test('a connection cut under a written command counts it as unknown', async () => {
  const client = open({ url: `${proxy.url}/${db.db}`, breaker: false });
  await client.set('k', 'v');
  const opened = metricsSnapshot(client).connectionsOpened;
  expect(opened).toBe(1);
  proxy.hold('toClient');
  const p = outcome(client.get('k'));
  await waitFor(() => proxy.stats.toServer.chunks > 0 && client.status().inFlight === 1, { what: 'the GET to be written' });
  const before = metricsSnapshot(client);
  proxy.cut();
  expect((await p).error.code).toBe('ERR_OUTCOME_UNKNOWN');
  expect(moved(before, metricsSnapshot(client), 'get')).toEqual({ unknown: 1 });
  proxy.release();
  expect(await client.get('k')).toBe('v');
  expect(metricsSnapshot(client).connectionsOpened).toBe(2);
});

test('metrics: false counts no command, and says so', async () => {
  const client = open({ url: db.url, metrics: false });
  await client.set('a', '1');
  await client.get('a');
  await client.get('nope');
  const s = metricsSnapshot(client);
  expect(s.metricsEnabled).toBe(false);
  expect(s.commands.get.hit + s.commands.get.miss + s.commands.set.ok).toBe(0);
  expect(s.hitRate).toBeNull();
  // The connection's own counters are kept either way.
  expect(s.connectionsOpened).toBe(1);
});

test('components registered on the client and components passed in are included', async () => {
  const client = open({ url: db.url });
  await client.set('a', '1');
  await client.get('a');
  // A limiter reports its decisions; a cache reports its fallback store under `metrics`.
  const unregisterLimiter = client._report('ratelimit:rl:login', () => ({
    store: 'redis',
    decisions: { allowed: 7, refused: 3, local: 1, fallback: 0, note: 'not a number' },
  }));
  client._report('cache', () => ({
    metrics: {
      fallback: { active: true, entries: 4, bytes: 512, reads: 6, hits: 2, writes: 4, activations: 1 },
      lostInvalidations: { count: 2, pending: 1, unrecorded: 0, reissued: 1 },
    },
  }));
  client._report('collected', () => null);
  const passedCache = {
    cacheStats: () => ({ backend: 'redis', fallback: { active: false, entries: 1, bytes: 100, reads: 2, hits: 1, writes: 1, activations: 1 } }),
  };
  const passedLimiter = { keyPrefix: 'rl:api', status: () => ({ decisions: { allowed: 1, refused: 0 } }) };

  const s = metricsSnapshot(client, { cache: passedCache, limiters: [passedLimiter] });
  expect(s.limiters).toEqual({ 'rl:login': { allowed: 7, refused: 3, local: 1, fallback: 0 }, 'rl:api': { allowed: 1, refused: 0 } });
  expect(s.fallback).toEqual({ active: true, entries: 5, bytes: 612, reads: 8, hits: 3, writes: 5, activations: 2 });
  expect(s.lostInvalidations).toEqual({ count: 2, pending: 1, unrecorded: 0, reissued: 1 });
  // Reads: 1 GET hit in Redis, plus 3 hits and 5 misses in the fallback stores.
  expect(s.hits).toBe(4);
  expect(s.misses).toBe(5);
  expect(s.hitRate).toBeCloseTo(4 / 9, 10);

  unregisterLimiter();
  expect(metricsSnapshot(client).limiters).toEqual({});

  // A component whose report throws is left out; the others' figures stay in the snapshot.
  client._report('broken', () => {
    throw new Error('broken component');
  });
  const withBroken = metricsSnapshot(client);
  expect(withBroken.commands.get.hit).toBe(1);
  expect(withBroken.fallback.entries).toBe(4);
  // 1 GET hit in Redis and 2 of the registered cache's 6 fallback reads.
  expect(withBroken.hitRate).toBeCloseTo(3 / 7, 10);
});

test('without a client (Redis disabled) the components still report; wrong arguments are refused by name', () => {
  const cache = { cacheStats: () => ({ fallback: null, lostInvalidations: null, store: { entries: 3 } }) };
  const s = metricsSnapshot(null, { cache, limiters: { login: { status: () => ({ decisions: { allowed: 2 } }) } } });
  expect(s).toMatchObject({ redis: false, metricsEnabled: false, hitRate: null, fallback: null, limiters: { login: { allowed: 2 } } });
  expect(() => metricsSnapshot({})).toThrow(/metricsSnapshot: client must be a RedisClient/);
  expect(() => metricsSnapshot(null, { cache: {} })).toThrow(/cache must be an object with cacheStats/);
  expect(() => metricsSnapshot(null, { limiters: 'x' })).toThrow(/limiters must be/);
  expect(() => metricsSnapshot(null, 5)).toThrow(TypeError);
});
