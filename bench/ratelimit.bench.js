'use strict';
// The rate limiter against rate-limiter-flexible, in short alternating rounds, 256
// decisions in flight and 10,000 keys, on a redis-server of its own:
//
//   local    hirecache's in-process limiter vs RateLimiterMemory, through the same
//            promise-returning consume(); a consume() that does nothing shows the
//            harness's own ceiling
//   redis    hirecache's Redis limiter vs RateLimiterRedis on ioredis; redis-benchmark
//            running EVALSHA of hirecache's own script on the same server shows what the
//            script costs Redis (the ceiling), and RateLimiterRedis's script the same way
//   flood    10 hot keys over their limit (~99% of decisions are refusals)
//   request  the work one API request does: a Redis-backed consume plus a cacheGet, and a
//            cacheSet on a miss (1 request in 10), vs ioredis + rate-limiter-flexible
//   express  an Express route with the IP middleware and the cache, under autocannon
//            (for information; the server runs in a child process)
//
//   node bench/ratelimit.bench.js                   all cases
//   BENCH_CASES=local,flood node bench/ratelimit.bench.js
//   BENCH_ROUNDS=8 BENCH_ROUND_MS=300 BENCH_IN_FLIGHT=256 (defaults)
//
// Every decision is checked (a result with numbers; refusals caught and checked alike on
// both sides), so a limiter that fails fast cannot look fast.
const { spawn } = require('child_process');
const path = require('path');
const IORedis = require('ioredis');
const { RateLimiterMemory, RateLimiterRedis } = require('rate-limiter-flexible');
const h = require('./lib/harness');

const ROUNDS = h.envNumber('BENCH_ROUNDS', 8);
const ROUND_MS = h.envNumber('BENCH_ROUND_MS', 300);
const IN_FLIGHT = h.envNumber('BENCH_IN_FLIGHT', 256);
const CASES = (process.env.BENCH_CASES || 'local,redis,flood,request,express').split(',');
const KEY_SPACE = 10000;
const HOT_KEYS = 10;
const CEILING_CONNECTIONS = 8;
const CEILING_PIPELINE = 32; // 256 in flight, as the clients have
const EXPRESS_SECONDS = h.envNumber('BENCH_EXPRESS_SECONDS', 3);

// redis-benchmark's __rand_int__ expands to 12 digits: the same key space as below.
const KEYS = Array.from({ length: KEY_SPACE }, (_, i) => `user:${String(i).padStart(12, '0')}`);
const keyOf = (seq) => KEYS[(seq * 7919) % KEY_SPACE];
const hotKeyOf = (seq) => KEYS[seq % HOT_KEYS];

// Numbers that admit everything (throughput of admissions), and a tight flood limit.
const OPEN = { points: 1000000, duration: 60 };
const FLOOD = { points: 100, duration: 1 };

const isResult = (v) => v !== null && typeof v === 'object' && typeof v.remainingPoints === 'number' && typeof v.msBeforeNext === 'number';

function loadRateLimit() {
  return require(path.join(h.ROOT, 'lib', 'ratelimit'));
}

/** redis-benchmark with `args` at this bench's connections, pipeline and key space. */
const redisBenchmark = (port, args) => h.redisBenchmark(port, { connections: CEILING_CONNECTIONS, pipeline: CEILING_PIPELINE, keySpace: KEY_SPACE }, args);

async function runCase(contenders, fnName, check) {
  const med = await h.alternate(contenders, (c) => h.runInFlight(c[fnName], IN_FLIGHT, ROUND_MS, { check }), { rounds: ROUNDS });
  const out = {};
  for (const c of contenders) out[c.name] = med.get(c.name).median;
  // The median over rounds of a's speed over b's in the same round: the two ran side by
  // side, so a drift of the machine's speed between rounds cancels out.
  Object.defineProperty(out, 'paired', {
    value: (a, b) => h.median(med.get(a).rounds.map((r, i) => r.opsPerSec / med.get(b).rounds[i].opsPerSec)),
  });
  return out;
}

