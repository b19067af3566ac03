'use strict';
// Proves values and keys of any bytes (NUL, CRLF, invalid UTF-8, every byte value, empty)
// round-trip exactly when passed and read as Buffers, and that what the server stores is
// exactly those bytes (checked with an independent connection).
const { createClient } = require('../../lib/redis');
const { suiteDatabase } = require('../helpers/suite-db');
const { rawCommandBuffer, rawPipeline } = require('../helpers/raw-redis');

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

const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const samples = {
  nul: Buffer.from([0]),
  'nul in the middle': Buffer.from('ab\0cd'),
  crlf: Buffer.from('\r\n'),
  'a fake RESP reply': Buffer.from('+OK\r\n$3\r\nfoo\r\n*-1\r\n'),
  'invalid UTF-8': Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc]),
  'a lone surrogate encoding': Buffer.from([0xed, 0xa0, 0x80]),
  'every byte value': everyByte,
  empty: Buffer.alloc(0),
};

describe('binary values', () => {
  test.each(Object.entries(samples))('%s round-trips through set/getBuffer', async (name, value) => {
    const key = `bin:${name}`;
    await client.set(key, value, 60);
    const got = await client.getBuffer(key);
    expect(Buffer.isBuffer(got)).toBe(true);
    expect(got.equals(value)).toBe(true);
    const stored = await rawCommandBuffer(db.raw, 'GET', key);
    expect(stored.equals(value)).toBe(true);
  });

  test.each(Object.entries(samples))('%s round-trips through call/callBuffer', async (name, value) => {
    const key = `bin2:${name}`;
    await client.call('SET', key, value);
    const got = await client.callBuffer('GET', key);
    expect(got.equals(value)).toBe(true);
  });

  test('binary elements of an array reply come back exact', async () => {
    const values = Object.values(samples);
    await client.call('RPUSH', 'list', ...values);
    const got = await client.callBuffer('LRANGE', 'list', 0, -1);
    expect(got).toHaveLength(values.length);
    got.forEach((b, i) => expect(b.equals(values[i])).toBe(true));
  });

  test('strings with NUL and CRLF round-trip as strings', async () => {
    const text = 'line1\r\nline2\0tail\r\n';
    await client.set('s', text, 60);
    await expect(client.get('s')).resolves.toBe(text);
  });

  test('a value that looks like a RESP error reply stays a value', async () => {
    const text = '-ERR not really\r\n';
    await client.call('SET', 'fake', text);
    await expect(client.call('GET', 'fake')).resolves.toBe(text);
    await expect(client.call('ECHO', 'still in step')).resolves.toBe('still in step');
  });
});

describe('binary keys', () => {
  test('Buffer keys with NUL, CRLF and invalid UTF-8 address exactly their own key', async () => {
    const keys = [
      Buffer.from('k\0a'),
      Buffer.from('k\0b'),
      Buffer.from('k\r\nGET x\r\n'),
      Buffer.from([0x6b, 0xff]),
      Buffer.from([0x6b, 0xfe]),
    ];
    for (let i = 0; i < keys.length; i++) await client.set(keys[i], `v${i}`, 60);
    for (let i = 0; i < keys.length; i++) await expect(client.get(keys[i])).resolves.toBe(`v${i}`);
    const [exists] = await rawPipeline(db.raw, [['EXISTS', ...keys]]);
    expect(exists).toBe(keys.length);
    const [dbsize] = await rawPipeline(db.raw, [['DBSIZE']]);
    expect(dbsize).toBe(keys.length);
  });

  test('a key that differs from another only after a NUL is a different key', async () => {
    await client.call('SET', Buffer.from('same\0one'), 'one');
    await client.call('SET', Buffer.from('same\0two'), 'two');
    await expect(client.call('GET', Buffer.from('same\0one'))).resolves.toBe('one');
    await expect(client.call('GET', 'same')).resolves.toBeNull();
  });

  test('mget takes Buffer keys', async () => {
    await client.call('SET', Buffer.from([1, 2, 0, 3]), 'x');
    await expect(client.mget([Buffer.from([1, 2, 0, 3]), Buffer.from([1, 2])])).resolves.toEqual(['x', null]);
  });
});
