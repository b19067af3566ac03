'use strict';
// client.pipeline(): the commands are queued as one unit and exec() resolves ioredis's
// shape, one [error, result] pair per command in order, an error reply as the pair's error.
// Other callers' commands of the same turn still get their own replies. Lost after it was
// written, every pair not yet answered carries ERR_OUTCOME_UNKNOWN and nothing is resent
// (the answered ones keep their results). A blocking command
// is refused when it is queued: it would hold every command behind it on the shared
// connection.
const { CommandRefusedError, OutcomeUnknownError, ReplyError } = require('../../../lib/errors');
const { createCache } = require('../../../lib/cache');
const { clientSuite } = require('../../helpers/client-suite');
const { rawCommand } = require('../../helpers/raw-redis');
const { waitFor, turns, outcome } = require('../../helpers/async');
const { refusalOf } = require('../../helpers/surface');

const suite = clientSuite({ proxy: true, defaults: { logger: false } });
const open = (options) => suite.open({ url: suite.db.url, ...options });
const openProxied = (options) => suite.open({ url: `${suite.proxy.url}/${suite.db.db}`, reconnectBaseDelay: 10, reconnectMaxDelay: 50, ...options });

test('exec() resolves one [error, result] pair per command, in order, with error replies as the pair\'s error', async () => {
  const client = open();
  await rawCommand(suite.db.raw, 'SET', 'text', 'abc');
  const pairs = await client.pipeline()
    .call('SET', 'a', '1')
    .call('LPUSH', 'text', 'x')
    .call('INCR', 'a')
    .call('GET', 'missing')
    .call('NOSUCHCOMMAND')
    .call('GET', 'a')
    .exec();
  expect(pairs).toHaveLength(6);
  expect(pairs[0]).toEqual([null, 'OK']);
  expect(pairs[1][0]).toBeInstanceOf(ReplyError);
  expect(pairs[1][0].code).toBe('WRONGTYPE');
  expect(pairs[1][1]).toBeUndefined();
  expect(pairs[2]).toEqual([null, 2]);
  expect(pairs[3]).toEqual([null, null]);
  expect(pairs[4][0]).toBeInstanceOf(ReplyError);
  expect(pairs[4][0].code).toBe('ERR');
  expect(pairs[5]).toEqual([null, '2']);
});

test('the array form, exec(callback), and an empty pipeline', async () => {
  const client = open();
  const viaCallback = await new Promise((resolve) => {
    client.pipeline([['set', 'k', 'v'], ['get', 'k']]).call('STRLEN', 'k').exec((err, res) => resolve([err, res]));
  });
  expect(viaCallback).toEqual([null, [[null, 'OK'], [null, 'v'], [null, 1]]]);
  await expect(client.pipeline().exec()).resolves.toEqual([]);
});

test('a pipeline of one command resolves one pair, whatever the shape of its reply', async () => {
  const client = open();
  await rawCommand(suite.db.raw, 'MSET', 'a', '1', 'b', '2');
  await expect(client.pipeline().call('SET', 'one', '1').exec()).resolves.toEqual([[null, 'OK']]);
  await expect(client.pipeline().call('MGET', 'a', 'b').exec()).resolves.toEqual([[null, ['1', '2']]]);
  await expect(client.pipeline([['incr', 'n']]).exec()).resolves.toEqual([[null, 1]]);
  const [[err, value]] = await client.pipeline().call('LPUSH', 'a', 'x').exec();
  expect(err).toBeInstanceOf(ReplyError);
  expect(err.code).toBe('WRONGTYPE');
  expect(value).toBeUndefined();
});

test('a 1,000-command pipeline resolves 1,000 pairs, each its own command\'s reply', async () => {
  const client = open();
  const p = client.pipeline();
  for (let i = 0; i < 1000; i++) {
    if (i % 2 === 0) p.call('SET', `big:${i}`, `value:${i}`);
    else p.call('GET', `big:${i - 1}`);
  }
  expect(p.length).toBe(1000);
  const pairs = await p.exec();
  expect(pairs).toHaveLength(1000);
  pairs.forEach(([err, value], i) => {
    expect(err).toBeNull();
    expect(value).toBe(i % 2 === 0 ? 'OK' : `value:${i - 1}`);
  });
});

