'use strict';
// Token leases (createLimiter's `lease` option) against rate-limiter-flexible's
// RateLimiterRedis on ioredis, and against hirecache's Redis limiter without leases, in short
// alternating rounds, 256 decisions in flight, on a redis-server of its own:
//
//   plentiful  10,000 keys, 1,000 points per 60 s each: a generous per-key limit, where a
//              lease pays (each key is asked for ~50 decisions a second here, far under its
//              burst, so every decision is an admission)
//   scarce     100 keys, 1,000 points per 60 s each, every bucket emptied before the rounds
//              (one consume of 1,000 points per key, counted as admitted): the limit is
//              reached and stays reached (refill, 16.7 points a second a key, against
//              thousands of requests); leases shrink to one token and cannot batch
//
//   node bench/ratelimit-lease.bench.js
//   BENCH_CASES=plentiful BENCH_ROUNDS=8 BENCH_ROUND_MS=300 BENCH_IN_FLIGHT=256 (defaults)
//
// Every decision is checked: an admission resolves with a result, a refusal rejects with one
// (an Error stops the run), and after each case the admissions counted per key must fit the
// key's limit over the time the case ran (plus, with leases, the refill of one lease
// lifetime), no admission may lack a token Redis granted, and in the plentiful case nothing
// may be refused. "calls/decision" is what redis-server counted (EVALSHA and EVAL, from INFO
// commandstats, before and after each round) over the decisions started in the round.
const path = require('path');
const IORedis = require('ioredis');
const { RateLimiterRedis } = require('rate-limiter-flexible');
const h = require('./lib/harness');

const ROUNDS = h.envNumber('BENCH_ROUNDS', 8);
const ROUND_MS = h.envNumber('BENCH_ROUND_MS', 300);
const IN_FLIGHT = h.envNumber('BENCH_IN_FLIGHT', 256);
const CASES = (process.env.BENCH_CASES || 'plentiful,scarce').split(',');
const LIMIT = { points: 1000, duration: 60 };

const SHAPES = {
  plentiful: { keys: 10000, emptied: false },
  scarce: { keys: 100, emptied: true },
};

const LEASE = 'hirecache redis, lease';
const PLAIN = 'hirecache redis, no lease';
const THEIRS = 'RateLimiterRedis (ioredis)';

const isResult = (v) => v !== null && typeof v === 'object' && typeof v.remainingPoints === 'number' && typeof v.msBeforeNext === 'number';

/** Script calls redis-server has run so far (EVALSHA, EVALSHA_RO, EVAL). */
async function scriptCalls(io) {
  const text = await io.info('commandstats');
  let n = 0;
  for (const m of text.matchAll(/^cmdstat_eval[a-z_]*:calls=(\d+)/gm)) n += Number(m[1]);
  return n;
}

/**
 * A contender: `limiter` decides `keys` keys (key i of seq is (seq * 7919) % keys); counts
 * each key's admissions, the refusals and the decisions started.
 */
function contender(name, limiter, keys) {
  const names = Array.from({ length: keys }, (_, i) => `user:${String(i).padStart(12, '0')}`);
  const c = { name, limiter, names, admitted: new Int32Array(keys), requests: new Int32Array(keys), refused: 0, started: 0 };
  const onRefused = (r) => {
    if (r instanceof Error) throw r;
    c.refused += 1;
    return r;
  };
  c.run = (seq) => {
    const i = (seq * 7919) % keys;
    c.started += 1;
    c.requests[i] += 1;
    return limiter.consume(names[i]).then((r) => {
      c.admitted[i] += 1;
      return r;
    }, onRefused);
  };
  return c;
}