// ---- cases --------------------------------------------------------------------------------

async function localCase(rl) {
  const ours = rl.createLimiter({ store: 'memory', keyPrefix: 'rl:bench', ...OPEN });
  const theirs = new RateLimiterMemory({ keyPrefix: 'rl:bench', ...OPEN });
  const noop = { remainingPoints: 1, msBeforeNext: 0, consumedPoints: 0, isFirstInDuration: false };
  return runCase(
    [
      { name: 'consume() that does nothing', run: () => Promise.resolve(noop) },
      { name: 'hirecache local', run: (s) => ours.consume(keyOf(s)) },
      { name: 'RateLimiterMemory', run: (s) => theirs.consume(keyOf(s)) },
    ],
    'run',
    isResult,
  );
}

async function redisCase(rl, url, server) {
  const { createClient } = require(path.join(h.ROOT, 'lib', 'redis'));
  const client = createClient({ url });
  const io = new IORedis(url);
  const ours = rl.createLimiter({ keyPrefix: 'rl:bench', client, ...OPEN });
  const theirs = new RateLimiterRedis({ storeClient: io, keyPrefix: 'rl:flex', ...OPEN });
  try {
    await ours.consume('warm');
    await theirs.consume('warm');
    const rates = await runCase(
      [
        { name: 'hirecache redis', run: (s) => ours.consume(keyOf(s)) },
        { name: 'RateLimiterRedis (ioredis)', run: (s) => theirs.consume(keyOf(s)) },
      ],
      'run',
      isResult,
    );
    // The script's own cost inside Redis, with the very arguments the limiter sends.
    const shape = require(path.join(h.ROOT, 'lib', 'binding')).LocalLimiter.shape(OPEN.points, OPEN.duration * 1e6, OPEN.points);
    rates.ceiling = redisBenchmark(server.port, [
      '-n', '300000', 'evalsha', rl.RATE_LIMIT_SCRIPT_SHA, '1', 'rl:bench:user:__rand_int__', 'c', '1',
      String(shape[1]), String(shape[2]), String(shape[0]), '0',
    ]);
    const flexScript = theirs._incrTtlLuaScript;
    const flexSha = await io.script('LOAD', flexScript);
    rates.flexCeiling = redisBenchmark(server.port, [
      '-n', '300000', 'evalsha', flexSha, '1', 'rl:flex:user:__rand_int__', '1', String(OPEN.duration), String(OPEN.points), String(OPEN.duration),
    ]);
    return rates;
  } finally {
    await client.quit();
    io.disconnect();
  }
}

async function floodCase(rl, url) {
  const { createClient } = require(path.join(h.ROOT, 'lib', 'redis'));
  const client = createClient({ url });
  const io = new IORedis(url);
  const ours = rl.createLimiter({ keyPrefix: 'rl:flood', client, ...FLOOD });
  const theirs = new RateLimiterRedis({ storeClient: io, keyPrefix: 'rl:flood-flex', ...FLOOD });
  const theirsBlocking = new RateLimiterRedis({ storeClient: io, keyPrefix: 'rl:flood-flexb', inMemoryBlockOnConsumed: FLOOD.points, ...FLOOD });
  const refusals = new Map();
  const counting = (name, fn) => {
    const tally = { total: 0, refused: 0 };
    refusals.set(name, tally);
    return (s) =>
      fn(s).then(
        (r) => {
          tally.total++;
          return r;
        },
        (r) => {
          tally.total++;
          tally.refused++;
          return r;
        },
      );
  };
  try {
    await ours.consume('warm');
    await theirs.consume('warm');
    const rates = await runCase(
      [
        { name: 'hirecache redis', run: counting('hirecache redis', (s) => ours.consume(hotKeyOf(s))) },
        { name: 'RateLimiterRedis (ioredis)', run: counting('RateLimiterRedis (ioredis)', (s) => theirs.consume(hotKeyOf(s))) },
        {
          name: 'RateLimiterRedis, inMemoryBlockOnConsumed',
          run: counting('RateLimiterRedis, inMemoryBlockOnConsumed', (s) => theirsBlocking.consume(hotKeyOf(s))),
        },
      ],
      'run',
      isResult,
    );
    for (const [name, t] of refusals) rates[name].refusedShare = t.refused / t.total;
    return rates;
  } finally {
    await client.quit();
    io.disconnect();
  }
}

