'use strict';
// The client's circuit breaker, events and logger against a real redis-server behind a
// fault-injecting proxy: a stall opens the breaker and calls fail fast, the first reply
// closes it; an unreachable server opens it and is reported once, however many attempts
// fail; an 'error' nobody listens to never crashes the process.
const { createClient, ConnectionError, OutcomeUnknownError } = require('../../lib/redis');
const { SOFT_FAIL, BREAKER_EARLY } = require('../../lib/client/client');
const { createProxy } = require('../helpers/proxy');
const { suiteDatabase } = require('../helpers/suite-db');
const { waitFor, sleep, outcome, watchUnhandledRejections } = require('../helpers/async');

let db;
let proxy;
const clients = [];

function open(options) {
  const client = createClient(options);
  clients.push(client);
  return client;
}

/** A logger that records its lines: { lines: [[level, text]], error, warn, info }. */
function recordingLogger() {
  const lines = [];
  const at = (level) => (text) => lines.push([level, text]);
  return { lines, error: at('error'), warn: at('warn'), info: at('info') };
}

/** Records the client's events as [name, summary]. */
function recordEvents(client) {
  const seen = [];
  for (const name of ['connect', 'ready', 'error', 'close', 'reconnecting', 'breaker', 'end']) {
    client.on(name, (arg) => {
      seen.push([name, arg instanceof Error ? arg.code : arg && arg.state ? `${arg.state}:${arg.reason}` : arg]);
    });
  }
  return seen;
}

beforeAll(async () => {
  db = await suiteDatabase();
  proxy = await createProxy({ port: db.port });
});

afterEach(() => {
  proxy.release().delay(0);
  for (const c of clients.splice(0)) c.disconnect();
});

afterAll(() => proxy.close());

test('a stall opens the breaker: flagged calls settle at once and new ones fail fast, plain calls wait, the first reply closes it', async () => {
  const logger = recordingLogger();
  const client = open({ url: `${proxy.url}/${db.db}`, commandTimeout: 5000, breaker: { stallMs: 40 }, logger });
  const events = recordEvents(client);
  await client.set('k', 'v');
  await waitFor(() => events.some(([n]) => n === 'ready'));
  proxy.hold('toClient');
  const started = Date.now();
  const early = client._get(SOFT_FAIL | BREAKER_EARLY, 'k');
  const plain = client.get('k');
  // The soft, flagged call resolves as a miss once the breaker opens, long before its deadline.
  expect(await early).toBeNull();
  expect(Date.now() - started).toBeLessThan(2000);
  expect(client.breakerState).toBe('open');
  expect(client.status()).toMatchObject({ breaker: 'open', breakerReason: 'stalled' });
  // While it is open for a stall, a flagged call fails fast; a plain one is sent and waits.
  const rejectedEarly = await outcome(client._get(BREAKER_EARLY, 'k'));
  expect(rejectedEarly.error).toBeInstanceOf(ConnectionError);
  expect(rejectedEarly.error.code).toBe('ERR_BREAKER_OPEN');
  const plainLater = client.get('k');
  await sleep(1100); // a stall shorter than a second is a blip the log only counts
  proxy.release();
  // The unflagged calls kept their places and get their own replies.
  expect(await plain).toBe('v');
  expect(await plainLater).toBe('v');
  await waitFor(() => client.breakerState === 'closed');
  expect(await client.get('k')).toBe('v');
  expect(events.filter(([n]) => n === 'breaker').map(([, s]) => s)).toEqual(['open:stalled', 'closed:null']);
  // One line once it had lasted a second, one when it came back.
  expect(logger.lines.map(([level]) => level)).toEqual(['warn', 'info']);
  expect(logger.lines[0][1]).toMatch(/stopped answering/);
});

test('a written call flagged BREAKER_EARLY rejects as outcome unknown when the breaker opens', async () => {
  const client = open({ url: `${proxy.url}/${db.db}`, breaker: { stallMs: 30 } });
  await client.call('PING');
  proxy.hold('toClient');
  const r = await outcome(client._get(BREAKER_EARLY, 'k'));
  expect(r.error).toBeInstanceOf(OutcomeUnknownError);
  expect(r.error.message).toMatch(/circuit breaker opened \(stalled\)/);
});

