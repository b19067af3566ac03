'use strict';
// The client's surface beyond GET and SET, side by side with ioredis and node-redis, against
// a redis-server of its own:
//
//   methods   the generated command methods against call(): hirecache's client.incr(k) vs
//             client.call('INCR', k), client.hset(k, f, v) vs client.call('HSET', k, f, v),
//             at 1 and 512 in flight; a second call() contender on the same client (an A/A
//             pair) shows how far two identical contenders drift apart on this machine, so
//             "method within noise of call()" is a figure, not an impression; ioredis's
//             incr / hset for reference. Then the synchronous part of a call alone (the only
//             part where the two differ), timed over bursts of calls, which resolves tens of
//             nanoseconds where the rates cannot
//   multi     a transaction of 10 commands (5 × SET, 5 × INCR of one counter), through
//             each client's multi() … exec(), at 1 and 64 transactions in flight
//   pipeline  100 commands (50 SET, 50 GET, alternating), through hirecache's and ioredis's
//             pipeline() … exec(); node-redis has no pipeline object: its closest forms,
//             multi() … execAsPipeline() and 100 calls issued in one tick with Promise.all,
//             are shown and labelled as such; at 1 and 16 pipelines in flight
//   At 1 in flight, one GET per round trip runs beside the batches as their floor.
//
//   node bench/surface.bench.js         BENCH_ROUNDS=8 BENCH_ROUND_MS=300 by default
//   BENCH_SECTIONS=multi BENCH_CLIENTS=hirecache BENCH_IN_FLIGHT=1 node --cpu-prof bench/surface.bench.js
//                                       only some sections / contenders / levels (for profiling)
//
// Every reply is checked, so a client that fails fast, or hands a reply to the wrong
// caller, cannot look fast: each contender INCRs counters of its own, and each INCR must
// return exactly one more than that counter's last value; HSET must say whether the field
// was new; a transaction must return 'OK' five times and five consecutive counts (exactly
// the next five of its counter); every GET of a pipeline must return its key's own value,
// compared in full, and every SET 'OK'. Ratios are the median over rounds of the two
// contenders' speeds in the same round (they ran about a second apart, so the machine's
// drift mostly cancels), with the lowest and highest round in brackets.
const os = require('os');
const IORedis = require('ioredis');
const nodeRedis = require('redis');
const h = require('./lib/harness');

const { pairedRatio, fmtSpread } = h;
const { TICKS_PER_SEC, procTicks, machineBusyTicks } = h;

const ROUNDS = h.envNumber('BENCH_ROUNDS', 8);
const ROUND_MS = h.envNumber('BENCH_ROUND_MS', 300);
const SECTIONS = (process.env.BENCH_SECTIONS || 'methods,multi,pipeline').split(',');
const ONLY_CLIENTS = process.env.BENCH_CLIENTS || '';
// BENCH_IN_FLIGHT (e.g. "1"), when set, replaces every section's levels (for profiling).
const levels = (fallback) => (process.env.BENCH_IN_FLIGHT ? process.env.BENCH_IN_FLIGHT.split(',').map(Number) : fallback);
const METHOD_IN_FLIGHT = levels([1, 512]);
const MULTI_IN_FLIGHT = levels([1, 64]);
const PIPELINE_IN_FLIGHT = levels([1, 16]);
const KEY_SPACE = 10000;
const VALUE_BYTES = 100;
const MULTI_SETS = 5;
const MULTI_INCRS = 5;
const PIPELINE_LENGTH = 100;
// Transactions cycle through this many key slots per contender: far more than are ever in
// flight, so no two transactions in flight share a key, and the keys stay few.
const MULTI_SLOTS = KEY_SPACE;

// Every contender visits its keys in the same order: a stride through the key space that
// visits every key (7919 is prime, so coprime with 10000).
const keyIndex = (n) => (n * 7919) % KEY_SPACE;
const pad = (i) => String(i).padStart(12, '0');
const valueOf = (key) => `${key}:`.padEnd(VALUE_BYTES, 'v');