test('other callers\' commands of the same turn get their own replies, before, among and after pipelines', async () => {
  const client = open({ breaker: false });
  const cache = createCache({ client });
  await rawCommand(suite.db.raw, 'MSET', ...Array.from({ length: 300 }, (_, i) => [`o:${i}`, `own:${i}`]).flat());
  await client.call('PING');
  const singles = [];
  const pipes = [];
  for (let i = 0; i < 300; i++) {
    singles.push({ want: `own:${i}`, p: i % 2 ? cache.cacheGet(`o:${i}`) : client.get(`o:${i}`) });
    if (i % 30 === 15) {
      pipes.push({ i, p: client.pipeline().call('ECHO', `pipe:${i}:a`).call('GET', `o:${i}`).call('ECHO', `pipe:${i}:b`).exec() });
    }
  }
  for (const s of singles) expect(await s.p).toBe(s.want);
  for (const { i, p } of pipes) {
    expect(await p).toEqual([[null, `pipe:${i}:a`], [null, `own:${i}`], [null, `pipe:${i}:b`]]);
  }
});

test('connection cut after the pipeline was written: every pair carries ERR_OUTCOME_UNKNOWN, and nothing is resent', async () => {
  const client = openProxied();
  await client.call('PING');
  suite.proxy.hold('toClient');
  const pending = outcome(client.pipeline().call('INCR', 'cut-counter').call('GET', 'cut-counter').call('SET', 'cut-mark', '1').exec());
  await waitFor(async () => (await rawCommand(suite.db.raw, 'GET', 'cut-mark')) === '1', { what: 'the pipeline to run' });
  suite.proxy.cut();
  suite.proxy.release();
  const result = await pending;
  // exec() of a pipeline resolves its pairs even when every command failed.
  expect(result.ok).toBe(true);
  expect(result.value).toHaveLength(3);
  for (const [err, value] of result.value) {
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect(err.code).toBe('ERR_OUTCOME_UNKNOWN');
    expect(value).toBeUndefined();
  }
  await waitFor(async () => (await outcome(client.call('PING'))).ok, { what: 'the client to answer again' });
  await expect(client.call('GET', 'cut-counter')).resolves.toBe('1');
  await turns();
  expect(await rawCommand(suite.db.raw, 'GET', 'cut-counter')).toBe('1');
});

test.each([
  ['BLPOP', ['q', '1']],
  ['brpop', ['q', '1']],
  ['BLMOVE', ['a', 'b', 'LEFT', 'RIGHT', '1']],
  ['BZPOPMIN', ['z', '1']],
  ['XREAD', ['BLOCK', '100', 'STREAMS', 's', '$']],
])('a blocking command (%s) in a pipeline is refused when it is queued; nothing is sent', async (name, args) => {
  const client = openProxied();
  await client.call('PING');
  await turns();
  const before = suite.proxy.stats.toServer.bytes;
  const p = client.pipeline().call('SET', 'before-blocking', '1');
  const err = await refusalOf(() => p.call(name, ...args));
  expect(err).toBeInstanceOf(CommandRefusedError);
  expect(err.code).toBe('ERR_COMMAND_REFUSED');
  expect(err.message).toContain(name.toUpperCase());
  await turns();
  expect(suite.proxy.stats.toServer.bytes).toBe(before);
  // What was queued before it is still there, and the builder goes on.
  await expect(p.call('GET', 'before-blocking').exec()).resolves.toEqual([[null, 'OK'], [null, '1']]);
});

test('connection lost after some of the pipeline was answered: those keep their results, the rest carry ERR_OUTCOME_UNKNOWN', async () => {
  const { commandServer } = require('../../helpers/fake-servers');
  // Answers the first two commands of each connection, then drops it before the third.
  const server = await commandServer((argv, conn) => {
    conn.count = (conn.count || 0) + 1;
    if (conn.count === 1) return '+OK\r\n';
    if (conn.count === 2) return ':7\r\n';
    conn.socket.destroy();
    return null;
  });
  try {
    const client = suite.open({ url: server.url });
    const pairs = await client.pipeline().set('a', '1').incr('n').get('a').exec();
    expect(pairs[0]).toEqual([null, 'OK']);
    expect(pairs[1]).toEqual([null, 7]);
    expect(pairs[2][0]).toBeInstanceOf(OutcomeUnknownError);
    expect(pairs[2][0].code).toBe('ERR_OUTCOME_UNKNOWN');
  } finally {
    await server.close();
  }
});

test('a pipeline answered with LOADING counts as a failure for the breaker, as a single command would', async () => {
  const { commandServer } = require('../../helpers/fake-servers');
  const server = await commandServer(() => '-LOADING Redis is loading the dataset in memory\r\n');
  try {
    const client = suite.open({ url: server.url, breaker: { failureThreshold: 2, failureRatePercent: 0 } });
    client.on('error', () => {});
    await client.pipeline().get('a').get('b').exec();
    expect(client.breakerState).toBe('closed');
    const pairs = await client.pipeline().get('a').exec();
    expect(pairs[0][0].code).toBe('LOADING');
    expect(client.breakerState).toBe('open');
    expect(client.status().lastError.code).toBe('LOADING');
  } finally {
    await server.close();
  }
});
