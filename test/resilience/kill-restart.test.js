'use strict';
// Fault: redis-server killed (SIGKILL) under an open-loop load of cacheGet / cacheSet, down
// for 10 s, then started again on the same port. Must hold: reconnection without a storm
// (connection attempts during the outage, counted at a TCP proxy in front of one client and
// by the other client's own count, stay within what the backoff allows: base 50 ms, doubling,
// jitter in [ceiling/2, ceiling], capped at reconnectMaxDelay 2,000 ms, however many calls are
// made meanwhile); every call settles and none rejects; no rejection goes unhandled; once
// Redis is back both clients use it again, without a restart, over one connection each.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { startRedis } = require('../helpers/redis-server');
const { createProxy } = require('../helpers/proxy');
const { rawCommand } = require('../helpers/raw-redis');
const { waitFor, sleep, watchUnhandledRejections } = require('../helpers/async');
const { recordingLogger, openLoop, latencies, latencySummary } = require('./support');

const OUTAGE_MS = 10000;
const BASE_DELAY_MS = 50; // the defaults, stated
const MAX_DELAY_MS = 2000;

/**
 * The most connection attempts the backoff allows in `windowMs`: one at once (the lost
 * connection had lasted), then one after each delay, every delay at its shortest
 * (ceiling / 2).
 */
function mostAttempts(windowMs) {
  let attempts = 1;
  let elapsed = 0;
  for (let n = 1; ; n++) {
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (n - 1));
    elapsed += ceiling / 2;
    if (elapsed > windowMs) return attempts;
    attempts += 1;
  }
}

let server;
let proxy;
const clients = [];
let unhandled;

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  server = await startRedis();
  proxy = await createProxy({ port: server.port });
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await proxy.close();
  await server.stop();
  expect(unhandled.stop()).toEqual([]);
});

