'use strict';
// Proves TLS fails safe and recovers: rediss:// to a port that speaks plaintext fails with
// a TlsError and never sends a command in clear; a server that closes during the handshake
// is ERR_TLS_HANDSHAKE; one that never answers it is cut at the connect deadline. Over TLS
// the fault rules hold as they do in plaintext: a held reply is ETIMEDOUT at commandTimeout
// and the replies after it stay with their callers; a connection cut in the middle of a
// large reply (no close_notify) fails the command in flight with ERR_OUTCOME_UNKNOWN and the
// client reconnects; a peer that closes without close_notify while idle, a reset, a server
// killed and restarted on its port (and a restart with an expired certificate, verified on
// the reconnect too) are survived; TLS records split into 1-byte reads are reassembled;
// quit() answers what is in flight and resolves.
const fs = require('fs');
const net = require('net');
const crypto = require('crypto');
const { createClient } = require('../../../lib/redis');
const errors = require('../../../lib/errors');
const tls = require('tls');
const path = require('path');
const { Worker } = require('worker_threads');
const { makeCertificates, startTlsRedis, createTlsProxy, tlsWitness, runNode } = require('../../helpers/tls');
const { createProxy } = require('../../helpers/proxy');
const { suiteDatabase } = require('../../helpers/suite-db');
const { rawCommand } = require('../../helpers/raw-redis');
const { waitFor, outcome, sleep } = require('../../helpers/async');

const REDIS_MODULE = path.resolve(__dirname, '../../../lib/redis.js');

let certs;
let server;
let witness;
const clients = [];
const cleanups = [];

function client(options) {
  const c = createClient({ connectTimeout: 5000, reconnectBaseDelay: 20, reconnectMaxDelay: 200, ...options });
  clients.push(c);
  return c;
}

/** A TLS client for the server (or proxy) on 127.0.0.1:port, trusting the test CA. */
function tlsClient(port, options = {}) {
  return client({ url: `rediss://127.0.0.1:${port}`, ...options, tls: { ca: certs.ca.cert, ...options.tls } });
}

/** A loopback server that calls onSocket(socket, received) per connection; received collects every byte. */
async function rawServer(onSocket) {
  const sockets = new Set();
  const received = [];
  const srv = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (d) => received.push(d));
    onSocket(socket);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const handle = {
    port: srv.address().port,
    received: () => Buffer.concat(received),
    accepted: () => received.length,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => srv.close(resolve));
    },
  };
  cleanups.push(handle.close);
  return handle;
}

beforeAll(async () => {
  certs = makeCertificates();
  server = await startTlsRedis({ certs });
  witness = tlsWitness(server, certs);
});

beforeEach(() => witness.flushall());

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const f of cleanups.splice(0)) await f();
});

afterAll(async () => {
  if (witness) witness.disconnect();
  if (server) await server.stop();
  if (certs) certs.remove();
});

describe('never a plaintext fallback', () => {
  test('a port that answers in plaintext: TlsError ERR_SSL_WRONG_VERSION_NUMBER; the command never went out in clear', async () => {
    // Answers the first bytes as a plaintext Redis does when they hold a newline.
    const plain = await rawServer((socket) => socket.once('data', () => socket.end('-ERR unknown command\r\n')));
    const c = tlsClient(plain.port);
    const marker = `clear-text-marker-${crypto.randomBytes(6).toString('hex')}`;
    const err = await c.set(marker, marker).catch((e) => e);
    expect(err).toBeInstanceOf(errors.TlsError);
    expect(err.code).toBe('ERR_SSL_WRONG_VERSION_NUMBER');
    expect(c.status().lastError).toMatchObject({ code: 'ERR_SSL_WRONG_VERSION_NUMBER' });
    const bytes = plain.received();
    expect(bytes.length).toBeGreaterThan(0);
    expect(bytes[0]).toBe(0x16); // a TLS handshake record: a ClientHello
    expect(bytes.includes(Buffer.from(marker))).toBe(false);
    expect(bytes.includes(Buffer.from('SET'))).toBe(false);
    // Later calls fail the same way, never in plaintext either.
    await c.call('SET', marker, 'again').catch(() => {});
    await sleep(100);
    expect(plain.received().includes(Buffer.from(marker))).toBe(false);
  });

  test('the shared plaintext redis-server: the command fails and never runs', async () => {
    // redis-server reads a ClientHello as an inline command: it answers an error when the
    // hello's random bytes hold a newline (then ERR_SSL_WRONG_VERSION_NUMBER), otherwise it
    // waits for one and the connect deadline ends the attempt.
    const db = await suiteDatabase();
    const c = client({ url: `rediss://127.0.0.1:${db.port}/${db.db}`, tls: { ca: certs.ca.cert }, connectTimeout: 1000 });
    const marker = `plain-marker-${crypto.randomBytes(6).toString('hex')}`;
    const err = await c.set(marker, 'x').catch((e) => e);
    expect(err).toBeInstanceOf(errors.ConnectionError);
    if (err instanceof errors.TlsError) expect(err.code).toMatch(/^ERR_SSL_|^ERR_TLS_/);
    else expect(err.code).toBe('ETIMEDOUT');
    c.disconnect();
    expect(await rawCommand(db.raw, 'EXISTS', marker)).toBe(0);
    expect(await rawCommand({ port: db.port }, 'EXISTS', marker)).toBe(0);
  });
});

