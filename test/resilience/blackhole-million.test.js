'use strict';
// Fault: Redis blackholed (a connect that neither succeeds nor fails; or a connection whose
// bytes a proxy holds in both directions) while 1,000,000 commands are issued, in batches of
// 20,000 with an await between batches. Must hold: every call settles; the cache's calls fast
// (they fail at once or are answered by the fallback; nothing waits for a timeout per call),
// plain client calls within commandTimeout (while the breaker is open for a stall they are
// still sent and wait, README "When Redis misbehaves"), then fast once the connect has failed;
// what waits in the client stays within its bounds (status().queued <= maxQueue, inFlight <=
// maxInFlight); and the process's memory stays bounded (heap after a full collection back
// near where it began and not climbing, rss growth within a generous bound), whatever the
// number of calls.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { startRedis } = require('../helpers/redis-server');
const { startBlackhole } = require('../helpers/blackhole');
const { startProxyProcess } = require('../helpers/proxy-process');
const { waitFor, watchUnhandledRejections } = require('../helpers/async');
const { memoryMiB, collectGarbage } = require('./support');

const TOTAL = 1000000;
const BATCH = 20000;
const KEYS = 1000;
const MAX_QUEUE = 10000; // the defaults, stated
const MAX_IN_FLIGHT = 100000;
const MiB = 1048576;

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

/** Rejects if `promise` has not settled within ms: a hang guard, not a performance bound. */
function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Issues TOTAL calls of `call(i)` in batches of BATCH, awaiting each batch (allSettled) and
 * passing its results to `check(results, firstIndex)`. Records the client's queued / inFlight
 * right after each batch was issued, the slowest batch, and memory along the way.
 */
async function million(client, call, check) {
  collectGarbage();
  const start = process.memoryUsage();
  const record = { maxQueued: 0, maxInFlight: 0, maxWaiting: 0, slowestBatchMs: 0, peakRss: start.rss, rejected: 0, samples: [] };
  const began = Date.now();
  // One batch, in a function of its own: its promises and their errors (20,000 stacks) are
  // the test's, not the client's, and are out of reach once it returns, before the heap is
  // read; else a sample counts them in one fifth and not in the next.
  const runBatch = async (first) => {
    const batch = new Array(BATCH);
    for (let i = 0; i < BATCH; i++) batch[i] = call(first + i);
    const s = client.status();
    record.maxQueued = Math.max(record.maxQueued, s.queued);
    record.maxInFlight = Math.max(record.maxInFlight, s.inFlight);
    record.maxWaiting = Math.max(record.maxWaiting, s.queued + s.inFlight);
    const t = Date.now();
    const results = await within(Promise.allSettled(batch), 30000, `the batch at ${first}`);
    record.slowestBatchMs = Math.max(record.slowestBatchMs, Date.now() - t);
    for (const r of results) if (r.status === 'rejected') record.rejected += 1;
    check(results, first);
    record.peakRss = Math.max(record.peakRss, process.memoryUsage().rss);
  };
  for (let first = 0; first < TOTAL; first += BATCH) {
    await runBatch(first);
    if ((first + BATCH) % (TOTAL / 5) === 0) {
      collectGarbage();
      record.samples.push({ calls: first + BATCH, ...memoryMiB() });
    }
  }
  record.totalMs = Date.now() - began;
  collectGarbage();
  const end = process.memoryUsage();
  record.heapGrowthMiB = (end.heapUsed - start.heapUsed) / MiB;
  record.rssGrowthMiB = (end.rss - start.rss) / MiB;
  record.peakRssGrowthMiB = (record.peakRss - start.rss) / MiB;
  record.start = { rss: start.rss / MiB, heapUsed: start.heapUsed / MiB };
  return record;
}

