'use strict';
// Blocking commands (BLPOP, BRPOP, BLMOVE, BLMPOP, BZPOPMIN, XREAD … BLOCK) run on a pool of
// connections of their own, so a BLPOP waiting for data holds none of the shared
// connection's callers. The pool has maxBlockingConnections connections (default 4); more
// calls wait their turn. A blocking command with a timeout of its own that gets no reply
// commandTimeout after it fails with ETIMEDOUT; quit() does not wait for a BLPOP.
const { createCache } = require('../../../lib/cache');
const { clientSuite } = require('../../helpers/client-suite');
const { silentServer } = require('../../helpers/fake-servers');
const { rawCommand } = require('../../helpers/raw-redis');
const { waitFor, turns, track, outcome } = require('../../helpers/async');
const { clientList, connectionsNamed } = require('../../helpers/surface');

const suite = clientSuite({ defaults: { logger: false } });
const open = (options) => suite.open({ url: suite.db.url, ...options });
const blockedOn = async (name, cmd) => (await connectionsNamed(suite.db.raw, name)).filter((c) => c.cmd === cmd);

test('a BLPOP waiting 2 s does not hold 10,000 cacheGets: all of them settle, with their values, while it still waits', async () => {
  // A stall threshold well above a busy host's hiccups: were the BLPOP on the shared
  // connection, the cacheGets behind it would still wait for it, then settle as misses.
  const client = open({ breaker: { stallMs: 1000 } });
  const cache = createCache({ client });
  await cache.cacheSet('hot', 'value', 60);
  const started = Date.now();
  const blpop = track(client.call('BLPOP', 'empty-list', '2'));
  const gets = [];
  for (let i = 0; i < 10000; i++) gets.push(cache.cacheGet('hot'));
  const values = await Promise.all(gets);
  const getsTookMs = Date.now() - started;
  expect(blpop.settled).toBe(false);
  expect(values.every((v) => v === 'value')).toBe(true);
  expect(getsTookMs).toBeLessThan(1000); // well under the 2 s the BLPOP waits
  await blpop.promise;
  expect(blpop.value).toBeNull();
  expect(Date.now() - started).toBeGreaterThanOrEqual(1900); // it did wait its 2 s, elsewhere
  expect(client.breakerState).toBe('closed');
});

test('BLPOP gets the value another client pushes', async () => {
  const client = open({ name: 'surface-blocking-jobs' });
  const pushed = open();
  const waiting = client.call('BLPOP', 'jobs', '5');
  await waitFor(async () => (await blockedOn('surface-blocking-jobs', 'blpop')).length === 1, { what: 'the BLPOP to wait' });
  await pushed.call('RPUSH', 'jobs', 'job-1');
  await expect(waiting).resolves.toEqual(['jobs', 'job-1']);
});

test.each([
  ['BLPOP', ['l', '5'], 'blpop', ['RPUSH', 'l', 'x'], ['l', 'x']],
  ['BRPOP', ['l', '5'], 'brpop', ['RPUSH', 'l', 'x'], ['l', 'x']],
  ['BLMOVE', ['src', 'dst', 'LEFT', 'RIGHT', '5'], 'blmove', ['RPUSH', 'src', 'x'], 'x'],
  ['BLMPOP', ['5', '1', 'l', 'LEFT'], 'blmpop', ['RPUSH', 'l', 'x'], ['l', ['x']]],
  ['BZPOPMIN', ['z', '5'], 'bzpopmin', ['ZADD', 'z', '1', 'm'], ['z', 'm', '1']],
  ['XREAD', ['BLOCK', '5000', 'STREAMS', 's', '$'], 'xread', ['XADD', 's', '1-1', 'f', 'v'], [['s', [['1-1', ['f', 'v']]]]]],
])('%s runs on a connection of its own; the shared connection answers while it waits', async (name, args, cmd, push, want) => {
  const client = open({ name: `surface-blocking-${cmd}` });
  const sharedId = await client.call('CLIENT', 'ID');
  const waiting = track(client.call(name, ...args));
  await waitFor(async () => (await blockedOn(`surface-blocking-${cmd}`, cmd)).length === 1, { what: `${name} to wait on the server` });
  const [blocked] = await blockedOn(`surface-blocking-${cmd}`, cmd);
  expect(Number(blocked.id)).not.toBe(sharedId);
  await expect(client.call('ECHO', 'not held')).resolves.toBe('not held');
  expect(waiting.settled).toBe(false);
  await rawCommand(suite.db.raw, ...push);
  await waiting.promise;
  expect(waiting.value).toEqual(want);
});

