'use strict';
// Proves everything the client does works the same over TLS, against redis-server with TLS
// only (--port 0: whatever works went over TLS): pipelining (thousands of commands in one
// turn, replies in order, one turn's commands in one write), 16 MB values both ways byte
// for byte, transactions and pipelines, and the connections the client opens for itself
// (the blocking pool, isolated(), pub/sub, duplicate()) which must carry the TLS options;
// a worker thread with a TLS client, and a process that exits with a TLS connection open.
const path = require('path');
const util = require('util');
const errors = require('../../../lib/errors');
const crypto = require('crypto');
const { Worker } = require('worker_threads');
const { createClient } = require('../../../lib/redis');
const { makeCertificates, startTlsRedis, tlsWitness, runNode } = require('../../helpers/tls');
const { createProxy } = require('../../helpers/proxy');
const { waitFor } = require('../../helpers/async');

const REDIS_MODULE = path.resolve(__dirname, '../../../lib/redis.js');

let certs;
let server;
let witness;
const clients = [];

function client(options) {
  const c = createClient({ url: server.url, tls: { ca: certs.ca.cert }, ...options });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  certs = makeCertificates();
  server = await startTlsRedis({ certs });
  witness = tlsWitness(server, certs);
});

beforeEach(() => witness.flushall());

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

afterAll(async () => {
  if (witness) witness.disconnect();
  if (server) await server.stop();
  if (certs) certs.remove();
});

describe('pipelining', () => {
  test('5,000 commands issued in one turn: every reply in order, with its caller', async () => {
    const c = client();
    await c.call('PING');
    const n = 5000;
    const sets = Array.from({ length: n }, (_, i) => c.call('SET', `p:${i}`, `v${i}`));
    const echoes = Array.from({ length: n }, (_, i) => c.call('ECHO', `e${i}-${'x'.repeat(i % 50)}`));
    const gets = Array.from({ length: n }, (_, i) => c.get(`p:${i}`));
    const [s, e, g] = await Promise.all([Promise.all(sets), Promise.all(echoes), Promise.all(gets)]);
    expect(s.every((r) => r === 'OK')).toBe(true);
    expect(e).toEqual(Array.from({ length: n }, (_, i) => `e${i}-${'x'.repeat(i % 50)}`));
    expect(g).toEqual(Array.from({ length: n }, (_, i) => `v${i}`));
    expect(await witness.get(`p:${n - 1}`)).toBe(`v${n - 1}`);
  });

  test('one turn of commands reaches the server in one chunk through a proxy', async () => {
    const proxy = await createProxy({ port: server.port });
    try {
      const c = client({ url: `rediss://127.0.0.1:${proxy.port}` });
      await c.call('PING');
      const before = proxy.stats.toServer.chunks;
      await Promise.all(Array.from({ length: 100 }, (_, i) => c.call('SET', `pipe:${i}`, 'x')));
      // One write of TLS records; a client that wrote once per command would take ~100.
      expect(proxy.stats.toServer.chunks - before).toBeLessThanOrEqual(2);
    } finally {
      await proxy.close();
    }
  });
});

describe('large values', () => {
  const SIZE = 16 * 1024 * 1024;

  test('16 MB written by the client is read back byte for byte (and by the witness)', async () => {
    const value = crypto.randomBytes(SIZE);
    const c = client({ commandTimeout: 30000 });
    await expect(c.set('big:up', value)).resolves.toBe('OK');
    const back = await c.getBuffer('big:up');
    expect(back.length).toBe(SIZE);
    expect(back.equals(value)).toBe(true);
    const seen = await witness.getBuffer('big:up');
    expect(seen.equals(value)).toBe(true);
  });

  test('16 MB written by the witness is read by the client byte for byte', async () => {
    const value = crypto.randomBytes(SIZE);
    await witness.set('big:down', value);
    const c = client({ commandTimeout: 30000 });
    const [a, b] = await Promise.all([c.getBuffer('big:down'), c.callBuffer('GET', 'big:down')]);
    expect(a.equals(value)).toBe(true);
    expect(b.equals(value)).toBe(true);
  });
});