const wanted = (name) => !ONLY_CLIENTS || ONLY_CLIENTS.split(',').some((w) => name.includes(w));

let serverPid = 0; // redis-server's, for its CPU time per operation

/**
 * One round of `fn` at `inFlight`, with the CPU time per operation of this process (the
 * client's work: at 512 in flight that is what a method could add, and it swings less with
 * the neighbours than the wall-clock rate does) and of redis-server (to 10 ms over a round,
 * enough to see how much of a batch's time is the server's). Both are divided by every
 * operation started, the ones finished after the deadline included, since their CPU counts too.
 */
async function measure(fn, inFlight, check) {
  let started = 0;
  const counted = (seq) => {
    started++;
    return fn(seq);
  };
  const server0 = procTicks(serverPid);
  const cpu0 = process.cpuUsage();
  const r = await h.runInFlight(counted, inFlight, ROUND_MS, { check });
  const cpu = process.cpuUsage(cpu0);
  const serverUs = ((procTicks(serverPid) - server0) * 1e6) / TICKS_PER_SEC;
  return { ...r, cpuUsPerOp: (cpu.user + cpu.system) / started, serverUsPerOp: serverUs / started };
}

/**
 * Watches how busy the machine is while a section runs, from /proc: this process's CPU time,
 * redis-server's, and everybody else's (the rest of the busy time of all CPUs). Another
 * engineer's test run on this 2-CPU machine shows up as "others", and a section measured
 * while others took a large share should be read with that in mind. stop() returns the
 * three shares of the machine's capacity (1 = every CPU busy), or null where /proc is
 * not there.
 */
function startMachineMeter() {
  let start;
  try {
    start = { busy: machineBusyTicks(), redis: procTicks(serverPid), own: process.cpuUsage(), t: h.now() };
  } catch {
    return { stop: () => null };
  }
  return {
    stop() {
      const capacity = ((h.now() - start.t) / 1000) * (os.availableParallelism ? os.availableParallelism() : os.cpus().length);
      const own = process.cpuUsage(start.own);
      const ownSec = (own.user + own.system) / 1e6;
      const busySec = (machineBusyTicks() - start.busy) / TICKS_PER_SEC;
      const redisSec = (procTicks(serverPid) - start.redis) / TICKS_PER_SEC;
      return { own: ownSec / capacity, redis: redisSec / capacity, others: Math.max(0, busySec - ownSec - redisSec) / capacity };
    },
  };
}

function fmtMachine(m) {
  if (!m) return '';
  return `; CPU use over the section: this process ${h.fmtPercent(m.own)}, redis-server ${h.fmtPercent(m.redis)}, other processes ${h.fmtPercent(m.others)} of the machine`;
}

// ---------------------------------------------------------------------------------------
// methods: incr() / hset() vs call()

/**
 * Counters of one contender's own (`ns` keeps them apart from every other contender's) and
 * what each must answer next. Replies on one connection come back in order and a key is
 * never twice in flight (512 < 10000), so the expected count is exact.
 */
function counterKeys(ns) {
  const keys = Array.from({ length: KEY_SPACE }, (_, i) => `surface:${ns}:incr:${pad(i)}`);
  const counts = new Float64Array(KEY_SPACE);
  return { keys, check: (v, seq) => v === ++counts[keyIndex(seq)] };
}

/** Hashes of one contender's own: HSET answers 1 for a new field, 0 after. */
function hashKeys(ns) {
  const keys = Array.from({ length: KEY_SPACE }, (_, i) => `surface:${ns}:hash:${pad(i)}`);
  const values = keys.map(valueOf);
  const seen = new Uint8Array(KEY_SPACE);
  const check = (v, seq) => {
    const i = keyIndex(seq);
    const ok = v === (seen[i] === 0 ? 1 : 0);
    seen[i] = 1;
    return ok;
  };
  return { keys, values, check };
}

