'use strict';
// Redis Cluster: GET and SET EX of 100-byte values over 10,000 keys spread over all slots,
// at 1 and 512 commands in flight, for hirecache's cluster client (client.get/set: one
// pipelined connection per primary, commands routed by hash slot in the native core), ioredis
// (new IORedis.Cluster) and node-redis (createCluster), all against the same cluster of 3
// primaries and 3 replicas (test/helpers/cluster.js's startCluster()) on loopback; hirecache's
// plain client against one more, single redis-server rides along as a reference (what the
// cluster costs or gives hirecache itself). redis-benchmark with the same commands, pipelined,
// one process per primary, all at once (keys hash-tagged to that primary), gives the cluster's
// ceiling. Then a cluster-wide prefix delete of 100,000 keys: hirecache's cacheDelPrefix
// against a hand-written loop over ioredis's primaries (cluster.nodes('master')), each scanned
// in turn with SCAN MATCH 'bench:del:*' COUNT 1000 (hirecache's page size too), each page's
// keys UNLINKed in one pipeline to that node, one UNLINK per slot (a cluster refuses a
// cross-slot UNLINK; slots from cluster-key-slot, ioredis's own dependency), the next page
// asked once they are gone.
//
//   node bench/cluster.bench.js           BENCH_ROUNDS=8 BENCH_ROUND_MS=300 BENCH_DEL_ROUNDS=4 by default
//   BENCH_CLIENTS=hirecache BENCH_IN_FLIGHT=512 BENCH_NO_CEILING=1 BENCH_NO_DEL=1 node --cpu-prof bench/cluster.bench.js
//                                         only some contenders (words of their names, comma-
//                                         separated) / levels / parts (for profiling)
//
// Everything runs on one machine: on the 2-CPU VM these benchmarks are written on, the six
// cluster nodes (SETs are also applied by each primary's replica), the single-node server,
// this process and redis-benchmark share two cores. The numbers say how the clients compare
// under that squeeze, not what a cluster of separate machines would serve.
//
// Every contender gets the same keys, the same values, the same sequence of keys and a
// warm-up round of its own, and every reply is checked (a GET must return a 100-byte value,
// every 16th compared in full with that key's own; a SET must answer OK), so a client that
// fails fast, or hands a reply to the wrong caller, cannot look fast. Ratios are the median
// over rounds of the two contenders' speeds in the same round (they ran a second or two apart,
// so the machine's drift mostly cancels), with the lowest and highest round in brackets.
// The keys are written before the timed runs by a writer that is none of the contenders (one
// plain ioredis connection per primary, each key sent to its slot's owner, pipelined). Every
// prefix delete must report exactly 100,000 keys deleted, leave the 10,000 decoys
// ('bench:delx:…', which share all but one character of the prefix) and nothing else.
// MOVED and ASK replies are counted on the servers (INFO errorstats) over each part.
const { execFile, spawnSync } = require('child_process');
const os = require('os');
const IORedis = require('ioredis');
const nodeRedis = require('redis');
const calculateSlot = require('cluster-key-slot');
const h = require('./lib/harness');

const { TICKS_PER_SEC, procTicks, machineBusyTicks, pairedRatio, fmtSpread } = h;
const { startCluster, parseInfo } = require('../test/helpers/cluster');

const ROUNDS = h.envNumber('BENCH_ROUNDS', 8);
const ROUND_MS = h.envNumber('BENCH_ROUND_MS', 300);
const DEL_ROUNDS = h.envNumber('BENCH_DEL_ROUNDS', 4);
const IN_FLIGHT = (process.env.BENCH_IN_FLIGHT || '1,512').split(',').map(Number);
const ONLY_CLIENTS = process.env.BENCH_CLIENTS || '';
const KEY_SPACE = 10000;
const VALUE_BYTES = 100;
const TTL_SEC = 60;
const LOAD_TTL_SEC = 3600;
const SLOTS = 16384;
const HOST = '127.0.0.1';
// The ceiling: on each of the 3 primaries, 2 connections × 85 pipelined = 170 commands in
// flight, 510 in all, the clients' top level.
const CEILING_CONNECTIONS = 2;
const CEILING_PIPELINE = 85;
const DEL_PREFIX = 'bench:del:';
const DEL_KEYS = 100000;
const DECOY_PREFIX = 'bench:delx:';
const DECOY_KEYS = 10000;

const wanted = (name) => !ONLY_CLIENTS || ONLY_CLIENTS.split(',').some((w) => name.includes(w));

