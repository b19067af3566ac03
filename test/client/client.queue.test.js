'use strict';
// Proves the bounded queue and the two ways of closing: past maxQueue a call fails fast
// with ERR_QUEUE_FULL and is never sent; quit() waits for the replies already owed;
// disconnect() settles everything at once; after either, calls reject ERR_CLIENT_CLOSED;
// and no promise is ever left pending.
const { createClient } = require('../../lib/redis');
const errors = require('../../lib/errors');
const { createProxy } = require('../helpers/proxy');
const { suiteDatabase } = require('../helpers/suite-db');
const { rawCommand } = require('../helpers/raw-redis');
const { track, waitFor, sleep, turns } = require('../helpers/async');

let db;
let proxy;
const clients = [];

function client(options) {
  const c = createClient(options);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  db = await suiteDatabase();
  proxy = await createProxy({ port: db.port });
});

beforeEach(async () => {
  await db.flush();
  proxy.release().delay(0);
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.disconnect()));
  await proxy.close();
});

describe('maxQueue', () => {
  test('calls past the bound reject with QueueFullError ERR_QUEUE_FULL, first, and are never sent', async () => {
    const c = client({ url: db.url, maxQueue: 10 });
    const order = [];
    const calls = Array.from({ length: 25 }, (_, i) =>
      c.call('SET', `q:${i}`, 'v').then(
        (v) => (order.push(`ok:${i}`), { ok: true, v }),
        (e) => (order.push(`err:${i}`), { ok: false, e }),
      ),
    );
    const results = await Promise.all(calls);
    const rejected = results.filter((r) => !r.ok);
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    expect(rejected).toHaveLength(15);
    for (const r of rejected) {
      expect(r.e).toBeInstanceOf(errors.QueueFullError);
      expect(r.e.code).toBe('ERR_QUEUE_FULL');
    }
    // The first ten were accepted; the overflow failed before any reply came back.
    expect(results.slice(0, 10).every((r) => r.ok)).toBe(true);
    expect(order.slice(0, 15).every((o) => o.startsWith('err:'))).toBe(true);
    expect(await rawCommand(db.raw, 'DBSIZE')).toBe(10);
    expect(await rawCommand(db.raw, 'EXISTS', 'q:10', 'q:24')).toBe(0);
  });

  test('the queue drains: once the first commands are sent, new calls are accepted again', async () => {
    const c = client({ url: db.url, maxQueue: 5 });
    const first = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => c.call('ECHO', `a${i}`)));
    expect(first.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    await expect(Promise.all(Array.from({ length: 5 }, (_, i) => c.call('ECHO', `b${i}`)))).resolves.toEqual([
      'b0', 'b1', 'b2', 'b3', 'b4',
    ]);
  });

  test('status() counts queued commands before the connection is up', async () => {
    const c = client({ url: db.url });
    const pending = Array.from({ length: 7 }, () => c.call('PING'));
    expect(c.status().queued).toBe(7);
    await Promise.all(pending);
    expect(c.status()).toMatchObject({ queued: 0, inFlight: 0 });
  });
});

describe('quit()', () => {
  test('waits for the replies owed, then closes; later calls reject ERR_CLIENT_CLOSED', async () => {
    const c = client({ url: `${proxy.url}/${db.db}`, commandTimeout: 10000 });
    await rawCommand(db.raw, 'MSET', 'a', '1', 'b', '2', 'c', '3');
    await c.call('PING');
    proxy.delay(300, 'toClient');
    const order = [];
    const gets = ['a', 'b', 'c'].map((k) => c.get(k).then((v) => (order.push(`get:${k}`), v)));
    const quitting = c.quit().then(() => order.push('quit'));
    await expect(Promise.all(gets)).resolves.toEqual(['1', '2', '3']);
    await quitting;
    expect(order).toEqual(['get:a', 'get:b', 'get:c', 'quit']);
    expect(c.status().state).toBe('closed');
    const err = await c.call('PING').catch((e) => e);
    expect(err).toBeInstanceOf(errors.ClientClosedError);
    expect(err.code).toBe('ERR_CLIENT_CLOSED');
  });

  test('sends the commands queued before it (never connected yet) and their replies arrive', async () => {
    const c = client({ url: db.url });
    const set = c.call('SET', 'queued-before-quit', 'yes');
    const quitting = c.quit();
    await expect(set).resolves.toBe('OK');
    await quitting;
    expect(await rawCommand(db.raw, 'GET', 'queued-before-quit')).toBe('yes');
  });

  test('a second quit() resolves too', async () => {
    const c = client({ url: db.url });
    await c.call('PING');
    await c.quit();
    const again = await c.quit().then(() => 'resolved', (e) => e);
    expect(again).toBe('resolved');
    expect(c.status().state).toBe('closed');
  });
});

describe('disconnect()', () => {
  test('settles every pending command at once, while their replies are still held', async () => {
    const c = client({ url: `${proxy.url}/${db.db}`, commandTimeout: 20000 });
    await c.call('PING');
    proxy.hold('toClient');
    const pending = Array.from({ length: 20 }, (_, i) => track(c.call('ECHO', `m${i}`)));
    await waitFor(() => proxy.stats.toServer.bytes > 0 && c.status().inFlight === 20, {
      what: 'the 20 commands to be written',
    });
    c.disconnect();
    await Promise.all(pending.map((t) => t.promise));
    // The proxy still holds every reply: the settlement came from disconnect().
    expect(proxy.held.toClient).toBe(true);
    for (const t of pending) {
      expect(t.fulfilled).toBe(false);
      expect(['ERR_CLIENT_CLOSED', 'ERR_OUTCOME_UNKNOWN']).toContain(t.error.code);
    }
    expect(c.status().state).toBe('closed');
    await expect(c.call('PING')).rejects.toMatchObject({ code: 'ERR_CLIENT_CLOSED' });
  });

  test('commands queued before the connection is up reject ERR_CLIENT_CLOSED and never run', async () => {
    const c = client({ url: db.url });
    const pending = Array.from({ length: 5 }, (_, i) => c.call('SET', `never:${i}`, 'x'));
    c.disconnect();
    const results = await Promise.allSettled(pending);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(r.reason).toBeInstanceOf(errors.ClientClosedError);
      expect(r.reason.code).toBe('ERR_CLIENT_CLOSED');
    }
    await sleep(100);
    expect(await rawCommand(db.raw, 'DBSIZE')).toBe(0);
  });
});

describe('every promise settles', () => {
  test('a mix of commands across a cut, a hold and a disconnect all settle with a value or a coded error', async () => {
    const c = client({ url: `${proxy.url}/${db.db}`, commandTimeout: 1000, reconnectBaseDelay: 10, reconnectMaxDelay: 50 });
    const all = [];
    const issue = (n) => {
      for (let i = 0; i < n; i++) {
        const k = `mix:${all.length}`;
        all.push(track(i % 3 === 0 ? c.call('INCR', k) : i % 3 === 1 ? c.set(k, 'v', 30) : c.get(k)));
      }
    };
    issue(100);
    await turns(2);
    issue(100);
    proxy.cut();
    issue(100);
    await sleep(100);
    proxy.hold('toClient');
    issue(100);
    await sleep(50);
    c.disconnect();
    issue(10);
    proxy.release();
    await waitFor(() => all.every((t) => t.settled), { what: 'every promise to settle', timeoutMs: 15000 });
    for (const t of all.filter((x) => !x.fulfilled)) {
      expect(t.error).toBeInstanceOf(Error);
      expect(typeof t.error.code).toBe('string');
    }
  });
});
