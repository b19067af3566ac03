'use strict';
// Proves the client works inside worker_threads (the addon is per environment) and that a
// worker with a client, connected or with commands in flight, exits cleanly: naturally
// after quit(), by process.exit(), or by terminate(); the main thread carries on.
const path = require('path');
const { Worker } = require('worker_threads');
const { createClient } = require('../../lib/redis');
const { suiteDatabase } = require('../helpers/suite-db');
const { createProxy } = require('../helpers/proxy');
const { rawCommand } = require('../helpers/raw-redis');

const redisModule = path.resolve(__dirname, '../../lib/redis.js');

let db;

beforeAll(async () => {
  db = await suiteDatabase();
});

beforeEach(() => db.flush());

/** Runs `body` (an async function's source using `createClient`, `url`, `post`) in a worker. */
function runWorker(body, url) {
  const source = `
    const { parentPort, workerData } = require('worker_threads');
    const { createClient } = require(${JSON.stringify(redisModule)});
    const url = workerData.url;
    const post = (m) => parentPort.postMessage(m);
    (async () => { ${body} })().catch((err) => post({ error: String(err && err.stack || err) }));
  `;
  const worker = new Worker(source, { eval: true, workerData: { url } });
  const messages = [];
  worker.on('message', (m) => messages.push(m));
  const exited = new Promise((resolve, reject) => {
    worker.on('exit', (code) => resolve(code));
    worker.on('error', reject);
  });
  return { worker, messages, exited };
}

test('a worker uses its own client and exits by itself after quit()', async () => {
  const { messages, exited } = runWorker(
    `
    const c = createClient({ url });
    await c.call('SET', 'from-worker', 'hello');
    post({ got: await c.call('GET', 'from-worker') });
    await c.quit();
  `,
    db.url,
  );
  await expect(exited).resolves.toBe(0);
  expect(messages).toEqual([{ got: 'hello' }]);
  expect(await rawCommand(db.raw, 'GET', 'from-worker')).toBe('hello');
});

test('a worker calling process.exit() with a connected client exits cleanly', async () => {
  const { messages, exited } = runWorker(
    `
    const c = createClient({ url });
    post({ pong: await c.call('PING') });
    process.exit(7);
  `,
    db.url,
  );
  await expect(exited).resolves.toBe(7);
  expect(messages).toEqual([{ pong: 'PONG' }]);
});

test('terminate() on a worker with commands in flight ends it; the main thread carries on', async () => {
  const proxy = await createProxy({ port: db.port });
  try {
    const { worker, exited } = runWorker(
      `
      const c = createClient({ url, commandTimeout: 60000 });
      await c.call('PING');
      parentPort.once('message', () => {
        for (let i = 0; i < 100; i++) c.call('INCR', 'in-flight').catch(() => {});
        setImmediate(() => post({ issued: c.status().inFlight }));
      });
      post({ ready: true });
      await new Promise(() => {});
    `,
      `${proxy.url}/${db.db}`,
    );
    const next = () => new Promise((resolve) => worker.once('message', resolve));
    expect(await next()).toEqual({ ready: true });
    proxy.hold('toClient');
    worker.postMessage('go');
    expect(await next()).toEqual({ issued: 100 });
    await worker.terminate();
    await expect(exited).resolves.toBe(1);
    const c = createClient({ url: db.url });
    await expect(c.call('PING')).resolves.toBe('PONG');
    await c.quit();
  } finally {
    await proxy.close();
  }
});

test("a worker whose 'error' listener exits while more events wait exits cleanly", async () => {
  // The connect fails: 'error', then 'breaker' and 'reconnecting' are queued behind it and
  // would be delivered while the worker can no longer run JS.
  const { exited } = runWorker(
    `
    const c = createClient({ url: 'redis://127.0.0.1:1', logger: false });
    c.on('error', () => process.exit(3));
    c.get('k').catch(() => {});
    await new Promise(() => {});
  `,
    db.url,
  );
  await expect(exited).resolves.toBe(3);
});

test('several workers at once each get their own replies', async () => {
  const runs = Array.from({ length: 3 }, (_, w) =>
    runWorker(
      `
      const c = createClient({ url });
      const keys = Array.from({ length: 200 }, (_, i) => 'w${w}:' + i);
      await Promise.all(keys.map((k) => c.call('SET', k, 'v-' + k)));
      const got = await Promise.all(keys.map((k) => c.get(k)));
      post({ ok: got.every((v, i) => v === 'v-' + keys[i]) });
      await c.quit();
    `,
      db.url,
    ),
  );
  const codes = await Promise.all(runs.map((r) => r.exited));
  expect(codes).toEqual([0, 0, 0]);
  expect(runs.map((r) => r.messages)).toEqual([[{ ok: true }], [{ ok: true }], [{ ok: true }]]);
});