test('more BLPOPs than maxBlockingConnections (default 4) wait their turn, and every one completes with its own value', async () => {
  const name = 'surface-blocking-pool';
  const client = open({ name });
  const calls = Array.from({ length: 10 }, (_, i) => track(client.call('BLPOP', `q:${i}`, '0')));
  await waitFor(async () => (await blockedOn(name, 'blpop')).length === 4, { what: 'four BLPOPs to wait' });
  await turns(10);
  expect((await connectionsNamed(suite.db.raw, name)).length).toBe(4);
  let most = 0;
  for (let i = 0; i < 10; i++) {
    await rawCommand(suite.db.raw, 'RPUSH', `q:${i}`, `v:${i}`);
    most = Math.max(most, (await connectionsNamed(suite.db.raw, name)).length);
  }
  await Promise.all(calls.map((c) => c.promise));
  calls.forEach((c, i) => expect(c.value).toEqual([`q:${i}`, `v:${i}`]));
  expect(most).toBeLessThanOrEqual(4);
});

test('maxBlockingConnections: 2 opens two; beyond maxQueue waiting, a call is refused with ERR_QUEUE_FULL', async () => {
  const name = 'surface-blocking-two';
  const client = open({ name, maxBlockingConnections: 2, maxQueue: 2 });
  const calls = Array.from({ length: 4 }, (_, i) => track(client.call('BLPOP', `b:${i}`, '0')));
  const refused = await outcome(client.call('BLPOP', 'b:refused', '0'));
  expect(refused.ok).toBe(false);
  expect(refused.error.code).toBe('ERR_QUEUE_FULL');
  await waitFor(async () => (await blockedOn(name, 'blpop')).length === 2, { what: 'two BLPOPs to wait' });
  for (let i = 0; i < 4; i++) await rawCommand(suite.db.raw, 'RPUSH', `b:${i}`, `v:${i}`);
  await Promise.all(calls.map((c) => c.promise));
  calls.forEach((c, i) => expect(c.value).toEqual([`b:${i}`, `v:${i}`]));
  expect(await rawCommand(suite.db.raw, 'EXISTS', 'b:refused')).toBe(0);
});

test('on client.isolated(conn), a BLPOP whose own timeout is longer than commandTimeout waits its own timeout', async () => {
  // isolated() is offered for "a series of blocking commands": a BLPOP there must not be cut
  // short by the connection's command deadline (nor read as a stall).
  const client = open({ commandTimeout: 300 });
  const result = await client.isolated(async (conn) => {
    const started = Date.now();
    const popped = await outcome(conn.call('BLPOP', 'isolated-empty', '1'));
    return { popped, tookMs: Date.now() - started };
  });
  expect(result.popped).toEqual({ ok: true, value: null });
  expect(result.tookMs).toBeGreaterThanOrEqual(900); // it waited for its own timeout
});

describe('against a server that never answers', () => {
  let server;
  beforeEach(async () => {
    server = await silentServer();
  });
  afterEach(() => server.close());

  test('BLPOP 1 s rejects ETIMEDOUT once its own timeout and commandTimeout have passed; BLPOP 0 has no guard and still waits', async () => {
    const client = suite.open({ url: server.url, commandTimeout: 300 });
    const started = Date.now();
    const forever = track(client.call('BLPOP', 'q', '0'));
    const bounded = await outcome(client.call('BLPOP', 'q', '1'));
    const tookMs = Date.now() - started;
    expect(bounded.ok).toBe(false);
    expect(bounded.error.code).toBe('ETIMEDOUT');
    expect(bounded.error.message).toMatch(/BLPOP/);
    expect(tookMs).toBeGreaterThanOrEqual(1000); // not before its own timeout
    expect(tookMs).toBeLessThan(1000 + 300 + 5000); // a hang guard, not a performance bound
    // A timeout of 0 is the caller's "forever": only disconnect() ends it.
    await turns(10);
    expect(forever.settled).toBe(false);
    client.disconnect();
    await forever.promise;
    expect(forever.fulfilled).toBe(false);
  });
});

test('quit() while a BLPOP waits does not wait for it: both settle, and every connection closes', async () => {
  const name = 'surface-blocking-quit';
  const client = open({ name });
  await client.call('PING');
  const started = Date.now();
  const waiting = track(client.call('BLPOP', 'never', '30'));
  await waitFor(async () => (await blockedOn(name, 'blpop')).length === 1, { what: 'the BLPOP to wait' });
  await expect(client.quit()).resolves.toBe('OK');
  await waiting.promise;
  expect(waiting.fulfilled).toBe(false);
  expect(Date.now() - started).toBeLessThan(15000); // well under the BLPOP's 30 s
  await waitFor(async () => (await connectionsNamed(suite.db.raw, name)).length === 0, { what: 'every connection to close' });
  // The pool is closed with the client.
  await expect(client.call('BLPOP', 'never', '1')).rejects.toMatchObject({ code: 'ERR_CLIENT_CLOSED' });
  expect((await clientList(suite.db.raw)).some((c) => c.name === name)).toBe(false);
});
