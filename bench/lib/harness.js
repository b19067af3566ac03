'use strict';
// Shared pieces of the benchmarks: a redis-server of their own, a closed-loop driver that
// keeps N operations in flight, short alternating rounds so that drift (CPU frequency,
// GC debt, the server's own state) hits every contender alike, an event-loop block monitor
// and a plain table printer. Nothing here asserts a timing: a benchmark reports, it does
// not pass or fail.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { performance } = require('perf_hooks');
const { startRedis } = require('../../test/helpers/redis-server');

const now = () => performance.now();
const ROOT = path.resolve(__dirname, '..', '..');

/** Reads a positive number from the environment, or returns the default. */
function envNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * Makes global.gc available even when Node was started without --expose-gc, so that each
 * round starts without the garbage the previous contender left behind.
 */
function exposeGc() {
  if (typeof global.gc === 'function') return global.gc;
  require('v8').setFlagsFromString('--expose-gc');
  global.gc = require('vm').runInNewContext('gc');
  return global.gc;
}

/** Pins a process to the given CPUs with taskset; returns false when that is not possible. */
function pinToCpus(pid, cpus) {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Starts a redis-server for one benchmark. The server is killed when this process exits,
 * even after a crash. With BENCH_PIN=1 (and two or more CPUs) the server is pinned to the
 * last CPU and this process (with anything it spawns later, such as redis-benchmark) to
 * the others. Pinning is off by default: on the 2-vCPU VM these benchmarks were written
 * on, it cut every client's throughput two to three times (each reply then has to wake
 * the other, idle vCPU instead of running where it was woken).
 * Resolves with the object startRedis() gives ({ port, url, stop(), ... }) plus `pinned`.
 */
async function startServer(options = {}) {
  const server = await startRedis(options);
  const killAtExit = () => {
    try {
      process.kill(server.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  process.once('exit', killAtExit);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      killAtExit();
      process.exit(130);
    });
  }
  const ncpu = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  server.pinned = false;
  if (ncpu >= 2 && process.env.BENCH_PIN === '1') {
    const last = ncpu - 1;
    server.pinned = pinToCpus(server.pid, String(last)) && pinToCpus(process.pid, last === 1 ? '0' : `0-${last - 1}`);
  }
  const stop = server.stop.bind(server);
  server.stop = async () => {
    await stop();
    process.removeListener('exit', killAtExit);
  };
  return server;
}

/**
 * Loads hirecache's cache and client modules pointed at `url`. REDIS_URL is set before the
 * first require, as an application would set it. Resolves with { cache, redis } or, when
 * the modules or the addon are not there yet, with { missing: reason } so a benchmark can
 * still run its other contenders; any other load error is thrown.
 */
