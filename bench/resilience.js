'use strict';
// What hirecache does when Redis misbehaves, measured through its public API, side by
// side with ioredis where the comparison means something. A measurement, not a test: it
// prints numbers and never fails on them.
//
//   node bench/resilience.js            the full run (about 2 minutes)
//   node bench/resilience.js --quick    shorter freezes and outages (about 40 s)
//   node bench/resilience.js --only a,c  only some scenarios
//
// (a) freeze: Redis stopped with SIGSTOP for 5 s under open-loop load (one cacheGet every
//     0.5 ms on 8 keys, issued on a timer whatever the replies do; cache-aside, as a route
//     does it: a miss is followed by a cacheSet of the value, not timed), then SIGCONT. Latency
//     p50/p99/max and how many calls returned the value, a miss or an error, by when the
//     call was issued: the second before, during the freeze, the 2 s after.
// (b) outage: Redis killed (SIGKILL) under the same load, restarted on its port 10 s
//     later. The client talks to Redis through a TCP proxy that counts the connections it
//     accepts. Two shapes of "down": 'refused' (the proxy stops listening too, so connects
//     are refused by the kernel, as for a local Redis that died: the attempts are what the
//     client itself reports) and 'accept+close' (the proxy keeps listening and closes each
//     connection at once because Redis behind it is gone, as a port forwarder or a load
//     balancer in front of a dead Redis does: every attempt is counted at the listener).
//     The restarted Redis is given new values (before the proxy lets anyone in): whether
//     the client recovers, how long after the restart the first new value came, whether
//     an old value (from memory) was served after that, and unhandled rejections.
// (c) limiter: the two over-admission scenarios of issue 8, on a Redis that answers in
//     microseconds: 4 processes x 50 concurrent consume on one key (10 points per 60 s,
//     commandTimeout 200 ms), without and with a 240 ms event-loop stall in each process
//     after its first 25 calls; and one process, a key already exhausted in Redis, 12
//     consumes followed by a 240 ms stall (commandTimeout 200 ms). Admissions past the limit.
const { spawn, execFileSync } = require('child_process');
const path = require('path');
const IORedis = require('ioredis');
const h = require('./lib/harness');
const { startRedis } = require('../test/helpers/redis-server');
const { createProxy } = require('../test/helpers/proxy');
const { rawPipeline } = require('../test/helpers/raw-redis');

const QUICK = process.argv.includes('--quick');
const onlyArg = process.argv.find((a, i) => process.argv[i - 1] === '--only') || '';
const ONLY = onlyArg ? onlyArg.split(',') : ['a', 'b', 'c'];

const T = QUICK
  ? { warmMs: 500, freezeMs: 2000, afterFreezeMs: 1000, outageMs: 3000, afterOutageMs: 1500, runs: 1 }
  : { warmMs: 1000, freezeMs: 5000, afterFreezeMs: 2000, outageMs: 10000, afterOutageMs: 3000, runs: 3 };
const ISSUE_EVERY_MS = 0.5;
const KEYS = Array.from({ length: 8 }, (_, i) => `res:key:${i}`);
// What the keys hold, and what the restarted Redis of (b) is given instead: a read that
// returns NEW_VALUE came from Redis after the restart; VALUE then is stale (from memory).
const VALUE = 'v'.repeat(100);
const NEW_VALUE = 'w'.repeat(100);