test('killed and restarted on the same port under load: no reconnect storm, every call settles, recovery', async () => {
  const logA = recordingLogger();
  const logB = recordingLogger();
  // A through the proxy (its connection attempts are the proxy's accepts), B straight to the port.
  const a = createClient({ url: proxy.url, logger: logA.logger });
  const b = createClient({ url: server.url, logger: logB.logger });
  clients.push(a, b);
  const cacheA = createCache({ client: a });
  const cacheB = createCache({ client: b });
  const reconnecting = { a: 0, b: 0 };
  a.on('reconnecting', () => { reconnecting.a += 1; });
  b.on('reconnecting', () => { reconnecting.b += 1; });
  a.on('error', () => {});

  await cacheA.cacheSet('seed', 'before', 600);
  await expect(cacheB.cacheGet('seed')).resolves.toBe('before');

  let phase = 'before';
  const op = (seq, rec) => {
    const cache = seq % 2 ? cacheA : cacheB;
    rec.kind = seq % 5 === 0 ? 'set' : 'get';
    return rec.kind === 'set' ? cache.cacheSet(`w:${seq % 50}`, `v${seq}`, 600) : cache.cacheGet(`w:${seq % 50}`);
  };
  const load = openLoop({ op, tickMs: 5, perTick: 4, phaseOf: () => phase }); // ~800 calls/s

  await sleep(1000);
  // A blip before the kill (redis-server unscheduled past breaker.stallMs on a busy host)
  // would take the logger's line for the outage: see logging.test.js.
  const blipsBefore = b.metrics().breakerOpened;
  phase = 'down';
  const acceptedBefore = proxy.accepted;
  const attemptsBefore = b.status().reconnectAttempts;
  const killedAt = Date.now();
  await server.kill();
  await waitFor(() => a.breakerState !== 'closed' && b.breakerState !== 'closed', { timeoutMs: 5000, what: 'both breakers to open' });
  const healthDuring = { a: a.status(), b: b.status() };
  await sleep(OUTAGE_MS - (Date.now() - killedAt));
  const outageMs = Date.now() - killedAt;
  const attempts = { a: proxy.accepted - acceptedBefore, b: b.status().reconnectAttempts - attemptsBefore };
  const events = { ...reconnecting };

  phase = 'restarting';
  const restartingAt = Date.now();
  const restarted = await startRedis({ port: server.port });
  const restartedAt = Date.now();
  server = restarted;
  await waitFor(() => a.breakerState === 'closed' && b.breakerState === 'closed', { timeoutMs: 10000, what: 'both breakers to close' });
  const recoveredAfterMs = Date.now() - restartedAt;
  phase = 'recovered';
  await sleep(1500);
  const acceptedAtEnd = proxy.accepted;
  await load.stop({ timeoutMs: 15000 });

  const { calls } = load;
  const bound = mostAttempts(outageMs) + 2; // +2: an attempt on either edge of the window
  console.log([
    `killed for ${outageMs} ms under ~800 calls/s (${calls.filter((c) => c.phase === 'down').length} calls during the outage)`,
    `  connection attempts during the outage: A (proxy accepts) ${attempts.a}, B (its own count) ${attempts.b}; `
      + `reconnecting events A ${events.a}, B ${events.b}; bound from the backoff ${bound}`,
    `  recovered ${recoveredAfterMs} ms after the restart`,
    `  latency during the outage: ${latencySummary(latencies(calls.filter((c) => c.phase === 'down')))}`,
    `  log A: ${JSON.stringify(logA.lines)}`,
    `  log B: ${JSON.stringify(logB.lines)}`,
  ].join('\n'));

  // No storm: within what the backoff allows, and still trying.
  expect(attempts.a).toBeLessThanOrEqual(bound);
  expect(attempts.b).toBeLessThanOrEqual(bound);
  expect(attempts.a).toBeGreaterThanOrEqual(3);
  expect(attempts.b).toBeGreaterThanOrEqual(3);
  expect(healthDuring.a.breaker).toBe('open');
  expect(healthDuring.b).toMatchObject({ breaker: 'open', breakerReason: 'unreachable' });

  // Every call settled, none rejected; during the outage writes went to the fallback.
  expect(calls.every((c) => c.settledAt !== null && c.ok === true)).toBe(true);
  const downSets = calls.filter((c) => c.phase === 'down' && c.kind === 'set');
  expect(downSets.filter((c) => c.value === true).length).toBeGreaterThan(downSets.length / 2);

  // Recovered: one connection each, Redis (the new, empty one) serves both.
  expect(a.status()).toMatchObject({ state: 'ready', breaker: 'closed' });
  expect(b.status()).toMatchObject({ state: 'ready', breaker: 'closed' });
  expect(proxy.open).toBe(1);
  await sleep(500);
  expect(proxy.accepted).toBe(acceptedAtEnd);
  await expect(cacheA.cacheGet('seed')).resolves.toBeNull(); // the killed server's data is gone
  await expect(cacheA.cacheSet('seed', 'after', 60)).resolves.toBe(true);
  await expect(cacheB.cacheGet('seed')).resolves.toBe('after');
  expect(await rawCommand({ port: server.port }, 'GET', 'seed')).toBe('after');
  for (const c of calls.filter((x) => x.phase === 'recovered' && x.kind === 'set')) expect(c.value).toBe(true);
  expect(cacheA.cacheStats().fallback).toMatchObject({ active: false, entries: 0 });
  expect(cacheB.cacheStats().fallback).toMatchObject({ active: false, entries: 0 });

  // B (straight to the port): one line when it went, one when it came back, however many
  // attempts failed. (A, behind the proxy, is the subject of proxy-backend-down.test.js.)
  if (blipsBefore > 0) return;
  const lines = logB.lines.map((l) => ({ level: l.level, message: l.message, at: l.at - killedAt }));
  expect(lines).toEqual([
    { level: 'warn', message: expect.stringMatching(/unreachable/), at: expect.any(Number) },
    { level: 'info', message: expect.stringMatching(/usable again/), at: expect.any(Number) },
  ]);
  expect(logB.lines[1].at).toBeGreaterThanOrEqual(restartingAt);
}, 60000);