function report(name, client, r, { maxQueue = MAX_QUEUE, maxInFlight = MAX_IN_FLIGHT } = {}) {
  const f = (x) => Math.round(x * 10) / 10;
  const m = client.metrics();
  console.log([
    `${name}: ${TOTAL} calls in ${r.totalMs} ms (slowest batch of ${BATCH}: ${r.slowestBatchMs} ms), ${r.rejected} rejected`,
    `  client: max queued ${r.maxQueued} (maxQueue ${maxQueue}), max inFlight ${r.maxInFlight} (maxInFlight ${maxInFlight}), `
      + `max queued + inFlight ${r.maxWaiting}; now ${JSON.stringify({ state: client.status().state, breaker: client.breakerState, queued: m.queued, inFlight: m.inFlight })}; `
      + `connections opened ${m.connectionsOpened}, reconnect attempts ${m.reconnectAttempts}, breaker opened ${m.breakerOpened} closed ${m.breakerClosed}`,
    `  memory: start rss ${f(r.start.rss)} MiB heap ${f(r.start.heapUsed)} MiB; growth after GC heap ${f(r.heapGrowthMiB)} MiB, `
      + `rss ${f(r.rssGrowthMiB)} MiB; peak rss +${f(r.peakRssGrowthMiB)} MiB; after GC at each fifth ${JSON.stringify(r.samples)}`,
  ].join('\n'));
}

/**
 * The bounds that must hold whatever the variant. Commands waiting for a connection are at
 * most maxQueue; while connected, a burst issued in one turn is written up to maxInFlight
 * and maxQueue more may wait (README, "Configuration").
 */
function expectBounded(r, { maxQueue = MAX_QUEUE, maxInFlight = MAX_IN_FLIGHT, connected = false } = {}) {
  expect(r.maxInFlight).toBeLessThanOrEqual(maxInFlight);
  expect(r.maxWaiting).toBeLessThanOrEqual(maxInFlight + maxQueue);
  if (!connected) expect(r.maxQueued).toBeLessThanOrEqual(maxQueue);
  // Generous bounds: a leak of even 64 bytes per call would be 61 MiB of heap.
  expect(r.heapGrowthMiB).toBeLessThan(48);
  expect(r.rssGrowthMiB).toBeLessThan(256);
  expect(r.peakRssGrowthMiB).toBeLessThan(512);
  // The heap after a collection does not climb fifth by fifth.
  const heaps = r.samples.map((s) => s.heapUsed);
  expect(heaps.at(-1) - heaps[0]).toBeLessThan(16);
}

async function blackholed(options = {}) {
  const hole = await startBlackhole();
  const client = createClient({ url: hole.url, logger: false, ...options });
  cleanups.push(async () => {
    client.disconnect();
    await hole.close();
  });
  return client;
}

test('blackholed from the start, cacheGet with the fallback: misses at once, values written to the fallback are served', async () => {
  const client = await blackholed();
  const cache = createCache({ client });
  // The first call starts the connect that hangs; the breaker opens for the stall.
  await cache.cacheGet('first');
  await waitFor(() => client.breakerState === 'open', { what: 'the breaker to open' });
  for (let k = 0; k < 100; k++) await expect(cache.cacheSet(`k:${k}`, `fb:${k}`, 600)).resolves.toBe(true);

  const r = await million(client, (i) => cache.cacheGet(`k:${i % KEYS}`), (results, first) => {
    for (let i = 0; i < results.length; i++) {
      const k = (first + i) % KEYS;
      const got = results[i];
      if (got.status !== 'fulfilled' || got.value !== (k < 100 ? `fb:${k}` : null)) {
        throw new Error(`call ${first + i}: ${JSON.stringify(got)}`);
      }
    }
  });
  report('blackhole, cache with fallback', client, r);
  expect(r.rejected).toBe(0);
  expectBounded(r);
  expect(cache.cacheStats().fallback).toMatchObject({ active: true, entries: 100 });
}, 120000);