async function runCase(caseName, rl, hirecacheRedis, url, io) {
  const { keys, emptied } = SHAPES[caseName];
  const client = hirecacheRedis.createClient({ url });
  const lease = rl.createLimiter({ keyPrefix: `rl:${caseName}:lease`, client, lease: true, ...LIMIT });
  const plain = rl.createLimiter({ keyPrefix: `rl:${caseName}:plain`, client, ...LIMIT });
  const theirs = new RateLimiterRedis({ storeClient: io, keyPrefix: `rl:${caseName}:flex`, ...LIMIT });
  const contenders = [contender(LEASE, lease, keys), contender(PLAIN, plain, keys), contender(THEIRS, theirs, keys)];
  try {
    await lease.consume('warm');
    await plain.consume('warm');
    await theirs.consume('warm');
    const started = Date.now();
    if (emptied) {
      for (const c of contenders) {
        await Promise.all(c.names.map((name) => c.limiter.consume(name, LIMIT.points)));
        c.admitted.fill(LIMIT.points);
        c.requests.fill(LIMIT.points);
      }
    }
    const leasesBefore = lease.status().leases;
    const med = await h.alternate(
      contenders,
      async (c) => {
        const calls0 = await scriptCalls(io);
        const started0 = c.started;
        const cpu0 = process.cpuUsage();
        const r = await h.runInFlight(c.run, IN_FLIGHT, ROUND_MS, { check: isResult });
        const cpu = process.cpuUsage(cpu0);
        const calls = (await scriptCalls(io)) - calls0;
        return { ...r, cpuUsPerOp: (cpu.user + cpu.system) / r.ops, callsPerDecision: calls / (c.started - started0) };
      },
      { rounds: ROUNDS },
    );
    const elapsedS = (Date.now() - started) / 1000;
    const out = { elapsedS, rows: {}, counts: {} };
    for (const c of contenders) {
      const admitted = c.admitted.reduce((a, b) => a + b, 0);
      out.rows[c.name] = med.get(c.name).median;
      out.counts[c.name] = { admitted, refused: c.refused, maxPerKey: Math.max(...c.admitted) };
    }
    out.paired = (a, b) => h.median(med.get(a).rounds.map((r, i) => r.opsPerSec / med.get(b).rounds[i].opsPerSec));
    out.leases = lease.status().leases;
    checkCounts(caseName, contenders, elapsedS, out.leases);
    // The lease calls of the rounds (not of the warm-up consume or of emptying the buckets).
    for (const name of ['calls', 'tokensLeased', 'admittedLocally', 'returns', 'tokensReturned', 'tokensLost']) out.leases[name] -= leasesBefore[name];
    return out;
  } finally {
    await client.quit();
  }
}

/**
 * The admissions must fit the limits, key by key. At most: a bucket admits burst + the refill
 * over the time the case ran; with leases, a token may be spent up to one lease lifetime
 * after Redis took it, so add the refill of one lifetime; RateLimiterRedis's fixed window
 * admits `points` per window (the case is shorter than a window, but may straddle the
 * boundary of one). At least: a key asked n times admits min(n, points) (with leases, less
 * what a lease may still hold: maxTokens); so in the plentiful case nothing is refused. And
 * every admission made with leases is a token Redis granted. Throws when not.
 */
function checkCounts(caseName, contenders, elapsedS, leases) {
  const perSecond = LIMIT.points / LIMIT.duration;
  const bucketMax = LIMIT.points + Math.ceil(perSecond * elapsedS);
  const leaseSlack = Math.ceil(perSecond * (leases.ttlMs / 1000));
  for (const c of contenders) {
    const max = c.name === THEIRS ? 2 * LIMIT.points : c.name === LEASE ? bucketMax + leaseSlack : bucketMax;
    const held = c.name === LEASE ? leases.maxTokens : 0;
    for (let i = 0; i < c.admitted.length; i++) {
      const admitted = c.admitted[i];
      if (admitted > max) throw new Error(`${caseName}: ${c.name} admitted ${admitted} on key ${i}, more than its limit allows (${max})`);
      const least = Math.min(c.requests[i], LIMIT.points) - held;
      if (admitted < least) throw new Error(`${caseName}: ${c.name} admitted only ${admitted} of ${c.requests[i]} on key ${i} (at least ${least})`);
    }
    if (caseName === 'plentiful' && c.refused > 0) throw new Error(`${caseName}: ${c.name} refused ${c.refused} decisions under a limit no key reached`);
  }
  const lease = contenders.find((c) => c.name === LEASE);
  const admitted = lease.admitted.reduce((a, b) => a + b, 0);
  // The 'warm' key's one admission is counted by the limiter, not here.
  if (admitted + 1 > leases.tokensLeased) throw new Error(`${caseName}: ${admitted} admitted with leases, but Redis granted only ${leases.tokensLeased} tokens`);
}

