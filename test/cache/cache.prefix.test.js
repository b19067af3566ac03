'use strict';
// Proves cacheDelPrefix deletes exactly the keys that literally start with the prefix:
// glob characters (* ? [ ] \) in the prefix are literal, decoy keys that the unescaped
// glob would match survive, an empty prefix is refused, and thousands of keys go with
// the right count returned.
const { suiteDatabase } = require('../helpers/suite-db');
const { rawCommand, rawPipeline } = require('../helpers/raw-redis');

let db;
let redis;
let cache;

beforeAll(async () => {
  db = await suiteDatabase();
  process.env.REDIS_URL = db.url;
  redis = require('../../lib/redis');
  cache = require('../../lib/cache');
});

beforeEach(() => db.flush());

afterAll(async () => {
  const c = redis && redis.getRedisClient();
  if (c) await c.quit();
});

async function seed(keys) {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    await rawCommand(db.raw, 'MSET', ...batch.flatMap((k) => [k, `v:${k}`]));
  }
}

async function allKeys() {
  const keys = await rawCommand(db.raw, 'KEYS', '*');
  return keys.sort();
}

// For each glob character: a prefix containing it, the keys that start with that prefix
// (to delete), and decoys the same prefix would match if it were used as a raw pattern.
const cases = [
  { name: '*', prefix: 'c:*:', targets: ['c:*:1', 'c:*:2'], decoys: ['c:abc:1', 'c:x:2', 'c::3'] },
  { name: '?', prefix: 'c:?:', targets: ['c:?:1', 'c:?:22'], decoys: ['c:a:1', 'c:b:2'] },
  { name: '[ ]', prefix: 'c:[ab]:', targets: ['c:[ab]:1', 'c:[ab]:xyz'], decoys: ['c:a:1', 'c:b:1'] },
  { name: 'unbalanced [', prefix: 'c:[x:', targets: ['c:[x:1'], decoys: ['c:x:1', 'c:[y:1'] },
  { name: ']', prefix: 'c:]:', targets: ['c:]:1'], decoys: ['c:}:1', 'c:):1'] },
  { name: '\\', prefix: 'c:\\a:', targets: ['c:\\a:1', 'c:\\a:2'], decoys: ['c:a:1', 'c:\\b:1'] },
  { name: '\\*', prefix: 'c:\\*', targets: ['c:\\*', 'c:\\*tail'], decoys: ['c:*', 'c:*tail', 'c:\\xtail'] },
  { name: '^ and -', prefix: 'c:[^a-c]:', targets: ['c:[^a-c]:1'], decoys: ['c:d:1', 'c:z:1'] },
];

describe('glob characters in the prefix are literal', () => {
  test.each(cases)('$name', async ({ prefix, targets, decoys }) => {
    await seed([...targets, ...decoys, `other-${prefix}`, `x${prefix}`]);
    await expect(cache.cacheDelPrefix(prefix)).resolves.toBe(targets.length);
    expect(await allKeys()).toEqual([...decoys, `other-${prefix}`, `x${prefix}`].sort());
  });

  test('all the cases at once: only the literal matches go', async () => {
    const everything = cases.flatMap((c) => [...c.targets, ...c.decoys]);
    await seed(everything);
    const c = cases[0];
    await expect(cache.cacheDelPrefix(c.prefix)).resolves.toBe(c.targets.length);
    const left = new Set(await allKeys());
    for (const k of c.targets) expect(left.has(k)).toBe(false);
    expect(left.size).toBe(new Set(everything).size - c.targets.length);
  });
});