test('unreachable: one error line for many failed attempts, events for each, and recovery', async () => {
  const logger = recordingLogger();
  const client = open({ url: `${proxy.url}/${db.db}`, reconnectBaseDelay: 10, reconnectMaxDelay: 20, logger });
  const events = recordEvents(client);
  await client.call('PING');
  await proxy.refuse();
  proxy.cut();
  await waitFor(() => events.filter(([n]) => n === 'reconnecting').length >= 5);
  expect(client.breakerState).toBe('open');
  expect(client.status().breakerReason).toBe('unreachable');
  const fast = await outcome(client.get('k'));
  expect(fast.error).toBeInstanceOf(ConnectionError);
  expect(logger.lines.filter(([level]) => level === 'warn')).toHaveLength(1);
  expect(logger.lines[0][1]).toMatch(/unreachable/);
  await proxy.accept();
  await waitFor(() => client.breakerState === 'closed');
  expect(await client.call('PING')).toBe('PONG');
  expect(logger.lines.at(-1)[0]).toBe('info');
  expect(logger.lines.at(-1)[1]).toMatch(/usable again .*failed connection attempt/);
  const names = events.map(([n]) => n);
  expect(names.slice(0, 2)).toEqual(['connect', 'ready']);
  expect(names).toContain('close');
  expect(events.slice(-2)).toEqual([['ready', undefined], ['breaker', 'closed:null']]);
});

test('an error event with no listener does not crash, and no rejection goes unhandled', async () => {
  const watch = watchUnhandledRejections();
  const client = open({ url: 'redis://127.0.0.1:1', reconnectBaseDelay: 10, logger: false });
  const r = await outcome(client.get('k'));
  expect(r.error.code).toBe('ECONNREFUSED');
  await sleep(100); // several failed attempts, each an 'error' event nobody listens to
  expect(client.listenerCount('error')).toBe(0);
  client.disconnect();
  await sleep(20);
  expect(watch.stop()).toEqual([]);
});

test("'end' is emitted once the client has closed", async () => {
  const client = open({ url: `${proxy.url}/${db.db}` });
  const events = recordEvents(client);
  await client.call('PING');
  await client.quit();
  await waitFor(() => events.some(([n]) => n === 'end'));
});

test('with breaker: false a stall opens nothing and calls wait for their replies', async () => {
  const client = open({ url: `${proxy.url}/${db.db}`, breaker: false });
  await client.set('k', 'v');
  proxy.hold('toClient');
  const a = client.get('k');
  await sleep(100);
  const b = client.get('k');
  expect(client.breakerState).toBe('closed');
  proxy.release();
  expect(await Promise.all([a, b])).toEqual(['v', 'v']);
});

test('the breaker options are checked by name, and a logger must have error, warn and info', () => {
  expect(() => createClient({ breaker: { stallMS: 10 } })).toThrow(/unknown option breaker\.stallMS/);
  expect(() => createClient({ breaker: { stallMs: 0 } })).toThrow(RangeError);
  expect(() => createClient({ breaker: 'off' })).toThrow(/option breaker/);
  expect(() => createClient({ logger: { warn() {} } })).toThrow(/option logger/);
});

