'use strict';
// Proves every command refuses an argument over maxValueBytes at the call, with a
// RangeError naming the bound, before anything is sent: the raw call() path as well as
// set() and the cache, so one oversized value never costs the connection.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { suiteDatabase } = require('../helpers/suite-db');

let db;
let client;

beforeAll(async () => {
  db = await suiteDatabase();
});

beforeEach(async () => {
  await db.flush();
  client = createClient({ url: db.url, maxValueBytes: 1024 });
  await client.call('PING');
});

afterEach(() => client.disconnect());

function thrown(fn) {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return null;
}

test.each([
  ['a string', 'x'.repeat(1025)],
  ['a multi-byte string', 'é'.repeat(513)],
  ['a Buffer', Buffer.alloc(1025)],
])('call() with %s over maxValueBytes throws a RangeError and sends nothing', async (_, value) => {
  const opened = client.status().connectionsOpened;
  const err = thrown(() => client.call('SET', 'big', value));
  expect(err).toBeInstanceOf(RangeError);
  expect(err.code).toBe('ERR_VALUE_TOO_LARGE');
  expect(err.message).toMatch(/more than maxValueBytes \(1024\)/);
  // The connection is untouched and the key was never written.
  expect(await client.call('EXISTS', 'big')).toBe(0);
  expect(client.status().connectionsOpened).toBe(opened);
  expect(client.status().lastError).toBeNull();
});

test('callBuffer(), set() and a key argument are checked the same way', () => {
  expect(thrown(() => client.callBuffer('SET', 'k', Buffer.alloc(2048)))).toBeInstanceOf(RangeError);
  expect(thrown(() => client.set('k', 'y'.repeat(2000), 60))).toBeInstanceOf(RangeError);
  expect(thrown(() => client.call('GET', 'k'.repeat(1025)))).toBeInstanceOf(RangeError);
});

test('an argument of exactly maxValueBytes is sent', async () => {
  await client.call('SET', 'edge', 'z'.repeat(1024));
  expect(await client.call('STRLEN', 'edge')).toBe(1024);
});

test('the cache refuses the same way', async () => {
  const cache = createCache({ client });
  const err = await Promise.resolve()
    .then(() => cache.cacheSet('big', 'x'.repeat(4096), 30))
    .then(
      (r) => r,
      (e) => e,
    );
  expect(err).toBeInstanceOf(RangeError);
});