// Keys look like redis-benchmark's __rand_int__ expansion ("bench:000000001234"); without a
// hash tag they hash all over the 16384 slots.
const KEYS = Array.from({ length: KEY_SPACE }, (_, i) => `bench:${String(i).padStart(12, '0')}`);
// Each key has its own value, so a reply handed to the wrong caller fails the check.
const VALUES = KEYS.map((k) => `${k}:`.padEnd(VALUE_BYTES, 'v'));
// The n-th operation of every contender touches the same key: a stride through the key
// space that visits every key (7919 is prime, so coprime with 10000).
const keyIndex = (seq) => (seq * 7919) % KEY_SPACE;
const DEL_NAMES = Array.from({ length: DEL_KEYS }, (_, i) => `${DEL_PREFIX}${i}`);
const DECOY_NAMES = Array.from({ length: DECOY_KEYS }, (_, i) => `${DECOY_PREFIX}${i}`);
const DEL_VALUE = 'd'.repeat(VALUE_BYTES);

// Every GET must return a 100-byte string; every 16th is compared in full with its key's own
// value (a full compare of each would cost the driver as much as some clients' own work).
const getOk = (v, seq) =>
  typeof v === 'string' && v.length === VALUE_BYTES && ((seq & 15) !== 0 || v === VALUES[keyIndex(seq)]);
const okReply = (v) => v === 'OK';

const NAMES = {
  hcCluster: 'hirecache cluster',
  ioCluster: 'ioredis Cluster',
  nrCluster: 'node-redis cluster',
  hcSingle: 'hirecache, one redis-server (reference)',
  ceiling: `redis-benchmark ×3 primaries, -c ${CEILING_CONNECTIONS} -P ${CEILING_PIPELINE} (ceiling)`,
  hcDel: "hirecache cacheDelPrefix('bench:del:')",
  ioDel: 'ioredis Cluster: SCAN + UNLINK loop',
};

// ---------------------------------------------------------------------------------------
// The writer: none of the contenders.

/**
 * One plain ioredis connection per primary, each key sent to the primary that serves its
 * slot (as the cluster reported it at the start), pipelined 10,000 commands at a time.
 */
async function makeWriter(cluster) {
  const primaries = await cluster.primaries();
  const owner = new Int8Array(SLOTS).fill(-1);
  primaries.forEach((p, i) => {
    for (const [a, b] of p.slots) owner.fill(i, a, b + 1);
  });
  if (owner.includes(-1)) throw new Error('the primaries do not cover all 16384 slots');
  const conns = primaries.map((p) => new IORedis({ host: HOST, port: p.port }));
  const primaryOf = (key) => owner[calculateSlot(key)];

  /** Sends one command per key (built by add(pipe, key, i)) to its primary; the replies by key index. */
  async function each(keys, add) {
    const CHUNK = 10000;
    const replies = new Array(keys.length);
    for (let start = 0; start < keys.length; start += CHUNK) {
      const pipes = conns.map((c) => ({ pipe: c.pipeline(), at: [] }));
      for (let i = start; i < Math.min(keys.length, start + CHUNK); i++) {
        const p = pipes[primaryOf(keys[i])];
        add(p.pipe, keys[i], i);
        p.at.push(i);
      }
      await Promise.all(
        pipes.map(async ({ pipe, at }) => {
          if (!at.length) return;
          const res = await pipe.exec();
          res.forEach(([err, v], j) => {
            if (err) throw err;
            replies[at[j]] = v;
          });
        }),
      );
    }
    return replies;
  }

  return {
    primaries,
    primaryOf,
    async set(keys, valueOf) {
      const res = await each(keys, (pipe, key, i) => pipe.set(key, valueOf(i), 'EX', LOAD_TTL_SEC));
      if (res.some((v) => v !== 'OK')) throw new Error('the writer: a SET failed');
    },
    async existing(keys) {
      const res = await each(keys, (pipe, key) => pipe.exists(key));
      return res.reduce((n, v) => n + v, 0);
    },
    async dbsize() {
      const sizes = await Promise.all(conns.map((c) => c.dbsize()));
      return sizes.reduce((a, b) => a + b, 0);
    },
    /** INFO `section` of each primary, parsed, in the order of `primaries`. */
    async info(section) {
      return Promise.all(conns.map(async (c) => parseInfo(await c.info(section))));
    },
    close: () => conns.forEach((c) => c.disconnect()),
  };
}

/** `count=N` out of an INFO errorstats / commandstats field ('calls=N,…'), 0 when absent. */
function statField(value, name) {
  const m = new RegExp(`(?:^|,)${name}=(\\d+)`).exec(value || '');
  return m ? Number(m[1]) : 0;
}

/**
 * What every node (primaries and replicas) has counted so far: MOVED and ASK replies sent
 * (INFO errorstats), GET and SET calls (INFO commandstats), keyspace misses.
 */