describe('handshake faults', () => {
  test('a server that closes during the handshake: TlsError ERR_TLS_HANDSHAKE', async () => {
    const closer = await rawServer((socket) => socket.once('data', () => socket.end()));
    const c = tlsClient(closer.port);
    const err = await c.call('PING').catch((e) => e);
    expect(err).toBeInstanceOf(errors.TlsError);
    expect(err.code).toBe('ERR_TLS_HANDSHAKE');
    expect(c.status().lastError).toMatchObject({ code: 'ERR_TLS_HANDSHAKE' });
  });

  test('a server that never answers the handshake: the attempt ends at connectTimeout', async () => {
    const silent = await rawServer(() => {});
    const c = tlsClient(silent.port, { connectTimeout: 500 });
    const result = await Promise.race([
      outcome(c.call('PING')),
      sleep(10000).then(() => ({ hung: true })),
    ]);
    expect(result.hung).toBeUndefined();
    expect(result.ok).toBe(false);
    expect(result.error).toBeInstanceOf(errors.ConnectionError);
    expect(typeof result.error.code).toBe('string');
    expect(silent.received()[0]).toBe(0x16);
  });
});

describe('the connect attempt in progress', () => {
  test('a handshake in progress keeps the process alive until connectTimeout settles the command (a child process)', async () => {
    const silent = await rawServer(() => {});
    const r = await runNode(`
      const { createClient } = require(${JSON.stringify(REDIS_MODULE)});
      const c = createClient({ url: 'rediss://127.0.0.1:${silent.port}', connectTimeout: 500, logger: false });
      c.call('PING').then((v) => process.stdout.write('resolved ' + v), (e) => process.stdout.write('rejected ' + e.code));
    `);
    expect(r).toMatchObject({ code: 0, signal: null, timedOut: false, stdout: 'rejected ETIMEDOUT', stderr: '' });
  });

  test('process.exit() during the handshake exits cleanly (a child process)', async () => {
    const silent = await rawServer(() => {});
    const r = await runNode(`
      const { createClient } = require(${JSON.stringify(REDIS_MODULE)});
      const c = createClient({ url: 'rediss://127.0.0.1:${silent.port}', connectTimeout: 10000, logger: false });
      c.call('PING').catch(() => {});
      setTimeout(() => process.exit(0), 100);
    `);
    expect(r).toMatchObject({ code: 0, signal: null, timedOut: false, stderr: '' });
    expect(silent.received()[0]).toBe(0x16);
  });

  test('terminate() on a worker in the middle of a handshake ends it; the main thread carries on', async () => {
    const silent = await rawServer(() => {});
    const worker = new Worker(
      `
      const { createClient } = require(${JSON.stringify(REDIS_MODULE)});
      const c = createClient({ url: 'rediss://127.0.0.1:${silent.port}', connectTimeout: 10000, logger: false });
      c.call('PING').catch(() => {});
      require('worker_threads').parentPort.postMessage('connecting');
    `,
      { eval: true },
    );
    await new Promise((resolve) => worker.once('message', resolve));
    await waitFor(() => silent.received().length > 0, { what: 'the ClientHello' });
    await expect(worker.terminate()).resolves.toBe(1);
    await expect(tlsClient(server.port).call('PING')).resolves.toBe('PONG');
  });

  test('disconnect() during the handshake settles the command with ERR_CLIENT_CLOSED', async () => {
    const silent = await rawServer(() => {});
    const c = tlsClient(silent.port, { connectTimeout: 10000 });
    const pending = c.call('PING').catch((e) => e);
    await waitFor(() => silent.received().length > 0, { what: 'the ClientHello' });
    c.disconnect();
    const err = await pending;
    expect(err).toBeInstanceOf(errors.ClientClosedError);
  });
});

