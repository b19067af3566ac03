'use strict';
// ioredis's reconnection options. retryStrategy(times) is asked after each failed attempt
// (1, 2, 3…) and its answer is the wait before the next ('reconnecting' carries it); null,
// or a strategy that throws, ends the client: 'end', pending calls fail, status closed.
// maxRetriesPerRequest says how many failed attempts a call not yet written waits through:
// 0 (the default) fails it at once, n after n + 1 attempts, null only at its deadline; a
// cacheGet, which has a fallback, never waits.
const { createClient } = require('../../../lib/redis');
const { createCache } = require('../../../lib/cache');
const { startRedis, freePort } = require('../../helpers/redis-server');
const { createProxy } = require('../../helpers/proxy');
const { rawCommand } = require('../../helpers/raw-redis');
const { waitFor, track, outcome, turns } = require('../../helpers/async');

const clients = [];
const cleanups = [];
function open(options) {
  const c = createClient({ logger: false, ...options });
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const fn of cleanups.splice(0)) await fn();
});

/** Records the client's events with when they came: [{ name, arg, at }]. */
function recordEvents(client) {
  const seen = [];
  for (const name of ['connect', 'ready', 'error', 'close', 'reconnecting', 'end']) {
    client.on(name, (arg) => seen.push({ name, arg, at: Date.now() }));
  }
  return seen;
}