test('metrics count hits, misses, timeouts and refusals per command, with latencies', async () => {
  const client = open({ url: `${proxy.url}/${db.db}`, commandTimeout: 200, breaker: false });
  await client.set('m', '1');
  await client.get('m');
  await client.get('missing');
  await client.mget(['m', 'missing', 'm']);
  proxy.hold('toClient');
  const timedOut = await outcome(client.get('m'));
  expect(timedOut.error.code).toBe('ETIMEDOUT');
  proxy.release();
  const m = client.metrics();
  expect(m.commands.get).toMatchObject({ hit: 1, miss: 1, timeout: 1 });
  expect(m.commands.mget).toMatchObject({ hit: 2, miss: 1 });
  expect(m.commands.set.ok).toBe(1);
  const h = m.latency.byCommand.get;
  expect(h.count).toBe(2);
  expect(h.counts.reduce((a, b) => a + b, 0)).toBe(2);
  expect(m.latency.bucketsMs[0]).toBe(0.1);
  expect(m.latency.bucketsMs.at(-1)).toBe(1000);
  const off = open({ url: `${proxy.url}/${db.db}`, metrics: false });
  await off.get('m');
  expect(off.metrics().commands.get.hit).toBe(0);
});

test('synchronous work while a connect or a reply is pending never opens the breaker', async () => {
  const hold = (ms) => {
    const t = Date.now();
    while (Date.now() - t < ms);
  };
  // Straight to the server: an in-process proxy would be held by the same work.
  const client = open({ url: db.url, breaker: { stallMs: 25 } });
  const events = recordEvents(client);
  // The first call connects; the process is then busy for 150 ms before the loop polls.
  const first = client._get(SOFT_FAIL | BREAKER_EARLY, 'k');
  hold(150);
  await first;
  for (let i = 0; i < 3; i++) {
    const p = client._get(SOFT_FAIL | BREAKER_EARLY, 'k');
    await new Promise((r) => setImmediate(r)); // written
    hold(150);
    await p;
  }
  expect(events.filter(([n]) => n === 'breaker')).toEqual([]);
  expect(client.metrics().breakerOpened).toBe(0);
});

test('a probe that falls due while a reconnect hangs neither spins the loop nor stops the connect deadline', async () => {
  const { commandServer } = require('../helpers/fake-servers');
  // The first connection answers AUTH, then LOADING to everything; later ones never answer.
  const server = await commandServer((argv, conn) => {
    if (conn.index > 0) return null;
    return argv[0].toUpperCase() === 'AUTH' ? '+OK\r\n' : '-LOADING Redis is loading the dataset in memory\r\n';
  });
  try {
    const client = open({ url: `redis://:pw@127.0.0.1:${server.port}`, breaker: { failureThreshold: 3, openMs: 300 }, connectTimeout: 800 });
    for (let i = 0; i < 3; i++) await outcome(client.get('k'));
    expect(client.status().breakerReason).toBe('failures');
    await sleep(2100); // the connection has lasted: its loss reconnects at once
    server.connections[0].socket.destroy();
    // Timers keep firing (the loop is not spinning) and the hanging attempt ends at its deadline.
    let ticks = 0;
    const timer = setInterval(() => { ticks += 1; }, 50);
    await waitFor(() => client.status().lastError.code === 'ETIMEDOUT', { timeoutMs: 5000 });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(5);
    expect(client.breakerState).toBe('open');
  } finally {
    await server.close();
  }
});

test('behind a proxy that accepts for a dead server, the breaker stays open until Redis itself answers', async () => {
  const { startRedis, freePort } = require('../helpers/redis-server');
  const port = await freePort();
  const front = await createProxy({ port }); // accepts, then fails: nothing behind it yet
  let server = null;
  try {
    const logger = recordingLogger();
    const client = open({ url: front.url, reconnectBaseDelay: 10, reconnectMaxDelay: 50, logger });
    const events = recordEvents(client);
    await outcome(client.get('k'));
    await sleep(600); // many reconnects, each accepted by the proxy
    expect(client.breakerState).not.toBe('closed');
    expect(events.filter(([n, s]) => n === 'breaker' && s === 'closed:null')).toEqual([]);
    expect(logger.lines.filter(([level]) => level === 'info')).toEqual([]); // never "usable again"
    server = await startRedis({ port });
    await waitFor(() => client.breakerState === 'closed');
    expect(await client.call('PING')).toBe('PONG');
    expect(logger.lines.at(-1)[1]).toMatch(/usable again/);
  } finally {
    await front.close();
    if (server) await server.stop();
  }
});
