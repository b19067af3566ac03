'use strict';
// Proves a command past its deadline rejects with ETIMEDOUT and never shifts the replies
// of the commands after it: the late reply is swallowed by its own slot, and every later
// command gets its own reply once the proxy lets replies through. The circuit breaker is
// off here: with it, a held reply opens it and later commands fail fast instead
// (test/client/client.breaker.test.js).
const { createClient } = require('../../lib/redis');
const errors = require('../../lib/errors');
const { createProxy } = require('../helpers/proxy');
const { suiteDatabase } = require('../helpers/suite-db');
const { rawCommand } = require('../helpers/raw-redis');
const { track, waitFor, sleep } = require('../helpers/async');

const COMMAND_TIMEOUT = 1000;

let db;
let proxy;
let client;

beforeAll(async () => {
  db = await suiteDatabase();
  proxy = await createProxy({ port: db.port });
});

beforeEach(async () => {
  await db.flush();
  proxy.release().delay(0);
  client = createClient({ url: `${proxy.url}/${db.db}`, commandTimeout: COMMAND_TIMEOUT, breaker: false });
  const keys = ['a', 'b', 'c', 'd', 'e'];
  await rawCommand(db.raw, 'MSET', ...keys.flatMap((k) => [k, `value-${k}`]));
  await client.call('PING');
});

afterEach(async () => {
  proxy.release().delay(0);
  if (client) client.disconnect();
});

afterAll(() => proxy.close());

test('a held reply rejects with CommandTimeoutError ETIMEDOUT; the next commands get their own replies', async () => {
  proxy.hold('toClient');
  const err = await client.get('a').catch((e) => e);
  expect(err).toBeInstanceOf(errors.CommandTimeoutError);
  expect(err.code).toBe('ETIMEDOUT');
  const b = client.get('b');
  const c = client.get('c');
  proxy.release('toClient');
  await expect(b).resolves.toBe('value-b');
  await expect(c).resolves.toBe('value-c');
  await expect(client.get('d')).resolves.toBe('value-d');
});

test('several timed-out commands in a row do not shift the replies after them', async () => {
  proxy.hold('toClient');
  const timedOut = await Promise.allSettled(['a', 'b', 'c'].map((k) => client.get(k)));
  for (const r of timedOut) {
    expect(r.status).toBe('rejected');
    expect(r.reason.code).toBe('ETIMEDOUT');
  }
  const later = ['d', 'e', 'a'].map((k) => client.get(k));
  proxy.release('toClient');
  await expect(Promise.all(later)).resolves.toEqual(['value-d', 'value-e', 'value-a']);
});

test('a reply delayed past the deadline is swallowed, not delivered to the next caller', async () => {
  // The reply of GET a arrives 1.2 deadlines after it was sent: late, but soon enough that
  // GET b, queued behind it, still makes its own deadline.
  proxy.delay(COMMAND_TIMEOUT * 1.2, 'toClient');
  const first = track(client.get('a'));
  await waitFor(() => first.settled, { what: 'the first GET to time out' });
  expect(first.fulfilled).toBe(false);
  expect(first.error.code).toBe('ETIMEDOUT');
  proxy.delay(0);
  // The late reply of GET a is still on its way; the next GET must not take it.
  await expect(client.get('b')).resolves.toBe('value-b');
  await sleep(COMMAND_TIMEOUT);
  await expect(client.get('c')).resolves.toBe('value-c');
});

test('a timed-out write still ran on the server exactly once, and the counter stays in step', async () => {
  await client.call('SET', 'n', '0');
  proxy.hold('toClient');
  const err = await client.call('INCR', 'n').catch((e) => e);
  expect(err.code).toBe('ETIMEDOUT');
  const next = client.call('INCR', 'n');
  proxy.release('toClient');
  await expect(next).resolves.toBe(2);
  expect(await rawCommand(db.raw, 'GET', 'n')).toBe('2');
});

test('a timeout settles only its own command: one slow command among fast ones', async () => {
  // Held from the start: each command is written, none answered yet.
  proxy.hold('toClient');
  const slow = track(client.get('a'));
  await sleep(COMMAND_TIMEOUT / 2);
  const fast = ['b', 'c', 'd'].map((k) => track(client.get(k)));
  // When the slow GET times out, the later commands' own deadlines are not yet past.
  const pendingWhenSlowSettled = await slow.promise.then(() => fast.filter((t) => !t.settled).length);
  expect(pendingWhenSlowSettled).toBe(3);
  proxy.release('toClient');
  await Promise.all(fast.map((t) => t.promise));
  expect(slow.error.code).toBe('ETIMEDOUT');
  expect(fast.map((t) => t.value)).toEqual(['value-b', 'value-c', 'value-d']);
});
