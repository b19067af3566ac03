'use strict';
// ioredis's client options and methods users bring along: keyPrefix (validated, and put in
// front of every key argument, as ioredis does), lazyConnect (false connects at
// construction), connect() (resolves once the server answered, rejects when it cannot be
// reached), duplicate() (a connection of its own with the same options, and overrides).
const { createClient } = require('../../../lib/redis');
const { ConnectionError } = require('../../../lib/errors');
const { freePort } = require('../../helpers/redis-server');
const { clientSuite } = require('../../helpers/client-suite');
const { rawCommand } = require('../../helpers/raw-redis');
const { waitFor, outcome } = require('../../helpers/async');
const { connectionsNamed } = require('../../helpers/surface');

const suite = clientSuite({ defaults: { logger: false } });
const open = (options) => suite.open({ url: suite.db.url, ...options });
const adopt = (client) => {
  suite.clients.push(client);
  return client;
};

describe('keyPrefix', () => {
  test('is a string or a Buffer; anything else is refused naming the option', () => {
    for (const bad of [42, true, {}, ['app:']]) {
      let err;
      try {
        createClient({ keyPrefix: bad });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TypeError);
      expect(err.code).toBe('ERR_INVALID_CONFIG');
      expect(err.message).toMatch(/keyPrefix/);
    }
    expect(open({ keyPrefix: 'app:' }).options.keyPrefix).toBe('app:');
    expect(Buffer.from('bin:').equals(open({ keyPrefix: Buffer.from('bin:') }).options.keyPrefix)).toBe(true);
    expect(open({}).options.keyPrefix).toBe('');
  });

  test('call(), multi(), pipeline() and blocking commands put it in front of the key arguments only', async () => {
    const client = open({ keyPrefix: 'app:' });
    await expect(client.call('SET', 'k', 'v')).resolves.toBe('OK');
    await expect(client.call('MSET', 'a', '1', 'b', '2')).resolves.toBe('OK');
    await expect(client.multi().call('SET', 'm', 'in-multi').call('INCR', 'n').exec()).resolves.toEqual(['OK', 1]);
    await expect(client.pipeline().call('SET', 'p', 'in-pipeline').call('GET', 'k').exec()).resolves.toEqual([[null, 'OK'], [null, 'v']]);
    await rawCommand(suite.db.raw, 'RPUSH', 'app:q', 'queued');
    await expect(client.call('BLPOP', 'q', '1')).resolves.toEqual([expect.stringMatching(/q$/), 'queued']);
    expect(await rawCommand(suite.db.raw, 'MGET', 'app:k', 'app:a', 'app:b', 'app:m', 'app:n', 'app:p')).toEqual(['v', '1', '2', 'in-multi', '1', 'in-pipeline']);
    expect(await rawCommand(suite.db.raw, 'EXISTS', 'k', 'a', 'b', 'm', 'n', 'p')).toBe(0);
  });

  test('get(), set(), mget() and del() use it as call() does', async () => {
    const client = open({ keyPrefix: 'app:' });
    await expect(client.set('k', 'v')).resolves.toBe('OK');
    expect(await rawCommand(suite.db.raw, 'GET', 'app:k')).toBe('v');
    await rawCommand(suite.db.raw, 'SET', 'app:other', 'prefixed');
    await expect(client.get('other')).resolves.toBe('prefixed');
    await expect(client.mget(['k', 'other'])).resolves.toEqual(['v', 'prefixed']);
    await expect(client.del('k')).resolves.toBe(1);
    expect(await rawCommand(suite.db.raw, 'EXISTS', 'app:k', 'k')).toBe(0);
  });
});

describe('lazyConnect', () => {
  test('by default the client opens no connection until the first command', async () => {
    const name = 'surface-lazy-default';
    const client = open({ name });
    expect(client.status().state).toBe('idle');
    const lazy = open({ name, lazyConnect: true });
    expect(lazy.status().state).toBe('idle');
    expect(await connectionsNamed(suite.db.raw, name)).toHaveLength(0);
  });

  test("false: connects at construction ('connecting' at once), 'ready' later", async () => {
    const name = 'surface-lazy-false';
    const client = open({ name, lazyConnect: false });
    expect(client.status().state).toBe('connecting');
    await new Promise((resolve) => client.once('ready', resolve));
    expect(client.status()).toMatchObject({ state: 'ready', ready: true });
    expect(await connectionsNamed(suite.db.raw, name)).toHaveLength(1);
  });

  test('must be a boolean', () => {
    expect(() => createClient({ lazyConnect: 'no' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', message: expect.stringMatching(/lazyConnect/) }));
  });
});

describe('connect()', () => {
  test('resolves once the server has answered; the client is ready; a second connect() resolves too', async () => {
    const client = open();
    await expect(client.connect()).resolves.toBeUndefined();
    expect(client.status()).toMatchObject({ state: 'ready', ready: true });
    const called = await new Promise((resolve) => client.connect((...args) => resolve(args)));
    expect(called[0]).toBeNull();
  });

  test('rejects with ECONNREFUSED when nothing listens, and calls back with the error', async () => {
    const port = await freePort();
    const client = adopt(createClient({ port, logger: false }));
    const result = await outcome(client.connect());
    expect(result.ok).toBe(false);
    expect(result.error).toBeInstanceOf(ConnectionError);
    expect(result.error.code).toBe('ECONNREFUSED');
    const other = adopt(createClient({ port, logger: false }));
    const [err] = await new Promise((resolve) => other.connect((...args) => resolve(args)));
    expect(err.code).toBe('ECONNREFUSED');
  });
});

describe('duplicate()', () => {
  test('is a connection of its own with the same options', async () => {
    const name = 'surface-duplicate';
    const client = open({ name, commandTimeout: 1234 });
    const copy = adopt(client.duplicate());
    expect(copy).not.toBe(client);
    expect(copy.options).toMatchObject({ name, commandTimeout: 1234, db: suite.db.db });
    await client.call('SET', 'shared', 'seen by both');
    await expect(copy.call('GET', 'shared')).resolves.toBe('seen by both');
    const ids = [await client.call('CLIENT', 'ID'), await copy.call('CLIENT', 'ID')];
    expect(ids[0]).not.toBe(ids[1]);
    const conns = await connectionsNamed(suite.db.raw, name);
    expect(conns.map((c) => Number(c.id)).sort()).toEqual([...ids].sort());
    expect(conns.every((c) => c.db === String(suite.db.db))).toBe(true);
    // Closing one leaves the other working.
    copy.disconnect();
    await expect(client.call('PING')).resolves.toBe('PONG');
  });

  test('overrides replace the options they name', async () => {
    const client = open({ name: 'surface-duplicate-base', commandTimeout: 1234 });
    const copy = adopt(client.duplicate({ name: 'surface-duplicate-copy', commandTimeout: 4321 }));
    expect(copy.options).toMatchObject({ name: 'surface-duplicate-copy', commandTimeout: 4321, db: suite.db.db });
    await copy.call('PING');
    await waitFor(async () => (await connectionsNamed(suite.db.raw, 'surface-duplicate-copy')).length === 1, { what: 'the copy to connect' });
    expect(await connectionsNamed(suite.db.raw, 'surface-duplicate-base')).toHaveLength(0);
  });
});
