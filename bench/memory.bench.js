'use strict';
// The embedded store against lru-cache, the library an API would otherwise pick for an
// in-process cache.
//
// Memory: 1M entries (20-byte keys, distinct 100-byte values, a TTL on each), filled by
// each side in a Node process of its own (started with --expose-gc), so neither one's heap
// or freed pages count against the other, once with entries built the way routes build
// them and once with flat strings (see SHAPES). Each child collects garbage before and after the
// fill and reports the growth of its resident set (RSS) and of the V8 heap; the store's
// entries live outside the V8 heap, so RSS is the figure that compares like with like.
//
// Throughput: get (hits) and set (overwrites, 30 s TTL) through the awaited call shape
// routes use, `await cacheGet(key)` against `await lruGet(key)` (an async wrapper around
// lru-cache, as an API's own lib/cache.js would have), in short alternating rounds. When
// lib/cache.js is there it is measured with REDIS_URL=disabled (cacheGet / cacheSet on the
// embedded store); otherwise lib/store/memory-store.js wrapped in Promise.resolve, and the table
// says which one ran. The same operations without await are shown too, for reference.
//
//   node bench/memory.bench.js     BENCH_MEMORY_ENTRIES (1000000), BENCH_MEMORY_ROUNDS (11)
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const h = require('./lib/harness');

const ENTRIES = h.envNumber('BENCH_MEMORY_ENTRIES', 1000000);
const ROUNDS = h.envNumber('BENCH_MEMORY_ROUNDS', 11);
const KEY_BYTES = 20;
const VALUE_BYTES = 100;
const MEMORY_TTL_MS = 3600 * 1000;
const WORKING_SET = 50000; // Keys touched by the throughput rounds (all hits).
const OPS_PER_ROUND = 200000;
const THROUGHPUT_TTL_SEC = 30;

// How the entries are built. The store copies bytes, so it pays the same either way;
// lru-cache keeps the JS strings it is given, whose size depends on how they were made.
//   route: what the routes do: a template-literal key and a JSON.stringify value, which
//          V8 makes as cons strings (trees of the parts they were built from);
//   flat:  one flat string each, built from bytes: lru-cache's best case.
const SHAPES = ['route', 'flat'];
const ROUTE_KEY_PREFIX = 'cache:v1:u:'; // + a 9-digit id = 20 characters.
const FLAT_KEY = Buffer.from('k:'.padEnd(KEY_BYTES, '0'), 'latin1');
const FLAT_VALUE = Buffer.from('{"v":"'.padEnd(VALUE_BYTES - 2, 'x') + '"}', 'latin1');

function stamp(template, i, end) {
  const buf = Buffer.from(template);
  const digits = String(i);
  buf.write(digits, end - digits.length, 'latin1');
  return buf.toString('latin1');
}

const makers = {
  route: {
    key: (i) => `${ROUTE_KEY_PREFIX}${String(i).padStart(KEY_BYTES - ROUTE_KEY_PREFIX.length, '0')}`,
    // {"id":<i>,"name":"xx…x"} is 17 characters plus the digits plus the padding.
    value: (i) => JSON.stringify({ id: i, name: 'x'.repeat(VALUE_BYTES - 17 - String(i).length) }),
  },
  flat: {
    key: (i) => stamp(FLAT_KEY, i, KEY_BYTES),
    value: (i) => stamp(FLAT_VALUE, i, VALUE_BYTES - 2),
  },
};
const keyOf = makers.flat.key;
const valueOf = makers.flat.value;

// ---- memory, in a child process per side and shape --------------------------------------

function fillHirecache(n, make) {
  const { MemoryStore } = require('../lib/store/memory-store');
  const store = new MemoryStore({ maxEntries: n, maxBytes: Number.MAX_SAFE_INTEGER });
  for (let i = 0; i < n; i++) store.set(make.key(i), make.value(i), MEMORY_TTL_MS);
  if (store.stats().entries !== n) throw new Error('hirecache: not every entry was kept');
  if (store.get(make.key(n - 1)) !== make.value(n - 1)) throw new Error('hirecache: wrong value');
  return store;
}

function fillLruCache(n, make) {
  const { LRUCache } = require('lru-cache');
  const cache = new LRUCache({ max: n, ttl: MEMORY_TTL_MS });
  for (let i = 0; i < n; i++) cache.set(make.key(i), make.value(i));
  if (cache.size !== n) throw new Error('lru-cache: not every entry was kept');
  if (cache.get(make.key(n - 1)) !== make.value(n - 1)) throw new Error('lru-cache: wrong value');
  return cache;
}

