'use strict';
// The embedded store (lib/store/memory-store.js over the native MemoryStore): values of any
// bytes, TTLs, LRU bounds by entries and by bytes, literal prefix deletion, sweeping,
// and the errors its options and arguments give. No Redis involved.
const { spawnSync } = require('child_process');
const path = require('path');
const { MemoryStore, DEFAULTS, MAX_ENTRIES, MIN_BYTES } = require('../../lib/store/memory-store');

/**
 * Expects `fn` to throw an error named `name` whose message matches `message`. Errors made
 * by the native addon belong to Node's main realm, not to the one Jest runs a test file
 * in, so they are told apart by name rather than by constructor.
 */
function expectThrows(fn, name, message = /./) {
  let caught;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeDefined();
  expect(caught.name).toBe(name);
  expect(caught.message).toMatch(message);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `predicate()` holds, checking every few milliseconds (no deadline of its own). */
async function eventually(predicate) {
  while (!predicate()) await sleep(5);
}

const stores = [];
function makeStore(options) {
  const store = new MemoryStore(options);
  stores.push(store);
  return store;
}
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
});

describe('values', () => {
  test('set, get, overwrite and miss', () => {
    const store = makeStore();
    expect(store.get('missing')).toBeNull();
    expect(store.set('k', 'one')).toBe(true);
    expect(store.get('k')).toBe('one');
    expect(store.set('k', 'a much longer second value')).toBe(true);
    expect(store.get('k')).toBe('a much longer second value');
    expect(store.set('k', '3')).toBe(true);
    expect(store.get('k')).toBe('3');
    expect(store.stats().entries).toBe(1);
  });

  test('binary values keep every byte: NUL, CRLF, invalid UTF-8, empty', () => {
    const store = makeStore();
    const bytes = Buffer.from([0x00, 0x0d, 0x0a, 0xff, 0xfe, 0x80, 0x41, 0x00, 0x0d, 0x0a]);
    store.set('bin', bytes);
    expect(store.getBuffer('bin').equals(bytes)).toBe(true);
    // As a string the invalid sequences decode to U+FFFD, as Buffer#toString does.
    expect(store.get('bin')).toBe(bytes.toString('utf8'));

    store.set('empty', '');
    expect(store.get('empty')).toBe(''); // A hit, not a miss.
    expect(store.getBuffer('empty').length).toBe(0);
    store.set('emptybuf', Buffer.alloc(0));
    expect(store.get('emptybuf')).toBe('');
  });

  test('keys are bytes: a string and its UTF-8 Buffer are the same key', () => {
    const store = makeStore();
    const keys = ['plain', 'é', '中文', '😀', 'a\r\nb\0c', 'x'.repeat(3000)];
    for (const key of keys) {
      store.set(Buffer.from(key), `v:${key}`);
      expect(store.get(key)).toBe(`v:${key}`);
    }
    store.set(Buffer.from([0xff, 0x00]), 'raw');
    expect(store.get(Buffer.from([0xff, 0x00]))).toBe('raw');
    expect(store.get(Buffer.from([0xff]))).toBeNull();
  });

  test('unicode values round-trip as strings', () => {
    const store = makeStore();
    const value = JSON.stringify({ name: 'Zoë 中文 😀', list: [1, 2, 3] });
    store.set('u', value);
    expect(store.get('u')).toBe(value);
    expect(store.getBuffer('u').equals(Buffer.from(value))).toBe(true);
  });

  test('values of every size class, moving between them on overwrite', () => {
    const store = makeStore();
    for (const size of [0, 1, 7, 8, 100, 1000, 1025, 4096, 5000, 70000, 10, 3000]) {
      const value = Buffer.alloc(size, size % 251);
      store.set('k', value);
      expect(store.getBuffer('k').equals(value)).toBe(true);
    }
    expect(store.stats().entries).toBe(1);
  });

  test('mget answers in order with null for misses', () => {
    const store = makeStore();
    store.set('a', '1');
    store.set('c', '3');
    expect(store.mget(['a', 'b', 'c', Buffer.from('a')])).toEqual(['1', null, '3', '1']);
    expect(store.mget([])).toEqual([]);
  });

  test('del says whether a value was there', () => {
    const store = makeStore();
    store.set('k', 'v');
    expect(store.del('k')).toBe(true);
    expect(store.del('k')).toBe(false);
    expect(store.get('k')).toBeNull();
  });
});

