'use strict';
// Proves a command's deadline is measured from when it was issued, on the real clock, and
// that a reply which has arrived wins over its timer: synchronous work that stalls the
// event loop (a big JSON.stringify, a sync crypto call) must not turn answered commands
// into ETIMEDOUT.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { createProxy } = require('../helpers/proxy');
const { suiteDatabase } = require('../helpers/suite-db');

let db;
let proxy;
const clients = [];

function busy(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // The event loop is stalled meanwhile, as by any synchronous work.
  }
}

/**
 * Connects `client` and makes sure it answers, retrying: with a short commandTimeout, the
 * first connection (through a proxy, on two busy cores) may itself miss its deadline, and
 * that is not what these tests are about.
 */
async function warm(client) {
  for (let i = 0; i < 20; i++) {
    try {
      await client.call('PING');
      return;
    } catch {
      // Try again: the connection is up by now, or will be.
    }
  }
  throw new Error('the client never answered PING');
}

function open(options) {
  const client = createClient(options);
  clients.push(client);
  return client;
}

beforeAll(async () => {
  db = await suiteDatabase();
  proxy = await createProxy({ port: db.port });
});

afterEach(() => {
  proxy.release().delay(0);
  while (clients.length) clients.pop().disconnect();
});

afterAll(() => proxy.close());

test('a call made after 300 ms of synchronous work gets its full commandTimeout', async () => {
  const client = open({ url: `${proxy.url}/${db.db}`, commandTimeout: 500 });
  await warm(client);
  await client.set('k', 'v');
  proxy.delay(250, 'toClient');
  // Let the loop start a turn, then stall it before issuing the call: the loop's cached
  // time is now 300 ms behind.
  await new Promise((resolve) => setImmediate(resolve));
  busy(300);
  const started = Date.now();
  const result = await client.get('k').then(
    (value) => ({ value }),
    (error) => ({ error }),
  );
  const waited = Date.now() - started;
  // Answered about 250 ms after it was issued: well inside its 500 ms.
  expect(result.error).toBeUndefined();
  expect(result.value).toBe('v');
  expect(waited).toBeGreaterThanOrEqual(200);
});

test('replies already in the socket when a stall ends win over their deadlines', async () => {
  // Straight to Redis: an in-process proxy could not forward replies while the loop stalls.
  const client = open({ url: db.url, commandTimeout: 300 });
  const cache = createCache({ client });
  await warm(client);
  expect(await cache.cacheSet('hot', 'value', 60)).toBe(true);
  for (let round = 0; round < 3; round++) {
    const gets = [];
    for (let i = 0; i < 10; i++) gets.push(cache.cacheGet('hot'));
    // The gets are written before the loop polls; Redis answers within a millisecond while
    // the check phase stalls the loop past every deadline.
    setImmediate(() => busy(600));
    const values = await Promise.all(gets);
    expect(values).toEqual(Array(10).fill('value'));
  }
});

test('a reply that really is late still times out after the stall', async () => {
  const client = open({ url: `${proxy.url}/${db.db}`, commandTimeout: 300 });
  await warm(client);
  proxy.hold('toClient');
  const pending = client.get('k').catch((e) => e);
  setImmediate(() => busy(400));
  const err = await pending;
  expect(err.code).toBe('ETIMEDOUT');
});

test('a command whose deadline passed before it could be written times out and never runs', async () => {
  const client = open({ url: db.url, commandTimeout: 200 });
  await warm(client);
  await open({ url: db.url }).call('DEL', 'ran');
  // Issued, then the loop stalls past the deadline before the turn ends and the write
  // happens: the caller is told ETIMEDOUT, so Redis must not run it either.
  const pending = Array.from({ length: 100 }, () => client.call('INCR', 'ran').catch((e) => e.code));
  busy(400);
  expect(await Promise.all(pending)).toEqual(Array(100).fill('ETIMEDOUT'));
  const admin = open({ url: db.url });
  expect(await admin.call('GET', 'ran')).toBeNull();
});

test('a stall while a deep pipeline is answered does not make the connection count as dead', async () => {
  const client = open({ url: db.url, commandTimeout: 200 });
  await warm(client);
  const opened = client.status().connectionsOpened;
  // 20,000 commands are written; the first reply's continuation stalls the loop for more
  // than twice the timeout while Redis keeps answering. Replies completed in that time are
  // progress: the connection must be kept (some callers may still time out).
  let first = true;
  const results = await Promise.all(
    Array.from({ length: 20000 }, (_, i) =>
      client.call('ECHO', `d${i}`).then(
        (v) => {
          if (first) {
            first = false;
            busy(450);
          }
          return v === `d${i}` ? 'ok' : 'mispaired';
        },
        (e) => e.code,
      ),
    ),
  );
  expect(results).not.toContain('mispaired');
  expect(results).not.toContain('ERR_OUTCOME_UNKNOWN');
  expect(client.status().connectionsOpened).toBe(opened);
  expect(client.status().lastError).toBeNull();
});
