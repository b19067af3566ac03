'use strict';
// Proves reconnection keeps replies with their callers: a redis-server killed and
// restarted on the same port under a load of concurrent GETs never hands a caller another
// key's value, every failure carries a stable code, the client is ready again afterwards,
// and a command that was written before the connection died is never resent (an INCR in
// flight across a cut counts at most once).
const fs = require('fs');
const { createClient } = require('../../lib/redis');
const errors = require('../../lib/errors');
const { startRedis } = require('../helpers/redis-server');
const { createProxy } = require('../helpers/proxy');
const { rawCommand } = require('../helpers/raw-redis');
const { sleep, waitFor, outcome } = require('../helpers/async');

// Codes a command may fail with while the server goes away and comes back.
const CONNECTION_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED'];
const ALLOWED_CODES = ['ERR_OUTCOME_UNKNOWN', ...CONNECTION_CODES];

const clients = [];
function client(options) {
  const c = createClient(options);
  clients.push(c);
  return c;
}

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.disconnect()));
});

/**
 * Runs `lanes` loops that each issue fn(i) back to back until stop() is called; collects
 * every outcome. Resolves (from done) once every lane has stopped.
 */
function load(lanes, fn) {
  const results = [];
  let running = true;
  let n = 0;
  const loops = Array.from({ length: lanes }, async () => {
    while (running) {
      const i = n++;
      const r = { i, ...(await outcome(fn(i))) };
      results.push(r);
      // A call that fails fast settles without I/O; yield so the loop's timers still run.
      if (!r.ok) await new Promise((resolve) => setImmediate(resolve));
    }
  });
  const run = {
    results,
    stop() {
      running = false;
      runs.delete(run);
      return Promise.all(loops);
    },
  };
  runs.add(run);
  return run;
}

// Loads still running when a test fails are stopped here, so they cannot run on forever.
const runs = new Set();
afterEach(async () => {
  for (const run of [...runs]) await run.stop();
});

