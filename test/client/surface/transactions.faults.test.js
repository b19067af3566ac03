'use strict';
// A transaction is one unit in the core's FIFO: written, timed out and failed as one entry.
// Lost after it was written, exec() rejects ERR_OUTCOME_UNKNOWN and the transaction is never
// resent; never written because Redis is down, it fails with the connection's error and
// nothing of it runs. Against the bounds it is accepted or refused whole (maxQueue,
// maxQueueBytes), and against a server that never answers it times out once, as one.
const { OutcomeUnknownError, ConnectionError, QueueFullError, CommandTimeoutError } = require('../../../lib/errors');
const { clientSuite, outage } = require('../../helpers/client-suite');
const { commandServer } = require('../../helpers/fake-servers');
const { rawCommand } = require('../../helpers/raw-redis');
const { waitFor, turns, outcome } = require('../../helpers/async');

const suite = clientSuite({ proxy: true, defaults: { logger: false } });
const openProxied = (options) => suite.open({ url: `${suite.proxy.url}/${suite.db.db}`, reconnectBaseDelay: 10, reconnectMaxDelay: 50, ...options });

// A test that failed with the proxy refusing must not leave the next one without Redis.
afterEach(() => suite.proxy.accept());

const CONNECTION_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ERR_BREAKER_OPEN'];

/** Resolves once `client` answers again (after a reconnect). */
function answersAgain(client) {
  return waitFor(async () => (await outcome(client.call('PING'))).ok, { what: 'the client to answer again' });
}

describe('connection lost around the transaction', () => {
  test('delivered, then cut before the reply: exec() rejects ERR_OUTCOME_UNKNOWN and the transaction is never resent', async () => {
    const client = openProxied();
    await client.call('PING');
    suite.proxy.hold('toClient');
    const exec = outcome(client.multi().call('INCR', 'tx-counter').call('SET', 'tx-mark', 'ran').exec());
    // The unit reached Redis and ran; its reply waits in the proxy.
    await waitFor(async () => (await rawCommand(suite.db.raw, 'GET', 'tx-counter')) === '1', { what: 'the transaction to run' });
    suite.proxy.cut();
    suite.proxy.release();
    const result = await exec;
    expect(result.ok).toBe(false);
    expect(result.error).toBeInstanceOf(OutcomeUnknownError);
    expect(result.error.code).toBe('ERR_OUTCOME_UNKNOWN');

    await answersAgain(client);
    await expect(client.call('SET', 'later', 'works')).resolves.toBe('OK');
    await expect(client.call('GET', 'later')).resolves.toBe('works');
    await turns();
    // Resent after the reconnect, the INCR would have counted twice.
    expect(await rawCommand(suite.db.raw, 'GET', 'tx-counter')).toBe('1');
    expect(suite.proxy.accepted).toBeGreaterThanOrEqual(2);
  });

  test('written but held in the network, then cut: ERR_OUTCOME_UNKNOWN, and since it is not resent it never runs', async () => {
    const client = openProxied();
    await client.call('PING');
    const accepted = suite.proxy.accepted;
    suite.proxy.hold('toServer');
    const exec = outcome(client.multi().call('INCR', 'held-counter').exec());
    await waitFor(() => client.status().inFlight === 1, { what: 'the unit to be written' });
    suite.proxy.cut();
    suite.proxy.release();
    const result = await exec;
    expect(result.ok).toBe(false);
    expect(result.error.code).toBe('ERR_OUTCOME_UNKNOWN');
    await answersAgain(client);
    expect(suite.proxy.accepted).toBeGreaterThan(accepted);
    await expect(client.call('PING')).resolves.toBe('PONG');
    expect(await rawCommand(suite.db.raw, 'EXISTS', 'held-counter')).toBe(0);
  });

  test('never written because Redis is down: exec() fails with the connection error, and nothing of it runs later', async () => {
    const client = openProxied();
    await client.call('PING');
    await outage({ proxy: suite.proxy, client });
    const result = await outcome(client.multi().call('SET', 'half', '1').call('INCR', 'half-count').exec());
    expect(result.ok).toBe(false);
    expect(result.error).toBeInstanceOf(ConnectionError);
    expect(CONNECTION_CODES).toContain(result.error.code);

    await suite.proxy.accept();
    await answersAgain(client);
    await expect(client.call('SET', 'after-outage', '1')).resolves.toBe('OK');
    expect(await rawCommand(suite.db.raw, 'EXISTS', 'half', 'half-count')).toBe(0);
  });
});

