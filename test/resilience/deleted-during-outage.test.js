'use strict';
// Fault: this process loses its path to Redis (through the fault proxy: connections refused
// and cut, reset, or replies held) while another process, which still reaches Redis,
// deletes or rewrites values there. Meanwhile this process caches those values in its
// fallback store, as a route does after a miss. Must hold: after recovery, a value deleted in
// Redis during the outage is never served (cacheGet, cacheGetBuffer, cacheMGet), a value
// rewritten there is served as Redis has it, and nothing this process wrote to its fallback
// reached Redis.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { suiteDatabase } = require('../helpers/suite-db');
const { createProxy } = require('../helpers/proxy');
const { rawCommand } = require('../helpers/raw-redis');
const { waitFor, watchUnhandledRejections } = require('../helpers/async');
const { recordingLogger } = require('./support');

let db;
let other; // another process's client and cache, straight to the server
let unhandled;
const cleanups = [];

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  db = await suiteDatabase();
  const client = createClient({ url: db.url, logger: false });
  other = { client, cache: createCache({ client }) };
});

beforeEach(() => db.flush());

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

afterAll(async () => {
  await other.client.quit();
  expect(unhandled.stop()).toEqual([]);
});

const raw = (...args) => rawCommand(db.raw, ...args);

const OUTAGES = {
  'connections refused and cut': {
    async begin(proxy) {
      await proxy.refuse();
      proxy.cut();
    },
    end: (proxy) => proxy.accept(),
  },
  'connections reset (RST) and refused': {
    async begin(proxy) {
      await proxy.refuse();
      proxy.reset();
    },
    end: (proxy) => proxy.accept(),
  },
  'replies held (a stall; commands still reach Redis)': {
    async begin(proxy) {
      proxy.hold('toClient');
    },
    async end(proxy) {
      proxy.release('toClient');
    },
  },
};

test.each(Object.keys(OUTAGES))('%s: a value deleted in Redis meanwhile is not served after recovery', async (kind) => {
  const outage = OUTAGES[kind];
  const proxy = await createProxy({ port: db.port });
  const log = recordingLogger();
  const client = createClient({ url: `${proxy.url}/${db.db}`, logger: log.logger, breaker: { openMs: 50 } });
  const cache = createCache({ client });
  cleanups.push(async () => {
    client.disconnect();
    await proxy.close();
  });

  for (const [k, v] of [['user:1', 'v1'], ['user:2', 'v1'], ['list:a', 'v1'], ['list:b', 'v1']]) {
    await expect(cache.cacheSet(k, v, 600)).resolves.toBe(true);
  }
  await expect(cache.cacheGet('user:1')).resolves.toBe('v1');

  await outage.begin(proxy);
  await waitFor(async () => {
    await cache.cacheGet('probe');
    return client.breakerState !== 'closed';
  }, { what: 'the breaker to open' });

  // The routes miss (the fallback starts empty), recompute and cache in the fallback.
  for (const k of ['user:1', 'user:2', 'list:a', 'list:b']) {
    await expect(cache.cacheGet(k)).resolves.toBeNull();
    await expect(cache.cacheSet(k, 'v1', 600)).resolves.toBe(true);
    await expect(cache.cacheGet(k)).resolves.toBe('v1');
  }
  await expect(cache.cacheSet('only-here', 'mine', 600)).resolves.toBe(true);

  // Meanwhile another process deletes and rewrites in Redis.
  expect(await raw('DEL', 'user:1')).toBe(1);
  expect(await raw('SET', 'user:2', 'v2')).toBe('OK');
  await expect(other.cache.cacheDelPrefix('list:')).resolves.toBe(2);
  // This process still serves its fallback's copies (it cannot know).
  await expect(cache.cacheGet('user:1')).resolves.toBe('v1');
  expect(client.breakerState).not.toBe('closed');

  await outage.end(proxy);
  await waitFor(async () => {
    await cache.cacheGet('probe');
    return client.breakerState === 'closed';
  }, { timeoutMs: 10000, what: 'the breaker to close' });

  await expect(cache.cacheGet('user:1')).resolves.toBeNull();
  await expect(cache.cacheGetBuffer('user:1')).resolves.toBeNull();
  await expect(cache.cacheMGet(['user:1', 'user:2', 'list:a', 'list:b'])).resolves.toEqual([null, 'v2', null, null]);
  await expect(cache.cacheGet('user:2')).resolves.toBe('v2');
  await expect(cache.cacheGet('list:a')).resolves.toBeNull();
  await expect(cache.cacheGet('only-here')).resolves.toBeNull();
  expect(cache.cacheStats().fallback).toMatchObject({ active: false, entries: 0 });
  // Nothing from the fallback was written to Redis.
  expect(await raw('EXISTS', 'user:1', 'list:a', 'list:b', 'only-here')).toBe(0);
  expect(await raw('GET', 'user:2')).toBe('v2');
}, 30000);