function loadHirecache(url) {
  process.env.REDIS_URL = url;
  // On this shared 2-core machine a starved redis-server can be silent for more than the
  // breaker's default 25 ms; the cache would then answer some reads from its (empty)
  // fallback and the round's result check would stop the run. The work per command is the
  // same whatever the stall limit, so the benchmarks raise it (unless set already).
  if (process.env.HIRECACHE_BREAKER_STALL_MS === undefined) process.env.HIRECACHE_BREAKER_STALL_MS = '1000';
  try {
    const cache = require(path.join(ROOT, 'lib', 'cache'));
    const redis = require(path.join(ROOT, 'lib', 'redis'));
    return { cache, redis };
  } catch (err) {
    const notThere =
      err.code === 'ERR_HIRECACHE_NOT_BUILT' ||
      (err.code === 'MODULE_NOT_FOUND' && /lib[\\/](cache|redis)(\.js)?'/.test(err.message));
    if (!notThere) throw err;
    return { missing: err.message.split('\n')[0] };
  }
}

/** A growable array of doubles, so recording a latency never allocates per operation. */
class Samples {
  constructor(capacity = 1 << 16) {
    this.values = new Float64Array(capacity);
    this.length = 0;
  }

  push(v) {
    if (this.length === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.length++] = v;
  }

  sorted() {
    return this.values.slice(0, this.length).sort();
  }
}

/** The p-th percentile (0..100) of an ascending typed array, nearest-rank. */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

function median(values) {
  const s = [...values].filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Closed-loop driver: keeps exactly `inFlight` operations outstanding for `durationMs`;
 * each completion starts the next one on the same slot, so the offered load adapts to the
 * client's speed instead of piling up. `fn(seq)` starts operation number `seq` and
 * returns a promise. `options.check(value, seq)`, when given, must return true for every
 * result: a benchmark whose operations fail or return the wrong thing measures nothing.
 * Only completions inside the window count; the ones still in flight at the deadline are
 * awaited but not counted.
 * Resolves with { ops, opsPerSec, p50Ms, p99Ms, elapsedMs }.
 */
function runInFlight(fn, inFlight, durationMs, options = {}) {
  const check = options.check;
  return new Promise((resolve, reject) => {
    const latencies = new Samples();
    let seq = 0;
    let active = 0;
    let failure = null;
    const start = now();
    const deadline = start + durationMs;

    const finish = () => {
      if (failure) return reject(failure);
      const sorted = latencies.sorted();
      resolve({
        ops: latencies.length,
        opsPerSec: (latencies.length * 1000) / durationMs,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        elapsedMs: now() - start,
      });
    };

    // One slot object per in-flight position, created once, so the driver itself adds no
    // allocation per operation beyond what the client under test does.
    const makeSlot = () => {
      const slot = { t0: 0, seq: 0 };
      slot.onDone = (value) => {
        const t = now();
        if (check !== undefined && !failure && !check(value, slot.seq)) {
          failure = new Error(`operation ${slot.seq} returned an unexpected result: ${String(value).slice(0, 120)}`);
        }
        if (t <= deadline) latencies.push(t - slot.t0);
        // The next operation starts now: this completion's time is its start time, which
        // spares the driver one of its two clock reads per operation.
        if (t < deadline && !failure) return launch(slot, t);
        if (--active === 0) finish();
      };
      slot.onError = (err) => {
        if (!failure) failure = err;
        if (--active === 0) finish();
      };
      return slot;
    };

    const launch = (slot, t0) => {
      slot.seq = seq++;
      slot.t0 = t0;
      let p;
      try {
        p = fn(slot.seq);
      } catch (err) {
        return slot.onError(err);
      }
      p.then(slot.onDone, slot.onError);
    };

    for (let i = 0; i < inFlight && !failure; i++) {
      active++;
      launch(makeSlot(), now());
    }
  });
}

/**
 * Runs `runRound(contender, phase)` for every contender in short alternating rounds: one
 * warm-up round each first (not recorded), then `rounds` rounds, the order rotated by one
 * each round so no contender always follows the same neighbour. `prepare(contender)`, when
 * given, runs untimed before each round (to reload data); then a full GC runs so nobody
 * pays for another's garbage.
 * `runRound` resolves with an object of numbers; resolves with a Map from contender name
 * to { rounds: [results], median: {key: median over rounds} }.
 */
async function alternate(contenders, runRound, { rounds = 8, warmup = true, prepare } = {}) {
  const gc = exposeGc();
  const results = new Map(contenders.map((c) => [c.name, []]));
  const one = async (c, phase) => {
    if (prepare) await prepare(c);
    gc();
    return runRound(c, phase);
  };
  if (warmup) {
    for (const c of contenders) await one(c, 'warmup');
  }
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[(i + r) % contenders.length];
      results.get(c.name).push(await one(c, r));
    }
  }
  const out = new Map();
  for (const [name, list] of results) {
    const med = {};
    for (const key of Object.keys(list[0] || {})) {
      if (typeof list[0][key] === 'number') med[key] = median(list.map((x) => x[key]));
    }
    out.set(name, { rounds: list, median: med });
  }
  return out;
}

/**
 * Watches the event loop: a 1 ms interval timer records the largest gap between two of
 * its firings (how long the loop could not run a timer), and monitorEventLoopDelay gives
 * its own maximum. stop() returns { maxGapMs, maxDelayMs }.
 */
function startLoopMonitor() {
  const { monitorEventLoopDelay } = require('perf_hooks');
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let last = now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const t = now();
    if (t - last > maxGap) maxGap = t - last;
    last = t;
  }, 1);
  return {
    stop() {
      clearInterval(timer);
      const t = now();
      if (t - last > maxGap) maxGap = t - last;
      h.disable();
      return { maxGapMs: maxGap, maxDelayMs: h.max / 1e6 };
    },
  };
}

/**
 * Prints rows as an aligned text table. `columns` is a list of { key, title, align }
 * ('left' or 'right', default right for everything but the first column); cells are
 * printed as given (format numbers before).
 */