function childMain(side, shape) {
  const gc = global.gc;
  if (typeof gc !== 'function') throw new Error('run the memory child with --expose-gc');
  const make = makers[shape];
  for (const i of [0, 9, 12345, ENTRIES - 1]) {
    if (make.key(i).length !== KEY_BYTES || make.value(i).length !== VALUE_BYTES) {
      throw new Error(`${shape} entry ${i} is not ${KEY_BYTES}+${VALUE_BYTES} bytes`);
    }
  }
  const fill = side === 'hirecache' ? fillHirecache : fillLruCache;
  // Load the library before the baseline, so only the entries are measured.
  if (side === 'hirecache') require('../lib/store/memory-store');
  else require('lru-cache');
  gc();
  gc();
  const before = process.memoryUsage();
  const started = h.now();
  const kept = fill(ENTRIES, make);
  const fillMs = h.now() - started;
  gc();
  gc();
  const after = process.memoryUsage();
  process.stdout.write(
    JSON.stringify({
      side,
      shape,
      entries: ENTRIES,
      rssDelta: after.rss - before.rss,
      heapDelta: after.heapUsed - before.heapUsed,
      rssTotal: after.rss,
      fillMs,
      stillHeld: kept !== null,
    }),
  );
}

function measureMemory(side, shape) {
  const out = execFileSync(process.execPath, ['--expose-gc', __filename, '--memory-child', side, shape], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out);
}

// ---- throughput, in this process ---------------------------------------------------------

function hirecacheApi() {
  const cacheFile = path.join(h.ROOT, 'lib', 'cache.js');
  if (fs.existsSync(cacheFile)) {
    const loaded = h.loadHirecache('disabled');
    if (loaded.cache && (!loaded.cache.cacheBackend || loaded.cache.cacheBackend() === 'memory')) {
      const { cacheGet, cacheSet } = loaded.cache;
      return {
        path: 'cacheGet / cacheSet (lib/cache.js, REDIS_URL=disabled)',
        get: cacheGet,
        set: (k, v) => cacheSet(k, v, THROUGHPUT_TTL_SEC),
      };
    }
  }
  const { MemoryStore } = require('../lib/store/memory-store');
  const store = new MemoryStore();
  return {
    path: 'MemoryStore (lib/store/memory-store.js) in Promise.resolve',
    get: (k) => Promise.resolve(store.get(k)),
    set: (k, v) => Promise.resolve(store.set(k, v, THROUGHPUT_TTL_SEC * 1000)),
  };
}

async function measureThroughput() {
  const { LRUCache } = require('lru-cache');
  const { MemoryStore } = require('../lib/store/memory-store');
  const api = hirecacheApi();
  // The same store the sync rows read, sized like the default cache store.
  const store = new MemoryStore();
  const lru = new LRUCache({ max: 100000, ttl: THROUGHPUT_TTL_SEC * 1000 });
  // An API's own lib/cache.js on lru-cache, as it would be written.
  const lruGet = async (k) => lru.get(k) ?? null;
  const lruSet = async (k, v) => {
    lru.set(k, v, { ttl: THROUGHPUT_TTL_SEC * 1000 });
    return true;
  };

  const keys = Array.from({ length: WORKING_SET }, (_, i) => keyOf(i));
  const values = Array.from({ length: WORKING_SET }, (_, i) => valueOf(i));
  for (let i = 0; i < WORKING_SET; i++) {
    await api.set(keys[i], values[i]);
    store.set(keys[i], values[i], THROUGHPUT_TTL_SEC * 1000);
    await lruSet(keys[i], values[i]);
  }

  // Each contender runs its own copy of the loop (a function compiled from the same source
  // text), so V8's type feedback at the call site sees one callee: a shared loop would see
  // both, stop inlining and slow whichever side depends on inlining more.
  const loopSource = (awaits) => `
    return async function round() {
      const t0 = now();
      let misses = 0;
      for (let i = 0; i < ops; i++) {
        const k = i % keys.length;
        if ((${awaits ? 'await ' : ''}fn(keys[k], values[(k + i) % keys.length])) == null) misses++;
      }
      const ms = now() - t0;
      if (misses) throw new Error(misses + ' misses in a round that should only hit');
      return { opsPerSec: (ops * 1000) / ms };
    };`;
  const makeLoop = (awaits, fn) => {
    // eslint-disable-next-line no-new-func
    const factory = new Function('fn', 'keys', 'values', 'ops', 'now', loopSource(awaits));
    return factory(fn, keys, values, OPS_PER_ROUND, h.now);
  };
  const awaited = (fn) => makeLoop(true, fn);
  const direct = (fn) => makeLoop(false, fn);

  const cases = [
    { op: 'get, awaited', path: api.path, ours: awaited(api.get), theirs: awaited(lruGet) },
    { op: 'set, awaited', path: api.path, ours: awaited(api.set), theirs: awaited(lruSet) },
    {
      op: 'get, no await',
      path: 'MemoryStore.get vs LRUCache.get',
      ours: direct((k) => store.get(k)),
      theirs: direct((k) => lru.get(k)),
    },
    {
      op: 'set, no await',
      path: 'MemoryStore.set vs LRUCache.set',
      ours: direct((k, v) => store.set(k, v, THROUGHPUT_TTL_SEC * 1000)),
      theirs: direct((k, v) => lru.set(k, v)),
    },
  ];
  const rows = [];
  for (const c of cases) {
    const res = await h.alternate(
      [
        { name: 'hirecache', run: c.ours },
        { name: 'lru-cache', run: c.theirs },
      ],
      (contender) => contender.run(),
      { rounds: ROUNDS },
    );
    const ours = res.get('hirecache').median.opsPerSec;
    const theirs = res.get('lru-cache').median.opsPerSec;
    rows.push({ ...c, oursOps: ours, theirsOps: theirs, ratio: ours / theirs });
  }
  store.close();
  return rows;
}