describe('the connection handshake over TLS', () => {
  const PASSWORD = 'tls-Pw-S3cr3t-8xq';
  const WRONG = 'tls-Wrong-Pw-5kz';
  let authServer;
  beforeAll(async () => {
    authServer = await startTlsRedis({ certs, args: ['--requirepass', PASSWORD] });
  });
  afterAll(() => authServer && authServer.stop());

  test('AUTH, SELECT and CLIENT SETNAME from a rediss:// URL', async () => {
    const c = client({ url: `rediss://:${PASSWORD}@localhost:${authServer.port}/5?name=tls-auth-client` });
    await expect(c.set('auth:k', 'in-db-5')).resolves.toBe('OK');
    await expect(c.call('CLIENT', 'GETNAME')).resolves.toBe('tls-auth-client');
    const w = tlsWitness(authServer, certs, { password: PASSWORD, db: 5 });
    try {
      await expect(w.get('auth:k')).resolves.toBe('in-db-5');
    } finally {
      w.disconnect();
    }
  });

  test('no password against a server that wants one: NOAUTH reaches the command as a reply, as over TCP', async () => {
    // Over TLS the handshake always has a step (a PING, when there is no AUTH, SELECT or
    // SETNAME): its error reply must not turn into a refused connection retried for ever.
    const c = client({ url: `rediss://localhost:${authServer.port}` });
    const err = await c.get('auth:k').catch((e) => e);
    expect(err).toBeInstanceOf(errors.ReplyError);
    expect(err.code).toBe('NOAUTH');
    expect(c.status()).toMatchObject({ state: 'ready', breaker: 'closed', reconnectAttempts: 0 });
  });

  test('a wrong password: WRONGPASS reaches the caller, without the password', async () => {
    const c = client({ url: `rediss://:${WRONG}@localhost:${authServer.port}`, connectTimeout: 3000 });
    const err = await c.call('PING').catch((e) => e);
    expect(err.code).toBe('WRONGPASS');
    const texts = [err.message, err.stack, util.inspect(err), util.inspect(c), JSON.stringify(c.status())];
    for (const t of texts) expect(t).not.toContain(WRONG);
  });
});

describe('units', () => {
  test('multi() and pipeline()', async () => {
    const c = client();
    await expect(c.multi().call('SET', 'm', '1').call('INCR', 'm').exec()).resolves.toEqual(['OK', 2]);
    const pairs = await c.pipeline().call('GET', 'm').call('LPUSH', 'm', 'x').exec();
    expect(pairs[0]).toEqual([null, '2']);
    expect(pairs[1][0]).toBeInstanceOf(Error);
  });
});

describe('the connections the client opens for itself go over TLS too', () => {
  test('a blocking command (the pool) gets the value another client pushes', async () => {
    const c = client();
    const waiting = c.call('BLPOP', 'jobs', '5');
    await waitFor(async () => (await witness.client('LIST')).includes('cmd=blpop'), { what: 'the BLPOP to wait' });
    await witness.rpush('jobs', 'job-1');
    await expect(waiting).resolves.toEqual(['jobs', 'job-1']);
  });

  test('isolated(): WATCH … MULTI … EXEC on a connection of its own', async () => {
    const c = client();
    await witness.set('balance', '100');
    const result = await c.isolated(async (conn) => {
      await conn.watch('balance');
      const balance = Number(await conn.get('balance'));
      return conn.multi().call('SET', 'balance', String(balance - 10)).exec();
    });
    expect(result).toEqual(['OK']);
    expect(await witness.get('balance')).toBe('90');
  });

  test('subscribe(): messages arrive on the pub/sub connection', async () => {
    const c = client();
    const got = [];
    await expect(c.subscribe('tls-news', (message, channel) => got.push([message, channel]))).resolves.toBe(1);
    expect(await witness.publish('tls-news', 'héllo over tls')).toBe(1);
    await waitFor(() => got.length === 1, { what: 'the message' });
    expect(got[0]).toEqual(['héllo over tls', 'tls-news']);
    await c.unsubscribe();
  });

  test('duplicate() keeps the TLS options (and may change the db)', async () => {
    const c = client();
    const d = c.duplicate({ db: 3 });
    clients.push(d);
    await expect(d.set('dup', 'in-db-3')).resolves.toBe('OK');
    expect(d.status().tls).toBe(true);
    await witness.select(3);
    try {
      expect(await witness.get('dup')).toBe('in-db-3');
    } finally {
      await witness.select(0);
    }
  });

  test('every one of them is a TLS connection of the server', async () => {
    const c = client({ name: 'tls-surface-all' });
    await c.call('PING');
    const blpop = c.call('BLPOP', 'nothing', '2');
    await c.subscribe('tls-any', () => {});
    await c.isolated(async (conn) => {
      await conn.call('PING');
      expect(conn.status().tls).toBe(true);
      const list = await witness.client('LIST');
      const ours = list.split('\n').filter((line) => line.includes('name=tls-surface-all'));
      // The shared connection, the pool's, the pub/sub one and this isolated one.
      expect(ours.length).toBeGreaterThanOrEqual(4);
    });
    await blpop;
  });
});