describe('atomic against the bounds', () => {
  // Redis unreachable, and commands allowed to wait for it: the queue fills.
  async function waitingClient(options) {
    await suite.proxy.refuse();
    suite.proxy.cut();
    const client = openProxied({ maxRetriesPerRequest: null, breaker: false, commandTimeout: 10000, ...options });
    client.on('error', () => {});
    return client;
  }

  test('maxQueue: a 50-command multi is accepted whole while there is room for one entry, refused whole once there is not', async () => {
    const client = await waitingClient({ maxQueue: 10 });
    const fillers = Array.from({ length: 9 }, (_, i) => outcome(client.call('SET', `filler:${i}`, 'x')));
    const fits = client.multi();
    for (let i = 0; i < 50; i++) fits.call('INCR', 'fits');
    const accepted = outcome(fits.exec());
    const late = client.multi();
    for (let i = 0; i < 50; i++) late.call('INCR', 'refused');
    const refused = await outcome(late.exec());
    expect(refused.ok).toBe(false);
    expect(refused.error).toBeInstanceOf(QueueFullError);
    expect(refused.error.code).toBe('ERR_QUEUE_FULL');
    expect(client.status().queued).toBe(10);

    await suite.proxy.accept();
    const result = await accepted;
    expect(result.ok).toBe(true);
    expect(result.value).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    for (const f of await Promise.all(fillers)) expect(f).toEqual({ ok: true, value: 'OK' });
    expect(await rawCommand(suite.db.raw, 'GET', 'fits')).toBe('50');
    expect(await rawCommand(suite.db.raw, 'EXISTS', 'refused')).toBe(0);
  });

  test('maxQueueBytes: a multi whose bytes do not fit behind what waits is refused whole; a small one is accepted whole', async () => {
    const client = await waitingClient({ maxQueueBytes: 2048 });
    const first = outcome(client.call('SET', 'first', 'x'));
    const value = 'v'.repeat(100);
    const big = client.multi();
    for (let i = 0; i < 50; i++) big.call('SET', `big:${i}`, value); // ~6 KB
    const refused = await outcome(big.exec());
    expect(refused.ok).toBe(false);
    expect(refused.error.code).toBe('ERR_QUEUE_FULL');
    const small = outcome(client.multi().call('SET', 'small:1', 'a').call('SET', 'small:2', 'b').exec());

    await suite.proxy.accept();
    expect(await small).toEqual({ ok: true, value: ['OK', 'OK'] });
    expect(await first).toEqual({ ok: true, value: 'OK' });
    const keys = Array.from({ length: 50 }, (_, i) => `big:${i}`);
    expect(await rawCommand(suite.db.raw, 'EXISTS', ...keys)).toBe(0);
    expect(await rawCommand(suite.db.raw, 'MGET', 'small:1', 'small:2')).toEqual(['a', 'b']);
  });
});

describe('a server that never answers', () => {
  let server;
  let seen;

  beforeEach(async () => {
    seen = [];
    server = await commandServer((argv) => {
      seen.push(argv[0].toUpperCase());
      return null;
    });
  });

  afterEach(() => server.close());

  test('exec() rejects ETIMEDOUT once, as one entry; the unit was written whole and in order', async () => {
    const client = suite.open({ url: server.url, commandTimeout: 200, breaker: false });
    const m = client.multi();
    for (let i = 0; i < 20; i++) m.call('INCR', `n:${i}`);
    const callbacks = [];
    const result = await outcome(m.exec((err, res) => callbacks.push([err, res])));
    expect(result.ok).toBe(false);
    expect(result.error).toBeInstanceOf(CommandTimeoutError);
    expect(result.error.code).toBe('ETIMEDOUT');
    expect(seen).toEqual(['MULTI', ...Array(20).fill('INCR'), 'EXEC']);
    // Past twice the timeout the silent connection is declared dead and replaced; the unit
    // already settled must not settle again.
    await waitFor(() => client.status().connectionsOpened >= 2, { what: 'the dead connection to be replaced' });
    await turns();
    expect(callbacks).toHaveLength(1);
    expect(callbacks[0][0].code).toBe('ETIMEDOUT');
    expect(client.metrics().commands.other.timeout).toBe(1);
  });

  test('a pipeline times out as one: every pair carries ETIMEDOUT', async () => {
    const client = suite.open({ url: server.url, commandTimeout: 200, breaker: false });
    const p = client.pipeline();
    for (let i = 0; i < 30; i++) p.call('GET', `n:${i}`);
    const pairs = await p.exec();
    expect(pairs).toHaveLength(30);
    for (const [err, value] of pairs) {
      expect(err).toBeInstanceOf(CommandTimeoutError);
      expect(err.code).toBe('ETIMEDOUT');
      expect(value).toBeUndefined();
    }
    expect(seen).toEqual(Array(30).fill('GET'));
    expect(client.metrics().commands.other.timeout).toBe(1);
  });
});

test('MULTI refused by an ACL: exec() rejects with that error, saying the commands ran outside a transaction', async () => {
  await rawCommand(suite.db.raw, 'ACL', 'SETUSER', 'surface-nomulti', 'on', '>pw', '~*', '&*', '+@all', '-multi');
  const url = new URL(suite.db.url);
  const c = suite.open({ url: `redis://surface-nomulti:pw@${url.host}${url.pathname}` });
  try {
    const err = await c.multi().set('nm', '1').exec().catch((e) => e);
    expect(err.code).toBe('NOPERM');
    expect(err.message).toMatch(/ran outside a transaction/);
    expect(err.results).toEqual(['OK']);
  } finally {
    await rawCommand(suite.db.raw, 'ACL', 'DELUSER', 'surface-nomulti');
  }
});
