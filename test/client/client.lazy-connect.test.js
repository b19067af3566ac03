'use strict';
// Proves the client connects lazily: requiring the modules and creating a client open no
// socket, the first command connects, and many concurrent first commands share exactly
// one connection. Connections are counted at a proxy in front of the shared server.
const { createProxy } = require('../helpers/proxy');
const { suiteDatabase } = require('../helpers/suite-db');
const { rawCommand } = require('../helpers/raw-redis');
const { sleep, turns } = require('../helpers/async');

let db;
let proxy;
let redis;
let cache;
const clients = [];

beforeAll(async () => {
  db = await suiteDatabase();
  proxy = await createProxy({ port: db.port });
  process.env.REDIS_URL = `${proxy.url}/${db.db}`;
  redis = require('../../lib/redis');
  cache = require('../../lib/cache');
});

beforeEach(() => db.flush());

afterAll(async () => {
  const singleton = redis && redis.getRedisClient();
  await Promise.allSettled([singleton && singleton.quit(), ...clients.map((c) => c.quit())]);
  await proxy.close();
});

function track(client) {
  clients.push(client);
  return client;
}

describe('the process-wide client (lib/redis, lib/cache)', () => {
  test('requiring lib/redis and lib/cache opens no connection', async () => {
    await sleep(200);
    expect(proxy.accepted).toBe(0);
  });

  test('getRedisClient() returns one shared client and still opens no connection', async () => {
    expect(redis.isRedisEnabled()).toBe(true);
    const a = redis.getRedisClient();
    const b = redis.getRedisClient();
    expect(a).toBe(b);
    await sleep(200);
    expect(proxy.accepted).toBe(0);
    expect(a.status().state).toBe('idle');
    expect(a.status().ready).toBe(false);
  });

  test('fifty concurrent first cache reads open exactly one connection and each gets its own value', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `lazy:${i}`);
    await rawCommand(db.raw, 'MSET', ...keys.flatMap((k) => [k, `value-of-${k}`]));
    expect(proxy.accepted).toBe(0);
    const values = await Promise.all(keys.map((k) => cache.cacheGet(k)));
    expect(values).toEqual(keys.map((k) => `value-of-${k}`));
    expect(proxy.accepted).toBe(1);
    // Later commands reuse it.
    await Promise.all(keys.map((k) => cache.cacheSet(k, 'again', 30)));
    await turns();
    expect(proxy.accepted).toBe(1);
    expect(redis.getRedisClient().status().state).toBe('ready');
  });
});

describe('createClient()', () => {
  test('creating a client opens no connection; its state is idle', async () => {
    const client = track(redis.createClient({ url: `${proxy.url}/${db.db}` }));
    const before = proxy.accepted;
    await sleep(200);
    expect(proxy.accepted).toBe(before);
    expect(client.status()).toMatchObject({ state: 'idle', ready: false, inFlight: 0, queued: 0 });
  });

  test('fifty concurrent first commands open exactly one connection', async () => {
    const p = await createProxy({ port: db.port });
    try {
      const client = track(redis.createClient({ url: `${p.url}/${db.db}` }));
      const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => client.call('ECHO', `m${i}`)));
      expect(replies).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
      expect(p.accepted).toBe(1);
      expect(client.status().state).toBe('ready');
      expect(client.status().ready).toBe(true);
      await client.quit();
    } finally {
      await p.close();
    }
  });

  test('a client that was never used quits without ever connecting', async () => {
    const p = await createProxy({ port: db.port });
    try {
      const client = redis.createClient({ url: p.url });
      await client.quit();
      await sleep(100);
      expect(p.accepted).toBe(0);
      expect(client.status().state).toBe('closed');
    } finally {
      await p.close();
    }
  });

  test('commands issued across several loop turns before the connect completes share the connection', async () => {
    const p = await createProxy({ port: db.port });
    try {
      const client = track(redis.createClient({ url: `${p.url}/${db.db}` }));
      const pending = [];
      for (let turn = 0; turn < 5; turn++) {
        for (let i = 0; i < 10; i++) pending.push(client.call('ECHO', `t${turn}-${i}`));
        await new Promise((resolve) => setImmediate(resolve));
      }
      const replies = await Promise.all(pending);
      expect(replies).toEqual(pending.map((_, n) => `t${Math.floor(n / 10)}-${n % 10}`));
      expect(p.accepted).toBe(1);
      await client.quit();
    } finally {
      await p.close();
    }
  });
});