function methodContenders(client, io) {
  const out = [];
  const add = (name, ns, makeIncr, makeHset, extra = {}) => {
    const c = counterKeys(ns);
    const hk = hashKeys(ns);
    out.push({
      name,
      ...extra,
      INCR: { run: makeIncr(c.keys), check: c.check },
      HSET: { run: makeHset(hk.keys, hk.values), check: hk.check },
    });
  };
  if (client) {
    // The method and call() share one client: only the JS path in front of the addon differs.
    add(
      'hirecache client.incr / hset',
      'hm',
      (keys) => (seq) => client.incr(keys[keyIndex(seq)]),
      (keys, values) => (seq) => {
        const i = keyIndex(seq);
        return client.hset(keys[i], 'field', values[i]);
      },
      { method: true },
    );
    add(
      "hirecache client.call('INCR' / 'HSET')",
      'hc',
      (keys) => (seq) => client.call('INCR', keys[keyIndex(seq)]),
      (keys, values) => (seq) => {
        const i = keyIndex(seq);
        return client.call('HSET', keys[i], 'field', values[i]);
      },
      { call: true },
    );
    add(
      'hirecache client.call(), again (A/A)',
      'ha',
      (keys) => (seq) => client.call('INCR', keys[keyIndex(seq)]),
      (keys, values) => (seq) => {
        const i = keyIndex(seq);
        return client.call('HSET', keys[i], 'field', values[i]);
      },
      { control: true },
    );
  }
  add(
    'ioredis incr / hset',
    'io',
    (keys) => (seq) => io.incr(keys[keyIndex(seq)]),
    (keys, values) => (seq) => {
      const i = keyIndex(seq);
      return io.hset(keys[i], 'field', values[i]);
    },
    { baseline: true },
  );
  return out.filter((c) => wanted(c.name));
}

const BURST = 512;
const BURSTS_PER_ROUND = 25;

/**
 * A deterministic shuffle (xorshift32 seeded by `seed`): the order of the contenders in one
 * cycle of bursts. A fixed or rotated order keeps each contender behind the same neighbour,
 * whose garbage and cache footprint its burst inherits every time; a shuffled order spreads
 * that over all of them.
 */