function printTable(columns, rows, out = process.stdout) {
  const cell = (row, col) => (row[col.key] === undefined || row[col.key] === null ? '' : String(row[col.key]));
  const widths = columns.map((col) => Math.max(col.title.length, ...rows.map((r) => cell(r, col).length)));
  const pad = (text, i) => {
    const left = (columns[i].align || (i === 0 ? 'left' : 'right')) === 'left';
    return left ? text.padEnd(widths[i]) : text.padStart(widths[i]);
  };
  const line = (texts) => texts.map(pad).join('  ').trimEnd();
  out.write(line(columns.map((c) => c.title)) + '\n');
  out.write(line(widths.map((w) => '-'.repeat(w))) + '\n');
  for (const row of rows) {
    if (row.separator) {
      out.write('\n');
      continue;
    }
    out.write(line(columns.map((c) => cell(row, c))) + '\n');
  }
}

/** 1234567 -> "1,234,567". */
function fmtInt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
}

/** A ratio as "2.53x" (more digits for a target line, where 1.4996x must not read 1.50x). */
function fmtRatio(r, digits = 2) {
  return Number.isFinite(r) ? `${r.toFixed(digits)}x` : '-';
}

/** A share as "72%". */
function fmtPercent(share) {
  return Number.isFinite(share) ? `${Math.round(share * 100)}%` : '-';
}

/** Milliseconds shown as a whole number of microseconds. */
function fmtMicros(ms) {
  return Number.isFinite(ms) ? `${Math.round(ms * 1000)}` : '-';
}

function fmtMs(ms, digits = 1) {
  return Number.isFinite(ms) ? ms.toFixed(digits) : '-';
}

/** A line saying whether a target is met, for the summary under a table. */
function targetLine(label, ok, detail) {
  return `  [${ok === null ? 'n/a ' : ok ? 'met ' : 'MISS'}] ${label}${detail ? ` (${detail})` : ''}`;
}

/**
 * redis-benchmark against `port` with `connections` clients, `pipeline` deep, keys drawn from
 * `keySpace` (-r), and `args` (the command); the median ops/s of `runs` runs.
 */
function redisBenchmark(port, { connections, pipeline, keySpace }, args, runs = 3) {
  const rates = [];
  for (let r = 0; r < runs; r++) {
    const res = spawnSync(
      'redis-benchmark',
      ['-p', String(port), '-c', String(connections), '-P', String(pipeline), '-r', String(keySpace), '-q', '--csv', ...args],
      { encoding: 'utf8' },
    );
    if (res.error) throw res.error;
    if (res.status !== 0) throw new Error(`redis-benchmark failed: ${res.stderr}`);
    const line = res.stdout.trim().split('\n').pop() || '';
    const rps = Number((line.split(',')[1] || '').replace(/"/g, ''));
    if (!Number.isFinite(rps) || rps <= 0) throw new Error(`cannot read redis-benchmark output: ${res.stdout}`);
    rates.push(rps);
  }
  return median(rates);
}

// /proc counts CPU time in ticks of 1/100 s (USER_HZ) on Linux.
const TICKS_PER_SEC = 100;

/** The CPU time process `pid` has used, in ticks (utime + stime); NaN without /proc. */
function procTicks(pid) {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
  }
}

/** The busy time of all CPUs together (all but idle and iowait), in ticks. */
function machineBusyTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3] - f[4];
}

/**
 * Median over rounds of a.rounds[r][field] / b.rounds[r][field] (the two contenders' speeds
 * in the same round), with the lowest and highest round; null when either is missing.
 */
function pairedRatio(a, b, field = 'opsPerSec') {
  if (!a || !b) return null;
  const ratios = a.rounds.map((r, i) => r[field] / b.rounds[i][field]);
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

/** A pairedRatio as "4.29x [3.83–4.56]", or '-'. */
function fmtSpread(r, digits = 2) {
  if (!r || !Number.isFinite(r.median)) return '-';
  return `${fmtRatio(r.median, digits)} [${r.min.toFixed(digits)}–${r.max.toFixed(digits)}]`;
}

module.exports = {
  TICKS_PER_SEC,
  pairedRatio,
  fmtSpread,
  procTicks,
  machineBusyTicks,
  redisBenchmark,
  ROOT,
  now,
  envNumber,
  exposeGc,
  startServer,
  loadHirecache,
  Samples,
  percentile,
  median,
  runInFlight,
  alternate,
  startLoopMonitor,
  printTable,
  fmtInt,
  fmtRatio,
  fmtMicros,
  fmtMs,
  fmtPercent,
  targetLine,
};