describe('what cacheDelPrefix refuses and returns', () => {
  test('an empty prefix is refused and deletes nothing', async () => {
    await seed(['a', 'b', 'c']);
    let error;
    try {
      await cache.cacheDelPrefix('');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(Error);
    expect([TypeError, RangeError].some((t) => error instanceof t)).toBe(true);
    expect(error.message).toMatch(/prefix/i);
    expect(await rawCommand(db.raw, 'DBSIZE')).toBe(3);
  });

  test('a prefix that is not a string is refused with a TypeError', async () => {
    let error;
    try {
      await cache.cacheDelPrefix(undefined);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/prefix/i);
  });

  test('a prefix that matches nothing returns 0', async () => {
    await seed(['a:1']);
    await expect(cache.cacheDelPrefix('nothing:')).resolves.toBe(0);
    expect(await rawCommand(db.raw, 'DBSIZE')).toBe(1);
  });

  test('the route pattern: one owner and campaign, siblings untouched', async () => {
    const keys = [
      'cache:stats:campaign:v1:owner1:42',
      'cache:stats:campaign:v1:owner1:43',
      'cache:stats:campaign:v1:owner10:42',
      'cache:stats:campaign:v1:owner2:42',
      'cache:stats:campaign:v2:owner1:42',
    ];
    await seed(keys);
    await expect(cache.cacheDelPrefix('cache:stats:campaign:v1:owner1:')).resolves.toBe(2);
    expect(await allKeys()).toEqual(keys.slice(2).sort());
  });

  test('non-string keys of other types under the prefix are deleted too', async () => {
    await rawPipeline(db.raw, [
      ['HSET', 'p:hash', 'f', 'v'],
      ['RPUSH', 'p:list', 'x'],
      ['SADD', 'p:set', 'm'],
      ['SET', 'q:keep', 'v'],
    ]);
    await expect(cache.cacheDelPrefix('p:')).resolves.toBe(3);
    expect(await allKeys()).toEqual(['q:keep']);
  });
});

describe('key names of any bytes', () => {
  test('names with invalid UTF-8, NUL and CRLF after a non-ASCII prefix go; near misses stay', async () => {
    const prefix = 'cache:é:';
    const p = Buffer.from(prefix);
    const targets = [
      Buffer.concat([p, Buffer.from([0xff, 0xfe])]),
      Buffer.concat([p, Buffer.from('a\0b\r\nc')]),
      Buffer.concat([p, Buffer.from('plain')]),
    ];
    // The same bytes as the prefix but for its last byte, and the prefix's Latin-1 look-alike.
    const decoys = [
      Buffer.concat([p.subarray(0, p.length - 1), Buffer.from([0xff])]),
      Buffer.from(p.toString('latin1'), 'utf8'),
      Buffer.from('cache:e:plain'),
    ];
    for (const k of [...targets, ...decoys]) await rawCommand(db.raw, 'SET', k, 'v');
    await expect(cache.cacheDelPrefix(prefix)).resolves.toBe(targets.length);
    for (const k of targets) expect(await rawCommand(db.raw, 'EXISTS', k)).toBe(0);
    for (const k of decoys) expect(await rawCommand(db.raw, 'EXISTS', k)).toBe(1);
  });
});

describe('many keys', () => {
  test('20,000 keys under the prefix among 20,000 decoys: all go, the count is exact', async () => {
    const targets = Array.from({ length: 20000 }, (_, i) => `bulk:a:${i}`);
    const decoys = Array.from({ length: 20000 }, (_, i) => `bulk:b:${i}`);
    await seed([...targets, ...decoys]);
    await expect(cache.cacheDelPrefix('bulk:a:')).resolves.toBe(targets.length);
    expect(await rawCommand(db.raw, 'DBSIZE')).toBe(decoys.length);
    expect(await rawCommand(db.raw, 'SCAN', '0', 'MATCH', 'bulk:a:*', 'COUNT', '100000')).toEqual(['0', []]);
  });

  test('the event loop keeps turning while a large prefix is deleted', async () => {
    const targets = Array.from({ length: 20000 }, (_, i) => `turn:${i}`);
    await seed(targets);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const n = await cache.cacheDelPrefix('turn:');
    clearInterval(timer);
    expect(n).toBe(targets.length);
    expect(ticks).toBeGreaterThan(0);
  });
});
