'use strict';
// GET and SET EX of 100-byte values through hirecache (its cache API and its raw client),
// ioredis (plain and with auto-pipelining) and node-redis, at 1, 64 and 512 commands in
// flight on one connection each, against a redis-server of its own. redis-benchmark with
// the same commands, pipelined, on the same server gives the ceiling.
//
//   node bench/client.bench.js            BENCH_ROUNDS=8 BENCH_ROUND_MS=300 by default
//   BENCH_CLIENTS=hirecache BENCH_IN_FLIGHT=512 node --cpu-prof bench/client.bench.js
//                                         only some clients / levels (for profiling)
//
// Every contender gets the same keys, the same values, the same sequence of keys and a
// warm-up round of its own, and every reply is checked (a GET must return a 100-byte value,
// every 16th compared in full with that key's own; a SET must succeed), so a client that
// fails fast, or hands a reply to the wrong caller, cannot look fast.
const { spawnSync } = require('child_process');
const IORedis = require('ioredis');
const nodeRedis = require('redis');
const h = require('./lib/harness');

const ROUNDS = h.envNumber('BENCH_ROUNDS', 8);
const ROUND_MS = h.envNumber('BENCH_ROUND_MS', 300);
const IN_FLIGHT = (process.env.BENCH_IN_FLIGHT || '1,64,512').split(',').map(Number);
const ONLY_CLIENTS = process.env.BENCH_CLIENTS || '';
const KEY_SPACE = 10000;
const VALUE_BYTES = 100;
const TTL_SEC = 60;
const CEILING_CONNECTIONS = 8;
const CEILING_PIPELINE = 64;

// Keys look like redis-benchmark's __rand_int__ expansion ("bench:000000001234"), so the
// ceiling run below reads and writes exactly this key space.
const KEYS = Array.from({ length: KEY_SPACE }, (_, i) => `bench:${String(i).padStart(12, '0')}`);
// Each key has its own value, so a reply handed to the wrong caller fails the check.
const VALUES = KEYS.map((k) => `${k}:`.padEnd(VALUE_BYTES, 'v'));
// The n-th operation of every contender touches the same key: a stride through the key
// space that visits every key (7919 is prime, so coprime with 10000).
const keyIndex = (seq) => (seq * 7919) % KEY_SPACE;

function makeContenders(url, hirecache) {
  const contenders = [];
  if (hirecache.cache) {
    const { cacheGet, cacheSet } = hirecache.cache;
    contenders.push({
      name: 'hirecache cacheGet/cacheSet',
      get: (seq) => cacheGet(KEYS[keyIndex(seq)]),
      set: (seq) => {
        const i = keyIndex(seq);
        return cacheSet(KEYS[i], VALUES[i], TTL_SEC);
      },
      setOk: (v) => v === true,
      close: async () => {
        const c = hirecache.redis.getRedisClient();
        if (c) await c.quit();
      },
    });
    const client = hirecache.redis.createClient({ url });
    contenders.push({
      name: 'hirecache client.get/set',
      get: (seq) => client.get(KEYS[keyIndex(seq)]),
      set: (seq) => {
        const i = keyIndex(seq);
        return client.set(KEYS[i], VALUES[i], TTL_SEC);
      },
      setOk: (v) => v === 'OK',
      close: () => client.quit(),
    });
  }
  const io = new IORedis(url, { lazyConnect: true });
  contenders.push({
    name: 'ioredis',
    baseline: true,
    connect: () => io.connect(),
    get: (seq) => io.get(KEYS[keyIndex(seq)]),
    set: (seq) => {
      const i = keyIndex(seq);
      return io.set(KEYS[i], VALUES[i], 'EX', TTL_SEC);
    },
    setOk: (v) => v === 'OK',
    close: () => io.quit(),
  });
  const ioAuto = new IORedis(url, { lazyConnect: true, enableAutoPipelining: true });
  contenders.push({
    name: 'ioredis autoPipelining',
    connect: () => ioAuto.connect(),
    get: (seq) => ioAuto.get(KEYS[keyIndex(seq)]),
    set: (seq) => {
      const i = keyIndex(seq);
      return ioAuto.set(KEYS[i], VALUES[i], 'EX', TTL_SEC);
    },
    setOk: (v) => v === 'OK',
    close: () => ioAuto.quit(),
  });
  const nr = nodeRedis.createClient({ url });
  const setOptions = { expiration: { type: 'EX', value: TTL_SEC } };
  contenders.push({
    name: 'node-redis',
    connect: () => nr.connect(),
    get: (seq) => nr.get(KEYS[keyIndex(seq)]),
    set: (seq) => {
      const i = keyIndex(seq);
      return nr.set(KEYS[i], VALUES[i], setOptions);
    },
    setOk: (v) => v === 'OK',
    close: () => nr.quit(),
  });
  return contenders;
}

