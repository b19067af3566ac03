'use strict';
// Proves ioredis's keyPrefix option: every key argument carries it (found from the command
// table's key positions: GET, SET, MGET, DEL, MSET, EVALSHA's keys, XREAD … STREAMS), and so
// do the cache's keys, cacheDelPrefix's scan and the limiter's keys; channels and non-key
// arguments never do. Each claim is checked on the server through a connection of its own.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { createLimiter } = require('../../lib/ratelimit');
const { suiteDatabase } = require('../helpers/suite-db');
const { rawCommand } = require('../helpers/raw-redis');

let db;
let client;
const raw = (...args) => rawCommand(db.raw, ...args);

beforeAll(async () => {
  db = await suiteDatabase();
  client = createClient({ url: db.url, keyPrefix: 'app:' });
});

beforeEach(() => db.flush());

afterAll(async () => {
  if (client) await client.quit();
});

test('GET, SET, MGET and DEL name prefixed keys; values and non-key arguments are untouched', async () => {
  await client.set('a', 'app:value');
  await client.set('b', '2', 60);
  await client.set('c', '3', 'EX', 60, 'NX');
  expect(await raw('GET', 'app:a')).toBe('app:value');
  expect(await raw('TTL', 'app:b')).toBeGreaterThan(0);
  expect(await raw('GET', 'app:c')).toBe('3');
  expect(await raw('EXISTS', 'a', 'b', 'c')).toBe(0);
  expect(await client.get('a')).toBe('app:value');
  expect(await client.mget('a', 'b', 'missing')).toEqual(['app:value', '2', null]);
  expect(await client.mget(['a', 'b'])).toEqual(['app:value', '2']);
  expect(await client.call('MGET', 'a', 'b')).toEqual(['app:value', '2']);
  expect(await client.del('a', 'b')).toBe(2);
  expect(await raw('EXISTS', 'app:a', 'app:b')).toBe(0);
});

test('MSET, HSET, Buffer keys, and a Buffer prefix', async () => {
  await client.mset({ x: '1', y: '2' });
  await client.hset('h', { f: 'v' });
  await client.set(Buffer.from([0xff, 0x01]), 'bin');
  expect(await raw('DBSIZE')).toBe(4);
  expect(await raw('EXISTS', 'app:h', 'app:x', 'app:y')).toBe(3);
  const plain = createClient({ url: db.url });
  const bytes = createClient({ url: db.url, keyPrefix: Buffer.from([0xfe]) });
  try {
    expect(await plain.get(Buffer.concat([Buffer.from('app:'), Buffer.from([0xff, 0x01])]))).toBe('bin');
    await bytes.set('k', 'v');
    expect(await bytes.get('k')).toBe('v');
    expect(await plain.get(Buffer.from([0xfe, 0x6b]))).toBe('v');
  } finally {
    await bytes.quit();
    await plain.quit();
  }
});

test("EVALSHA's keys are prefixed, its other arguments are not", async () => {
  const sha = await client.script('LOAD', "redis.call('SET', KEYS[1], ARGV[1]); return KEYS[1]");
  expect(await client.evalsha(sha, 1, 'k', 'arg')).toBe('app:k');
  expect(await client.call('EVALSHA', sha, 1, 'j', 'arg')).toBe('app:j');
  expect(await raw('GET', 'app:k')).toBe('arg');
  expect(await raw('GET', 'app:j')).toBe('arg');
});

test('inside multi() and pipeline(), and on an isolated connection', async () => {
  expect(await client.multi().set('t', '1').incr('n').exec()).toEqual(['OK', 1]);
  expect(await client.pipeline().get('t').get('n').exec()).toEqual([[null, '1'], [null, '1']]);
  expect(await client.isolated(async (conn) => {
    await conn.watch('t');
    return conn.multi().incr('t').exec();
  })).toEqual([2]);
  expect(await raw('GET', 'app:t')).toBe('2');
  expect(await raw('EXISTS', 't', 'n')).toBe(0);
});

test('a blocking command on its own connection pops the prefixed list', async () => {
  await raw('RPUSH', 'app:jobs', 'job-1');
  expect(await client.blpop('jobs', 1)).toEqual(['app:jobs', 'job-1']);
});

test('channels are not keys: PUBLISH and subscribe() use them as given', async () => {
  const got = [];
  await client.subscribe('news', (message, channel) => got.push([message, channel]));
  const other = createClient({ url: db.url });
  try {
    expect(await other.publish('news', 'hello')).toBe(1);
    expect(await client.publish('news', 'again')).toBe(1);
  } finally {
    await other.quit();
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(got).toEqual([['hello', 'news'], ['again', 'news']]);
  await client.unsubscribe('news');
});

test("the cache's keys and cacheDelPrefix's scan carry the prefix; keys outside it are never touched", async () => {
  const cache = createCache({ client });
  expect(await cache.cacheSet('user:1', 'ada', 60)).toBe(true);
  expect(await cache.cacheSet('user:2', 'bob', 60)).toBe(true);
  await raw('SET', 'user:3', 'not ours');
  await raw('SET', 'other:user:4', 'not ours either');
  expect(await raw('GET', 'app:user:1')).toBe('ada');
  expect(await cache.cacheGet('user:1')).toBe('ada');
  expect(await cache.cacheMGet(['user:1', 'user:2', 'user:3'])).toEqual(['ada', 'bob', null]);
  expect(await cache.cacheDelPrefix('user:')).toBe(2);
  expect(await raw('EXISTS', 'app:user:1', 'app:user:2')).toBe(0);
  expect(await raw('GET', 'user:3')).toBe('not ours');
  expect(await raw('GET', 'other:user:4')).toBe('not ours either');
  await cache.cacheSet('gone', 'x', 60);
  expect(await cache.cacheDel('gone')).toBe(1);
  expect(await raw('EXISTS', 'app:gone')).toBe(0);
});

test("the limiter's keys carry the client's prefix before its own", async () => {
  const limiter = createLimiter({ client, store: 'redis', keyPrefix: 'rl', points: 2, duration: 60 });
  await limiter.consume('ip-1');
  expect(await raw('EXISTS', 'app:rl:tb:ip-1')).toBe(1);
  expect(await raw('EXISTS', 'rl:tb:ip-1')).toBe(0);
  await limiter.consume('ip-1');
  await expect(limiter.consume('ip-1')).rejects.toMatchObject({ remainingPoints: 0 });
  await limiter.delete('ip-1');
  expect(await raw('EXISTS', 'app:rl:tb:ip-1')).toBe(0);
});

test('keyPrefix must be a string or a Buffer', () => {
  expect(() => createClient({ keyPrefix: 5 })).toThrow(/option keyPrefix must be a string or a Buffer/);
  expect(() => createClient({ keyPrefix: {} })).toThrow(/keyPrefix/);
});

test('a key that is not a string, a Buffer or a number is refused as it is without a prefix, never sent as "app:undefined"', () => {
  for (const bad of [undefined, null, true, {}]) {
    expect(() => client.call('GET', bad)).toThrow(TypeError);
    expect(() => client.get(bad)).toThrow(TypeError);
    expect(() => client.set(bad, 'v')).toThrow(TypeError);
  }
});
