'use strict';
// Proves the client survives what production does to it: any UTF-8 text reaches Redis
// whole, a write that fails is never resent on the next connection, nothing crashes after
// quit(), quit() settles against a silent server, a server that drops every connection is
// not hammered, a failed prefix deletion rejects instead of crashing the process, the
// handshake never echoes a password, and a worker terminated mid-flight leaves the process
// alive.
const net = require('net');
const path = require('path');
const { spawnSync } = require('child_process');
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { suiteDatabase } = require('../helpers/suite-db');
const { startRedis } = require('../helpers/redis-server');
const { rawCommand, rawCommandBuffer } = require('../helpers/raw-redis');
const { startProxyProcess } = require('../helpers/proxy-process');
const { outcome, waitFor, sleep, watchUnhandledRejections } = require('../helpers/async');

let db;
let unhandled;
const clients = [];
const servers = [];

function client(options) {
  const c = createClient(options);
  clients.push(c);
  return c;
}

/** A TCP server on loopback that treats each connection with `onConnection`. */
function tcpServer(onConnection) {
  return new Promise((resolve) => {
    const srv = net.createServer((s) => {
      s.on('error', () => {});
      onConnection(s);
    });
    servers.push(srv);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

beforeAll(async () => {
  db = await suiteDatabase();
  unhandled = watchUnhandledRejections();
});
beforeEach(() => db.flush());
afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const s of servers) s.close();
  unhandled.stop();
});

test('strings with multi-byte characters at every buffer boundary reach Redis whole', async () => {
  const c = client({ url: db.url });
  const samples = ['é', '€', '😀', 'ß€😀'];
  const sent = [];
  for (let n = 0; n < 700; n += 7) {
    for (const s of samples) {
      const value = `${'a'.repeat(n)}${s}tail`;
      const key = `k:${n}:${s}:${'é'.repeat(n % 5)}`;
      sent.push([key, value]);
      c.set(key, value);
    }
  }
  await c.call('PING');
  for (const [key, value] of sent) {
    const stored = await rawCommandBuffer(db.raw, 'GET', key);
    expect(stored).toEqual(Buffer.from(value, 'utf8'));
  }
  expect(unhandled.seen).toEqual([]);
});

test('a command after quit() rejects with ERR_CLIENT_CLOSED and the cache reads as a miss', async () => {
  const c = client({ url: db.url });
  await c.set('k', 'v');
  await c.quit();
  await sleep(10);
  const err = await outcome(c.get('k'));
  expect(err.error && err.error.code).toBe('ERR_CLIENT_CLOSED');
  const cache = createCache({ client: c });
  await expect(cache.cacheGet('k')).resolves.toBeNull();
  await expect(cache.cacheSet('k', 'v', 5)).resolves.toBe(false);
});

test('a write that fails on a reset connection is never resent on the next one', async () => {
  const proxy = await startProxyProcess(db.port);
  try {
    const c = client({ url: `${proxy.url}/${db.db}`, commandTimeout: 0 });
    expect(await c.call('PING')).toBe('PONG');
    const resetDone = proxy.do('reset');
    // The child resets the connection while this process is blocked: the RST arrives but is
    // not polled, so the SET below is flushed before the client learns the connection died,
    // and the write itself fails.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    const first = await outcome(c.call('SET', 'written-once', '1'));
    expect(first.error).toBeDefined();
    expect(['ERR_OUTCOME_UNKNOWN', 'ECONNRESET', 'EPIPE']).toContain(first.error.code);
    await waitFor(() => c.status().ready || c.status().state === 'down', { what: 'reconnect' });
    await waitFor(async () => (await outcome(c.call('PING'))).value === 'PONG', { what: 'a working connection' });
    expect(await c.call('ECHO', 'mine')).toBe('mine');
    // Had the failed bytes been kept, the new connection would have run the SET.
    expect(await rawCommand(db.raw, 'EXISTS', 'written-once')).toBe(0);
    await resetDone;
  } finally {
    proxy.stop();
  }
});