// Every GET must return a 100-byte string; every 16th is compared in full with its key's own
// value (a full compare of each would cost the driver as much as some clients' own work).
const getOk = (v, seq) =>
  typeof v === 'string' && v.length === VALUE_BYTES && ((seq & 15) !== 0 || v === VALUES[keyIndex(seq)]);

/** Writes every key with its value (long TTL), pipelined, through a separate connection. */
async function preload(admin) {
  const pipe = admin.pipeline();
  for (let i = 0; i < KEY_SPACE; i++) pipe.set(KEYS[i], VALUES[i], 'EX', 3600);
  const res = await pipe.exec();
  if (res.some(([err, v]) => err || v !== 'OK')) throw new Error('preload failed');
}

const CEILING_NAME = `redis-benchmark -c ${CEILING_CONNECTIONS} -P ${CEILING_PIPELINE} (ceiling)`;

/**
 * The ceiling as one more contender of the top in-flight level: redis-benchmark sending
 * the very commands the clients send (same keys, 100-byte value, EX 60), pipelined, from
 * this process's CPU. Its rounds alternate with the clients' like any other, sized from
 * the previous round's rate to last about a round.
 */
function ceilingContender(port, op) {
  const command =
    op === 'GET'
      ? ['get', 'bench:__rand_int__']
      : ['set', 'bench:__rand_int__', 'v'.repeat(VALUE_BYTES), 'EX', String(TTL_SEC)];
  let rate = 500000;
  const run = () => {
    const n = Math.max(50000, Math.round((rate * ROUND_MS) / 1000));
    const args = ['-p', String(port), '-c', String(CEILING_CONNECTIONS), '-P', String(CEILING_PIPELINE)];
    args.push('-r', String(KEY_SPACE), '-n', String(n), '-q', '--csv', ...command);
    const res = spawnSync('redis-benchmark', args, { encoding: 'utf8' });
    if (res.error) throw res.error;
    if (res.status !== 0) throw new Error(`redis-benchmark failed: ${res.stderr}`);
    const line = res.stdout.trim().split('\n')[1] || '';
    const rps = Number((line.split(',')[1] || '').replace(/"/g, ''));
    if (!Number.isFinite(rps) || rps <= 0) throw new Error(`cannot read redis-benchmark output: ${res.stdout}`);
    rate = rps;
    return { opsPerSec: rps, p50Ms: NaN, p99Ms: NaN };
  };
  return { name: CEILING_NAME, ceiling: true, run };
}

async function main() {
  const server = await h.startServer();
  const url = server.url;
  const hirecache = h.loadHirecache(url);
  const admin = new IORedis(url);
  const contenders = makeContenders(url, hirecache).filter((c) => !ONLY_CLIENTS || c.name.includes(ONLY_CLIENTS));
  try {
    for (const c of contenders) if (c.connect) await c.connect();
    await preload(admin);
    // Every contender answers once before anything is timed (lazy connects happen here).
    for (const c of contenders) {
      if (!getOk(await c.get(0), 0)) throw new Error(`${c.name}: GET of a preloaded key returned the wrong value`);
    }

    const results = []; // { op, inFlight, name, opsPerSec, p50Ms, p99Ms }
    const top = Math.max(...IN_FLIGHT);
    for (const inFlight of IN_FLIGHT) {
      for (const op of ['GET', 'SET']) {
        // GET rounds must find every key with its own value, whatever ran before.
        if (op === 'GET') await preload(admin);
        const field = [...contenders];
        if (inFlight === top && !process.env.BENCH_NO_CEILING) field.push(ceilingContender(server.port, op));
        const runRound = (c) => {
          if (c.ceiling) return c.run();
          return op === 'GET'
            ? h.runInFlight(c.get, inFlight, ROUND_MS, { check: getOk })
            : h.runInFlight(c.set, inFlight, ROUND_MS, { check: c.setOk });
        };
        const med = await h.alternate(field, runRound, { rounds: ROUNDS });
        for (const c of field) results.push({ op, inFlight, name: c.name, ceiling: !!c.ceiling, ...med.get(c.name).median });
      }
    }
    const ceilingOf = (op) => (results.find((r) => r.ceiling && r.op === op) || { opsPerSec: NaN }).opsPerSec;
    const ceil = { GET: ceilingOf('GET'), SET: ceilingOf('SET') };

    report(results, ceil, hirecache, server);
  } finally {
    for (const c of contenders) await c.close().catch(() => {});
    admin.disconnect();
    await server.stop();
  }
}

function report(results, ceil, hirecache, server) {
  const find = (op, inFlight, name) => results.find((r) => r.op === op && r.inFlight === inFlight && r.name === name);
  const rows = [];
  for (const op of ['GET', 'SET']) {
    for (const inFlight of IN_FLIGHT) {
      if (rows.length) rows.push({ separator: true });
      const base = find(op, inFlight, 'ioredis') || { opsPerSec: NaN };
      for (const r of results.filter((x) => x.op === op && x.inFlight === inFlight)) {
        rows.push({
          op,
          inFlight: r.ceiling ? CEILING_CONNECTIONS * CEILING_PIPELINE : inFlight,
          name: r.name,
          ops: h.fmtInt(r.opsPerSec),
          vsBase: h.fmtRatio(r.opsPerSec / base.opsPerSec),
          vsCeil: h.fmtPercent(r.opsPerSec / ceil[op]),
          p50: h.fmtMicros(r.p50Ms),
          p99: h.fmtMicros(r.p99Ms),
        });
      }
    }
  }
  console.log(
    `\nclient: ${VALUE_BYTES}-byte values, ${KEY_SPACE} keys, SET with EX ${TTL_SEC}; ` +
      `median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms after a warm-up round each` +
      `${server.pinned ? '; redis-server pinned to its own CPU' : ''}\n`,
  );
  h.printTable(
    [
      { key: 'op', title: 'op', align: 'left' },
      { key: 'inFlight', title: 'in flight' },
      { key: 'name', title: 'client', align: 'left' },
      { key: 'ops', title: 'ops/s' },
      { key: 'vsBase', title: 'vs ioredis' },
      { key: 'vsCeil', title: 'vs ceiling' },
      { key: 'p50', title: 'p50 µs' },
      { key: 'p99', title: 'p99 µs' },
    ],
    rows,
  );
  console.log('\nnode-redis runs with its defaults (RESP3); latency is per operation, as the caller sees it.');

  if (!hirecache.cache) {
    console.log(`\nhirecache rows skipped: ${hirecache.missing}`);
    return;
  }
  if (ONLY_CLIENTS || IN_FLIGHT.join() !== '1,64,512') return;
  console.log('\nTargets (issue 2):');
  const top = IN_FLIGHT[IN_FLIGHT.length - 1];
  for (const name of ['hirecache cacheGet/cacheSet', 'hirecache client.get/set']) {
    for (const op of ['GET', 'SET']) {
      const r = find(op, top, name);
      const io = find(op, top, 'ioredis');
      const ratio = r.opsPerSec / io.opsPerSec;
      console.log(h.targetLine(`${name} ${op} at ${top} in flight >= 2.5x ioredis`, ratio >= 2.5, h.fmtRatio(ratio, 3)));
      const share = r.opsPerSec / ceil[op];
      const shareOk = Number.isFinite(share) ? share >= 0.7 : null;
      console.log(h.targetLine(`${name} ${op} at ${top} in flight >= 70% of ceiling`, shareOk, h.fmtPercent(share)));
    }
    for (const op of ['GET', 'SET']) {
      const r = find(op, 1, name);
      const io = find(op, 1, 'ioredis');
      console.log(
        h.targetLine(
          `${name} ${op} at 1 in flight median latency <= ioredis`,
          r.p50Ms <= io.p50Ms,
          `${h.fmtMicros(r.p50Ms)} µs vs ${h.fmtMicros(io.p50Ms)} µs`,
        ),
      );
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