describe('deadlines and bounds over TLS', () => {
  function busy(ms) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      // The event loop is stalled meanwhile, as by any synchronous work.
    }
  }

  test('replies already in the socket when a stall ends win over their deadlines (several TLS records each)', async () => {
    const c = tlsClient(server.port, { commandTimeout: 300 });
    // 40 KB: three TLS records each; two of them and ten small ones stay well inside what the
    // kernel buffers for a socket (so the replies are all there when the stall ends).
    const value = crypto.randomBytes(20 * 1024).toString('hex');
    for (let i = 0; i < 20; i++) if ((await outcome(c.call('PING'))).ok) break;
    await c.set('hot', value);
    await c.set('small', 'v');
    for (let round = 0; round < 3; round++) {
      const gets = [c.get('hot'), ...Array.from({ length: 10 }, () => c.get('small')), c.get('hot')];
      // The gets are written before the loop polls; Redis answers at once while the check
      // phase stalls the loop past every deadline.
      setImmediate(() => busy(600));
      const values = await Promise.all(gets);
      expect(values).toEqual([value, ...Array(10).fill('v'), value]);
    }
  });

  test('a command whose deadline passed before it could be written times out and never runs', async () => {
    const c = tlsClient(server.port, { commandTimeout: 200 });
    for (let i = 0; i < 20; i++) if ((await outcome(c.call('PING'))).ok) break;
    const pending = Array.from({ length: 100 }, () => c.call('INCR', 'ran').catch((e) => e.code));
    busy(400);
    expect(await Promise.all(pending)).toEqual(Array(100).fill('ETIMEDOUT'));
    expect(await witness.get('ran')).toBeNull();
  });

  test('bytes not yet taken by a server that stopped reading are bounded by maxQueueBytes', async () => {
    // A TLS server that answers the client's handshake PING and the first command, then
    // stops reading: what TLS encrypted and the kernel did not take waits in the client.
    const sockets = new Set();
    const stopper = tls.createServer({ cert: certs.servers.good.cert, key: certs.servers.good.key }, (socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      let answered = 0;
      const onData = (chunk) => {
        for (const byte of chunk) {
          if (byte === 0x2a && answered < 2) {
            socket.write('+PONG\r\n');
            answered += 1;
          }
        }
        if (answered >= 2) {
          socket.off('data', onData);
          socket.pause();
        }
      };
      socket.on('data', onData);
    });
    await new Promise((resolve) => stopper.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => stopper.close(resolve));
    });
    const c = tlsClient(stopper.address().port, { maxQueueBytes: 1024 * 1024, commandTimeout: 60000 });
    await expect(c.call('PING')).resolves.toBe('PONG');
    const value = Buffer.alloc(64 * 1024, 'v');
    const calls = Array.from({ length: 200 }, (_, i) => c.call('SET', `big:${i}`, value).then(() => 'ok', (e) => e));
    const results = await Promise.all(calls.map((p) => Promise.race([p, sleep(1000).then(() => 'waiting')])));
    const refused = results.filter((r) => r instanceof Error);
    // About 1 MiB of 64 KiB commands (plus what the kernel took) is accepted; the rest fail at once.
    expect(refused.length).toBeGreaterThan(150);
    expect(refused[0].code).toBe('ERR_QUEUE_FULL');
    expect(refused[0].message).toMatch(/maxQueueBytes 1048576/);
    c.disconnect();
    await Promise.all(calls);
  });
});

