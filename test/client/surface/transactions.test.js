'use strict';
// client.multi(): MULTI, the queued commands and EXEC leave as one unit, so under a load of
// other callers' commands issued in the same turns every transaction and every caller gets
// exactly its own replies. What Redis says about a transaction comes back as it said it: a
// command refused at queue time aborts it (EXECABORT, with the reasons in previousErrors),
// an error inside EXEC is an Error element among the results. The ioredis shapes work: the
// array form, exec(callback), discard(), an empty transaction.
const { createCache } = require('../../../lib/cache');
const { ReplyError } = require('../../../lib/errors');
const { clientSuite } = require('../../helpers/client-suite');
const { rawCommand } = require('../../helpers/raw-redis');
const { turns } = require('../../helpers/async');

const suite = clientSuite({ proxy: true, defaults: { logger: false } });
const open = (options) => suite.open({ url: suite.db.url, ...options });
const openProxied = (options) => suite.open({ url: `${suite.proxy.url}/${suite.db.db}`, ...options });

test('200 transactions among 5,000 cacheSet / cacheGet and client.get calls of the same ticks: every caller gets exactly its own value', async () => {
  // No breaker: a busy host must not turn a read into a fallback miss; pairing is the point.
  const client = open({ breaker: false });
  const cache = createCache({ client });
  const PAIRS = 2500;
  await rawCommand(suite.db.raw, 'MSET', ...Array.from({ length: PAIRS }, (_, i) => [`r:${i}`, `read-value:${i}`]).flat());
  await client.call('PING');

  const calls = [];
  const expectOf = [];
  let tx = 0;
  for (let i = 0; i < PAIRS; i++) {
    // A unique key per call: a value that belongs to another caller cannot pass for its own.
    calls.push(cache.cacheSet(`w:${i}`, `written-value:${i}`, 60));
    expectOf.push(true);
    calls.push(cache.cacheGet(`r:${i}`));
    expectOf.push(`read-value:${i}`);
    if (i % 5 === 0) {
      calls.push(client.get(`r:${(i * 7) % PAIRS}`));
      expectOf.push(`read-value:${(i * 7) % PAIRS}`);
    }
    if (i % 12 === 6 && tx < 200) {
      const k = `t:${tx++}`;
      calls.push(client.multi().call('SET', k, `tx-value:${k}`).call('GET', k).exec());
      expectOf.push(['OK', `tx-value:${k}`]);
    }
    // A new turn every 500 pairs: transactions go out among several writes, and some while
    // replies of the earlier ones are being read.
    if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
  }
  expect(tx).toBe(200);

  const results = await Promise.all(calls);
  const wrong = [];
  results.forEach((r, n) => {
    if (JSON.stringify(r) !== JSON.stringify(expectOf[n])) wrong.push({ n, got: r, want: expectOf[n] });
  });
  expect(wrong.slice(0, 5)).toEqual([]);
  expect(JSON.stringify(results)).not.toContain('QUEUED');
  // The writes landed under their own keys.
  const written = await rawCommand(suite.db.raw, 'MGET', ...Array.from({ length: PAIRS }, (_, i) => `w:${i}`));
  expect(written).toEqual(Array.from({ length: PAIRS }, (_, i) => `written-value:${i}`));
  const txValues = await rawCommand(suite.db.raw, 'MGET', ...Array.from({ length: 200 }, (_, i) => `t:${i}`));
  expect(txValues).toEqual(Array.from({ length: 200 }, (_, i) => `tx-value:t:${i}`));
});

test('a command Redis refuses to queue aborts the transaction: exec() rejects EXECABORT with previousErrors, nothing ran', async () => {
  const client = open();
  const err = await client.multi()
    .call('SET', 'aborted', 'x')
    .call('SET', 'wrong-arity') // refused by Redis when queued
    .call('INCR', 'aborted-count')
    .exec()
    .then(() => null, (e) => e);
  expect(err).toBeInstanceOf(ReplyError);
  expect(err.code).toBe('EXECABORT');
  expect(Array.isArray(err.previousErrors)).toBe(true);
  expect(err.previousErrors).toHaveLength(1);
  expect(err.previousErrors[0]).toBeInstanceOf(Error);
  expect(err.previousErrors[0].message).toMatch(/wrong number of arguments/i);
  expect(await rawCommand(suite.db.raw, 'EXISTS', 'aborted', 'aborted-count')).toBe(0);
  // The connection is out of the transaction: the next caller gets a plain reply.
  await expect(client.call('SET', 'next', '1')).resolves.toBe('OK');
});