function report(results, server) {
  const rows = [];
  const targets = [];
  for (const caseName of Object.keys(results)) {
    const R = results[caseName];
    const base = R.rows[THEIRS];
    if (rows.length) rows.push({ separator: true });
    for (const name of [LEASE, PLAIN, THEIRS]) {
      const r = R.rows[name];
      const n = R.counts[name];
      rows.push({
        case: caseName,
        name,
        ops: h.fmtInt(r.opsPerSec),
        ratio: h.fmtRatio(r.opsPerSec / base.opsPerSec),
        paired: name === THEIRS ? '' : h.fmtRatio(R.paired(name, THEIRS)),
        calls: r.callsPerDecision.toFixed(3),
        cpu: r.cpuUsPerOp.toFixed(2),
        admitted: h.fmtInt(n.admitted),
        refused: h.fmtInt(n.refused),
        p50: h.fmtMicros(r.p50Ms),
        p99: h.fmtMicros(r.p99Ms),
      });
    }
    const L = R.leases;
    console.log(
      `\n${caseName}: ${SHAPES[caseName].keys} keys, ${LIMIT.points} points per ${LIMIT.duration} s each, ${R.elapsedS.toFixed(1)} s in all; ` +
        `leases: maxTokens ${L.maxTokens}, ttlMs ${L.ttlMs}; in the rounds ${h.fmtInt(L.calls)} lease calls for ${h.fmtInt(L.tokensLeased)} tokens ` +
        `(${(L.tokensLeased / Math.max(L.calls, 1)).toFixed(1)} a call), ${h.fmtInt(L.admittedLocally)} consumes admitted without a call, ` +
        `${h.fmtInt(L.returns)} returns giving back ${h.fmtInt(L.tokensReturned)} tokens, ${h.fmtInt(L.tokensLost)} lost, ${h.fmtInt(L.tokensHeld)} held at the end`,
    );
    const ratio = R.rows[LEASE].opsPerSec / base.opsPerSec;
    if (caseName === 'plentiful') {
      targets.push(h.targetLine('plentiful: leases >= 10x RateLimiterRedis', ratio >= 10, `${h.fmtRatio(ratio)}; round by round ${h.fmtRatio(R.paired(LEASE, THEIRS))}`));
    } else {
      targets.push(h.targetLine(`${caseName}: leases vs RateLimiterRedis (no target; for information)`, null, `${h.fmtRatio(ratio)}; vs no lease ${h.fmtRatio(R.rows[LEASE].opsPerSec / R.rows[PLAIN].opsPerSec)}`));
    }
  }
  console.log(
    `\nratelimit-lease: ${IN_FLIGHT} in flight, median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms after a warm-up round each` +
      `${server.pinned ? '; redis-server pinned to its own CPU' : ''}\n`,
  );
  h.printTable(
    [
      { key: 'case', title: 'case', align: 'left' },
      { key: 'name', title: 'contender', align: 'left' },
      { key: 'ops', title: 'decisions/s' },
      { key: 'ratio', title: 'vs RateLimiterRedis' },
      { key: 'paired', title: 'round by round' },
      { key: 'calls', title: 'script calls/decision' },
      { key: 'cpu', title: 'CPU µs/decision' },
      { key: 'admitted', title: 'admitted' },
      { key: 'refused', title: 'refused' },
      { key: 'p50', title: 'p50 µs' },
      { key: 'p99', title: 'p99 µs' },
    ],
    rows,
  );
  console.log(
    '\n"script calls/decision": EVALSHA/EVAL calls redis-server ran in a round over the decisions started in it (lease returns made by the' +
      ' sweep during another contender\'s round count there). "CPU µs/decision": this process\'s user+system time (redis-server is another' +
      ' process). admitted/refused: every decision of the case, warm-up rounds included; all checked against the limits.',
  );
  console.log('\nTargets (token leases):');
  for (const line of targets) console.log(line);
}

async function main() {
  const server = await h.startServer();
  const hirecache = h.loadHirecache(server.url);
  if (hirecache.missing) throw new Error(`hirecache is not loadable: ${hirecache.missing}`);
  const rl = require(path.join(h.ROOT, 'lib', 'ratelimit'));
  const io = new IORedis(server.url);
  const results = {};
  try {
    for (const caseName of CASES) {
      if (!SHAPES[caseName]) throw new Error(`unknown case ${caseName} (known: ${Object.keys(SHAPES).join(', ')})`);
      results[caseName] = await runCase(caseName, rl, hirecache.redis, server.url, io);
    }
    report(results, server);
  } finally {
    io.disconnect();
    const c = hirecache.redis.getRedisClient();
    if (c) await c.quit();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