async function serverCounters(cluster) {
  const out = new Map();
  for (const node of cluster.nodes) {
    const [errors, commands, stats] = await Promise.all(
      ['errorstats', 'commandstats', 'stats'].map(async (s) => parseInfo(await cluster.command(node.port, 'INFO', s))),
    );
    out.set(node.port, {
      moved: statField(errors.errorstat_MOVED, 'count'),
      ask: statField(errors.errorstat_ASK, 'count'),
      get: statField(commands.cmdstat_get, 'calls'),
      set: statField(commands.cmdstat_set, 'calls'),
      misses: Number(stats.keyspace_misses) || 0,
    });
  }
  return out;
}

function counterDelta(before, after) {
  const out = new Map();
  for (const [port, a] of after) {
    const b = before.get(port);
    out.set(port, Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - b[k]])));
  }
  return out;
}

const sumOf = (counters, field) => [...counters.values()].reduce((n, c) => n + c[field], 0);

// ---------------------------------------------------------------------------------------
// Contenders

function makeContenders({ seeds, single }, hirecache, skipped) {
  const out = [];
  const handles = {};
  /** A hirecache client as a contender; `closeIt` false for one that is closed elsewhere. */
  const hc = (name, client, closeIt = true) => {
    out.push({
      name,
      get: (seq) => client.get(KEYS[keyIndex(seq)]),
      set: (seq) => {
        const i = keyIndex(seq);
        return client.set(KEYS[i], VALUES[i], TTL_SEC);
      },
      close: () => (closeIt ? client.quit() : Promise.resolve()),
    });
  };
  if (!hirecache.redis) {
    skipped.push(`hirecache: ${hirecache.missing}`);
  } else {
    // The cluster client is made even when filtered out of the GET/SET rounds: the prefix
    // delete needs it. It is closed at the end, with ioredis's.
    handles.hirecache = hirecache.redis.createClient({ cluster: seeds });
    if (wanted(NAMES.hcCluster)) hc(NAMES.hcCluster, handles.hirecache, false);
    if (wanted(NAMES.hcSingle)) hc(NAMES.hcSingle, hirecache.redis.createClient({ url: single.url }));
  }
  const io = new IORedis.Cluster(
    seeds.map((s) => ({ host: HOST, port: Number(s.split(':')[1]) })),
    { lazyConnect: true },
  );
  handles.ioredis = io;
  if (wanted(NAMES.ioCluster)) {
    out.push({
      name: NAMES.ioCluster,
      get: (seq) => io.get(KEYS[keyIndex(seq)]),
      set: (seq) => {
        const i = keyIndex(seq);
        return io.set(KEYS[i], VALUES[i], 'EX', TTL_SEC);
      },
      close: () => Promise.resolve(),
    });
  }
  if (wanted(NAMES.nrCluster)) {
    const nr = nodeRedis.createCluster({ rootNodes: seeds.map((s) => ({ url: `redis://${s}` })) });
    const setOptions = { expiration: { type: 'EX', value: TTL_SEC } };
    out.push({
      name: NAMES.nrCluster,
      connect: () => nr.connect(),
      get: (seq) => nr.get(KEYS[keyIndex(seq)]),
      set: (seq) => {
        const i = keyIndex(seq);
        return nr.set(KEYS[i], VALUES[i], setOptions);
      },
      close: () => nr.close(),
    });
  }
  return { contenders: out, handles };
}

/**
 * A hash tag of a slot that `primary` serves ("{t7}"), so that a key carrying it goes to that
 * primary without a redirection.
 */
function tagFor(primary) {
  for (let i = 0; ; i++) {
    const slot = calculateSlot(`{t${i}}`);
    if (primary.slots.some(([a, b]) => slot >= a && slot <= b)) return `{t${i}}`;
  }
}

const ceilingKey = (tag) => `bench:${tag}:__rand_int__`;
const ceilingShape = () => ({ connections: CEILING_CONNECTIONS, pipeline: CEILING_PIPELINE, keySpace: KEY_SPACE });

/** One redis-benchmark run against one node, not waited for: resolves with its ops/s. */
function benchmarkOn(port, args) {
  const argv = ['-h', HOST, '-p', String(port), '-c', String(CEILING_CONNECTIONS), '-P', String(CEILING_PIPELINE)];
  argv.push('-r', String(KEY_SPACE), '-q', '--csv', ...args);
  return new Promise((resolve, reject) => {
    execFile('redis-benchmark', argv, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`redis-benchmark failed: ${err.message} ${stderr}`));
      const line = stdout.trim().split('\n').pop() || '';
      const rps = Number((line.split(',')[1] || '').replace(/"/g, ''));
      if (!Number.isFinite(rps) || rps <= 0) return reject(new Error(`cannot read redis-benchmark output: ${stdout} ${stderr}`));
      resolve(rps);
    });
  });
}