test('an error inside EXEC (WRONGTYPE) is an Error element; the other commands ran and their results are there', async () => {
  const client = open();
  await rawCommand(suite.db.raw, 'SET', 'a-string', 'text');
  const results = await client.multi()
    .call('INCR', 'counter')
    .call('LPUSH', 'a-string', 'x')
    .call('GET', 'a-string')
    .call('INCR', 'counter')
    .exec();
  expect(results).toHaveLength(4);
  expect(results[0]).toBe(1);
  expect(results[1]).toBeInstanceOf(Error);
  expect(results[1].code).toBe('WRONGTYPE');
  expect(results[2]).toBe('text');
  expect(results[3]).toBe(2);
});

test('an empty multi resolves [] and sends nothing; discard() resolves OK and sends nothing', async () => {
  const client = openProxied();
  await client.call('PING');
  await turns();
  const before = suite.proxy.stats.toServer.bytes;
  await expect(client.multi().exec()).resolves.toEqual([]);
  const m = client.multi().call('INCR', 'discarded').call('SET', 'discarded-too', '1');
  expect(m.length).toBe(2);
  await expect(m.discard()).resolves.toBe('OK');
  expect(m.length).toBe(0);
  await turns();
  expect(suite.proxy.stats.toServer.bytes).toBe(before);
  expect(await rawCommand(suite.db.raw, 'EXISTS', 'discarded', 'discarded-too')).toBe(0);
});

test('multi([[name, ...args], …]) queues the array form first; more can be chained', async () => {
  const client = open();
  const results = await client.multi([['set', 'a', '1'], ['incrby', 'a', 41], ['GET', 'a']]).call('APPEND', 'a', '!').exec();
  expect(results).toEqual(['OK', 42, '42', 3]);
  expect(await rawCommand(suite.db.raw, 'GET', 'a')).toBe('42!');
  expect(() => client.multi('SET a 1')).toThrow(TypeError);
  expect(() => client.multi([[]])).toThrow(TypeError);
});

test('exec(callback) calls back once with (null, results), or with the error', async () => {
  const client = open();
  const ok = await new Promise((resolve) => {
    const seen = [];
    client.multi().call('SET', 'cb', 'v').call('GET', 'cb').exec((err, res) => {
      seen.push([err, res]);
      setImmediate(() => resolve(seen));
    });
  });
  expect(ok).toEqual([[null, ['OK', 'v']]]);
  const failed = await new Promise((resolve) => {
    client.multi().call('SET', 'only-key').exec((err, res) => resolve([err, res]));
  });
  expect(failed[0]).toBeInstanceOf(Error);
  expect(failed[0].code).toBe('EXECABORT');
  expect(failed[1]).toBeUndefined();
});

test('callBuffer in a transaction gives that command Buffers; the others keep strings', async () => {
  const client = open();
  const bytes = Buffer.from([0, 0xff, 0x80, 0x41]);
  const results = await client.multi().call('SET', 'bin', bytes).callBuffer('GET', 'bin').call('SET', 'txt', 'é').call('GET', 'txt').exec();
  expect(results[0]).toBe('OK');
  expect(Buffer.isBuffer(results[1])).toBe(true);
  expect(results[1].equals(bytes)).toBe(true);
  expect(results[3]).toBe('é');
});

test('a blocking command inside a transaction does not block (Redis runs it as a non-blocking pop): allowed, answered at once', async () => {
  const client = open();
  await rawCommand(suite.db.raw, 'RPUSH', 'list', 'x');
  const started = Date.now();
  const results = await client.multi().call('BLPOP', 'list', '5').call('BLPOP', 'list', '5').exec();
  expect(results).toEqual([['list', 'x'], null]);
  expect(Date.now() - started).toBeLessThan(4000); // not the 5 s the empty BLPOP would wait outside MULTI
});