async function requestCase(rl, hirecache, url) {
  const { cacheGet, cacheSet } = hirecache.cache;
  const ours = rl.createLimiter({ keyPrefix: 'rl:req', ...OPEN }); // getRedisClient(), as an app would
  const io = new IORedis(url);
  const theirs = new RateLimiterRedis({ storeClient: io, keyPrefix: 'rl:req-flex', ...OPEN });
  const value = JSON.stringify({ id: 0, name: 'x'.repeat(80) });
  const hot = Array.from({ length: 1000 }, (_, i) => `item:${i}`);
  // One request in ten misses the cache and fills it.
  const itemKey = (seq) => (seq % 10 === 0 ? `item:miss:${seq}:${Math.random()}` : hot[seq % 1000]);
  try {
    const preload = io.pipeline();
    for (const k of hot) preload.set(k, value, 'EX', 3600);
    await preload.exec();
    await ours.consume('warm');
    await cacheGet('warm');
    await theirs.consume('warm');
    const check = (v) => v === true;
    return await runCase(
      [
        {
          name: 'hirecache consume + cacheGet/Set',
          run: async (s) => {
            await ours.consume(keyOf(s));
            const k = itemKey(s);
            const hit = await cacheGet(k);
            if (hit === null) return cacheSet(k, value, 30);
            return hit.length > 0;
          },
        },
        {
          name: 'rate-limiter-flexible + ioredis',
          run: async (s) => {
            await theirs.consume(keyOf(s));
            const k = itemKey(s);
            const hit = await io.get(k);
            if (hit === null) return (await io.set(k, value, 'EX', 30)) === 'OK';
            return hit.length > 0;
          },
        },
      ],
      'run',
      check,
    );
  } finally {
    io.disconnect();
  }
}

// The Express route for autocannon, in a child process so the load generator and the
// server do not share one event loop.
const EXPRESS_SERVER = (mode, url, root) => `
  process.env.REDIS_URL = ${JSON.stringify(url)};
  const express = require(require.resolve('express', { paths: [${JSON.stringify(root)}] }));
  const app = express();
  const value = JSON.stringify({ id: 1, name: 'x'.repeat(80) });
  if (${JSON.stringify(mode)} === 'hirecache') {
    const { createLimiter, rateLimitByIp } = require(${JSON.stringify(path.join(root, 'lib', 'ratelimit'))});
    const { cacheGet, cacheSet } = require(${JSON.stringify(path.join(root, 'lib', 'cache'))});
    const limiter = createLimiter({ keyPrefix: 'rl:ex', points: 1e9, duration: 60 });
    app.get('/item/:id', rateLimitByIp(limiter), async (req, res) => {
      const k = 'item:' + req.params.id;
      let v = await cacheGet(k);
      if (v === null) { v = value; await cacheSet(k, v, 30); }
      res.type('json').send(v);
    });
  } else {
    const IORedis = require(require.resolve('ioredis', { paths: [${JSON.stringify(root)}] }));
    const { RateLimiterRedis } = require(require.resolve('rate-limiter-flexible', { paths: [${JSON.stringify(root)}] }));
    const io = new IORedis(${JSON.stringify(url)});
    const limiter = new RateLimiterRedis({ storeClient: io, keyPrefix: 'rl:ex-flex', points: 1e9, duration: 60 });
    const byIp = (req, res, next) => limiter.consume(req.ip).then((r) => {
      res.set('X-RateLimit-Limit', String(limiter.points));
      res.set('X-RateLimit-Remaining', String(r.remainingPoints));
      next();
    }, (r) => (r instanceof Error ? next(r) : res.status(429).set('Retry-After', String(Math.ceil(r.msBeforeNext / 1000))).json({ error: 'Too Many Requests' })));
    app.get('/item/:id', byIp, async (req, res) => {
      const k = 'item:' + req.params.id;
      let v = await io.get(k);
      if (v === null) { v = value; await io.set(k, v, 'EX', 30); }
      res.type('json').send(v);
    });
  }
  const server = app.listen(0, '127.0.0.1', () => process.send(server.address().port));
`;