function lruCacheVersion() {
  const file = path.join(h.ROOT, 'node_modules', 'lru-cache', 'package.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')).version;
}

async function main() {
  const mb = (b) => (b / 1048576).toFixed(1);
  const perEntry = (b) => Math.round(b / ENTRIES);
  const mem = {};
  for (const shape of SHAPES) {
    mem[shape] = { ours: measureMemory('hirecache', shape), theirs: measureMemory('lru-cache', shape) };
  }
  const rows = await measureThroughput();

  const shapeTitle = {
    route: 'template-literal keys, JSON.stringify values',
    flat: "flat strings (lru-cache's best case)",
  };
  const table = [];
  for (const shape of SHAPES) {
    const { ours, theirs } = mem[shape];
    table.push(
      {
        what: `memory, ${shapeTitle[shape]}: RSS growth MB (B/entry)`,
        ours: `${mb(ours.rssDelta)} (${perEntry(ours.rssDelta)})`,
        theirs: `${mb(theirs.rssDelta)} (${perEntry(theirs.rssDelta)})`,
        ratio: h.fmtPercent(ours.rssDelta / theirs.rssDelta),
      },
      {
        what: '  whole process RSS after the fill, MB',
        ours: mb(ours.rssTotal),
        theirs: mb(theirs.rssTotal),
        ratio: h.fmtPercent(ours.rssTotal / theirs.rssTotal),
      },
      {
        what: '  of which V8 heap (live JS objects), MB',
        ours: mb(ours.heapDelta),
        theirs: mb(theirs.heapDelta),
        ratio: '',
      },
      {
        what: '  fill time, ms',
        ours: h.fmtInt(ours.fillMs),
        theirs: h.fmtInt(theirs.fillMs),
        ratio: h.fmtRatio(theirs.fillMs / ours.fillMs),
      },
    );
  }
  for (const r of rows) {
    table.push({
      what: `${r.op}, ops/s [${r.path}]`,
      ours: h.fmtInt(r.oursOps),
      theirs: h.fmtInt(r.theirsOps),
      ratio: h.fmtRatio(r.ratio),
    });
  }
  console.log(
    `Embedded store vs lru-cache ${lruCacheVersion()} (max ${h.fmtInt(ENTRIES)}, ttl set): ` +
      `${h.fmtInt(ENTRIES)} entries of ${KEY_BYTES}-byte keys and ${VALUE_BYTES}-byte values, ` +
      `memory in a child process per side and shape; throughput as the median of ${ROUNDS} ` +
      `alternating rounds of ${h.fmtInt(OPS_PER_ROUND)} operations over ${h.fmtInt(WORKING_SET)} keys.`,
  );
  h.printTable(
    [
      { key: 'what', title: 'measure' },
      { key: 'ours', title: 'hirecache' },
      { key: 'theirs', title: 'lru-cache' },
      { key: 'ratio', title: 'hirecache vs lru-cache' },
    ],
    table,
  );
  console.log("(memory: share of lru-cache's figure, lower is better; ops/s: ratio, higher is better)");
  const routeShare = mem.route.ours.rssDelta / mem.route.theirs.rssDelta;
  const flatShare = mem.flat.ours.rssDelta / mem.flat.theirs.rssDelta;
  console.log(
    h.targetLine(
      'memory <= 55% of lru-cache, entries built as routes build them',
      routeShare <= 0.55,
      `${h.fmtPercent(routeShare)}; ${h.fmtPercent(flatShare)} against flat strings`,
    ),
  );
  const awaitedRows = rows.filter((r) => r.op.endsWith('awaited'));
  console.log(
    h.targetLine(
      'awaited get/set at least as fast as an awaited lru-cache',
      awaitedRows.every((r) => r.ratio >= 1),
      awaitedRows.map((r) => `${r.op.split(',')[0]} ${h.fmtRatio(r.ratio)}`).join(', '),
    ),
  );
}

if (process.argv[2] === '--memory-child') {
  childMain(process.argv[3], process.argv[4]);
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
