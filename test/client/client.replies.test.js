'use strict';
// Proves every RESP reply type reaches JS as the contract says: bulk -> string (Buffer
// through callBuffer), integer -> number, array -> array (nested too), nil -> null,
// status -> string, error -> a rejected ReplyError carrying the server's code.
const { createClient } = require('../../lib/redis');
const errors = require('../../lib/errors');
const { suiteDatabase } = require('../helpers/suite-db');
const { rawCommand } = require('../helpers/raw-redis');

let db;
let client;

beforeAll(async () => {
  db = await suiteDatabase();
  client = createClient({ url: db.url });
});

beforeEach(() => db.flush());

afterAll(async () => {
  if (client) await client.quit();
});

describe('reply types through call()', () => {
  test('status replies are strings', async () => {
    await expect(client.call('SET', 'k', 'v')).resolves.toBe('OK');
    await expect(client.call('PING')).resolves.toBe('PONG');
  });

  test('bulk replies are strings', async () => {
    await client.call('SET', 'k', 'hello world');
    await expect(client.call('GET', 'k')).resolves.toBe('hello world');
  });

  test('UTF-8 text round-trips as a string', async () => {
    const text = 'héllo wörld ✓ 😀 日本語';
    await client.call('SET', 'u', text);
    await expect(client.call('GET', 'u')).resolves.toBe(text);
    expect(await rawCommand(db.raw, 'STRLEN', 'u')).toBe(Buffer.byteLength(text));
  });

  test('the empty string is a string, not null', async () => {
    await client.call('SET', 'e', '');
    await expect(client.call('GET', 'e')).resolves.toBe('');
  });

  test('integer replies are numbers', async () => {
    await expect(client.call('INCR', 'n')).resolves.toBe(1);
    await expect(client.call('INCRBY', 'n', -6)).resolves.toBe(-5);
    await expect(client.call('INCRBY', 'big', 2 ** 40)).resolves.toBe(2 ** 40);
    await expect(client.call('EXISTS', 'nothing')).resolves.toBe(0);
  });

  test('nil is null', async () => {
    await expect(client.call('GET', 'missing')).resolves.toBeNull();
    await expect(client.call('HGET', 'missing', 'f')).resolves.toBeNull();
  });

  test('arrays are arrays, nil elements are null', async () => {
    await client.call('RPUSH', 'l', 'a', 'b', 'c');
    await expect(client.call('LRANGE', 'l', 0, -1)).resolves.toEqual(['a', 'b', 'c']);
    await client.call('SET', 'x', '1');
    await expect(client.call('MGET', 'x', 'missing', 'x')).resolves.toEqual(['1', null, '1']);
  });

  test('the empty array is an empty array', async () => {
    await expect(client.call('LRANGE', 'missing', 0, -1)).resolves.toEqual([]);
    await expect(client.call('KEYS', 'none:*')).resolves.toEqual([]);
  });

  test('nested arrays keep their shape and element types', async () => {
    const script = "return {1, 'two', {3, {'four', {}}}, -5}";
    await expect(client.call('EVAL', script, 0)).resolves.toEqual([1, 'two', [3, ['four', []]], -5]);
    await client.call('XADD', 's', '1-1', 'f1', 'v1', 'f2', 'v2');
    await expect(client.call('XRANGE', 's', '-', '+')).resolves.toEqual([['1-1', ['f1', 'v1', 'f2', 'v2']]]);
  });

  test('a large (1 MiB) bulk reply arrives whole', async () => {
    const chunk = '0123456789abcdef';
    const big = chunk.repeat((1024 * 1024) / chunk.length) + 'end';
    await client.call('SET', 'big', big);
    const got = await client.call('GET', 'big');
    expect(got.length).toBe(big.length);
    expect(got === big).toBe(true);
  });

  test('number arguments are sent as their decimal text', async () => {
    await client.call('SET', 'num', 42);
    await expect(client.call('GET', 'num')).resolves.toBe('42');
    await client.call('SET', 'neg', -3.25);
    await expect(client.call('GET', 'neg')).resolves.toBe('-3.25');
  });

  test('many replies in one burst each reach their own caller', async () => {
    const keys = Array.from({ length: 2000 }, (_, i) => `burst:${i}`);
    await rawCommand(db.raw, 'MSET', ...keys.flatMap((k) => [k, `v:${k}`]));
    const got = await Promise.all(keys.map((k) => client.call('GET', k)));
    expect(got).toEqual(keys.map((k) => `v:${k}`));
  });
});