test('blackholed from the start, the first burst meets the bounds: cacheGet without a fallback, then client.get', async () => {
  const client = await blackholed();
  const cache = createCache({ client, fallback: false });
  // No call made before: the first batch waits for the connect, up to maxQueue; the rest is
  // refused at once (ERR_QUEUE_FULL), and then the breaker refuses everything.
  const r = await million(client, (i) => cache.cacheGet(`k:${i % KEYS}`), (results) => {
    for (const got of results) if (got.status !== 'fulfilled' || got.value !== null) throw new Error(JSON.stringify(got));
  });
  report('blackhole, cache without fallback', client, r);
  expect(r.rejected).toBe(0);
  expectBounded(r);
  expect(r.maxQueued).toBeGreaterThan(0); // the bound was met, not avoided

  // Plain calls: while the hanging connect reads as a stall they wait, at most maxQueue at a
  // time (the rest refused with ERR_QUEUE_FULL), each for at most commandTimeout; once the
  // connect has timed out (connectTimeout) they fail fast with its error.
  const codes = new Map();
  const plain = await million(client, (i) => client.get(`k:${i % KEYS}`), (results) => {
    for (const got of results) {
      if (got.status !== 'rejected') throw new Error(`a get on a blackholed Redis resolved: ${JSON.stringify(got)}`);
      codes.set(got.reason.code, (codes.get(got.reason.code) || 0) + 1);
    }
  });
  report(`blackhole, client.get (codes ${JSON.stringify([...codes])})`, client, plain);
  expect(plain.rejected).toBe(TOTAL);
  expectBounded(plain);
  expect(plain.slowestBatchMs).toBeLessThan(5000 + 5000); // commandTimeout (the default) + a generous margin
}, 120000);

test('connected, then every byte held both ways by a proxy (in a process of its own): fail fast or fall back, bounded', async () => {
  const server = await startRedis();
  const proxy = await startProxyProcess(server.port);
  // A short commandTimeout, so that the silent connection is declared dead and replaced
  // (into the same hold) during the run; small bounds, so that the bursts meet them.
  const bounds = { maxQueue: 1000, maxInFlight: 5000 };
  const client = createClient({ url: proxy.url, logger: false, commandTimeout: 500, ...bounds });
  cleanups.push(async () => {
    client.disconnect();
    proxy.stop();
    await server.stop();
  });
  const cache = createCache({ client });
  await expect(cache.cacheSet('k:1', 'redis', 600)).resolves.toBe(true);
  await proxy.do('hold', 'both');

  const values = new Map();
  const r = await million(client, (i) => {
    const k = i % KEYS;
    // One call in 1,000 writes (to the fallback, or to the held Redis while the breaker is closed).
    return k === 999 ? cache.cacheSet('k:2', 'fallback', 600) : cache.cacheGet(`k:${k}`);
  }, (results) => {
    for (const got of results) {
      if (got.status !== 'fulfilled') throw new Error(JSON.stringify(got));
      values.set(got.value, (values.get(got.value) || 0) + 1);
    }
  });
  report(`held by a proxy, cache with fallback (values ${JSON.stringify([...values])})`, client, r, bounds);
  expect(r.rejected).toBe(0);
  // Never the value only Redis has: nothing got through the hold.
  expect([...values.keys()].every((v) => v === null || v === true || v === false || v === 'fallback')).toBe(true);
  expectBounded(r, { ...bounds, connected: true });
  // Recovery may wait for the breaker: opened by failures (timeouts count), it probes after
  // openMs, doubling after each failed probe up to maxOpenMs (30 s).
  await proxy.do('release', 'both');
  const released = Date.now();
  const seen = [];
  try {
    await waitFor(async () => {
      const v = await cache.cacheGet('k:1');
      const s = client.status();
      seen.push(`${Date.now() - released}ms ${s.state}/${s.breaker}/${s.breakerReason} inFlight ${s.inFlight} queued ${s.queued} -> ${v}`);
      return client.breakerState === 'closed' && v === 'redis';
    }, { timeoutMs: 45000, intervalMs: 250, what: 'recovery' });
    console.log(`held by a proxy: recovered ${Date.now() - released} ms after the release (${seen.length > 1 ? seen.at(-2) : 'at once'})`);
  } catch (err) {
    console.log(`no recovery after the release: ${JSON.stringify(client.status())}\n${seen.join('\n')}`);
    throw err;
  }
}, 120000);