describe('TTL', () => {
  test('an entry is there before its TTL and gone after it', async () => {
    const store = makeStore();
    store.set('short', 'v', 50);
    store.set('long', 'v', 60 * 60 * 1000);
    store.set('forever', 'v', 0);
    store.set('default', 'v');
    expect(store.get('long')).toBe('v');
    await sleep(150);
    expect(store.get('short')).toBeNull();
    expect(store.get('long')).toBe('v');
    expect(store.get('forever')).toBe('v');
    expect(store.get('default')).toBe('v');
    expect(store.stats().expired).toBe(1);
  });

  test('a fraction of a millisecond still expires (it never means "no TTL")', async () => {
    const store = makeStore();
    store.set('k', 'v', 0.4);
    await sleep(60);
    expect(store.get('k')).toBeNull();
  });

  test('overwriting replaces the TTL', async () => {
    const store = makeStore();
    store.set('k', 'v', 50);
    store.set('k', 'v2', 0);
    await sleep(150);
    expect(store.get('k')).toBe('v2');
  });

  test('sweep removes expired entries without reading them, within its budget', async () => {
    const store = makeStore({ sweepIntervalMs: 2 ** 31 - 1 });
    for (let i = 0; i < 100; i++) store.set(`gone:${i}`, 'v', 30);
    for (let i = 0; i < 20; i++) store.set(`kept:${i}`, 'v');
    await sleep(120);
    const first = store.sweep(10);
    expect(first).toBeLessThanOrEqual(10);
    const rest = store.sweep(1000);
    expect(first + rest).toBe(100);
    const stats = store.stats();
    expect(stats.entries).toBe(20);
    expect(stats.expired).toBe(100);
  });

  test('the store sweeps on its own interval', async () => {
    const store = makeStore({ sweepIntervalMs: 20 });
    for (let i = 0; i < 50; i++) store.set(`k${i}`, 'v', 10);
    await eventually(() => store.stats().entries === 0);
    expect(store.stats().expired).toBe(50);
  });
});

describe('LRU bounds', () => {
  test('by entries: the least recently used goes first and a read refreshes', () => {
    const store = makeStore({ maxEntries: 3 });
    store.set('a', '1');
    store.set('b', '2');
    store.set('c', '3');
    expect(store.get('a')).toBe('1');
    store.set('d', '4');
    expect(store.get('b')).toBeNull();
    expect(store.mget(['a', 'c', 'd'])).toEqual(['1', '3', '4']);
    expect(store.stats()).toMatchObject({ entries: 3, maxEntries: 3, evictions: 1 });
  });

  // Values over 4 KiB take blocks of their own size, so each adds the same bytes; an
  // unbounded twin (same maxEntries, so the same bucket table) says what three and four
  // such entries make the store hold.
  test('by bytes: the memory the store holds', () => {
    const value = (c) => c.repeat(30000);
    const twin = makeStore({ maxEntries: 100 });
    for (const k of ['a', 'b', 'c']) twin.set(k, value(k));
    const three = twin.stats().bytes;
    twin.set('d', value('d'));
    const four = twin.stats().bytes;

    const store = makeStore({ maxEntries: 100, maxBytes: four - 1 });
    for (const k of ['a', 'b', 'c']) store.set(k, value(k));
    expect(store.stats().bytes).toBe(three);
    store.get('a');
    // Twice the size: "b" and then "c" make room, "a" was read more recently.
    store.set('d', 'd'.repeat(60100));
    // (Compared as booleans, so that a failure does not print 30,000 characters.)
    expect(store.get('b') === null).toBe(true);
    expect(store.get('c') === null).toBe(true);
    expect(store.get('a') === value('a')).toBe(true);
    expect(store.get('d') === 'd'.repeat(60100)).toBe(true);
    expect(store.stats()).toMatchObject({ entries: 2, evictions: 2, maxBytes: four - 1 });
    expect(store.stats().bytes).toBeLessThanOrEqual(four - 1);
  });

  test('an entry that does not fit in maxBytes alone is refused, and leaves no stale value', () => {
    const store = makeStore({ maxBytes: MIN_BYTES });
    store.set('other', 'x');
    store.set('k', 'small');
    expect(store.set('k', Buffer.alloc(MIN_BYTES))).toBe(false);
    expect(store.get('k')).toBeNull();
    expect(store.get('other')).toBe('x');
    expect(store.set('k', Buffer.alloc(MIN_BYTES / 2))).toBe(true);
    expect(store.stats().bytes).toBeLessThanOrEqual(MIN_BYTES);
  });
});