describe('retryStrategy', () => {
  test('is called with 1, 2, 3 … after each failed attempt; the delay it returns is the one reconnecting carries', async () => {
    const port = await freePort();
    const times = [];
    const client = open({ port, retryStrategy: (n) => { times.push(n); return n < 3 ? 20 * n : null; } });
    const events = recordEvents(client);
    await outcome(client.call('PING'));
    await waitFor(() => events.some((e) => e.name === 'end'), { what: "the 'end' event" });
    expect(times).toEqual([1, 2, 3]);
    expect(events.filter((e) => e.name === 'reconnecting').map((e) => e.arg)).toEqual([20, 40]);
    expect(events.filter((e) => e.name === 'error')).toHaveLength(3);
  });

  test('the next attempt waits the delay it returned', async () => {
    const port = await freePort();
    const times = [];
    const client = open({ port, retryStrategy: (n) => { times.push(n); return n === 1 ? 400 : null; } });
    const events = recordEvents(client);
    await outcome(client.call('PING'));
    await waitFor(() => events.some((e) => e.name === 'end'), { what: "the 'end' event" });
    const errors = events.filter((e) => e.name === 'error');
    expect(errors).toHaveLength(2);
    // The second attempt came no sooner than the 400 ms asked for (a lower bound only).
    expect(errors[1].at - errors[0].at).toBeGreaterThanOrEqual(350);
    expect(times).toEqual([1, 2]);
  });

  test('returning null ends the client: end event, a pending call fails, status closed, later calls refused', async () => {
    const port = await freePort();
    // maxRetriesPerRequest null: the call waits through the attempts, so it is pending when
    // the strategy gives up.
    const client = open({ port, maxRetriesPerRequest: null, commandTimeout: 10000, retryStrategy: (n) => (n < 2 ? 10 : null) });
    const events = recordEvents(client);
    const pending = track(client.call('SET', 'k', 'v'));
    await waitFor(() => events.some((e) => e.name === 'end'), { what: "the 'end' event" });
    await pending.promise;
    expect(pending.fulfilled).toBe(false);
    expect(pending.error.code).toBe('ERR_CLIENT_CLOSED');
    expect(client.status().state).toBe('closed');
    await expect(client.call('PING')).rejects.toMatchObject({ code: 'ERR_CLIENT_CLOSED' });
  });

  test('a strategy that throws ends the client too', async () => {
    const port = await freePort();
    const client = open({ port, retryStrategy: () => { throw new Error('strategy failure'); } });
    const events = recordEvents(client);
    const first = await outcome(client.call('PING'));
    expect(first.error.code).toBe('ECONNREFUSED');
    await waitFor(() => events.some((e) => e.name === 'end'), { what: "the 'end' event" });
    expect(client.status().state).toBe('closed');
    expect(events.filter((e) => e.name === 'error')).toHaveLength(1);
  });

  test('is asked when an established connection is lost, as in ioredis: null ends the client instead of reconnecting', async () => {
    const server = await startRedis();
    const proxy = await createProxy({ port: server.port });
    cleanups.push(() => proxy.close(), () => server.stop());
    const times = [];
    const client = open({ url: proxy.url, retryStrategy: (n) => { times.push(n); return null; } });
    const events = recordEvents(client);
    await client.call('PING');
    proxy.cut();
    await waitFor(() => events.some((e) => e.name === 'close'), { what: "the 'close' event" });
    await waitFor(() => events.some((e) => e.name === 'end') || proxy.accepted > 1, { what: "'end' or a reconnection" });
    await turns(10);
    expect(times).toEqual([1]);
    expect(events.map((e) => e.name)).toContain('end');
    expect(proxy.accepted).toBe(1);
    expect(client.status().state).toBe('closed');
  });

  test('must be a function', () => {
    for (const bad of [100, 'fast', {}]) {
      expect(() => createClient({ retryStrategy: bad })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', message: expect.stringMatching(/retryStrategy/) }));
    }
  });
});

describe('maxRetriesPerRequest', () => {
  test('0 (the default): a call made while Redis is down fails at once, without waiting for another attempt', async () => {
    const port = await freePort();
    const client = open({ port, reconnectBaseDelay: 1000, reconnectMaxDelay: 1000 });
    client.on('error', () => {});
    const first = await outcome(client.call('PING'));
    expect(first.error.code).toBe('ECONNREFUSED');
    const attempts = client.status().reconnectAttempts;
    const started = Date.now();
    const second = await outcome(client.call('PING'));
    expect(second.ok).toBe(false);
    expect(second.error.code).toBe('ECONNREFUSED');
    expect(client.status().reconnectAttempts).toBe(attempts);
    expect(Date.now() - started).toBeLessThan(1000); // did not wait for the next attempt
  });

  test('2: a call made while Redis is down fails after 3 more failed attempts', async () => {
    const port = await freePort();
    const client = open({ port, maxRetriesPerRequest: 2, reconnectBaseDelay: 10, reconnectMaxDelay: 40 });
    client.on('error', () => {});
    const attemptsAt = [];
    const first = client.call('PING').catch((err) => {
      attemptsAt.push(client.status().reconnectAttempts);
      return err;
    });
    await waitFor(() => client.status().reconnectAttempts >= 1 && client.status().state === 'down', { what: 'Redis to be known down' });
    const before = client.status().reconnectAttempts;
    const second = await client.call('PING').then(() => null, (err) => err);
    const after = client.status().reconnectAttempts;
    expect(second.code).toBe('ECONNREFUSED');
    expect(after - before).toBe(3);
    expect((await first).code).toBe('ECONNREFUSED');
    expect(attemptsAt).toEqual([3]);
  });

  test('null: a call made while Redis is down succeeds once it starts; a cacheGet never waits', async () => {
    const port = await freePort();
    const client = open({ port, maxRetriesPerRequest: null, commandTimeout: 10000, reconnectBaseDelay: 20, reconnectMaxDelay: 100 });
    client.on('error', () => {});
    const cache = createCache({ client });
    const set = track(client.call('SET', 'written-later', 'yes'));
    await waitFor(() => client.status().reconnectAttempts >= 2, { what: 'two failed attempts' });
    const read = track(cache.cacheGet('written-later'));
    await waitFor(() => read.settled, { what: 'the cacheGet to settle while Redis is down' });
    expect(read.value).toBeNull();
    expect(set.settled).toBe(false);

    const server = await startRedis({ port });
    cleanups.push(() => server.stop());
    await set.promise;
    expect(set.value).toBe('OK');
    expect(await rawCommand({ port }, 'GET', 'written-later')).toBe('yes');
  });

  test('is validated: a whole number ≥ 0, or null', () => {
    for (const bad of [-1, 1.5, 'three', Infinity]) {
      expect(() => createClient({ maxRetriesPerRequest: bad })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', message: expect.stringMatching(/maxRetriesPerRequest/) }));
    }
    expect(open({ maxRetriesPerRequest: null }).options.maxRetriesPerRequest).toBeNull();
    expect(open({ maxRetriesPerRequest: 3 }).options.maxRetriesPerRequest).toBe(3);
    expect(open({}).options.maxRetriesPerRequest).toBe(0);
  });
});