test('quit() settles against a server that never answers, within the command timeout', async () => {
  const srv = await tcpServer(() => {}); // accepts, reads nothing, answers nothing
  const c = client({ host: '127.0.0.1', port: srv.address().port, commandTimeout: 300 });
  const pending = outcome(c.call('GET', 'k'));
  await sleep(20);
  const started = Date.now();
  await c.quit();
  expect(Date.now() - started).toBeLessThan(5000); // the bound is the deadline, not a speed
  expect(c.status().state).toBe('closed');
  expect((await pending).error).toBeDefined();
});

test('a server that accepts and drops every connection is retried with backoff, not hammered', async () => {
  let accepted = 0;
  const srv = await tcpServer((s) => {
    accepted += 1;
    s.destroy();
  });
  const c = client({ host: '127.0.0.1', port: srv.address().port });
  await outcome(c.call('PING'));
  const before = accepted;
  await sleep(1000);
  // With backoff capped at 2 s the client needs only a handful of attempts a second; an
  // immediate reconnect after each drop makes thousands.
  expect(accepted - before).toBeLessThan(30);
  // …but it does keep trying: backoff from 50 ms reaches the server again within a second.
  expect(accepted - before).toBeGreaterThanOrEqual(2);
  expect(c.status().connectionsOpened).toBeGreaterThanOrEqual(3);
});

test('the handshake never echoes the password into errors or status()', async () => {
  const secret = 'S3cretPassw0rd-never-shown';
  // With AUTH renamed away, Redis answers it as an unknown command and echoes its arguments.
  const server = await startRedis({ args: ['--rename-command', 'AUTH', ''] });
  try {
    const c = client({ url: server.url, username: 'app', password: secret });
    const res = await outcome(c.call('PING'));
    expect(res.error).toBeDefined();
    expect(res.error.code).toBe('ERR');
    expect(res.error.message).not.toContain(secret);
    expect(res.error.stack).not.toContain(secret);
    expect(JSON.stringify(c.status())).not.toContain(secret);
    expect(c.status().lastError.message).toMatch(/unknown command/);
    expect(require('util').inspect(c, { depth: 5 })).not.toContain(secret);
  } finally {
    await server.stop();
  }
});

test('cacheDelPrefix rejects (never an unhandled rejection) when UNLINK is refused', async () => {
  const user = `no-unlink-${process.pid}`;
  await rawCommand(db.raw, 'ACL', 'SETUSER', user, 'on', '>pw', '~*', '+@all', '-unlink');
  try {
    const c = client({ url: db.url, username: user, password: 'pw' });
    for (let i = 0; i < 50; i += 1) await c.set(`p:${i}`, 'v');
    const cache = createCache({ client: c, deleteBatch: 10, scanCount: 10 });
    const res = await outcome(cache.cacheDelPrefix('p:'));
    expect(res.error && res.error.code).toBe('NOPERM');
    await sleep(50);
    expect(unhandled.seen).toEqual([]);
  } finally {
    await rawCommand(db.raw, 'ACL', 'DELUSER', user);
  }
});

test('terminating workers with replies in flight leaves the process alive', () => {
  const script = `
    const { Worker, isMainThread, workerData, parentPort } = require('worker_threads');
    if (isMainThread) {
      (async () => {
        for (let i = 0; i < 15; i++) {
          const w = new Worker(__filename, { eval: false, workerData: process.argv[2] });
          await new Promise((r) => w.once('message', r));
          await new Promise((r) => setTimeout(r, i % 4));
          await w.terminate();
        }
        console.log('alive');
      })();
    } else {
      const { createClient } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'lib', 'redis'))});
      const c = createClient({ url: workerData, commandTimeout: 0 });
      let told = false;
      const spin = () => {
        for (let i = 0; i < 500; i++) c.call('NOSUCHCMD', 'x').catch(() => {});
        if (!told) { told = true; parentPort.postMessage('go'); }
        setImmediate(spin);
      };
      spin();
    }`;
  const file = path.join(require('os').tmpdir(), `hirecache-worker-term-${process.pid}.js`);
  require('fs').writeFileSync(file, script);
  const r = spawnSync(process.execPath, [file, db.url], { encoding: 'utf8', timeout: 60000 });
  require('fs').rmSync(file, { force: true });
  expect(r.signal).toBeNull();
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toBe('alive');
});
