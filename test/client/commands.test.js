'use strict';
// Proves the command methods generated from the command table (lib/client/commands.js):
// one for every command and its Buffer variant, hand-written methods left alone; ioredis's
// argument conventions (arrays flattened, objects and Maps as pairs for HSET / HMSET / MSET)
// and HGETALL as an object, checked against the real server and an independent connection;
// callbacks; refusals at the call that name the command; and prefixKeys on its own.
const { createClient, RedisClient } = require('../../lib/redis');
const { COMMANDS, normalizeArgs, replyTransforms, prefixKeys, installCommands, commandMethods, handWritten } = require('../../lib/client/commands');
const { suiteDatabase } = require('../helpers/suite-db');
const { rawCommand, rawCommandBuffer } = require('../helpers/raw-redis');
const { spawnSync } = require('child_process');

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

// Written by hand on RedisClient (get and set for their fast paths, multi, subscribe,
// watch, quit… for what they do beyond sending a command).
const HAND_WRITTEN = COMMANDS.filter((name) => handWritten(RedisClient.prototype, name));

describe('the methods', () => {
  test('every name in COMMANDS is a method, with a Buffer variant unless written by hand', () => {
    expect(COMMANDS.length).toBeGreaterThan(200);
    for (const name of COMMANDS) {
      expect(typeof client[name]).toBe('function');
      if (!HAND_WRITTEN.includes(name)) expect(typeof client[`${name}Buffer`]).toBe('function');
    }
    expect(COMMANDS).toEqual(expect.arrayContaining(['hset', 'hgetall', 'incr', 'xread', 'evalsha', 'config', 'client']));
  });

  test('names that are not identifiers are left to call()', () => {
    for (const name of COMMANDS) expect(name).toMatch(/^[a-z_$][a-z0-9_$]*$/);
    expect(COMMANDS).not.toContain('restore-asking');
  });

  test('hand-written methods are not overwritten, and keep their Buffer variant to themselves', async () => {
    expect(commandMethods(RedisClient.prototype).map((m) => m.method)).toEqual(
      expect.not.arrayContaining([...HAND_WRITTEN, 'getBuffer', 'setBuffer', 'mgetBuffer', 'quitBuffer']),
    );
    // set(key, value, ttlSec) is the hand-written one: a third argument is a TTL, not a flag.
    await client.set('k', 'v', 60);
    const ttl = await rawCommand(db.raw, 'TTL', 'k');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    expect(client.getBuffer).toBe(RedisClient.prototype.getBuffer);
    expect(client.setBuffer).toBeUndefined();
    expect(HAND_WRITTEN).toEqual(expect.arrayContaining(['get', 'set', 'quit', 'multi', 'subscribe', 'watch']));
  });

  test('a method carries its command name, and is not enumerable', () => {
    expect(client.hgetall.name).toBe('hgetall');
    expect(client.hgetallBuffer.name).toBe('hgetallBuffer');
    expect(Object.keys(RedisClient.prototype)).not.toContain('hgetall');
  });
});

describe('hashes', () => {
  test('hset, hget and hgetall as an object', async () => {
    await expect(client.hset('h', 'name', 'Ada', 'visits', 3)).resolves.toBe(2);
    await expect(client.hget('h', 'name')).resolves.toBe('Ada');
    await expect(client.hget('h', 'missing')).resolves.toBeNull();
    await expect(client.hgetall('h')).resolves.toEqual({ name: 'Ada', visits: '3' });
    await expect(client.hgetall('no such hash')).resolves.toEqual({});
    // By name, in any case, through call(), callBuffer() and the builders too.
    await expect(client.call('HGETALL', 'h')).resolves.toEqual({ name: 'Ada', visits: '3' });
    await expect(client.callBuffer('hgetall', 'h')).resolves.toEqual({ name: Buffer.from('Ada'), visits: Buffer.from('3') });
    await expect(client.multi().call('HGETALL', 'h').exec()).resolves.toEqual([{ name: 'Ada', visits: '3' }]);
    await expect(client.pipeline().call('HgetAll', 'h').exec()).resolves.toEqual([[null, { name: 'Ada', visits: '3' }]]);
  });

  test('hset takes an object or a Map of fields', async () => {
    await expect(client.hset('o', { a: 1, b: 'two', c: Buffer.from('three') })).resolves.toBe(3);
    await expect(client.hset('m', new Map([['x', 'y'], [Buffer.from('bin'), 7]]))).resolves.toBe(2);
    await expect(client.hmset('hm', { k: 'v' })).resolves.toBe('OK');
    expect(await rawCommand(db.raw, 'HGETALL', 'o')).toEqual(['a', '1', 'b', 'two', 'c', 'three']);
    expect(await rawCommand(db.raw, 'HGETALL', 'm')).toEqual(['x', 'y', 'bin', '7']);
    expect(await rawCommand(db.raw, 'HGET', 'hm', 'k')).toBe('v');
  });

  test('fields named like Object properties are own properties, never a prototype', async () => {
    await client.hset('p', '__proto__', 'x', 'constructor', 'y', 'toString', 'z');
    const got = await client.hgetall('p');
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.keys(got).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    expect(Object.getOwnPropertyDescriptor(got, '__proto__').value).toBe('x');
    expect(got.constructor).toBe('y');
  });
});