describe('deletePrefix', () => {
  test('takes the prefix literally, glob-looking characters included', () => {
    const store = makeStore();
    const keys = ['a*', 'a*1', 'a*:x', 'a?', 'a?b', 'a[', 'a[b]', 'a', 'ab', 'a1', 'b*', 'A*', '\\a*', 'xa*', 'a\\*'];
    for (const k of keys) store.set(k, 'v');
    const remaining = () => keys.filter((k) => store.get(k) !== null);

    expect(store.deletePrefix('a*')).toBe(3);
    expect(remaining()).toEqual(['a?', 'a?b', 'a[', 'a[b]', 'a', 'ab', 'a1', 'b*', 'A*', '\\a*', 'xa*', 'a\\*']);
    expect(store.deletePrefix('a?')).toBe(2);
    expect(store.deletePrefix('a[')).toBe(2);
    expect(store.deletePrefix('a\\')).toBe(1);
    expect(remaining()).toEqual(['a', 'ab', 'a1', 'b*', 'A*', '\\a*', 'xa*']);
    expect(store.deletePrefix('nothing')).toBe(0);
    expect(store.deletePrefix(Buffer.from('a'))).toBe(3);
    expect(remaining()).toEqual(['b*', 'A*', '\\a*', 'xa*']);
  });

  test('deletePrefixAsync deletes the same keys in steps, yielding between them', async () => {
    const store = makeStore({ maxEntries: 50000 });
    for (let i = 0; i < 20000; i++) store.set(`${i % 4 === 0 ? 'a*' : 'a?'}:${i}`, 'v');
    // A chain of setImmediate callbacks advances only when the event loop gets a turn.
    let turns = 0;
    let done = false;
    const turn = () => {
      turns++;
      if (!done) setImmediate(turn);
    };
    setImmediate(turn);
    const removed = await store.deletePrefixAsync('a*');
    done = true;
    expect(removed).toBe(5000);
    expect(store.stats().entries).toBe(15000);
    expect(store.get('a*:0')).toBeNull();
    expect(store.get('a?:1')).toBe('v');
    expect(turns).toBeGreaterThan(0); // 20000 entries take several steps, with turns between.
    await expect(store.deletePrefixAsync('')).rejects.toThrow('prefix must not be empty');
  });

  test('matches bytes, not characters', () => {
    const store = makeStore();
    store.set('é1', 'v'); // 0xc3 0xa9 0x31
    store.set(Buffer.from([0xc3, 0x00]), 'v');
    expect(store.deletePrefix(Buffer.from([0xc3]))).toBe(2);
  });

  test('refuses an empty prefix', () => {
    const store = makeStore();
    store.set('k', 'v');
    expectThrows(() => store.deletePrefix(''), 'RangeError', /prefix must not be empty/);
    expectThrows(() => store.deletePrefix(Buffer.alloc(0)), 'RangeError');
    expectThrows(() => store.deletePrefix(5), 'TypeError', /prefix must be a string or a Buffer/);
    expect(store.get('k')).toBe('v');
  });
});