async function expressCase(url) {
  const autocannon = require('autocannon');
  const run = async (mode) => {
    const child = spawn(process.execPath, ['-e', EXPRESS_SERVER(mode, url, h.ROOT)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      const port = await new Promise((resolve, reject) => {
        child.once('message', resolve);
        child.once('exit', (code) => reject(new Error(`express server (${mode}) exited with ${code}`)));
      });
      const result = await autocannon({ url: `http://127.0.0.1:${port}/item/1`, connections: 64, duration: EXPRESS_SECONDS });
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`express (${mode}): ${result.non2xx} non-2xx, ${result.errors} errors`);
      return { opsPerSec: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99 };
    } finally {
      child.kill();
    }
  };
  const rounds = { hirecache: [], baseline: [] };
  for (let r = 0; r < 3; r++) {
    for (const mode of r % 2 ? ['baseline', 'hirecache'] : ['hirecache', 'baseline']) rounds[mode].push(await run(mode));
  }
  const med = (list, k) => h.median(list.map((x) => x[k]));
  const summary = (list) => ({ opsPerSec: med(list, 'opsPerSec'), p50Ms: med(list, 'p50Ms'), p99Ms: med(list, 'p99Ms') });
  return { 'hirecache (express)': summary(rounds.hirecache), 'rate-limiter-flexible + ioredis (express)': summary(rounds.baseline) };
}

// ---- report -------------------------------------------------------------------------------