describe('error replies', () => {
  test('WRONGTYPE rejects with a ReplyError carrying the code and the server message', async () => {
    await client.call('SET', 'str', 'x');
    const err = await client.call('LPUSH', 'str', 'y').catch((e) => e);
    expect(err).toBeInstanceOf(errors.ReplyError);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('WRONGTYPE');
    expect(err.message).toMatch(/Operation against a key holding the wrong kind of value/);
  });

  test('an unknown command rejects with code ERR', async () => {
    const err = await client.call('NOSUCHCOMMAND', 'a').catch((e) => e);
    expect(err).toBeInstanceOf(errors.ReplyError);
    expect(err.code).toBe('ERR');
  });

  test('EVALSHA of an unknown script rejects with code NOSCRIPT', async () => {
    const err = await client.call('EVALSHA', 'ffffffffffffffffffffffffffffffffffffffff', 0).catch((e) => e);
    expect(err).toBeInstanceOf(errors.ReplyError);
    expect(err.code).toBe('NOSCRIPT');
  });

  test('a script error reply keeps its own code', async () => {
    const err = await client.call('EVAL', "return redis.error_reply('MYCODE something failed')", 0).catch((e) => e);
    expect(err).toBeInstanceOf(errors.ReplyError);
    expect(err.code).toBe('MYCODE');
  });

  test('an error reply does not disturb the replies around it', async () => {
    await client.call('SET', 'str', 'x');
    const results = await Promise.allSettled([
      client.call('ECHO', 'before'),
      client.call('LPUSH', 'str', 'y'),
      client.call('ECHO', 'after'),
    ]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 'before' });
    expect(results[1].status).toBe('rejected');
    expect(results[1].reason.code).toBe('WRONGTYPE');
    expect(results[2]).toEqual({ status: 'fulfilled', value: 'after' });
  });

  test('an error inside an array (EXEC) comes back as an Error element with its code', async () => {
    await client.call('SET', 'str', 'x');
    const replies = await client.multi().call('SET', 'a', '1').call('LPUSH', 'str', 'y').exec();
    expect(replies[0]).toBe('OK');
    expect(replies[1]).toBeInstanceOf(Error);
    expect(replies[1].code).toBe('WRONGTYPE');
    await expect(client.call('ECHO', 'next')).resolves.toBe('next');
  });
});

describe('callBuffer()', () => {
  test('bulk replies are Buffers, nil stays null, integers stay numbers', async () => {
    await client.call('SET', 'k', 'abc');
    const v = await client.callBuffer('GET', 'k');
    expect(Buffer.isBuffer(v)).toBe(true);
    expect(v.equals(Buffer.from('abc'))).toBe(true);
    await expect(client.callBuffer('GET', 'missing')).resolves.toBeNull();
    await expect(client.callBuffer('INCR', 'n')).resolves.toBe(1);
  });

  test('bulk elements of arrays are Buffers', async () => {
    await client.call('SET', 'k', 'abc');
    const arr = await client.callBuffer('MGET', 'k', 'missing');
    expect(arr).toHaveLength(2);
    expect(Buffer.isBuffer(arr[0])).toBe(true);
    expect(arr[0].toString()).toBe('abc');
    expect(arr[1]).toBeNull();
  });

  test('the empty bulk string is an empty Buffer', async () => {
    await client.call('SET', 'e', '');
    const v = await client.callBuffer('GET', 'e');
    expect(Buffer.isBuffer(v)).toBe(true);
    expect(v.length).toBe(0);
  });

  test('a 1 MiB value comes back byte for byte', async () => {
    const big = Buffer.alloc(1024 * 1024 + 7);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    await client.call('SET', 'big', big);
    const got = await client.callBuffer('GET', 'big');
    expect(got.length).toBe(big.length);
    expect(got.equals(big)).toBe(true);
  });

  test('error replies still reject with ReplyError', async () => {
    await client.call('SET', 'str', 'x');
    const err = await client.callBuffer('LPUSH', 'str', 'y').catch((e) => e);
    expect(err).toBeInstanceOf(errors.ReplyError);
    expect(err.code).toBe('WRONGTYPE');
  });
});

describe('typed methods', () => {
  test('set / get / getBuffer', async () => {
    await expect(client.set('t', 'value', 60)).resolves.toBe('OK');
    await expect(client.get('t')).resolves.toBe('value');
    const b = await client.getBuffer('t');
    expect(Buffer.isBuffer(b) && b.toString()).toBe('value');
    await expect(client.get('missing')).resolves.toBeNull();
    await expect(client.getBuffer('missing')).resolves.toBeNull();
    const ttl = await rawCommand(db.raw, 'TTL', 't');
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  test('mget keeps order and nulls', async () => {
    await rawCommand(db.raw, 'MSET', 'a', '1', 'c', '3');
    await expect(client.mget(['a', 'b', 'c'])).resolves.toEqual(['1', null, '3']);
  });

  test('del and unlink return how many keys went', async () => {
    await rawCommand(db.raw, 'MSET', 'a', '1', 'b', '2', 'c', '3', 'd', '4');
    await expect(client.del('a', 'b', 'missing')).resolves.toBe(2);
    await expect(client.unlink('c', 'd', 'missing')).resolves.toBe(2);
    expect(await rawCommand(db.raw, 'DBSIZE')).toBe(0);
  });
});