/**
 * The cluster's ceiling as one more contender of the top in-flight level: one redis-benchmark
 * per primary, all at once, each sending the commands the clients send (100-byte value, EX 60,
 * 10,000 keys under a hash tag of that primary's), pipelined, the same number each; the
 * cluster's rate is all their commands over the time the slowest took (its own count over its
 * own rate). Sized from the previous round's rate to last about a round.
 * (redis-benchmark --cluster does the same in one process, but its run times come in steps of
 * 250 ms, so a 300 ms round would read as much as 40% slow.)
 */
function ceilingContender(targets, op) {
  const command = (tag) =>
    op === 'GET' ? ['get', ceilingKey(tag)] : ['set', ceilingKey(tag), 'v'.repeat(VALUE_BYTES), 'EX', String(TTL_SEC)];
  let rate = 1000000;
  const run = async () => {
    const each = Math.max(20000, Math.round((rate * ROUND_MS) / 1000 / targets.length));
    const rates = await Promise.all(targets.map((t) => benchmarkOn(t.port, ['-n', String(each), ...command(t.tag)])));
    const n = each * targets.length;
    rate = n / Math.max(...rates.map((r) => each / r));
    return { n, opsPerSec: rate, p50Ms: NaN, p99Ms: NaN };
  };
  return { name: NAMES.ceiling, ceiling: true, run };
}

/**
 * Writes the ceiling's keys (each primary's 10,000 under its tag), so that its GETs find
 * 100-byte values as the clients' do: 12 SETs per key on average leave almost none out.
 */
function preloadCeiling(targets) {
  for (const t of targets) {
    const args = ['-n', String(KEY_SPACE * 12), 'set', ceilingKey(t.tag), 'v'.repeat(VALUE_BYTES), 'EX', String(LOAD_TTL_SEC)];
    h.redisBenchmark(t.port, ceilingShape(), args, 1);
  }
}

// ---------------------------------------------------------------------------------------
// Measuring

const ticksOf = (pids) => pids.reduce((t, pid) => t + procTicks(pid), 0);

/**
 * One round of a client at `inFlight`, with the CPU time per operation of this process (the
 * client's work) and of the servers (to 10 ms a round: a rough figure): the primaries (and
 * the single-node server), and the replicas apart; all divided by every operation started,
 * the ones finished after the deadline included. A ceiling round gives the servers' CPU only
 * (redis-benchmark is another process), per command it sent.
 */
async function measure(c, op, inFlight, pids) {
  const p0 = ticksOf(pids.primaries);
  const r0 = ticksOf(pids.replicas);
  const servers = (n) => ({
    serverUsPerOp: ((ticksOf(pids.primaries) - p0) * 1e6) / TICKS_PER_SEC / n,
    replicaUsPerOp: ((ticksOf(pids.replicas) - r0) * 1e6) / TICKS_PER_SEC / n,
  });
  if (c.ceiling) {
    const { n, ...r } = await c.run();
    return { ...r, ...servers(n) };
  }
  const fn = op === 'GET' ? c.get : c.set;
  const check = op === 'GET' ? getOk : okReply;
  let started = 0;
  const counted = (seq) => {
    started++;
    return fn(seq);
  };
  const cpu0 = process.cpuUsage();
  const r = await h.runInFlight(counted, inFlight, ROUND_MS, { check });
  const cpu = process.cpuUsage(cpu0);
  return { ...r, cpuUsPerOp: (cpu.user + cpu.system) / started, ...servers(started) };
}

/**
 * How busy the machine is over the run, from /proc: this process, the cluster's primaries,
 * its replicas, the single-node server, everybody else (redis-benchmark and other users'
 * processes). stop() gives each as a share of the machine.
 */
function startMachineMeter(groups) {
  let start;
  try {
    start = { busy: machineBusyTicks(), own: process.cpuUsage(), t: h.now(), ticks: groups.map((g) => ticksOf(g.pids)) };
  } catch {
    return { stop: () => null };
  }
  return {
    stop() {
      const capacity = ((h.now() - start.t) / 1000) * (os.availableParallelism ? os.availableParallelism() : os.cpus().length);
      const own = process.cpuUsage(start.own);
      const ownSec = (own.user + own.system) / 1e6;
      const busySec = (machineBusyTicks() - start.busy) / TICKS_PER_SEC;
      const out = { own: ownSec / capacity, groups: [] };
      let counted = ownSec;
      groups.forEach((g, i) => {
        const sec = (ticksOf(g.pids) - start.ticks[i]) / TICKS_PER_SEC;
        counted += sec;
        out.groups.push({ name: g.name, share: sec / capacity });
      });
      out.others = Math.max(0, busySec - counted) / capacity;
      return out;
    },
  };
}

