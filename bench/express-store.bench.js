'use strict';
// express-rate-limit with hirecache's HirecacheStore against express-rate-limit with
// rate-limit-redis on ioredis, side by side in short alternating rounds, 256 requests in
// flight over 10,000 keys, on a redis-server of its own:
//
//   middleware  one request through express-rate-limit's own middleware (the same
//               rateLimit() options on both sides; only the store differs), driven in this
//               process with a fake request and response, the same for both. express-rate-
//               limit's in-process MemoryStore is shown for reference: the middleware's own
//               cost with a store that costs almost nothing
//   increment   the store's increment(key) alone
//
// Plus what each store's script costs Redis: redis-benchmark running EVALSHA of each script
// with the arguments the stores send (the ceiling a client could reach).
//
//   node bench/express-store.bench.js
//   BENCH_CASES=increment BENCH_ROUNDS=8 BENCH_ROUND_MS=300 BENCH_IN_FLIGHT=256 (defaults)
//
// Every result is checked: a request must reach next() without an error, with express-rate-
// limit's headers set from the store's count; an increment must resolve a positive whole
// totalHits and a resetTime in the window. A store that fails fast cannot look fast.
const path = require('path');
const IORedis = require('ioredis');
const { rateLimit, MemoryStore } = require('express-rate-limit');
const { RedisStore } = require('rate-limit-redis');
const h = require('./lib/harness');