// Counted for the whole run: no scenario may leave a promise rejected with nobody listening.
let unhandledRejections = 0;
process.on('unhandledRejection', () => {
  unhandledRejections += 1;
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes every key with `value` through a connection of its own. */
async function seed(port, value = VALUE) {
  await rawPipeline({ port }, KEYS.map((k) => ['SET', k, value, 'EX', '3600']));
}

// ---------------------------------------------------------------------------------------
// The contenders: the cache a route would call, and how to read what the client says.

const HIRECACHE_EVENTS = ['connect', 'ready', 'error', 'close', 'reconnecting', 'end', 'breaker'];

function hirecacheContender(url) {
  const { createClient } = require('../lib/redis');
  const { createCache } = require('../lib/cache');
  // The client's logger (an option since issue 8; ignored before): its lines are counted
  // and shown under the tables, not mixed into them.
  const logged = [];
  const record = (level) => (line) => logged.push(`${level}: ${line}`);
  const client = createClient({ url, logger: { error: record('error'), warn: record('warn'), info: record('info') } });
  const cache = createCache({ client });
  const events = new Map();
  const breakerPath = [];
  if (typeof client.on === 'function') {
    for (const type of HIRECACHE_EVENTS) {
      client.on(type, (detail) => {
        events.set(type, (events.get(type) || 0) + 1);
        if (type === 'breaker' && detail) breakerPath.push(detail.reason ? `${detail.state}(${detail.reason})` : detail.state);
      });
    }
  }
  // The client's own count of connection attempts: connections it opened plus failed
  // attempts. status().reconnectAttempts counts consecutive failures and resets on a
  // success, so its increases are summed between samples.
  let lastFailures = 0;
  let failures = 0;
  const sample = () => {
    const s = client.status();
    if (s.reconnectAttempts > lastFailures) failures += s.reconnectAttempts - lastFailures;
    lastFailures = s.reconnectAttempts;
  };
  return {
    name: 'hirecache',
    get: (key) => cache.cacheGet(key),
    set: (key) => cache.cacheSet(key, VALUE, 60),
    sample,
    attempts: () => {
      sample();
      return client.status().connectionsOpened + failures;
    },
    events: () => (typeof client.on === 'function' ? [...events].map(([k, v]) => `${k} ${v}`).join(', ') : 'not an EventEmitter'),
    logged: () => logged,
    breakerPath: () => breakerPath.join(' > '),
    close: async () => {
      await Promise.race([client.quit(), sleep(6000)]).catch(() => {});
      client.disconnect();
    },
  };
}

function ioredisContender(url) {
  // ioredis with its defaults, wrapped as an API's own lib/cache.js would wrap it: a
  // failure reads as a miss to the route, and is counted apart here.
  const io = new IORedis(url);
  const events = new Map();
  for (const type of ['connect', 'ready', 'error', 'close', 'reconnecting', 'end']) {
    io.on(type, () => events.set(type, (events.get(type) || 0) + 1));
  }
  let connects = 0;
  io.on('reconnecting', () => {
    connects += 1;
  });
  return {
    name: 'ioredis',
    get: (key) => io.get(key),
    set: (key) => io.set(key, VALUE, 'EX', 60),
    sample: () => {},
    attempts: () => 1 + connects,
    events: () => [...events].map(([k, v]) => `${k} ${v}`).join(', '),
    logged: () => [],
    breakerPath: () => '',
    close: async () => {
      await Promise.race([io.quit(), sleep(6000)]).catch(() => {});
      io.disconnect();
    },
  };
}

const CONTENDERS = [hirecacheContender, ioredisContender];

// ---------------------------------------------------------------------------------------
// Open-loop load: calls are issued on a schedule (one every ISSUE_EVERY_MS), never waiting
// for earlier ones, so a stalled Redis cannot slow the arrivals down and hide its effect.

const VALUE_SEEN = 0;
const MISS = 1;
const FAILED = 2;
const NEW_VALUE_SEEN = 3;

function startLoad(contender) {
  const t0 = h.now();
  const issuedAt = new h.Samples();
  const latency = new h.Samples();
  const outcome = new h.Samples();
  const pending = new Set();
  let seq = 0;
  let next = t0;
  let running = true;
  let timer = null;

  const fire = () => {
    const i = issuedAt.length;
    const start = h.now();
    issuedAt.push(start - t0);
    latency.push(NaN);
    outcome.push(FAILED);
    const key = KEYS[seq++ % KEYS.length];
    let p;
    try {
      p = contender.get(key);
    } catch {
      latency.values[i] = h.now() - start;
      return;
    }
    const tracked = p.then(
      (v) => {
        latency.values[i] = h.now() - start;
        outcome.values[i] = v === VALUE ? VALUE_SEEN : v === NEW_VALUE ? NEW_VALUE_SEEN : MISS;
        // Cache-aside: the route computes the value and stores it (not timed, not awaited).
        if (v == null) contender.set(key).catch(() => {});
      },
      () => {
        latency.values[i] = h.now() - start;
        outcome.values[i] = FAILED;
      },
    );
    pending.add(tracked);
    tracked.then(() => pending.delete(tracked));
  };
  const tick = () => {
    const t = h.now();
    while (running && next <= t) {
      fire();
      next += ISSUE_EVERY_MS;
    }
    contender.sample();
    if (running) timer = setTimeout(tick, 1);
  };
  tick();
  return {
    t0,
    /** Stops issuing; resolves when every call issued has settled (or after maxWaitMs). */
    async stop(maxWaitMs = 15000) {
      running = false;
      clearTimeout(timer);
      await Promise.race([Promise.all([...pending]), sleep(maxWaitMs)]);
      return { issuedAt, latency, outcome, unsettled: pending.size };
    },
  };
}

/** Latency and outcomes of the calls issued in [fromMs, toMs) (relative to the load's start). */
function summarize(rec, fromMs, toMs) {
  const lat = new h.Samples();
  const counts = [0, 0, 0, 0];
  let unsettled = 0;
  for (let i = 0; i < rec.issuedAt.length; i++) {
    const t = rec.issuedAt.values[i];
    if (t < fromMs || t >= toMs) continue;
    const l = rec.latency.values[i];
    if (Number.isNaN(l)) {
      unsettled += 1;
      continue;
    }
    lat.push(l);
    counts[rec.outcome.values[i]] += 1;
  }
  const sorted = lat.sorted();
  return {
    calls: sorted.length + unsettled,
    value: counts[VALUE_SEEN] + counts[NEW_VALUE_SEEN],
    newValue: counts[NEW_VALUE_SEEN],
    oldValue: counts[VALUE_SEEN],
    miss: counts[MISS],
    error: counts[FAILED],
    unsettled,
    p50: h.percentile(sorted, 50),
    p99: h.percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

// ---------------------------------------------------------------------------------------
// (a) A 5 s freeze.

async function freezeScenario(makeContender) {
  const server = await startRedis();
  let frozen = false;
  const thaw = () => {
    if (frozen) process.kill(server.pid, 'SIGCONT');
    frozen = false;
  };
  process.once('exit', thaw);
  const c = makeContender(server.url);
  try {
    await seed(server.port);
    for (const k of KEYS) await c.get(k); // Connected and warm before the clock starts.
    const load = startLoad(c);
    await sleep(T.warmMs);
    const freezeAt = h.now() - load.t0;
    process.kill(server.pid, 'SIGSTOP');
    frozen = true;
    await sleep(T.freezeMs);
    thaw();
    const thawAt = h.now() - load.t0;
    await sleep(T.afterFreezeMs);
    const rec = await load.stop();
    return {
      name: c.name,
      phases: [
        ['before', summarize(rec, 0, freezeAt)],
        [`frozen ${T.freezeMs / 1000} s`, summarize(rec, freezeAt, thawAt)],
        [`${T.afterFreezeMs / 1000} s after`, summarize(rec, thawAt, thawAt + T.afterFreezeMs)],
      ],
      events: c.events(),
      breakerPath: c.breakerPath(),
      logged: c.logged(),
    };
  } finally {
    thaw();
    process.removeListener('exit', thaw);
    await c.close();
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------
// (b) A 10 s outage: killed, then restarted on the same port.

async function outageScenario(makeContender, shape) {
  let server = await startRedis();
  const port = server.port;
  const proxy = await createProxy({ port });
  const c = makeContender(proxy.url);
  const unhandledBefore = unhandledRejections;
  try {
    await seed(port);
    for (const k of KEYS) await c.get(k);
    const load = startLoad(c);
    await sleep(T.warmMs);

    const acceptedBefore = proxy.accepted;
    const attemptsBefore = c.attempts();
    const downAt = h.now() - load.t0;
    // 'refused': the listener goes first, so no reconnect can slip in between the kill and
    // the refusal and be taken for a live Redis.
    if (shape === 'refused') await proxy.refuse();
    await server.kill();
    proxy.cut();
    await sleep(T.outageMs);

    const acceptedDuring = proxy.accepted - acceptedBefore;
    const attemptsDuring = c.attempts() - attemptsBefore;
    await server.stop().catch(() => {}); // Removes the killed server's folder.
    // The restarted Redis gets its data (new values) before any client can reach it, so
    // a route's cache-aside write can never race the seed.
    await proxy.refuse();
    server = await startRedis({ port });
    await seed(port, NEW_VALUE);
    await proxy.accept();
    const upAt = h.now() - load.t0;
    const acceptedAtRestart = proxy.accepted;
    await sleep(T.afterOutageMs);
    const rec = await load.stop();

    // Recovery: the first call issued after the restart that returned Redis's new value,
    // and whether every call issued from then on did (an old value then is stale).
    let firstValueAt = NaN;
    for (let i = 0; i < rec.issuedAt.length; i++) {
      if (rec.issuedAt.values[i] >= upAt && rec.outcome.values[i] === NEW_VALUE_SEEN) {
        firstValueAt = rec.issuedAt.values[i];
        break;
      }
    }
    const afterRecovery = Number.isNaN(firstValueAt) ? null : summarize(rec, firstValueAt, Infinity);
    return {
      name: c.name,
      shape,
      during: summarize(rec, downAt, upAt),
      acceptedDuring,
      attemptsDuring,
      acceptedAfter: proxy.accepted - acceptedAtRestart,
      recoveredMs: firstValueAt - upAt,
      afterRecovery,
      unhandled: unhandledRejections - unhandledBefore,
      unsettled: rec.unsettled,
      events: c.events(),
      breakerPath: c.breakerPath(),
      logged: c.logged(),
    };
  } finally {
    await c.close();
    await proxy.close();
    await server.stop().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------
// (c) The limiter's over-admission scenarios.

const LIMIT = 10;

/** Runs 4 processes x 50 concurrent consumes on one key; resolves with the total admitted. */
async function limiterProcesses(url, key, { stallMs, stallAfter }) {
  const options = {
    url,
    keyPrefix: 'res:rl',
    key,
    points: LIMIT,
    duration: 60,
    concurrent: 50,
    commandTimeout: 200,
    warm: true,
    stallMs,
    stallAfter,
  };
  const children = Array.from({ length: 4 }, () => {
    const child = spawn(process.execPath, [path.join(__dirname, 'resilience-limiter-child.js'), JSON.stringify(options)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.stdin.on('error', () => {}); // A child that died is reported by its exit code.
    let out = '';
    let readyResolve;
    let readyReject;
    const ready = new Promise((resolve, reject) => {
      readyResolve = resolve;
      readyReject = reject;
    });
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready\n')) readyResolve();
    });
    const done = new Promise((resolve, reject) => {
      child.on('exit', (code) => {
        const err = new Error(`limiter child exited with ${code}`);
        readyReject(err); // No effect once it was ready.
        if (code !== 0) return reject(err);
        resolve(JSON.parse(out.trim().split('\n').pop()));
      });
    });
    done.catch(() => {}); // Awaited below; a failure before 'ready' rejects `ready` too.
    return { child, ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.child.stdin.write('go\n');
  const results = await Promise.all(children.map((c) => c.done));
  return {
    admitted: results.reduce((n, r) => n + r.admitted, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    unhandled: results.reduce((n, r) => n + r.unhandled, 0),
  };
}

function busyWait(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // The event loop can run nothing meanwhile, as during a long GC or synchronous work.
  }
}

/** One process: a key exhausted in Redis, 12 more consumes, then a stall of stallMs. */
async function limiterExhausted(url, key, stallMs) {
  const { createClient } = require('../lib/redis');
  const { createLimiter } = require('../lib/ratelimit');
  const client = createClient({ url, commandTimeout: 200, logger: false });
  const limiter = createLimiter({ keyPrefix: 'res:rl', points: LIMIT, duration: 60, client });
  try {
    for (let i = 0; i < LIMIT; i++) await limiter.consume(key); // Exhausted, by Redis's word.
    const calls = Array.from({ length: 12 }, () => limiter.consume(key));
    if (stallMs > 0) busyWait(stallMs);
    const settled = await Promise.allSettled(calls);
    const admitted = settled.filter((r) => r.status === 'fulfilled').length;
    const errors = settled.filter((r) => r.status === 'rejected' && typeof r.reason.msBeforeNext !== 'number').length;
    return { admitted, errors, unhandled: 0 };
  } finally {
    await client.quit().catch(() => {});
  }
}

async function limiterScenarios() {
  const server = await startRedis();
  const rows = [];
  let n = 0;
  const runMany = async (label, limitTotal, fn) => {
    const runs = [];
    for (let r = 0; r < T.runs; r++) runs.push(await fn(`key:${++n}`));
    rows.push({ label, limitTotal, runs });
  };
  try {
    await runMany('4 procs x 50 consume, no stall', LIMIT, (key) => limiterProcesses(server.url, key, { stallMs: 0, stallAfter: 0 }));
    await runMany('4 procs x 50 consume, 240 ms stall after 25', LIMIT, (key) =>
      limiterProcesses(server.url, key, { stallMs: 240, stallAfter: 25 }),
    );
    await runMany('exhausted key, 12 consume, no stall', 0, (key) => limiterExhausted(server.url, key, 0));
    await runMany('exhausted key, 12 consume, 240 ms stall', 0, (key) => limiterExhausted(server.url, key, 240));
  } finally {
    await server.stop();
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// Report.

const ms = (v) => (Number.isFinite(v) ? (v >= 100 ? h.fmtInt(v) : v.toFixed(v >= 10 ? 1 : 2)) : '-');

function printFreeze(results) {
  console.log(
    `\n(a) Redis frozen (SIGSTOP) ${T.freezeMs / 1000} s under open-loop load: one cacheGet every ${ISSUE_EVERY_MS} ms ` +
      `on ${KEYS.length} keys, cache-aside (a miss is followed by a cacheSet); calls grouped by when they were issued; latency in ms\n`,
  );
  const rows = [];
  for (const r of results) {
    if (rows.length) rows.push({ separator: true });
    for (const [phase, s] of r.phases) {
      rows.push({
        client: r.name,
        phase,
        calls: h.fmtInt(s.calls),
        value: h.fmtInt(s.value),
        miss: h.fmtInt(s.miss),
        error: h.fmtInt(s.error),
        p50: ms(s.p50),
        p99: ms(s.p99),
        max: ms(s.max),
      });
    }
  }
  h.printTable(
    [
      { key: 'client', title: 'client', align: 'left' },
      { key: 'phase', title: 'issued', align: 'left' },
      { key: 'calls', title: 'calls' },
      { key: 'value', title: 'value' },
      { key: 'miss', title: 'miss' },
      { key: 'error', title: 'error' },
      { key: 'p50', title: 'p50' },
      { key: 'p99', title: 'p99' },
      { key: 'max', title: 'max' },
    ],
    rows,
  );
  for (const r of results) {
    console.log(`  ${r.name} events: ${r.events || 'none'}${r.breakerPath ? `; breaker: ${r.breakerPath}` : ''}`);
    printLogged(r);
  }
  console.log('  ioredis is wrapped as a lib/cache.js would wrap it; its rejections are the error column.');
}

function printOutage(results) {
  console.log(
    `\n(b) Redis killed (SIGKILL) under the same load, restarted on its port ${T.outageMs / 1000} s later; ` +
      'the client connects through a counting TCP proxy\n',
  );
  const rows = results.map((r) => ({
    client: r.name,
    shape: r.shape,
    listener: h.fmtInt(r.acceptedDuring),
    says: h.fmtInt(r.attemptsDuring),
    calls: h.fmtInt(r.during.calls),
    value: h.fmtInt(r.during.value),
    miss: h.fmtInt(r.during.miss),
    error: h.fmtInt(r.during.error),
    p99: ms(r.during.p99),
    max: ms(r.during.max),
    recovered: Number.isFinite(r.recoveredMs) ? `yes, ${ms(Math.max(r.recoveredMs, 0))} ms` : 'NO',
    after: r.afterRecovery ? `${h.fmtInt(r.afterRecovery.newValue)}/${h.fmtInt(r.afterRecovery.calls)}` : '-',
    stale: r.afterRecovery ? h.fmtInt(r.afterRecovery.oldValue) : '-',
    conns: h.fmtInt(r.acceptedAfter),
    unhandled: h.fmtInt(r.unhandled),
  }));
  h.printTable(
    [
      { key: 'client', title: 'client', align: 'left' },
      { key: 'shape', title: 'down as', align: 'left' },
      { key: 'listener', title: 'conns at proxy' },
      { key: 'says', title: 'attempts (client)' },
      { key: 'calls', title: 'calls' },
      { key: 'value', title: 'value' },
      { key: 'miss', title: 'miss' },
      { key: 'error', title: 'error' },
      { key: 'p99', title: 'p99 ms' },
      { key: 'max', title: 'max ms' },
      { key: 'recovered', title: 'first value after restart', align: 'left' },
      { key: 'after', title: 'values after' },
      { key: 'stale', title: 'stale after' },
      { key: 'conns', title: 'conns after' },
      { key: 'unhandled', title: 'unhandled' },
    ],
    rows,
  );
  console.log('  conns at proxy / attempts (client), calls..max: during the outage (value: served from memory meanwhile).');
  console.log("  The restarted Redis holds new values: 'first value after restart' is the first call that returned one;");
  console.log("  'values after' counts the calls from then on that did, 'stale after' those that returned the old value.");
  console.log('  conns after: connections the proxy accepted after the restart.');
  console.log("  attempts (client): hirecache's status() (connections opened + failed attempts); ioredis: 1 + 'reconnecting' events.");
  for (const r of results) {
    console.log(`  ${r.name} (${r.shape}) events: ${r.events || 'none'}${r.breakerPath ? `; breaker: ${r.breakerPath}` : ''}`);
    printLogged(r);
  }
}

/** The lines hirecache's logger wrote during a scenario (a few at most, by design). */
function printLogged(r) {
  if (r.name !== 'hirecache') return;
  console.log(`    logged ${r.logged.length} line(s)${r.logged.length ? ':' : ''}`);
  for (const line of r.logged.slice(0, 4)) console.log(`      ${line.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>')}`);
  if (r.logged.length > 4) console.log(`      ... ${r.logged.length - 4} more`);
}

function printLimiter(rows) {
  console.log(
    `\n(c) hirecache limiter, ${LIMIT} points per 60 s on one key, commandTimeout 200 ms, Redis answering in microseconds; ` +
      `${T.runs} run(s) each\n`,
  );
  h.printTable(
    [
      { key: 'label', title: 'scenario', align: 'left' },
      { key: 'allowed', title: 'limit allows' },
      { key: 'admitted', title: 'admitted' },
      { key: 'past', title: 'past the limit' },
      { key: 'errors', title: 'errors' },
    ],
    rows.map((r) => ({
      label: r.label,
      allowed: String(r.limitTotal),
      admitted: r.runs.map((x) => x.admitted).join(', '),
      past: r.runs.map((x) => Math.max(x.admitted - r.limitTotal, 0)).join(', '),
      errors: r.runs.map((x) => x.errors + x.unhandled).join(', '),
    })),
  );
}

function describeRun() {
  // The commit of the code measured: the last one that changed the core, the binding or the
  // modules these scenarios run (a commit that only adds a benchmark, the metrics
  // exposition or types measures the same code as its parent).
  let commit = '?';
  try {
    const git = (...args) => execFileSync('git', args, { cwd: h.ROOT, encoding: 'utf8' }).trim();
    const measured = ['src', 'binding', 'lib/client', 'lib/cache', 'lib/ratelimit', 'lib/store', 'lib/redis.js', 'lib/cache.js', 'lib/ratelimit.js'];
    commit = `${git('log', '-1', '--format=%h', '--', ...measured)} (HEAD ${git('rev-parse', '--short', 'HEAD')})`;
  } catch {
    // Not a git checkout.
  }
  const redis = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/v=(\S+)/);
  return `resilience: code at ${commit}, Node ${process.version}, redis-server ${redis ? redis[1] : '?'}, ioredis ${require('ioredis/package.json').version}, ${QUICK ? 'quick' : 'full'} run, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

async function main() {
  const started = Date.now();
  console.log(describeRun());
  if (ONLY.includes('a')) {
    const results = [];
    for (const make of CONTENDERS) results.push(await freezeScenario(make));
    printFreeze(results);
  }
  if (ONLY.includes('b')) {
    const results = [];
    for (const shape of ['refused', 'accept+close']) {
      for (const make of CONTENDERS) results.push(await outageScenario(make, shape));
    }
    printOutage(results);
  }
  if (ONLY.includes('c')) printLimiter(await limiterScenarios());
  console.log(`\nunhandled rejections in this process: ${unhandledRejections}; ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