describe('through the fault proxy', () => {
  let proxy;
  beforeAll(async () => {
    proxy = await createProxy({ port: server.port });
  });
  afterEach(() => proxy.release().delay(0));
  afterAll(() => proxy.close());

  test('a held reply: ETIMEDOUT at commandTimeout; the replies after it stay with their callers', async () => {
    await witness.mset('a', 'value-a', 'b', 'value-b', 'c', 'value-c');
    const c = tlsClient(proxy.port, { commandTimeout: 500, breaker: false });
    await c.call('PING');
    proxy.hold('toClient');
    const err = await c.get('a').catch((e) => e);
    expect(err).toBeInstanceOf(errors.CommandTimeoutError);
    expect(err.code).toBe('ETIMEDOUT');
    const b = c.get('b');
    const cc = c.get('c');
    proxy.release('toClient');
    await expect(b).resolves.toBe('value-b');
    await expect(cc).resolves.toBe('value-c');
    await expect(c.get('a')).resolves.toBe('value-a');
  });

  test('a reset (RST) with commands in flight: ERR_OUTCOME_UNKNOWN, then the client reconnects', async () => {
    const c = tlsClient(proxy.port, { commandTimeout: 20000 });
    await c.call('SET', 'n', '0');
    proxy.hold('toClient');
    const pending = Array.from({ length: 10 }, () => c.call('INCR', 'n'));
    await waitFor(async () => (await witness.get('n')) === '10', { what: 'the INCRs to run' });
    proxy.reset();
    proxy.release();
    for (const r of await Promise.allSettled(pending)) {
      expect(r.status).toBe('rejected');
      expect(r.reason.code).toBe('ERR_OUTCOME_UNKNOWN');
    }
    await waitFor(async () => (await outcome(c.call('PING'))).ok, { what: 'the client to reconnect' });
    await expect(c.get('n')).resolves.toBe('10');
  });
});

describe('connections cut without close_notify', () => {
  let proxy;
  beforeEach(async () => {
    proxy = await createTlsProxy({ port: server.port });
    cleanups.push(() => proxy.close());
  });

  test('cut in the middle of a large reply: ERR_OUTCOME_UNKNOWN, then the client reconnects and works', async () => {
    const big = crypto.randomBytes(8 * 1024 * 1024);
    await witness.set('big', big);
    const c = tlsClient(proxy.port, { commandTimeout: 20000 });
    await c.call('PING');
    const before = proxy.stats.toClient.bytes;
    proxy.cutAfter(1024 * 1024);
    const err = await c.getBuffer('big').catch((e) => e);
    expect(err).toBeInstanceOf(errors.OutcomeUnknownError);
    expect(err.code).toBe('ERR_OUTCOME_UNKNOWN');
    // The cut came in the middle of the reply, not before or after it.
    const forwarded = proxy.stats.toClient.bytes - before;
    expect(forwarded).toBeGreaterThan(0);
    expect(forwarded).toBeLessThan(big.length);
    await waitFor(async () => (await outcome(c.call('PING'))).ok, { what: 'the client to reconnect' });
    expect(proxy.accepted).toBeGreaterThanOrEqual(2);
    await expect(c.set('after-cut', 'ok')).resolves.toBe('OK');
    const again = await c.getBuffer('big');
    expect(again.equals(big)).toBe(true);
  });

  test('an idle connection closed by the peer without close_notify: the client reconnects', async () => {
    const c = tlsClient(proxy.port);
    const closes = [];
    c.on('close', () => closes.push(Date.now()));
    await expect(c.call('PING')).resolves.toBe('PONG');
    expect(proxy.accepted).toBe(1);
    proxy.cut();
    await waitFor(() => closes.length > 0, { what: "the 'close' event" });
    await waitFor(async () => (await outcome(c.call('PING'))).ok, { what: 'the client to reconnect' });
    expect(proxy.accepted).toBe(2);
    await expect(c.set('k', 'v')).resolves.toBe('OK');
    await expect(witness.get('k')).resolves.toBe('v');
  });
});

describe('TLS records split into 1-byte pieces', () => {
  test('the handshake, SET and GET work when every byte arrives alone', async () => {
    const splitter = await createTlsProxy({ port: server.port, chunkBytes: 1 });
    cleanups.push(() => splitter.close());
    const c = tlsClient(splitter.port, { commandTimeout: 20000, breaker: false });
    const value = crypto.randomBytes(6000).toString('base64');
    await expect(c.set('split', value)).resolves.toBe('OK');
    await expect(c.get('split')).resolves.toBe(value);
    await expect(c.call('PING')).resolves.toBe('PONG');
    // Every piece forwarded was one byte, in both directions, and there were many.
    expect(splitter.stats.toClient.pieces).toBe(splitter.stats.toClient.bytes);
    expect(splitter.stats.toServer.pieces).toBe(splitter.stats.toServer.bytes);
    expect(splitter.stats.toClient.bytes).toBeGreaterThan(value.length);
    await expect(witness.get('split')).resolves.toBe(value);
  });
});

describe('TLS records split at odd places', () => {
  test('2 MB each way in 1000-byte pieces, byte for byte', async () => {
    const splitter = await createTlsProxy({ port: server.port, chunkBytes: 1000 });
    cleanups.push(() => splitter.close());
    const c = tlsClient(splitter.port, { commandTimeout: 30000, breaker: false });
    const value = crypto.randomBytes(2 * 1024 * 1024);
    await expect(c.set('split:big', value)).resolves.toBe('OK');
    const back = await c.getBuffer('split:big');
    expect(back.equals(value)).toBe(true);
    expect(splitter.stats.toClient.pieces).toBeGreaterThan(2000);
  });
});

