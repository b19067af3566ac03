'use strict';
// The two production bugs the client surface fixes, replayed as an ioredis user hit them:
// (a) `call('MULTI')` on the shared, pipelined connection put it in transaction state, so
// the cacheGet / cacheSet of other requests issued meanwhile were answered "QUEUED"; now
// call() refuses MULTI naming client.multi(), whose MULTI … EXEC goes as one unit nothing
// can come between. (b) `call('SUBSCRIBE', …)` turned the shared connection into a
// subscriber, so every later reply was a pub/sub message; now call() refuses it naming
// client.subscribe(), which runs on a connection of its own.
const { createCache } = require('../../../lib/cache');
const { CommandRefusedError } = require('../../../lib/errors');
const { clientSuite } = require('../../helpers/client-suite');
const { rawCommand } = require('../../helpers/raw-redis');
const { waitFor } = require('../../helpers/async');
const { refusalOf, clientList } = require('../../helpers/surface');

const suite = clientSuite({ defaults: { logger: false } });
const open = (options) => suite.open({ url: suite.db.url, ...options });
// Channels are server-wide: this suite's carry its database number.
const channel = (name) => `surface-bugs:${suite.db.db}:${name}`;

describe('(a) MULTI on the shared connection', () => {
  test("call('MULTI') is refused with ERR_COMMAND_REFUSED naming client.multi(), and the connection stays out of transaction state", async () => {
    const client = open();
    const cache = createCache({ client });
    for (const name of ['MULTI', 'multi']) {
      const err = await refusalOf(() => client.call(name));
      expect(err).toBeInstanceOf(CommandRefusedError);
      expect(err.code).toBe('ERR_COMMAND_REFUSED');
      expect(err.message).toMatch(/client\.multi\(\)/);
    }
    // What the ioredis habit did next: a SET meant for the transaction, then other requests'
    // cache calls, then EXEC. None of them may be answered "QUEUED".
    const set = client.call('SET', 'habit', '1');
    const cached = cache.cacheSet('other-request', 'theirs', 60);
    const read = cache.cacheGet('other-request');
    const exec = await refusalOf(() => client.call('EXEC'));
    expect(exec.code).toBe('ERR_COMMAND_REFUSED');
    await expect(set).resolves.toBe('OK');
    await expect(cached).resolves.toBe(true);
    await expect(read).resolves.toBe('theirs');
    expect(await rawCommand(suite.db.raw, 'GET', 'habit')).toBe('1');
    // Redis itself says the shared connection holds no transaction.
    const id = await client.call('CLIENT', 'ID');
    const mine = (await clientList(suite.db.raw)).find((c) => Number(c.id) === id);
    expect(mine.multi).toBe('-1');
  });

  test('a multi() started among cacheGet / cacheSet calls of the same ticks: no caller sees QUEUED, each gets its own value', async () => {
    // No breaker: a busy host must not turn a read into a fallback miss; pairing is the point.
    const client = open({ breaker: false });
    const cache = createCache({ client });
    const N = 600;
    await rawCommand(suite.db.raw, 'MSET', ...Array.from({ length: N }, (_, i) => [`seed:${i}`, `seed-value:${i}`]).flat());
    await client.call('PING');

    const gets = [];
    const sets = [];
    const txs = [];
    for (let tick = 0; tick < 3; tick++) {
      for (let i = 0; i < N; i++) {
        gets.push({ i, p: cache.cacheGet(`seed:${i}`) });
        if (i % 3 === 0) sets.push({ i, tick, p: cache.cacheSet(`written:${tick}:${i}`, `mine:${tick}:${i}`, 60) });
        // The transaction goes out between the other requests' commands of this turn.
        if (i % 100 === 50) {
          const k = `tx:${tick}:${i}`;
          txs.push({ k, p: client.multi().call('SET', k, `tx-value:${k}`).call('INCR', 'tx-count').call('GET', k).exec() });
        }
      }
      await new Promise((resolve) => setImmediate(resolve));
    }

    const got = await Promise.all(gets.map((g) => g.p));
    got.forEach((value, n) => expect(value).toBe(`seed-value:${gets[n].i}`));
    expect(got).not.toContain('QUEUED');
    expect(await Promise.all(sets.map((s) => s.p))).toEqual(sets.map(() => true));
    const results = await Promise.all(txs.map((t) => t.p));
    results.forEach((r, n) => {
      expect(r[0]).toBe('OK');
      expect(typeof r[1]).toBe('number');
      expect(r[2]).toBe(`tx-value:${txs[n].k}`);
    });
    // Every INCR ran inside its own transaction: the counts 1..n each came back once.
    expect(results.map((r) => r[1]).sort((a, b) => a - b)).toEqual(txs.map((_, n) => n + 1));
    for (const s of sets.slice(0, 50)) {
      expect(await rawCommand(suite.db.raw, 'GET', `written:${s.tick}:${s.i}`)).toBe(`mine:${s.tick}:${s.i}`);
    }
  });
});

describe('(b) SUBSCRIBE on the shared connection', () => {
  test("call('SUBSCRIBE', …) is refused with ERR_COMMAND_REFUSED naming client.subscribe", async () => {
    const client = open();
    for (const name of ['SUBSCRIBE', 'subscribe']) {
      const err = await refusalOf(() => client.call(name, channel('refused')));
      expect(err).toBeInstanceOf(CommandRefusedError);
      expect(err.code).toBe('ERR_COMMAND_REFUSED');
      expect(err.message).toMatch(/client\.subscribe\(/);
    }
    await expect(client.call('PING')).resolves.toBe('PONG');
  });

  test('after client.subscribe(), the shared client keeps serving cacheGet / cacheSet and status().ready stays truthful', async () => {
    const client = open();
    const cache = createCache({ client });
    // Nothing opened the shared connection yet: it is not ready, whatever subscribe() did.
    const messages = [];
    await client.subscribe(channel('news'), (message, from) => messages.push([message, from]));
    expect(client.status().ready).toBe(false);

    await expect(cache.cacheSet('after-subscribe', 'still a cache', 60)).resolves.toBe(true);
    const reads = await Promise.all(Array.from({ length: 200 }, () => cache.cacheGet('after-subscribe')));
    expect(reads).toEqual(reads.map(() => 'still a cache'));
    await expect(client.call('PUBLISH', channel('news'), 'hello')).resolves.toBe(1);
    await waitFor(() => messages.length === 1, { what: 'the message' });
    expect(messages).toEqual([['hello', channel('news')]]);
    expect(client.status()).toMatchObject({ state: 'ready', ready: true });
    await expect(cache.cacheGet('after-subscribe')).resolves.toBe('still a cache');

    // Redis's view: the shared connection is not subscribed to anything; another one is.
    const id = await client.call('CLIENT', 'ID');
    const conns = await clientList(suite.db.raw);
    expect(conns.find((c) => Number(c.id) === id).sub).toBe('0');
    expect(await rawCommand(suite.db.raw, 'PUBSUB', 'NUMSUB', channel('news'))).toEqual([channel('news'), 1]);
  });
});