function report(results, server) {
  const rows = [];
  const targets = [];
  const add = (caseName, name, r, base, extra = {}) => {
    rows.push({
      case: caseName,
      name,
      ops: h.fmtInt(r.opsPerSec),
      ratio: base ? h.fmtRatio(r.opsPerSec / base.opsPerSec) : '',
      p50: h.fmtMicros(r.p50Ms),
      p99: h.fmtMicros(r.p99Ms),
      ...extra,
    });
  };
  if (results.local) {
    const L = results.local;
    const base = L.RateLimiterMemory;
    for (const name of Object.keys(L)) add('local', name, L[name], base);
    const ratio = L['hirecache local'].opsPerSec / base.opsPerSec;
    // The same ratio with the driver's own time per decision (the do-nothing consume's)
    // taken out of both sides: what one consume costs against the other.
    const noop = L['consume() that does nothing'].opsPerSec;
    const net = (1 / base.opsPerSec - 1 / noop) / (1 / L['hirecache local'].opsPerSec - 1 / noop);
    const paired = L.paired('hirecache local', 'RateLimiterMemory');
    targets.push(
      h.targetLine(
        'local >= 2.5x RateLimiterMemory',
        ratio >= 2.5,
        `${h.fmtRatio(ratio)}; round by round ${h.fmtRatio(paired)}; harness ceiling ${h.fmtRatio(noop / base.opsPerSec)}; net of the harness ${h.fmtRatio(net)}`,
      ),
    );
  }
  if (results.redis) {
    const R = results.redis;
    const base = R['RateLimiterRedis (ioredis)'];
    if (rows.length) rows.push({ separator: true });
    add('redis', 'hirecache redis', R['hirecache redis'], base, { share: h.fmtPercent(R['hirecache redis'].opsPerSec / R.ceiling) });
    add('redis', 'RateLimiterRedis (ioredis)', base, base, { share: h.fmtPercent(base.opsPerSec / R.flexCeiling) });
    rows.push({ case: 'redis', name: `redis-benchmark EVALSHA hirecache script (ceiling)`, ops: h.fmtInt(R.ceiling), ratio: h.fmtRatio(R.ceiling / base.opsPerSec), share: '100%' });
    rows.push({ case: 'redis', name: `redis-benchmark EVALSHA rate-limiter-flexible script`, ops: h.fmtInt(R.flexCeiling), ratio: h.fmtRatio(R.flexCeiling / base.opsPerSec) });
    const ratio = R['hirecache redis'].opsPerSec / base.opsPerSec;
    targets.push(h.targetLine('redis >= 1.3x RateLimiterRedis', ratio >= 1.3, h.fmtRatio(ratio)));
    const share = R['hirecache redis'].opsPerSec / R.ceiling;
    targets.push(h.targetLine('redis >= 80% of the redis-benchmark ceiling of its script', share >= 0.8, h.fmtPercent(share)));
  }
  if (results.flood) {
    const F = results.flood;
    const base = F['RateLimiterRedis (ioredis)'];
    if (rows.length) rows.push({ separator: true });
    for (const name of Object.keys(F)) add('flood', name, F[name], base, { share: `${h.fmtPercent(F[name].refusedShare)} refused` });
    const ratio = F['hirecache redis'].opsPerSec / base.opsPerSec;
    targets.push(h.targetLine('flood >= 5x RateLimiterRedis', ratio >= 5, h.fmtRatio(ratio)));
  }
  if (results.request) {
    const Q = results.request;
    const base = Q['rate-limiter-flexible + ioredis'];
    if (rows.length) rows.push({ separator: true });
    for (const name of Object.keys(Q)) add('request', name, Q[name], base);
    const ratio = Q['hirecache consume + cacheGet/Set'].opsPerSec / base.opsPerSec;
    targets.push(h.targetLine('request (consume + cacheGet/Set) >= 1.5x ioredis + rate-limiter-flexible', ratio >= 1.5, h.fmtRatio(ratio)));
  }
  if (results.express) {
    const E = results.express;
    const base = E['rate-limiter-flexible + ioredis (express)'];
    if (rows.length) rows.push({ separator: true });
    for (const name of Object.keys(E)) {
      rows.push({ case: 'express', name, ops: h.fmtInt(E[name].opsPerSec), ratio: h.fmtRatio(E[name].opsPerSec / base.opsPerSec), p50: h.fmtMs(E[name].p50Ms), p99: h.fmtMs(E[name].p99Ms) });
    }
  }
  console.log(
    `\nratelimit: ${KEY_SPACE} keys, ${IN_FLIGHT} in flight, median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms after a warm-up round each` +
      `${server.pinned ? '; redis-server pinned to its own CPU' : ''}; redis-benchmark -c ${CEILING_CONNECTIONS} -P ${CEILING_PIPELINE}\n`,
  );
  h.printTable(
    [
      { key: 'case', title: 'case', align: 'left' },
      { key: 'name', title: 'contender', align: 'left' },
      { key: 'ops', title: 'decisions/s' },
      { key: 'ratio', title: 'vs baseline' },
      { key: 'share', title: 'vs script ceiling' },
      { key: 'p50', title: 'p50 µs' },
      { key: 'p99', title: 'p99 µs' },
    ],
    rows,
  );
  if (results.express) console.log('\nexpress rows: requests/s under autocannon (64 connections), latency in ms; for information.');
  console.log('\nTargets (issue 3):');
  for (const line of targets) console.log(line);
}

async function main() {
  const server = await h.startServer();
  const url = server.url;
  const hirecache = h.loadHirecache(url);
  if (hirecache.missing) throw new Error(`hirecache is not loadable: ${hirecache.missing}`);
  const rl = loadRateLimit();
  const results = {};
  try {
    if (CASES.includes('local')) results.local = await localCase(rl);
    if (CASES.includes('redis')) results.redis = await redisCase(rl, url, server);
    if (CASES.includes('flood')) results.flood = await floodCase(rl, url);
    if (CASES.includes('request')) results.request = await requestCase(rl, hirecache, url);
    if (CASES.includes('express')) results.express = await expressCase(url);
    report(results, server);
  } finally {
    const c = hirecache.redis.getRedisClient();
    if (c) await c.quit();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