/** A dependency's version, read from its package.json (some do not export that file). */
const versionOf = (name) => JSON.parse(require('fs').readFileSync(path.join(h.ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;

const ROUNDS = h.envNumber('BENCH_ROUNDS', 8);
const ROUND_MS = h.envNumber('BENCH_ROUND_MS', 300);
const IN_FLIGHT = h.envNumber('BENCH_IN_FLIGHT', 256);
const CASES = (process.env.BENCH_CASES || 'middleware,increment').split(',');
const KEY_SPACE = 10000;
const WINDOW_MS = 60000;
// A limit no key reaches in a run: every request is admitted, so both sides do the same work.
const LIMIT = 1e9;
const CEILING_CONNECTIONS = 8;
const CEILING_PIPELINE = 32; // 256 in flight, as the clients have

// redis-benchmark's __rand_int__ expands to 12 digits: the same key space as below.
const KEYS = Array.from({ length: KEY_SPACE }, (_, i) => `user:${String(i).padStart(12, '0')}`);
const keyOf = (seq) => KEYS[(seq * 7919) % KEY_SPACE];

/** redis-benchmark with `args` at this bench's connections, pipeline and key space. */
const redisBenchmark = (port, args) => h.redisBenchmark(port, { connections: CEILING_CONNECTIONS, pipeline: CEILING_PIPELINE, keySpace: KEY_SPACE }, args);

// ---- the fake request and response, the same for every contender ---------------------------

/** A request as express-rate-limit reads it: its key comes from a header (keyGenerator below). */
function fakeRequest(seq) {
  return { ip: '127.0.0.1', originalUrl: '/x', headers: { 'x-client': keyOf(seq) } };
}

/** A response as express-rate-limit writes it: headers only, since every request is admitted. */
function fakeResponse() {
  return {
    headersSent: false,
    writableEnded: false,
    headers: {},
    setHeader(name, value) {
      this.headers[name] = value;
    },
    status() {
      return this;
    },
    send() {
      this.writableEnded = true;
    },
    once() {},
  };
}

/** express-rate-limit's middleware on `store`, with the options every contender shares. */
function middlewareOn(store) {
  return rateLimit({
    windowMs: WINDOW_MS,
    limit: LIMIT,
    standardHeaders: 'draft-7',
    legacyHeaders: true,
    keyGenerator: (req) => req.headers['x-client'],
    store,
  });
}

/**
 * One request through `middleware`: resolves true when it reached next() without an error,
 * with the count the store answered in the headers (so a store that failed, or answered
 * nothing, fails the run).
 */
function requestThrough(middleware) {
  return (seq) => {
    const req = fakeRequest(seq);
    const res = fakeResponse();
    let passed = false;
    return middleware(req, res, (err) => {
      passed = err === undefined;
    }).then(() => {
      const info = req.rateLimit;
      return (
        passed &&
        info !== undefined &&
        Number.isInteger(info.used) &&
        info.used >= 1 &&
        res.headers['X-RateLimit-Remaining'] === String(LIMIT - info.used) &&
        res.headers.RateLimit !== undefined
      );
    });
  };
}

/** An increment's result is a positive whole count and a reset time within the window. */
function isHits(r) {
  if (r === null || typeof r !== 'object' || !Number.isInteger(r.totalHits) || r.totalHits < 1 || !(r.resetTime instanceof Date)) return false;
  const left = r.resetTime.getTime() - Date.now();
  return left > -1000 && left <= WINDOW_MS + 1000;
}

/**
 * Runs each contender's `run` in alternating rounds; per contender the median over rounds
 * of ops/s, latency and this process's CPU time per op, and `paired(a, b)`: the median over
 * rounds of a's speed over b's in the same round (a drift of the machine cancels out).
 */
async function runCase(contenders, check) {
  const med = await h.alternate(
    contenders,
    async (c) => {
      const cpu0 = process.cpuUsage();
      const r = await h.runInFlight(c.run, IN_FLIGHT, ROUND_MS, { check });
      const cpu = process.cpuUsage(cpu0);
      return { ...r, cpuUsPerOp: (cpu.user + cpu.system) / r.ops };
    },
    { rounds: ROUNDS },
  );
  const out = {};
  for (const c of contenders) out[c.name] = med.get(c.name).median;
  Object.defineProperty(out, 'paired', {
    value: (a, b) => {
      const ratios = med.get(a).rounds.map((r, i) => r.opsPerSec / med.get(b).rounds[i].opsPerSec);
      return { median: h.median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
    },
  });
  return out;
}

const OURS = 'HirecacheStore (hirecache)';
const THEIRS = 'rate-limit-redis (ioredis)';

async function main() {
  const server = await h.startServer();
  const hirecache = h.loadHirecache(server.url);
  if (hirecache.missing) throw new Error(`hirecache is not loadable: ${hirecache.missing}`);
  const { HirecacheStore } = require(path.join(h.ROOT, 'lib', 'ratelimit'));
  const { EXPRESS_STORE_SCRIPT_SHA } = require(path.join(h.ROOT, 'lib', 'ratelimit', 'express-store'));
  const client = hirecache.redis.createClient({ url: server.url });
  const io = new IORedis(server.url);
  const sendCommand = (...args) => io.call(...args);
  const results = {};
  try {
    if (CASES.includes('middleware')) {
      const ours = middlewareOn(new HirecacheStore({ client, prefix: 'rlh:' }));
      const theirs = middlewareOn(new RedisStore({ sendCommand, prefix: 'rlr:' }));
      const memory = middlewareOn(new MemoryStore());
      results.middleware = await runCase(
        [
          { name: OURS, run: requestThrough(ours) },
          { name: THEIRS, run: requestThrough(theirs) },
          { name: 'express-rate-limit MemoryStore (in process, for reference)', run: requestThrough(memory) },
        ],
        (v) => v === true,
      );
    }
    if (CASES.includes('increment')) {
      const ours = new HirecacheStore({ client, prefix: 'rlh-inc:' });
      const theirs = new RedisStore({ sendCommand, prefix: 'rlr-inc:' });
      ours.init({ windowMs: WINDOW_MS });
      await theirs.init({ windowMs: WINDOW_MS });
      results.increment = await runCase(
        [
          { name: OURS, run: (s) => ours.increment(keyOf(s)) },
          { name: THEIRS, run: (s) => theirs.increment(keyOf(s)) },
        ],
        isHits,
      );
      // What each script costs Redis, with the arguments its store sends.
      results.ceilings = {
        [OURS]: redisBenchmark(server.port, [
          '-n', '300000', 'evalsha', EXPRESS_STORE_SCRIPT_SHA, '1', 'rlh-inc:user:__rand_int__', '+', String(WINDOW_MS), '0',
        ]),
        [THEIRS]: redisBenchmark(server.port, [
          '-n', '300000', 'evalsha', await theirs.incrementScriptSha, '1', 'rlr-inc:user:__rand_int__', String(WINDOW_MS),
        ]),
      };
    }
    report(results, server);
  } finally {
    await client.quit();
    io.disconnect();
    await server.stop();
  }
}

function report(results, server) {
  const rows = [];
  const add = (caseName, table, name, extra = {}) => {
    const r = table[name];
    const base = table[THEIRS];
    const paired = name === THEIRS ? null : table.paired(name, THEIRS);
    rows.push({
      case: caseName,
      name,
      ops: h.fmtInt(r.opsPerSec),
      ratio: h.fmtRatio(r.opsPerSec / base.opsPerSec),
      paired: paired ? `${h.fmtRatio(paired.median)} [${h.fmtRatio(paired.min)}–${h.fmtRatio(paired.max)}]` : '',
      cpu: r.cpuUsPerOp.toFixed(2),
      p50: h.fmtMicros(r.p50Ms),
      p99: h.fmtMicros(r.p99Ms),
      ...extra,
    });
  };
  if (results.middleware) {
    const M = results.middleware;
    for (const name of Object.keys(M)) add('middleware', M, name);
  }
  if (results.increment) {
    const I = results.increment;
    const C = results.ceilings;
    if (rows.length) rows.push({ separator: true });
    for (const name of Object.keys(I)) add('increment', I, name, { share: h.fmtPercent(I[name].opsPerSec / C[name]) });
    for (const name of Object.keys(C)) {
      rows.push({ case: 'increment', name: `redis-benchmark EVALSHA, ${name.split(' ')[0]}'s script`, ops: h.fmtInt(C[name]), ratio: h.fmtRatio(C[name] / I[THEIRS].opsPerSec), share: '100%' });
    }
  }
  console.log(
    `\nexpress-store: express-rate-limit ${versionOf('express-rate-limit')}, rate-limit-redis ${versionOf('rate-limit-redis')}, ` +
      `ioredis ${versionOf('ioredis')}; ${KEY_SPACE} keys, ${IN_FLIGHT} in flight, windowMs ${WINDOW_MS}, limit ${LIMIT} (every request admitted); ` +
      `median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms after a warm-up round each` +
      `${server.pinned ? '; redis-server pinned to its own CPU' : ''}; redis-benchmark -c ${CEILING_CONNECTIONS} -P ${CEILING_PIPELINE}\n`,
  );
  h.printTable(
    [
      { key: 'case', title: 'case', align: 'left' },
      { key: 'name', title: 'contender', align: 'left' },
      { key: 'ops', title: 'ops/s' },
      { key: 'ratio', title: 'vs rate-limit-redis' },
      { key: 'paired', title: 'round by round [min–max]' },
      { key: 'cpu', title: 'CPU µs/op' },
      { key: 'share', title: 'vs script ceiling' },
      { key: 'p50', title: 'p50 µs' },
      { key: 'p99', title: 'p99 µs' },
    ],
    rows,
  );
  console.log('\n"CPU µs/op": this process\'s user+system time per request or increment (the middleware, the store and the client; redis-server is another process).');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