function shuffled(list, seed) {
  const out = [...list];
  let x = seed | 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * The synchronous part of a call, the only part where a generated method and call() differ
 * (both hand the command to the same native queue, which writes on a later turn): BURST
 * commands started in a tight loop, timed, then awaited and checked, untimed. Contenders take
 * turns burst by burst in a shuffled order, BURSTS_PER_ROUND times a round, after one warm-up
 * round. Resolves a Map from contender name to { rounds: [{ issueNs }] }, a round's figure
 * being the median over its bursts of nanoseconds per command.
 */
async function issueCost(field, command) {
  // Any sequence number will do (the checks follow the key); each contender continues its own.
  const next = new Map(field.map((c) => [c.name, 1000000]));
  const out = new Map(field.map((c) => [c.name, { rounds: [] }]));
  const promises = new Array(BURST);
  for (let r = -1; r < ROUNDS; r++) {
    const samples = new Map(field.map((c) => [c.name, []]));
    for (let b = 0; b < BURSTS_PER_ROUND; b++) {
      for (const c of shuffled(field, (r + 2) * 7919 + b)) {
        const { run, check } = c[command];
        const first = next.get(c.name);
        const t0 = h.now();
        for (let i = 0; i < BURST; i++) promises[i] = run(first + i);
        const t1 = h.now();
        const values = await Promise.all(promises);
        for (let i = 0; i < BURST; i++) {
          if (!check(values[i], first + i)) throw new Error(`${c.name}: ${command} ${first + i} returned ${String(values[i])}`);
        }
        next.set(c.name, first + BURST);
        samples.get(c.name).push(((t1 - t0) * 1e6) / BURST);
      }
    }
    if (r >= 0) for (const c of field) out.get(c.name).rounds.push({ issueNs: h.median(samples.get(c.name)) });
  }
  return out;
}

async function runMethods(client, io) {
  const field = methodContenders(client, io);
  // Every contender answers once before anything is timed, through its check.
  for (const c of field) {
    for (const cmd of ['INCR', 'HSET']) {
      if (!c[cmd].check(await c[cmd].run(0), 0)) throw new Error(`${c.name}: ${cmd} returned the wrong reply`);
    }
  }
  const rows = [];
  const issue = new Map();
  for (const command of ['INCR', 'HSET']) {
    for (const inFlight of METHOD_IN_FLIGHT) {
      const res = await h.alternate(field, (c) => measure(c[command].run, inFlight, c[command].check), { rounds: ROUNDS });
      rows.push({ command, inFlight, field, res });
    }
    h.exposeGc()();
    issue.set(command, await issueCost(field.filter((c) => !c.baseline), command));
  }
  return { rows, issue, field };
}

function reportMethods({ rows, issue, field: contenders }, machine) {
  const table = [];
  const verdicts = [];
  for (const { command, inFlight, field, res } of rows) {
    if (table.length) table.push({ separator: true });
    const base = field.find((c) => c.baseline);
    const call = field.find((c) => c.call);
    for (const c of field) {
      const r = res.get(c.name);
      const vsCall = call && c !== call && !c.baseline ? pairedRatio(r, res.get(call.name), 'opsPerSec') : null;
      const cpuVsCall = call && c !== call && !c.baseline ? pairedRatio(r, res.get(call.name), 'cpuUsPerOp') : null;
      table.push({
        command,
        inFlight,
        name: c.name,
        ops: h.fmtInt(r.median.opsPerSec),
        vsBase: base ? fmtSpread(pairedRatio(r, res.get(base.name), 'opsPerSec')) : '-',
        vsCall: c === call ? '1 (reference)' : fmtSpread(vsCall, 3),
        cpu: r.median.cpuUsPerOp.toFixed(2),
        cpuVsCall: c === call ? '1 (reference)' : fmtSpread(cpuVsCall, 3),
        p50: h.fmtMicros(r.median.p50Ms),
        p99: h.fmtMicros(r.median.p99Ms),
      });
    }
    const method = field.find((c) => c.method);
    const control = field.find((c) => c.control);
    if (method && call && control) {
      const m = pairedRatio(res.get(method.name), res.get(call.name), 'opsPerSec');
      const a = pairedRatio(res.get(control.name), res.get(call.name), 'opsPerSec');
      // "Within noise": the method's median ratio lies inside the range the A/A pair spans.
      const lo = Math.min(a.min, 1 / a.max);
      const hi = Math.max(a.max, 1 / a.min);
      verdicts.push(
        h.targetLine(
          `${command.toLowerCase()}() within noise of call('${command}') at ${inFlight} in flight`,
          m.median >= lo && m.median <= hi,
          `method/call ${fmtSpread(m, 3)}; A/A call/call ${fmtSpread(a, 3)}, noise band ${lo.toFixed(3)}–${hi.toFixed(3)}`,
        ),
      );
    }
  }
  console.log(
    `\nmethods: INCR of ${KEY_SPACE} counters and HSET of one ${VALUE_BYTES}-byte field in ${KEY_SPACE} hashes per contender; ` +
      `one hirecache client serves its three rows; median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms after a warm-up round each${fmtMachine(machine)}\n`,
  );
  h.printTable(
    [
      { key: 'command', title: 'command', align: 'left' },
      { key: 'inFlight', title: 'in flight' },
      { key: 'name', title: 'contender', align: 'left' },
      { key: 'ops', title: 'ops/s' },
      { key: 'vsBase', title: 'vs ioredis [min–max]' },
      { key: 'vsCall', title: 'ops/s vs call() [min–max]' },
      { key: 'cpu', title: 'CPU µs/op' },
      { key: 'cpuVsCall', title: 'CPU vs call() [min–max]' },
      { key: 'p50', title: 'p50 µs' },
      { key: 'p99', title: 'p99 µs' },
    ],
    table,
  );
  console.log('\n"CPU µs/op": this process\'s user+system time per command (the client\'s work; redis-server is another process).');

  // The synchronous part of a call, timed in bursts.
  const call = contenders.find((c) => c.call);
  const method = contenders.find((c) => c.method);
  const control = contenders.find((c) => c.control);
  const issueRows = [];
  for (const [command, res] of issue) {
    if (issueRows.length) issueRows.push({ separator: true });
    for (const c of contenders.filter((x) => res.has(x.name))) {
      const r = res.get(c.name);
      issueRows.push({
        command,
        name: c.name,
        ns: h.fmtInt(h.median(r.rounds.map((x) => x.issueNs))),
        vsCall: !call || c.baseline ? '-' : c === call ? '1 (reference)' : fmtSpread(pairedRatio(r, res.get(call.name), 'issueNs'), 3),
      });
    }
    if (method && call && control) {
      const m = pairedRatio(res.get(method.name), res.get(call.name), 'issueNs');
      const a = pairedRatio(res.get(control.name), res.get(call.name), 'issueNs');
      const extraNs = h.median(res.get(method.name).rounds.map((x, i) => x.issueNs - res.get(call.name).rounds[i].issueNs));
      const at512 = rows.find((x) => x.command === command && x.inFlight === 512);
      const cpuNs = at512 ? at512.res.get(call.name).median.cpuUsPerOp * 1000 : NaN;
      const lo = Math.min(a.min, 1 / a.max);
      const hi = Math.max(a.max, 1 / a.min);
      verdicts.push(
        h.targetLine(
          `${command.toLowerCase()}() issues as fast as call('${command}') within noise`,
          m.median >= lo && m.median <= hi,
          `method/call ${fmtSpread(m, 3)}; A/A ${fmtSpread(a, 3)}; the method's extra ${Math.round(extraNs)} ns` +
            (Number.isFinite(cpuNs)
              ? ` is ${h.fmtPercent(extraNs / cpuNs)} of call()'s ${Math.round(cpuNs)} ns of client CPU per command at 512 in flight`
              : ''),
        ),
      );
    }
  }
  console.log(
    `\nissue cost: the synchronous part of a call (up to handing the command to the client's queue), ${BURST} calls ` +
      `in a tight loop, timed, then awaited and checked; hirecache's contenders take turns burst by burst in a shuffled order, ` +
      `${BURSTS_PER_ROUND} bursts each a round, median of ${ROUNDS} rounds after a warm-up round\n`,
  );
  h.printTable(
    [
      { key: 'command', title: 'command', align: 'left' },
      { key: 'name', title: 'contender', align: 'left' },
      { key: 'ns', title: 'ns/command' },
      { key: 'vsCall', title: 'vs call() [min–max]' },
    ],
    issueRows,
  );
  if (verdicts.length) console.log(`\nClaim (generated methods cost nothing measurable over call()):\n${verdicts.join('\n')}`);
}

// ---------------------------------------------------------------------------------------
// multi: 5 × SET + 5 × INCR in one transaction

/**
 * The keys of one contender's transactions: slot s has five keys to SET and one counter
 * that each transaction INCRs five times, so its INCRs must return exactly the next five
 * counts (MULTI … EXEC lets nothing come between them).
 */
function multiSlots(ns) {
  const setKeys = [];
  const counters = [];
  for (let s = 0; s < MULTI_SLOTS; s++) {
    for (let m = 0; m < MULTI_SETS; m++) setKeys.push(`surface:${ns}:tx:${pad(s)}:k${m}`);
    counters.push(`surface:${ns}:tx:${pad(s)}:n`);
  }
  const values = Array.from({ length: MULTI_SETS }, (_, m) => valueOf(`surface:tx:value:${m}`));
  const counts = new Float64Array(MULTI_SLOTS);
  const slotOf = (seq) => keyIndex(seq) % MULTI_SLOTS;
  // `results` is the transaction's ten replies, unwrapped to plain values.
  const checkValues = (results, seq) => {
    if (!Array.isArray(results) || results.length !== MULTI_SETS + MULTI_INCRS) return false;
    for (let m = 0; m < MULTI_SETS; m++) if (results[m] !== 'OK') return false;
    const s = slotOf(seq);
    for (let m = 0; m < MULTI_INCRS; m++) if (results[MULTI_SETS + m] !== ++counts[s]) return false;
    return true;
  };
  return { setKeys, counters, values, slotOf, checkValues };
}

/** Builds one transaction on `tx` (any client's multi builder with set / incr methods). */
function fillMulti(tx, keys, s) {
  const base = s * MULTI_SETS;
  for (let m = 0; m < MULTI_SETS; m++) tx.set(keys.setKeys[base + m], keys.values[m]);
  const n = keys.counters[s];
  for (let m = 0; m < MULTI_INCRS; m++) tx.incr(n);
  return tx;
}

/** ioredis's [[err, result], …] as plain results (null when any element is an error). */
function unpair(pairs) {
  if (!Array.isArray(pairs)) return null;
  const out = new Array(pairs.length);
  for (let i = 0; i < pairs.length; i++) {
    const p = pairs[i];
    if (!Array.isArray(p) || p[0] !== null) return null;
    out[i] = p[1];
  }
  return out;
}

function multiContenders(client, io, nr) {
  const out = [];
  if (client) {
    const k = multiSlots('hm');
    out.push({
      name: 'hirecache client.multi()…exec()',
      run: (seq) => fillMulti(client.multi(), k, k.slotOf(seq)).exec(),
      check: k.checkValues,
    });
  }
  {
    const k = multiSlots('io');
    out.push({
      name: 'ioredis redis.multi()…exec()',
      baseline: true,
      run: (seq) => fillMulti(io.multi(), k, k.slotOf(seq)).exec(),
      check: (v, seq) => k.checkValues(unpair(v), seq),
    });
  }
  {
    const k = multiSlots('nr');
    out.push({
      name: 'node-redis client.multi()…exec()',
      run: (seq) => fillMulti(nr.multi(), k, k.slotOf(seq)).exec(),
      check: k.checkValues,
    });
  }
  return [...out.filter((c) => wanted(c.name)), ...roundTripFloor(client)];
}

// ---------------------------------------------------------------------------------------
// pipeline: 50 × SET + 50 × GET, alternating

// GETs read keys preloaded with their own values (never written during the run); SETs write
// another key space, each key always with its own value, so every reply is known in advance.
const READ_KEYS = Array.from({ length: KEY_SPACE }, (_, i) => `surface:read:${pad(i)}`);
const READ_VALUES = READ_KEYS.map(valueOf);
const WRITE_KEYS = Array.from({ length: KEY_SPACE }, (_, i) => `surface:write:${pad(i)}`);
const WRITE_VALUES = WRITE_KEYS.map(valueOf);
const HALF = PIPELINE_LENGTH / 2;

/**
 * Issues pipeline `seq`'s commands through `set(key, value)` and `get(key)`: SET then GET,
 * fifty times, every key taken from the same stride, so every contender sends the same bytes.
 */
function fillPipeline(seq, set, get) {
  const first = seq * HALF;
  for (let j = 0; j < HALF; j++) {
    const i = keyIndex(first + j);
    set(WRITE_KEYS[i], WRITE_VALUES[i]);
    get(READ_KEYS[i]);
  }
}

/** Pipeline `seq`'s replies, as plain values, must be 'OK' and each GET's own value. */
function pipelineOk(results, seq) {
  if (!Array.isArray(results) || results.length !== PIPELINE_LENGTH) return false;
  const first = seq * HALF;
  for (let j = 0; j < HALF; j++) {
    if (results[2 * j] !== 'OK' || results[2 * j + 1] !== READ_VALUES[keyIndex(first + j)]) return false;
  }
  return true;
}

function pipelineContenders(client, io, nr) {
  const out = [];
  if (client) {
    out.push({
      name: 'hirecache client.pipeline()…exec()',
      run: (seq) => {
        const p = client.pipeline();
        fillPipeline(seq, (k, v) => p.set(k, v), (k) => p.get(k));
        return p.exec();
      },
      check: (v, seq) => pipelineOk(unpair(v), seq),
    });
  }
  out.push({
    name: 'ioredis redis.pipeline()…exec()',
    baseline: true,
    run: (seq) => {
      const p = io.pipeline();
      fillPipeline(seq, (k, v) => p.set(k, v), (k) => p.get(k));
      return p.exec();
    },
    check: (v, seq) => pipelineOk(unpair(v), seq),
  });
  out.push({
    name: 'node-redis multi()…execAsPipeline() (no MULTI/EXEC)',
    run: (seq) => {
      const p = nr.multi();
      fillPipeline(seq, (k, v) => p.set(k, v), (k) => p.get(k));
      return p.execAsPipeline();
    },
    check: pipelineOk,
  });
  out.push({
    name: 'node-redis 100 calls in one tick + Promise.all (no pipeline object)',
    run: (seq) => {
      const replies = [];
      fillPipeline(
        seq,
        (k, v) => replies.push(nr.set(k, v)),
        (k) => replies.push(nr.get(k)),
      );
      return Promise.all(replies);
    },
    check: pipelineOk,
  });
  return [...out.filter((c) => wanted(c.name)), ...roundTripFloor(client)];
}

/** Writes every read key with its value (no TTL), pipelined, through a separate connection. */
async function preloadReads(admin) {
  const pipe = admin.pipeline();
  for (let i = 0; i < KEY_SPACE; i++) pipe.set(READ_KEYS[i], READ_VALUES[i]);
  const res = await pipe.exec();
  if (res.some(([err, v]) => err || v !== 'OK')) throw new Error('preload failed');
}

/**
 * At 1 in flight a transaction or a pipeline is one round trip, and on this machine a round
 * trip is mostly the kernel's and the scheduler's time, whoever the client: one GET per round
 * trip, shown at that level only, is the floor under every row (it counts as one "batch").
 */
function roundTripFloor(client) {
  if (!client) return [];
  return [
    {
      name: 'floor: one GET per round trip (hirecache client.get)',
      floor: true,
      onlyAt: 1,
      commandsPer: 1,
      run: (seq) => client.get(READ_KEYS[keyIndex(seq)]),
      check: (v, seq) => v === READ_VALUES[keyIndex(seq)],
    },
  ].filter((c) => wanted(c.name));
}

// ---------------------------------------------------------------------------------------
// multi and pipeline: one table shape

async function runBatches(kind, field, levels) {
  for (const c of field) {
    if (!c.check(await c.run(0), 0)) throw new Error(`${c.name}: the first ${kind} returned the wrong replies`);
  }
  const rows = [];
  for (const inFlight of levels) {
    const here = field.filter((c) => c.onlyAt === undefined || c.onlyAt === inFlight);
    const res = await h.alternate(here, (c) => measure(c.run, inFlight, c.check), { rounds: ROUNDS });
    rows.push({ kind, inFlight, field: here, res });
  }
  return rows;
}

function reportBatches(title, unit, commandsPer, rows, machine) {
  const table = [];
  const verdicts = [];
  for (const { inFlight, field, res } of rows) {
    if (table.length) table.push({ separator: true });
    const base = field.find((c) => c.baseline);
    for (const c of field) {
      const r = res.get(c.name);
      const vs = base ? pairedRatio(r, res.get(base.name), 'opsPerSec') : null;
      const cpuVs = base ? pairedRatio(r, res.get(base.name), 'cpuUsPerOp') : null;
      table.push({
        inFlight,
        name: c.name,
        ops: h.fmtInt(r.median.opsPerSec),
        cmds: h.fmtInt(r.median.opsPerSec * (c.commandsPer || commandsPer)),
        vsBase: fmtSpread(vs),
        cpu: fmtSpread(cpuVs),
        cpuUs: h.fmtInt(r.median.cpuUsPerOp),
        serverUs: h.fmtInt(r.median.serverUsPerOp),
        p50: h.fmtMicros(r.median.p50Ms),
        p99: h.fmtMicros(r.median.p99Ms),
      });
      if (base && c.name.startsWith('hirecache')) {
        const floor = field.find((x) => x.floor);
        const bound = floor ? `; a bare round trip reaches ${h.fmtRatio(pairedRatio(res.get(floor.name), res.get(base.name), 'opsPerSec').median, 2)}` : '';
        verdicts.push(h.targetLine(`${c.name} at ${inFlight} in flight >= 2x ioredis`, vs.median >= 2, `${fmtSpread(vs, 3)}${bound}`));
      }
    }
  }
  console.log(`\n${title}; median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms after a warm-up round each${fmtMachine(machine)}\n`);
  h.printTable(
    [
      { key: 'inFlight', title: 'in flight' },
      { key: 'name', title: 'contender', align: 'left' },
      { key: 'ops', title: `${unit}/s` },
      { key: 'cmds', title: 'commands/s' },
      { key: 'vsBase', title: 'vs ioredis [min–max]' },
      { key: 'cpuUs', title: 'client CPU µs' },
      { key: 'cpu', title: 'client CPU vs ioredis [min–max]' },
      { key: 'serverUs', title: 'server CPU µs' },
      { key: 'p50', title: 'p50 µs' },
      { key: 'p99', title: 'p99 µs' },
    ],
    table,
  );
  console.log(
    `\n"client CPU µs": this process's user+system time per ${unit.replace(/s$/, '')}; "server CPU µs": redis-server's ` +
      '(read from /proc to 10 ms a round, so a rough figure).',
  );
  if (verdicts.length) console.log(`\nTarget:\n${verdicts.join('\n')}`);
}

// ---------------------------------------------------------------------------------------

async function main() {
  const server = await h.startServer();
  const url = server.url;
  const hirecache = h.loadHirecache(url);
  const client = hirecache.redis ? hirecache.redis.createClient({ url }) : null;
  const io = new IORedis(url, { lazyConnect: true });
  const nr = nodeRedis.createClient({ url });
  const admin = new IORedis(url);
  serverPid = server.pid;
  const load0 = os.loadavg();
  const started = Date.now();
  try {
    await io.connect();
    await nr.connect();
    await preloadReads(admin);
    // Each section measures now and reports at the end, so the tables print together.
    const reports = [];
    if (SECTIONS.includes('methods')) {
      const meter = startMachineMeter();
      const rows = await runMethods(client, io);
      const machine = meter.stop();
      reports.push(() => reportMethods(rows, machine));
    }
    if (SECTIONS.includes('multi')) {
      const meter = startMachineMeter();
      const rows = await runBatches('multi', multiContenders(client, io, nr), MULTI_IN_FLIGHT);
      const machine = meter.stop();
      const title =
        `multi: MULTI, ${MULTI_SETS} × SET of ${VALUE_BYTES}-byte values, ${MULTI_INCRS} × INCR of one counter, EXEC; ` +
        'no two transactions in flight share a key';
      reports.push(() => reportBatches(title, 'transactions', MULTI_SETS + MULTI_INCRS, rows, machine));
    }
    if (SECTIONS.includes('pipeline')) {
      const meter = startMachineMeter();
      const rows = await runBatches('pipeline', pipelineContenders(client, io, nr), PIPELINE_IN_FLIGHT);
      const machine = meter.stop();
      const title = `pipeline: ${HALF} × (SET of a ${VALUE_BYTES}-byte value, GET of a preloaded ${VALUE_BYTES}-byte value)`;
      reports.push(() => reportBatches(title, 'pipelines', PIPELINE_LENGTH, rows, machine));
    }
    const load1 = os.loadavg();
    console.log(
      `\nsurface: one connection per client, against a redis-server of its own${server.pinned ? ' (pinned to its own CPU)' : ''}; ` +
        `${((Date.now() - started) / 1000).toFixed(0)} s; load average ${load0[0].toFixed(2)} before, ${load1[0].toFixed(2)} after ` +
        `(${os.cpus().length} CPUs)`,
    );
    for (const report of reports) report();
    console.log('\nnode-redis runs with its defaults (RESP3); latency is per transaction / pipeline, as the caller sees it.');
    if (!client) console.log(`\nhirecache rows skipped: ${hirecache.missing}`);
  } finally {
    if (client) await client.quit().catch(() => {});
    await io.quit().catch(() => {});
    await nr.quit().catch(() => {});
    admin.disconnect();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