describe('the server closes the session', () => {
  test('CLIENT KILL (the server ends the TLS session): the client reconnects', async () => {
    const c = tlsClient(server.port);
    const id = await c.call('CLIENT', 'ID');
    expect(await witness.client('KILL', 'ID', String(id))).toBe(1);
    await waitFor(async () => (await outcome(c.call('PING'))).ok, { what: 'the client to reconnect' });
    expect(await c.call('CLIENT', 'ID')).not.toBe(id);
    expect(c.status().connectionsOpened).toBe(2);
  });
});

describe('the server goes away', () => {
  test('killed and restarted on the same port: the client reconnects over TLS', async () => {
    let own = await startTlsRedis({ certs });
    const { port, dir } = own;
    try {
      const c = tlsClient(port);
      await expect(c.set('k', 'before')).resolves.toBe('OK');
      await own.kill();
      const down = await c.call('PING').catch((e) => e);
      expect(down).toBeInstanceOf(Error);
      own = await startTlsRedis({ certs, port, dir });
      await waitFor(async () => (await outcome(c.call('PING'))).ok, { what: 'the client to reconnect' });
      await expect(c.set('k', 'after')).resolves.toBe('OK');
      await expect(c.get('k')).resolves.toBe('after');
      expect(c.status()).toMatchObject({ state: 'ready', ready: true });
    } finally {
      await own.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('pub/sub over TLS renews its subscriptions after a restart and reports the gap', async () => {
    let own = await startTlsRedis({ certs });
    const { port, dir } = own;
    try {
      const c = tlsClient(port);
      const got = [];
      const gaps = [];
      c.on('subscriptionGap', (gap) => gaps.push(gap));
      await c.subscribe('tls-renew', (message) => got.push(message));
      const publisher = tlsClient(port);
      await publisher.call('PUBLISH', 'tls-renew', 'before');
      await waitFor(() => got.includes('before'), { what: 'the first message' });
      await own.kill();
      own = await startTlsRedis({ certs, port, dir });
      await waitFor(() => gaps.length > 0, { what: 'subscriptionGap' });
      expect(gaps[0].channels).toContain('tls-renew');
      await waitFor(async () => (await outcome(publisher.call('PUBLISH', 'tls-renew', 'after'))).value === 1, {
        what: 'a subscriber again',
      });
      await waitFor(() => got.includes('after'), { what: 'a message after the restart' });
      await c.unsubscribe();
    } finally {
      await own.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('restarted with an expired certificate: every reconnect verifies (CERT_HAS_EXPIRED), then a good one is accepted', async () => {
    let own = await startTlsRedis({ certs });
    const { port, dir } = own;
    try {
      const c = client({ url: `rediss://localhost:${port}`, tls: { ca: certs.ca.cert } });
      await expect(c.call('PING')).resolves.toBe('PONG');
      await own.stop({ keepDir: true });
      own = await startTlsRedis({ certs, port, dir, serverCert: 'expired' });
      const err = await waitFor(
        async () => {
          const r = await outcome(c.call('PING'));
          if (r.ok) throw new Error('PING succeeded against the expired certificate');
          return r.error.code === 'CERT_HAS_EXPIRED' ? r.error : null;
        },
        { what: 'CERT_HAS_EXPIRED on the reconnect' },
      );
      expect(err).toBeInstanceOf(errors.TlsError);
      await own.stop({ keepDir: true });
      own = await startTlsRedis({ certs, port, dir });
      await waitFor(async () => (await outcome(c.call('PING'))).ok, { what: 'the client to reconnect' });
    } finally {
      await own.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('quit()', () => {
  test('answers the commands in flight over TLS and resolves; later calls are refused', async () => {
    const c = tlsClient(server.port);
    await c.call('PING');
    const pending = Array.from({ length: 100 }, (_, i) => c.call('SET', `q:${i}`, String(i)));
    const quit = await outcome(c.quit());
    expect(quit.ok).toBe(true);
    const results = await Promise.all(pending);
    expect(results.every((r) => r === 'OK')).toBe(true);
    expect(await witness.get('q:99')).toBe('99');
    const after = await c.call('PING').catch((e) => e);
    expect(after).toBeInstanceOf(errors.ClientClosedError);
  });
});