/** Runs `body` (an async function's source using createClient, url, ca, post) in a worker. */
function runWorker(body, workerData) {
  const source = `
    const { parentPort, workerData } = require('worker_threads');
    const { createClient } = require(${JSON.stringify(REDIS_MODULE)});
    const { url, ca } = workerData;
    const post = (m) => parentPort.postMessage(m);
    (async () => { ${body} })().catch((err) => post({ error: String(err && err.stack || err) }));
  `;
  const worker = new Worker(source, { eval: true, workerData });
  const messages = [];
  worker.on('message', (m) => messages.push(m));
  const exited = new Promise((resolve, reject) => {
    worker.on('exit', resolve);
    worker.on('error', reject);
  });
  return { worker, messages, exited };
}

describe('worker_threads', () => {
  test('a worker uses a TLS client of its own and exits by itself after quit()', async () => {
    const { messages, exited } = runWorker(
      `
      const c = createClient({ url, tls: { ca } });
      await c.call('SET', 'from-worker', 'hello');
      post({ got: await c.call('GET', 'from-worker') });
      await c.quit();
    `,
      { url: server.url, ca: certs.ca.cert },
    );
    await expect(exited).resolves.toBe(0);
    expect(messages).toEqual([{ got: 'hello' }]);
    expect(await witness.get('from-worker')).toBe('hello');
  });

  test('terminate() on a worker with TLS commands in flight ends it; the main thread carries on', async () => {
    const proxy = await createProxy({ port: server.port });
    try {
      const { worker, exited } = runWorker(
        `
        const c = createClient({ url, tls: { ca }, commandTimeout: 60000 });
        await c.call('PING');
        parentPort.once('message', () => {
          for (let i = 0; i < 100; i++) c.call('INCR', 'in-flight').catch(() => {});
          setImmediate(() => post({ issued: c.status().inFlight }));
        });
        post({ ready: true });
        await new Promise(() => {});
      `,
        { url: `rediss://127.0.0.1:${proxy.port}`, ca: certs.ca.cert },
      );
      const next = () => new Promise((resolve) => worker.once('message', resolve));
      expect(await next()).toEqual({ ready: true });
      proxy.hold('toClient');
      worker.postMessage('go');
      expect(await next()).toEqual({ issued: 100 });
      await worker.terminate();
      await expect(exited).resolves.toBe(1);
      const c = client();
      await expect(c.call('PING')).resolves.toBe('PONG');
    } finally {
      await proxy.close();
    }
  });
});

describe('process exit with a TLS connection open', () => {
  test('an idle connected client lets the process exit by itself, with code 0', async () => {
    const r = await runNode(`
      const { createClient } = require(${JSON.stringify(REDIS_MODULE)});
      const c = createClient({ url: ${JSON.stringify(server.url)}, tls: { ca: ${JSON.stringify(certs.ca.cert)} } });
      c.call('PING').then((v) => process.stdout.write(v));
    `);
    expect(r).toMatchObject({ timedOut: false, code: 0, signal: null, stdout: 'PONG' });
    expect(r.stderr).toBe('');
  });

  test('process.exit() with commands in flight exits cleanly', async () => {
    const r = await runNode(`
      const { createClient } = require(${JSON.stringify(REDIS_MODULE)});
      const c = createClient({ url: ${JSON.stringify(server.url)}, tls: { ca: ${JSON.stringify(certs.ca.cert)} } });
      c.call('PING').then((v) => {
        process.stdout.write(v);
        for (let i = 0; i < 1000; i++) c.call('INCR', 'exit-counter').catch(() => {});
        setImmediate(() => process.exit(0));
      });
    `);
    expect(r).toMatchObject({ timedOut: false, code: 0, signal: null, stdout: 'PONG' });
    expect(r.stderr).toBe('');
  });
});