/** Writes every key with its value (long TTL), pipelined, on the single-node server. */
async function preloadSingle(admin) {
  const pipe = admin.pipeline();
  for (let i = 0; i < KEY_SPACE; i++) pipe.set(KEYS[i], VALUES[i], 'EX', LOAD_TTL_SEC);
  const res = await pipe.exec();
  if (res.some(([err, v]) => err || v !== 'OK')) throw new Error('preload of the single-node server failed');
}

// ---------------------------------------------------------------------------------------
// Prefix delete

/**
 * The hand-written loop: every primary ioredis knows, in turn; SCAN MATCH prefix* COUNT 1000;
 * each page's keys UNLINKed in one pipeline to the node that returned them, one UNLINK per
 * slot; the next page asked once they are gone. Resolves with how many went.
 */
async function ioredisDelPrefix(io, prefix) {
  let deleted = 0;
  for (const node of io.nodes('master')) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      const bySlot = new Map();
      for (const key of keys) {
        const slot = calculateSlot(key);
        const group = bySlot.get(slot);
        if (group) group.push(key);
        else bySlot.set(slot, [key]);
      }
      const pipe = node.pipeline();
      for (const group of bySlot.values()) pipe.unlink(...group);
      for (const [err, n] of await pipe.exec()) {
        if (err) throw err;
        deleted += n;
      }
    } while (cursor !== '0');
  }
  return deleted;
}

/**
 * Alternating rounds of the two prefix deletes. Before each, the 100,000 keys (and the
 * decoys) are written again; after each, the count it reported, the keys left in the
 * cluster and the decoys are checked.
 */
async function prefixDelete({ cluster, writer, cache, io, pids }) {
  await cluster.flushAll();
  const contenders = [];
  if (cache) contenders.push({ name: NAMES.hcDel, run: () => cache.cacheDelPrefix(DEL_PREFIX) });
  contenders.push({ name: NAMES.ioDel, run: () => ioredisDelPrefix(io, DEL_PREFIX) });
  const prepare = async () => {
    await writer.set(DEL_NAMES, () => DEL_VALUE);
    await writer.set(DECOY_NAMES, () => DEL_VALUE);
    const size = await writer.dbsize();
    if (size !== DEL_KEYS + DECOY_KEYS) throw new Error(`the cluster holds ${size} keys before a delete, not ${DEL_KEYS + DECOY_KEYS}`);
  };
  const runRound = async (c) => {
    const s0 = ticksOf(pids.all);
    const cpu0 = process.cpuUsage();
    const monitor = h.startLoopMonitor();
    const t0 = h.now();
    const deleted = await c.run();
    const ms = h.now() - t0;
    const loop = monitor.stop();
    const cpu = process.cpuUsage(cpu0);
    const serverMs = ((ticksOf(pids.all) - s0) * 1000) / TICKS_PER_SEC;
    if (deleted !== DEL_KEYS) throw new Error(`${c.name} reported ${deleted} keys deleted, not ${DEL_KEYS}`);
    const left = await writer.dbsize();
    const decoys = await writer.existing(DECOY_NAMES);
    if (left !== DECOY_KEYS || decoys !== DECOY_KEYS) {
      throw new Error(`${c.name} left ${left} keys in the cluster, ${decoys} of the ${DECOY_KEYS} decoys among them`);
    }
    return {
      ms,
      keysPerSec: (deleted * 1000) / ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      serverMs,
      maxGapMs: loop.maxGapMs,
    };
  };
  const before = await serverCounters(cluster);
  const res = await h.alternate(contenders, runRound, { rounds: DEL_ROUNDS, prepare });
  const redirections = counterDelta(before, await serverCounters(cluster));
  return { contenders, res, redirections };
}

// ---------------------------------------------------------------------------------------