describe('redis-server killed and restarted under load', () => {
  let server;
  let dir;

  afterAll(async () => {
    if (server) await server.stop({ keepDir: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every resolved GET returns its own key, failures carry codes, and the client is ready again', async () => {
    server = await startRedis();
    dir = server.dir;
    const port = server.port;
    const KEYS = 500;
    const keyOf = (i) => `key:${i % KEYS}`;
    const valueOf = (key) => `value-of-${key}-${'x'.repeat(key.length * 7)}`;
    const all = Array.from({ length: KEYS }, (_, i) => keyOf(i));
    await rawCommand({ port }, 'MSET', ...all.flatMap((k) => [k, valueOf(k)]));
    // The restarted server loads this snapshot, so every key still has its value.
    await rawCommand({ port }, 'SAVE');

    const c = client({ url: server.url, reconnectBaseDelay: 10, reconnectMaxDelay: 200, commandTimeout: 3000 });
    await c.call('PING');
    const run = load(64, (i) => c.get(keyOf(i)));

    await sleep(300);
    await server.kill();
    await sleep(300);
    server = await startRedis({ port, dir });
    const restartedAt = run.results.length;
    await waitFor(() => run.results.slice(restartedAt).some((r) => r.ok) && c.status().ready, {
      what: 'successful GETs after the restart',
    });
    const resumedAt = run.results.length;
    await sleep(300);
    await run.stop();

    const ok = run.results.filter((r) => r.ok);
    const failed = run.results.filter((r) => !r.ok);
    // The kill must have hit commands in flight, or this test proves nothing.
    expect(failed.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThan(0);
    for (const r of ok) {
      if (r.value !== valueOf(keyOf(r.i))) {
        throw new Error(`GET ${keyOf(r.i)} resolved with ${JSON.stringify(String(r.value).slice(0, 40))}`);
      }
    }
    const codes = new Set(failed.map((r) => r.error && r.error.code));
    for (const code of codes) expect(ALLOWED_CODES).toContain(code);
    for (const r of failed) expect(r.error).toBeInstanceOf(Error);
    // Commands that were written when the server died say their outcome is unknown.
    expect(codes.has('ERR_OUTCOME_UNKNOWN')).toBe(true);
    const unknown = failed.find((r) => r.error.code === 'ERR_OUTCOME_UNKNOWN');
    expect(unknown.error).toBeInstanceOf(errors.OutcomeUnknownError);
    // After the restart the load ran on and succeeded.
    expect(run.results.slice(resumedAt).some((r) => r.ok)).toBe(true);
    expect(c.status()).toMatchObject({ state: 'ready', ready: true });
    await expect(c.get(keyOf(7))).resolves.toBe(valueOf(keyOf(7)));
  });
});

describe('written commands are never resent', () => {
  let server;
  let proxy;

  beforeAll(async () => {
    server = await startRedis();
    proxy = await createProxy({ port: server.port });
  });

  afterAll(async () => {
    if (proxy) await proxy.close();
    if (server) await server.stop();
  });

  test('INCR in flight across a cut: counter = successes + at most the unknown outcomes', async () => {
    const c = client({ url: proxy.url, reconnectBaseDelay: 10, reconnectMaxDelay: 100, commandTimeout: 20000 });
    await c.call('DEL', 'counter');
    const run = load(32, () => c.call('INCR', 'counter'));
    await waitFor(() => run.results.filter((r) => r.ok).length >= 200, { what: '200 INCR replies' });

    // Replies stop at the proxy; the INCRs already on their way still reach the server and
    // run. Cut once the server has counted INCRs whose replies the client never saw.
    proxy.hold('toClient');
    await waitFor(
      async () => {
        const counted = Number(await rawCommand({ port: server.port }, 'GET', 'counter'));
        return counted > run.results.filter((r) => r.ok).length;
      },
      { what: 'INCRs run on the server with their replies held' },
    );
    proxy.cut();
    proxy.release();

    await waitFor(() => run.results.slice(-50).some((r) => r.ok) && c.status().ready, {
      what: 'INCRs succeeding after the cut',
    });
    await sleep(100);
    await run.stop();

    const successes = run.results.filter((r) => r.ok).length;
    const unknown = run.results.filter((r) => !r.ok && r.error.code === 'ERR_OUTCOME_UNKNOWN').length;
    // A command past its deadline may have run too (it was written); none is expected with
    // a 20 s deadline, but if one happens it counts with the unknown outcomes.
    const timedOut = run.results.filter((r) => !r.ok && r.error instanceof errors.CommandTimeoutError).length;
    const other = run.results.filter((r) => !r.ok && r.error.code !== 'ERR_OUTCOME_UNKNOWN');
    for (const r of other) expect(CONNECTION_CODES).toContain(r.error.code);
    const counter = Number(await rawCommand({ port: server.port }, 'GET', 'counter'));
    const byCode = {};
    for (const r of run.results) {
      const k = r.ok ? 'ok' : r.error.code;
      byCode[k] = (byCode[k] || 0) + 1;
    }
    expect(unknown).toBeGreaterThan(0);
    expect(counter).toBeGreaterThanOrEqual(successes);
    if (counter > successes + unknown + timedOut) {
      throw new Error(`INCR counted ${counter} times but callers saw ${JSON.stringify(byCode)}: a command ran twice`);
    }
    // Every INCR reply is distinct: no reply was handed to two callers.
    const values = run.results.filter((r) => r.ok).map((r) => r.value);
    expect(new Set(values).size).toBe(values.length);
  });

  test('a connection reset (RST) settles the written commands with ERR_OUTCOME_UNKNOWN and the client goes on', async () => {
    const c = client({ url: proxy.url, reconnectBaseDelay: 10, reconnectMaxDelay: 100 });
    await c.call('SET', 'after-reset', '0');
    proxy.hold('toClient');
    const pending = Array.from({ length: 20 }, () => c.call('INCR', 'after-reset'));
    // All 20 ran on the server; only their replies are held.
    await waitFor(async () => (await rawCommand({ port: server.port }, 'GET', 'after-reset')) === '20', {
      what: 'the 20 INCRs to run',
    });
    proxy.reset();
    proxy.release();
    const results = await Promise.allSettled(pending);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(r.reason.code).toBe('ERR_OUTCOME_UNKNOWN');
    }
    await waitFor(async () => (await outcome(c.call('PING'))).ok, { what: 'the client to reconnect' });
    await c.call('PING');
    expect(await rawCommand({ port: server.port }, 'GET', 'after-reset')).toBe('20');
  });
});