describe('counters, expiry, sets and strings', () => {
  test('incr, incrby, expire and ttl', async () => {
    await expect(client.incr('n')).resolves.toBe(1);
    await expect(client.incrby('n', 41)).resolves.toBe(42);
    await expect(client.incrby('n', 10n)).resolves.toBe(52);
    await expect(client.expire('n', 100)).resolves.toBe(1);
    const ttl = await client.ttl('n');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(100);
    await expect(client.ttl('missing')).resolves.toBe(-2);
  });

  test('sadd takes an array as its members', async () => {
    await expect(client.sadd('s', ['a', 'b'], 'c', [1, 2])).resolves.toBe(5);
    expect((await client.smembers('s')).sort()).toEqual(['1', '2', 'a', 'b', 'c']);
  });

  test('multi-key commands take an array of keys', async () => {
    await rawCommand(db.raw, 'MSET', 'a', '1', 'b', '2', 'c', '3');
    await expect(client.exists(['a', 'b', 'missing'])).resolves.toBe(2);
    await expect(client.touch(['a', 'b'], 'c')).resolves.toBe(3);
    expect(normalizeArgs('del', [['a', 'b']])).toEqual(['a', 'b']);
  });

  test('mset and msetnx take an object or a Map', async () => {
    await expect(client.mset({ k1: 'v1', k2: 2 })).resolves.toBe('OK');
    await expect(client.mset(new Map([['k3', 'v3']]))).resolves.toBe('OK');
    await expect(client.msetnx({ k1: 'other', k4: 'v4' })).resolves.toBe(0);
    await expect(client.mget(['k1', 'k2', 'k3', 'k4'])).resolves.toEqual(['v1', '2', 'v3', null]);
  });

  test('subcommand containers are methods too', async () => {
    const reply = await client.config('GET', 'maxmemory');
    expect(reply[0]).toBe('maxmemory');
    await expect(client.client('ID')).resolves.toEqual(expect.any(Number));
    await client.lpush('l', 'x');
    await expect(client.object('ENCODING', 'l')).resolves.toEqual(expect.any(String));
  });
});

describe('Buffer variants', () => {
  const bytes = Buffer.from([0, 0xff, 0x0d, 0x0a, 0xc3, 0x28]);

  test('return bulk replies as Buffers, byte for byte', async () => {
    await client.hset('hb', 'f', bytes, 'g', 'text');
    const one = await client.hgetBuffer('hb', 'f');
    expect(Buffer.isBuffer(one)).toBe(true);
    expect(one.equals(bytes)).toBe(true);
    const all = await client.hgetallBuffer('hb');
    expect(Object.keys(all)).toEqual(['f', 'g']);
    expect(all.f.equals(bytes)).toBe(true);
    expect(all.g).toEqual(Buffer.from('text'));
    await client.rpush(Buffer.from([1, 2]), bytes);
    const list = await client.lrangeBuffer(Buffer.from([1, 2]), 0, -1);
    expect(list).toHaveLength(1);
    expect(list[0].equals(bytes)).toBe(true);
    expect((await rawCommandBuffer(db.raw, 'HGET', 'hb', 'f')).equals(bytes)).toBe(true);
  });

  test('leave integers numbers and missing values null', async () => {
    await expect(client.incrBuffer('n')).resolves.toBe(1);
    await expect(client.hgetBuffer('missing', 'f')).resolves.toBeNull();
  });
});

describe('callbacks', () => {
  test('a trailing function is called with (null, result), and the promise still resolves', async () => {
    const calls = [];
    const promise = client.incr('cb', (...args) => calls.push(args));
    await expect(promise).resolves.toBe(1);
    await new Promise(setImmediate);
    expect(calls).toEqual([[null, 1]]);
  });

  test('the callback gets the transformed reply', async () => {
    await client.hset('h', { a: '1' });
    const got = await new Promise((resolve, reject) => {
      client.hgetall('h', (err, obj) => (err ? reject(err) : resolve(obj)));
    });
    expect(got).toEqual({ a: '1' });
  });

  test('a failure calls it with (err) alone, and the promise still rejects', async () => {
    await client.hset('h', 'f', 'v');
    const calls = [];
    const promise = client.incr('h', (...args) => calls.push(args));
    await expect(promise).rejects.toMatchObject({ name: 'ReplyError', code: 'WRONGTYPE' });
    await new Promise(setImmediate);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toHaveLength(1);
    expect(calls[0][0]).toMatchObject({ code: 'WRONGTYPE' });
  });
});