async function main() {
  const wallStart = Date.now();
  const cluster = await startCluster();
  let single = null;
  let writer = null;
  let admin = null;
  let contenders = [];
  let handles = {};
  try {
    single = await h.startServer();
    const primaries = await cluster.primaries();
    const primaryPorts = new Set(primaries.map((p) => p.port));
    const seeds = primaries.map((p) => `${HOST}:${p.port}`);
    const pids = {
      primaries: [...cluster.nodes.filter((n) => primaryPorts.has(n.port)).map((n) => n.server.pid), single.pid],
      replicas: cluster.nodes.filter((n) => !primaryPorts.has(n.port)).map((n) => n.server.pid),
    };
    pids.all = [...pids.primaries, ...pids.replicas];
    writer = await makeWriter(cluster);
    admin = new IORedis(single.url);
    const hirecache = h.loadHirecache(single.url);
    const skipped = [];
    ({ contenders, handles } = makeContenders({ seeds, single }, hirecache, skipped));
    const ceilingOn = !process.env.BENCH_NO_CEILING;

    const meter = startMachineMeter([
      { name: 'cluster primaries', pids: pids.primaries.slice(0, -1) },
      { name: 'replicas', pids: pids.replicas },
      { name: 'single-node server', pids: [single.pid] },
    ]);
    const load0 = os.loadavg();
    const started = Date.now();

    await handles.ioredis.connect();
    for (const c of contenders) if (c.connect) await c.connect();
    await writer.set(KEYS, (i) => VALUES[i]);
    await preloadSingle(admin);
    // Every contender answers once before anything is timed (connections and slot maps are
    // made here), through the checks the rounds use.
    for (const c of contenders) {
      if (!getOk(await c.get(0), 0)) throw new Error(`${c.name}: GET of a preloaded key returned the wrong value`);
      if (!okReply(await c.set(0))) throw new Error(`${c.name}: SET failed`);
    }
    const ceilingTargets = primaries.map((p) => ({ port: p.port, tag: tagFor(p) }));
    if (ceilingOn) preloadCeiling(ceilingTargets);

    const hcStatus0 = handles.hirecache ? handles.hirecache.status().cluster : null;
    const counters0 = await serverCounters(cluster);
    const results = new Map(); // `${op} ${inFlight}` -> { field, res }
    const top = Math.max(...IN_FLIGHT);
    let getMisses = 0;
    for (const inFlight of IN_FLIGHT) {
      for (const op of ['GET', 'SET']) {
        // GET rounds must find every key with its own value, whatever ran before.
        if (op === 'GET') {
          await writer.set(KEYS, (i) => VALUES[i]);
          await preloadSingle(admin);
        }
        const field = [...contenders];
        if (inFlight === top && ceilingOn) field.push(ceilingContender(ceilingTargets, op));
        const m0 = op === 'GET' ? await serverCounters(cluster) : null;
        const res = await h.alternate(field, (c) => measure(c, op, inFlight, pids), { rounds: ROUNDS });
        if (m0) getMisses += sumOf(counterDelta(m0, await serverCounters(cluster)), 'misses');
        results.set(`${op} ${inFlight}`, { field, res });
      }
    }
    const counters = counterDelta(counters0, await serverCounters(cluster));
    const hcStatus = handles.hirecache ? handles.hirecache.status().cluster : null;
    const getSetSecs = (Date.now() - started) / 1000;

    let del = null;
    if (!process.env.BENCH_NO_DEL) {
      const cache = handles.hirecache ? hirecache.cache.createCache({ client: handles.hirecache }) : null;
      del = await prefixDelete({ cluster, writer, cache, io: handles.ioredis, pids });
    }
    const hcStatus2 = handles.hirecache ? handles.hirecache.status().cluster : null;
    const machine = meter.stop();
    const load1 = os.loadavg();
    report({
      results, del, cluster, primaries, writer, single, skipped, ceilingOn, machine, load0, load1,
      counters, getMisses, hcStatus0, hcStatus, hcStatus2, getSetSecs, secs: (Date.now() - started) / 1000,
    });
  } finally {
    for (const c of contenders) await c.close().catch(() => {});
    if (handles.hirecache) await handles.hirecache.quit().catch(() => {});
    if (handles.ioredis) await handles.ioredis.quit().catch(() => {});
    if (admin) admin.disconnect();
    if (writer) writer.close();
    if (single) await single.stop();
    await cluster.stop();
  }
  console.log(`\ncluster.bench.js: done in ${((Date.now() - wallStart) / 1000).toFixed(1)} s (cluster start and stop included)`);
}

function redisServerVersion() {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  const m = /v=(\S+)/.exec(r.stdout || '');
  return m ? m[1] : '?';
}