describe('arguments and options', () => {
  test('defaults', () => {
    const store = makeStore();
    expect(DEFAULTS).toEqual({ maxEntries: 100000, maxBytes: 64 * 1024 * 1024, sweepIntervalMs: 1000 });
    const stats = store.stats();
    expect(stats).toEqual({
      entries: 0,
      bytes: expect.any(Number), // The bucket table, made for the bounds up front.
      maxEntries: DEFAULTS.maxEntries,
      maxBytes: DEFAULTS.maxBytes,
      hits: 0,
      misses: 0,
      evictions: 0,
      expired: 0,
      compactions: 0,
    });
    expect(stats.bytes).toBeGreaterThan(0);
    expect(stats.bytes).toBeLessThan(2 * 1024 * 1024);
  });

  test.each([
    [{ maxEntries: 0 }, 'RangeError', /maxEntries.*got number 0/],
    [{ maxEntries: 1.5 }, 'RangeError', /maxEntries.*got number 1\.5/],
    [{ maxEntries: MAX_ENTRIES + 1 }, 'RangeError', /maxEntries/],
    [{ maxEntries: '10' }, 'TypeError', /maxEntries must be a number, got string '10'/],
    [{ maxBytes: -1 }, 'RangeError', /maxBytes.*got number -1/],
    [{ maxBytes: MIN_BYTES - 1 }, 'RangeError', new RegExp(`maxBytes must be an integer >= ${MIN_BYTES}, got number ${MIN_BYTES - 1}`)],
    [{ maxBytes: NaN }, 'RangeError', /maxBytes.*got number NaN/],
    [{ maxBytes: null }, 'TypeError', /maxBytes must be a number, got object null/],
    [{ sweepIntervalMs: 0 }, 'RangeError', /sweepIntervalMs/],
    [{ sweepIntervalMs: Infinity }, 'RangeError', /sweepIntervalMs.*Infinity/],
    [{ sweepIntervalMs: 2 ** 31 }, 'RangeError', /sweepIntervalMs/],
  ])('option %p is refused', (options, name, message) => {
    expectThrows(() => new MemoryStore(options), name, message);
  });

  test('options must be an object', () => {
    expectThrows(() => new MemoryStore(null), 'TypeError', /options must be an object, got object null/);
    expectThrows(() => new MemoryStore(5), 'TypeError', /options must be an object, got number 5/);
  });

  test('keys and values must be strings or Buffers, TTLs non-negative numbers', () => {
    const store = makeStore();
    expectThrows(() => store.get(1), 'TypeError', /key must be a string or a Buffer/);
    expectThrows(() => store.get(), 'TypeError', /key must be a string or a Buffer/);
    expectThrows(() => store.set('k', { a: 1 }), 'TypeError', /value must be a string or a Buffer/);
    expectThrows(() => store.set('k', 'v', -1), 'RangeError', /ttlMs must be a non-negative number, got -1/);
    expectThrows(() => store.set('k', 'v', NaN), 'RangeError', /got NaN/);
    expectThrows(() => store.set('k', 'v', '10'), 'TypeError', /ttlMs must be a number/);
    expectThrows(() => store.mget('k'), 'TypeError', /keys must be an array/);
    expectThrows(() => store.mget(['a', 2]), 'TypeError', /each key must be a string or a Buffer/);
    expect(store.stats().entries).toBe(0);
  });
});

describe('lifetime', () => {
  test('clear() and close() drop every entry', () => {
    const store = makeStore();
    store.set('a', '1');
    store.clear();
    expect(store.get('a')).toBeNull();
    store.set('b', '2');
    store.close();
    store.close();
    expect(store.stats().entries).toBe(0);
  });

  test('the sweep timer never keeps the process alive', () => {
    const script = `
      const { MemoryStore } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'lib', 'store', 'memory-store'))});
      const store = new MemoryStore({ sweepIntervalMs: 10 });
      store.set('k', 'v', 1000);
      globalThis.keep = store;
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull(); // Killed by the timeout would mean the timer held it.
    expect(r.status).toBe(0);
  });
});