describe('callbacks, in a process of their own', () => {
  // Methods on a prototype of their own whose send rejects; the script prints what the
  // process saw. Run apart so that an unhandled rejection or an uncaught exception is seen as
  // Node sees it, not as Jest does.
  function runScript(body) {
    const script = `
      const { installCommands } = require(${JSON.stringify(require.resolve('../../lib/client/commands'))});
      const proto = {};
      installCommands(proto, () => Promise.reject(Object.assign(new Error('no'), { code: 'ERR' })), 1);
      const seen = [];
      process.on('unhandledRejection', () => seen.push('unhandledRejection'));
      process.on('uncaughtException', (err) => seen.push('uncaught ' + err.message));
      ${body}
      setTimeout(() => console.log(JSON.stringify(seen)), 50);
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout);
  }

  test('a failure given to a callback is not also an unhandled rejection', () => {
    expect(runScript("Object.create(proto).incr('k', (err) => seen.push('callback ' + err.code));")).toEqual(['callback ERR']);
  });

  test('an exception thrown by the callback is an uncaught exception, not swallowed', () => {
    expect(runScript("Object.create(proto).incr('k', () => { throw new Error('from the callback'); });")).toEqual([
      'uncaught from the callback',
    ]);
  });
});

describe('refusals at the call', () => {
  test.each([
    ['undefined', () => client.hset('h', 'f', undefined), /^hset: argument 3 must be .*, got undefined$/],
    ['null in an array', () => client.sadd('s', ['a', null]), /^sadd: argument 2 \(element 1\) must be .*, got object null$/],
    ['a boolean', () => client.incrby('n', true), /^incrby: argument 2 must be .*, got boolean true$/],
    ['a field of an object', () => client.hset('h', { a: {} }), /^hset: field "a" of argument 2 must be .*, got object$/],
    ['an object elsewhere', () => client.sadd('s', { a: 1 }), /^sadd: argument 2 must be .*, got object$/],
    ['a symbol in a Buffer variant', () => client.hgetBuffer('h', Symbol('f')), /^hget: argument 2 must be .*, got symbol/],
  ])('%s is a TypeError naming the command and the position, and nothing is sent', async (_what, call, message) => {
    let thrown;
    try {
      call();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect(thrown.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown.message).toMatch(message);
    await expect(client.exists('h', 's', 'n')).resolves.toBe(0);
  });

  test('the native limits still apply (maxValueBytes)', () => {
    const small = createClient({ url: db.url, maxValueBytes: 16 });
    try {
      expect(() => small.hset('h', 'f', 'x'.repeat(17))).toThrow(expect.objectContaining({ code: 'ERR_VALUE_TOO_LARGE' }));
    } finally {
      small.disconnect();
    }
  });
});

describe('installCommands, on a prototype of our own', () => {
  const REPLY_BUFFERS = 1 << 5;

  function install(proto) {
    const sent = [];
    const send = function (flags, name, args) {
      sent.push({ self: this, flags, name, args });
      if (name === 'hgetall') return Promise.resolve(['f', 'v']);
      return Promise.resolve('reply');
    };
    installCommands(proto, send, REPLY_BUFFERS);
    return sent;
  }

  test('sends the lowercase name, normalized arguments and the flags, with `this`', async () => {
    const proto = {};
    const sent = install(proto);
    const self = Object.create(proto);
    await expect(self.hset('k', { a: 1 })).resolves.toBe('reply');
    await expect(self.hgetallBuffer('k')).resolves.toEqual({ f: 'v' });
    await self.zadd('z', 1, 'a');
    expect(sent).toEqual([
      { self, flags: 0, name: 'hset', args: ['k', 'a', 1] },
      { self, flags: REPLY_BUFFERS, name: 'hgetall', args: ['k'] },
      { self, flags: 0, name: 'zadd', args: ['z', 1, 'a'] },
    ]);
  });

  test('a method or a Buffer variant already on the prototype is kept', () => {
    const own = { hget() { return 'mine'; } };
    const inherited = Object.create({ zaddBuffer() { return 'theirs'; } });
    install(own);
    install(inherited);
    expect(own.hget()).toBe('mine');
    expect(own.hgetBuffer).toBeUndefined();
    expect(inherited.zaddBuffer()).toBe('theirs');
    expect(typeof inherited.zadd).toBe('function');
  });

  test('installing again replaces only its own methods', () => {
    const proto = {};
    install(proto);
    const first = proto.hset;
    const sent = install(proto);
    expect(proto.hset).not.toBe(first);
    proto.hset('k', 'f', 'v');
    expect(sent).toHaveLength(1);
  });
});

describe('normalizeArgs and replyTransforms', () => {
  test('returns the same array when nothing changes, a new one otherwise, never changing its input', () => {
    const plain = ['k', 1, 'v'];
    expect(normalizeArgs('hset', plain)).toBe(plain);
    const nested = ['k', ['a', 'b']];
    expect(normalizeArgs('sadd', nested)).toEqual(['k', 'a', 'b']);
    expect(nested).toEqual(['k', ['a', 'b']]);
  });

  test('objects are pairs only where ioredis takes them: last, at their position', () => {
    expect(normalizeArgs('mset', [{ a: 1 }])).toEqual(['a', 1]);
    expect(normalizeArgs('hset', ['h', new Map([['f', 2n]])])).toEqual(['h', 'f', '2']);
    expect(() => normalizeArgs('hset', ['h', { a: 1 }, 'x'])).toThrow(/^hset: argument 2 must be/);
    expect(() => normalizeArgs('mset', ['k', { a: 1 }])).toThrow(/^mset: argument 2 must be/);
  });

  test('only hgetall has a reply transform', () => {
    expect(Object.keys(replyTransforms)).toEqual(['hgetall']);
    expect(replyTransforms.hgetall(['a', '1', 'b', '2'])).toEqual({ a: '1', b: '2' });
  });
});

describe('prefixKeys', () => {
  const cases = [
    ['get', ['k'], ['p:k']],
    ['set', ['k', 'v', 'EX', 10], ['p:k', 'v', 'EX', 10]],
    ['mget', ['a', 'b', 'c'], ['p:a', 'p:b', 'p:c']],
    ['del', ['a', 'b'], ['p:a', 'p:b']],
    ['mset', ['a', '1', 'b', '2'], ['p:a', '1', 'p:b', '2']],
    ['hset', ['h', 'f', 'v', 'g', 'w'], ['p:h', 'f', 'v', 'g', 'w']],
    ['evalsha', ['sha1', 2, 'k1', 'k2', 'arg'], ['sha1', 2, 'p:k1', 'p:k2', 'arg']],
    ['eval', ['return 1', 0, 'arg'], ['return 1', 0, 'arg']],
    ['xread', ['COUNT', 10, 'STREAMS', 's1', 's2', '0-0', '$'], ['COUNT', 10, 'STREAMS', 'p:s1', 'p:s2', '0-0', '$']],
    ['config', ['GET', 'maxmemory'], ['GET', 'maxmemory']],
    ['object', ['ENCODING', 'k'], ['ENCODING', 'p:k']],
    ['GET', ['k'], ['p:k']],
  ];

  test.each(cases)('%s %j', (name, args, expected) => {
    const copy = args.slice();
    const out = prefixKeys(name, args, 'p:');
    expect(out).toEqual(expected);
    expect(out).not.toBe(args);
    expect(args).toEqual(copy);
  });

  test('a Buffer prefix makes every key a Buffer; a Buffer key stays one under a string prefix', () => {
    const prefix = Buffer.from([0xff, 0x3a]);
    const out = prefixKeys('mset', [Buffer.from([1]), 'v', 'k', Buffer.from([2]), 7, 'w'], prefix);
    expect(out).toEqual([Buffer.from([0xff, 0x3a, 1]), 'v', Buffer.from([0xff, 0x3a, 0x6b]), Buffer.from([2]), Buffer.from('\xff:7', 'latin1'), 'w']);
    expect(prefixKeys('get', [Buffer.from([0])], 'p:')).toEqual([Buffer.from([0x70, 0x3a, 0])]);
  });

  test('a command the table does not know is copied unprefixed; a bad prefix is refused', () => {
    const args = ['k'];
    const out = prefixKeys('json.get', args, 'p:');
    expect(out).toEqual(['k']);
    expect(out).not.toBe(args);
    expect(() => prefixKeys('get', ['k'], 5)).toThrow(TypeError);
  });

  test('prefixed keys reach the server where the command reads them', async () => {
    const sha = await client.script('LOAD', "return redis.call('MGET', KEYS[1], KEYS[2])");
    await client.mset(prefixKeys('mset', normalizeArgs('mset', [{ a: '1', b: '2' }]), 'p:'));
    expect(await rawCommand(db.raw, 'MGET', 'p:a', 'p:b')).toEqual(['1', '2']);
    await expect(client.evalsha(...prefixKeys('evalsha', [sha, 2, 'a', 'b'], 'p:'))).resolves.toEqual(['1', '2']);
  });
});