function report(o) {
  const { results, del, cluster, primaries, writer, single, skipped, ceilingOn, machine, load0, load1 } = o;
  const top = Math.max(...IN_FLIGHT);
  const rows = [];
  for (const op of ['GET', 'SET']) {
    for (const inFlight of IN_FLIGHT) {
      const { field, res } = results.get(`${op} ${inFlight}`);
      if (rows.length) rows.push({ separator: true });
      const io = res.get(NAMES.ioCluster);
      const ceil = res.get(NAMES.ceiling);
      for (const c of field) {
        const r = res.get(c.name);
        const isIo = c.name === NAMES.ioCluster;
        rows.push({
          op,
          inFlight: c.ceiling ? CEILING_CONNECTIONS * CEILING_PIPELINE * primaries.length : inFlight,
          name: c.name,
          ops: h.fmtInt(r.median.opsPerSec),
          vsIo: isIo ? '1 (reference)' : fmtSpread(pairedRatio(r, io)),
          ofCeiling: ceil && !c.ceiling && c.name !== NAMES.hcSingle ? h.fmtPercent(pairedRatio(r, ceil).median) : '',
          cpuUs: c.ceiling ? '-' : h.fmtMs(r.median.cpuUsPerOp, 1),
          serverUs: h.fmtMs(r.median.serverUsPerOp, 1),
          replicaUs: c.name === NAMES.hcSingle ? '-' : h.fmtMs(r.median.replicaUsPerOp, 1),
          p50: h.fmtMicros(r.median.p50Ms),
          p99: h.fmtMicros(r.median.p99Ms),
        });
      }
    }
  }
  const machineText = machine
    ? `; CPU use over the run: this process ${h.fmtPercent(machine.own)}, ` +
      machine.groups.map((g) => `${g.name} ${h.fmtPercent(g.share)}`).join(', ') +
      `, other processes (redis-benchmark and other users' included) ${h.fmtPercent(machine.others)} of the machine`
    : '';
  const ncpu = os.cpus().length;
  console.log(
    `\ncluster: ${VALUE_BYTES}-byte values, ${KEY_SPACE} keys over all slots, SET with EX ${TTL_SEC}; a Redis Cluster of ` +
      `${primaries.length} primaries (ports ${primaries.map((p) => p.port).join(', ')}) with 1 replica each, and one ` +
      `single redis-server (port ${single.port}) for the reference, redis-server ${redisServerVersion()}, all on loopback; ` +
      `${ncpu} CPUs shared by the ${cluster.nodes.length + 1} servers, this process and redis-benchmark; ` +
      `clients seeded with the ${primaries.length} primaries; median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms after a ` +
      `warm-up round each; ${o.secs.toFixed(0)} s (GET/SET ${o.getSetSecs.toFixed(0)} s), load average ` +
      `${load0[0].toFixed(2)} before, ${load1[0].toFixed(2)} after${machineText}\n`,
  );
  h.printTable(
    [
      { key: 'op', title: 'op', align: 'left' },
      { key: 'inFlight', title: 'in flight' },
      { key: 'name', title: 'contender', align: 'left' },
      { key: 'ops', title: 'ops/s' },
      { key: 'vsIo', title: 'vs ioredis Cluster [min–max]' },
      { key: 'ofCeiling', title: 'of ceiling' },
      { key: 'cpuUs', title: 'client CPU µs/op' },
      { key: 'serverUs', title: 'primaries CPU µs/op' },
      { key: 'replicaUs', title: 'replicas CPU µs/op' },
      { key: 'p50', title: 'p50 µs' },
      { key: 'p99', title: 'p99 µs' },
    ],
    rows,
  );
  console.log(
    '\n"client CPU µs/op": this process\'s user+system time per operation; "primaries CPU µs/op": the three primaries\' ' +
      "(the single server's for the reference row), \"replicas CPU µs/op\": the three replicas' (applying the primaries' " +
      'writes), both read from /proc to 10 ms a round, so rough figures. "of ceiling": median of the per-round ratio to ' +
      'redis-benchmark on every primary in the same rounds. The single-node reference has no replica to feed. node-redis runs ' +
      'with its defaults; latency is per operation, as the caller sees it.',
  );

  const ratioRows = [];
  const verdicts = [];
  for (const op of ['GET', 'SET']) {
    for (const inFlight of IN_FLIGHT) {
      const { res } = results.get(`${op} ${inFlight}`);
      const hc = res.get(NAMES.hcCluster);
      const ceil = res.get(NAMES.ceiling);
      const share = (name) => (ceil && res.get(name) ? h.fmtPercent(pairedRatio(res.get(name), ceil).median) : '');
      const vsIo = pairedRatio(hc, res.get(NAMES.ioCluster));
      ratioRows.push({
        op,
        inFlight,
        vsIo: fmtSpread(vsIo),
        vsNr: fmtSpread(pairedRatio(hc, res.get(NAMES.nrCluster))),
        vsSingle: fmtSpread(pairedRatio(hc, res.get(NAMES.hcSingle))),
        hcShare: share(NAMES.hcCluster),
        ioShare: share(NAMES.ioCluster),
        nrShare: share(NAMES.nrCluster),
      });
      if (vsIo && inFlight === top) {
        verdicts.push(h.targetLine(`hirecache cluster ${op} at ${inFlight} in flight >= 3x ioredis Cluster`, vsIo.median >= 3, fmtSpread(vsIo, 3)));
      }
    }
  }
  console.log(`\n${NAMES.hcCluster}, round by round (median of the per-round ratio [lowest–highest round])\n`);
  h.printTable(
    [
      { key: 'op', title: 'op', align: 'left' },
      { key: 'inFlight', title: 'in flight' },
      { key: 'vsIo', title: 'vs ioredis Cluster' },
      { key: 'vsNr', title: 'vs node-redis cluster' },
      { key: 'vsSingle', title: 'vs hirecache on one server' },
      { key: 'hcShare', title: 'hirecache of ceiling' },
      { key: 'ioShare', title: 'ioredis of ceiling' },
      { key: 'nrShare', title: 'node-redis of ceiling' },
    ],
    ratioRows,
  );
  if (!ceilingOn) console.log('\nceiling off (BENCH_NO_CEILING)');
  if (verdicts.length && !ONLY_CLIENTS && IN_FLIGHT.join() === '1,512') console.log(`\nTarget:\n${verdicts.join('\n')}`);

  // How the work spread over the nodes.
  const keysPer = primaries.map(() => 0);
  for (const k of KEYS) keysPer[writer.primaryOf(k)]++;
  const slotsOf = (p) => p.slots.reduce((n, [a, b]) => n + b - a + 1, 0);
  console.log('\nPer primary, over the GET/SET part (every contender and the ceiling together):\n');
  h.printTable(
    [
      { key: 'port', title: 'primary', align: 'left' },
      { key: 'slots', title: 'slots' },
      { key: 'keys', title: `of the ${KEY_SPACE} keys` },
      { key: 'gets', title: 'GET calls' },
      { key: 'sets', title: 'SET calls' },
    ],
    primaries.map((p, i) => {
      const c = o.counters.get(p.port);
      return { port: `${HOST}:${p.port}`, slots: h.fmtInt(slotsOf(p)), keys: h.fmtInt(keysPer[i]), gets: h.fmtInt(c.get), sets: h.fmtInt(c.set) };
    }),
  );
  const redirText = (counters) => `${sumOf(counters, 'moved')} MOVED, ${sumOf(counters, 'ask')} ASK`;
  console.log(
    `\nRedirections sent by the servers (INFO errorstats, all nodes): GET/SET part ${redirText(o.counters)}` +
      (del ? `; prefix delete part ${redirText(del.redirections)}` : '') +
      `. GET misses on the cluster during the GET rounds (INFO keyspace_misses): ${h.fmtInt(o.getMisses)}.`,
  );
  if (o.hcStatus) {
    const errors = o.hcStatus2.nodes.filter((n) => n.lastError).map((n) => `${n.endpoint}: ${n.lastError.code} ${n.lastError.message}`);
    console.log(
      `hirecache cluster client status: slot map reads ${o.hcStatus0.mapReads} before the rounds, ${o.hcStatus.mapReads} after ` +
        `GET/SET, ${o.hcStatus2.mapReads} at the end (it reads it again every 5 s by default: refreshInterval); redirections followed ${o.hcStatus.redirections - o.hcStatus0.redirections} ` +
        `in GET/SET, ${o.hcStatus2.redirections} in all; node connections opened ` +
        `${o.hcStatus2.nodes.map((n) => `${n.role} ${n.connectionsOpened}`).join(', ')}; ` +
        `breakers ${[...new Set(o.hcStatus2.nodes.map((n) => n.breaker))].join('/')}; ` +
        `last errors: ${errors.length ? errors.join('; ') : 'none'}.`,
    );
  }

  if (del) {
    const io = del.res.get(NAMES.ioDel);
    console.log(
      `\nPrefix delete across the cluster: ${h.fmtInt(DEL_KEYS)} keys '${DEL_PREFIX}0…${DEL_KEYS - 1}' (100-byte values) over all ` +
        `slots, plus ${h.fmtInt(DECOY_KEYS)} decoys '${DECOY_PREFIX}…' that must stay; every key written again before each run; ` +
        `median of ${DEL_ROUNDS} alternating rounds after a warm-up round each; every run deleted exactly ${h.fmtInt(DEL_KEYS)} ` +
        'and left the decoys and nothing else.\n',
    );
    h.printTable(
      [
        { key: 'name', title: 'contender', align: 'left' },
        { key: 'ms', title: 'ms' },
        { key: 'rate', title: 'keys/s' },
        { key: 'vsIo', title: 'speed vs ioredis loop [min–max]' },
        { key: 'cpu', title: 'client CPU ms' },
        { key: 'server', title: 'servers CPU ms' },
        { key: 'gap', title: 'max event-loop gap ms' },
      ],
      del.contenders.map((c) => {
        const r = del.res.get(c.name);
        return {
          name: c.name,
          ms: h.fmtMs(r.median.ms, 0),
          rate: h.fmtInt(r.median.keysPerSec),
          vsIo: c.name === NAMES.ioDel ? '1 (reference)' : fmtSpread(pairedRatio(r, io, 'keysPerSec')),
          cpu: h.fmtMs(r.median.cpuMs, 0),
          server: h.fmtMs(r.median.serverMs, 0),
          gap: h.fmtMs(r.median.maxGapMs, 1),
        };
      }),
    );
    console.log('\n"servers CPU ms": all six nodes (the replicas apply the UNLINKs too), from /proc to 10 ms.');
  }
  for (const s of skipped) console.log(`\nskipped: ${s}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
