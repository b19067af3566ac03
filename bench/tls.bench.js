'use strict';
// GET and SET EX of 100-byte values over TLS: hirecache (client.get/set), ioredis and
// node-redis, all over TLS, and hirecache over plaintext against the SAME redis-server
// process (one server listening on a plaintext port and a TLS port), at 1 and 512 commands
// in flight on one connection each; ioredis over plaintext rides along as a reference.
// redis-benchmark with the same commands, pipelined, over TLS and over plaintext on that
// server gives the two ceilings.
//
//   node bench/tls.bench.js               BENCH_ROUNDS=8 BENCH_ROUND_MS=300 by default
//   BENCH_CLIENTS=hirecache BENCH_IN_FLIGHT=512 BENCH_NO_CEILING=1 node --cpu-prof bench/tls.bench.js
//                                         only some contenders (words of their names, comma-
//                                         separated) / levels (for profiling)
//
// The certificates (a CA and a server certificate for localhost and 127.0.0.1, EC P-256) come
// from test/helpers/tls.js's makeCertificates() when that helper is there, else from the
// openssl CLI into a temporary folder; either way they are removed at the end. The clients
// trust the CA (`ca`) and verify the server's name, as an application would; redis-server
// does not ask for client certificates.
//
// Every contender gets the same keys, the same values, the same sequence of keys and a
// warm-up round of its own, and every reply is checked (a GET must return a 100-byte value,
// every 16th compared in full with that key's own; a SET must succeed), so a client that
// fails fast, or hands a reply to the wrong caller, cannot look fast. Ratios are the median
// over rounds of the two contenders' speeds in the same round (they ran about a second apart,
// so the machine's drift mostly cancels), with the lowest and highest round in brackets.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const IORedis = require('ioredis');
const nodeRedis = require('redis');
const h = require('./lib/harness');

const { TICKS_PER_SEC, procTicks, machineBusyTicks, pairedRatio, fmtSpread } = h;
const { freePort } = require('../test/helpers/redis-server');

const ROUNDS = h.envNumber('BENCH_ROUNDS', 8);
const ROUND_MS = h.envNumber('BENCH_ROUND_MS', 300);
const IN_FLIGHT = (process.env.BENCH_IN_FLIGHT || '1,512').split(',').map(Number);
const ONLY_CLIENTS = process.env.BENCH_CLIENTS || '';
const KEY_SPACE = 10000;
const VALUE_BYTES = 100;
const TTL_SEC = 60;
// 8 connections × 64 pipelined = 512 commands in flight, the clients' top level.
const CEILING_CONNECTIONS = 8;
const CEILING_PIPELINE = 64;
const HOST = 'localhost';

const wanted = (name) => !ONLY_CLIENTS || ONLY_CLIENTS.split(',').some((w) => name.includes(w));

// Keys look like redis-benchmark's __rand_int__ expansion ("bench:000000001234"), so the
// ceiling runs read and write exactly this key space.
const KEYS = Array.from({ length: KEY_SPACE }, (_, i) => `bench:${String(i).padStart(12, '0')}`);
// Each key has its own value, so a reply handed to the wrong caller fails the check.
const VALUES = KEYS.map((k) => `${k}:`.padEnd(VALUE_BYTES, 'v'));
// The n-th operation of every contender touches the same key: a stride through the key
// space that visits every key (7919 is prime, so coprime with 10000).
const keyIndex = (seq) => (seq * 7919) % KEY_SPACE;

// Every GET must return a 100-byte string; every 16th is compared in full with its key's own
// value (a full compare of each would cost the driver as much as some clients' own work).
const getOk = (v, seq) =>
  typeof v === 'string' && v.length === VALUE_BYTES && ((seq & 15) !== 0 || v === VALUES[keyIndex(seq)]);
const okReply = (v) => v === 'OK';

const NAMES = {
  hcTls: 'hirecache TLS',
  hcPlain: 'hirecache plaintext',
  ioTls: 'ioredis TLS',
  ioPlain: 'ioredis plaintext (reference)',
  nrTls: 'node-redis TLS',
  ceilTls: `redis-benchmark TLS -c ${CEILING_CONNECTIONS} -P ${CEILING_PIPELINE} (ceiling)`,
  ceilPlain: `redis-benchmark plaintext -c ${CEILING_CONNECTIONS} -P ${CEILING_PIPELINE} (ceiling)`,
};

// ---------------------------------------------------------------------------------------
// Certificates

/** The openssl CLI, with its output kept out of the table unless it fails. */
function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A CA and a server certificate for localhost / 127.0.0.1 (EC P-256, SHA-256), made with the
 * openssl CLI in a new temporary folder. Returns { dir, caFile, certFile, keyFile }.
 */
function opensslCertificates() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hirecache-tls-bench-'));
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=hirecache bench CA', '-out', 'ca.crt'], dir);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key'], dir);
  openssl(['req', '-new', '-key', 'server.key', '-subj', '/CN=localhost', '-out', 'server.csr'], dir);
  fs.writeFileSync(
    path.join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' +
      'keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-sha256']
      .concat(['-extfile', 'server.ext', '-out', 'server.crt']),
    dir,
  );
  return { dir, caFile: path.join(dir, 'ca.crt'), certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key') };
}

/**
 * The certificates, as { source, caFile, certFile, keyFile, ca (the CA's PEM), remove() }:
 * test/helpers/tls.js's makeCertificates() (its CA and its `good` server certificate: CN
 * localhost, SAN localhost, 127.0.0.1, ::1) when that helper exists, else opensslCertificates().
 */
function certificates() {
  let helper = null;
  try {
    helper = require('../test/helpers/tls');
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND' || !/helpers[\\/]tls/.test(err.message)) throw err;
  }
  if (helper && typeof helper.makeCertificates === 'function') {
    const c = helper.makeCertificates();
    return {
      source: 'test/helpers/tls.js makeCertificates() (EC P-256; servers.good)',
      caFile: c.ca.certFile,
      certFile: c.servers.good.certFile,
      keyFile: c.servers.good.keyFile,
      ca: c.ca.cert,
      remove: () => c.remove(),
    };
  }
  const files = opensslCertificates();
  return {
    source: 'openssl CLI (EC P-256), made by this benchmark',
    ...files,
    ca: fs.readFileSync(files.caFile, 'utf8'),
    remove: () => fs.rmSync(files.dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------
// Contenders

/**
 * The clients. hirecache over TLS is left out (with the reason) while createClient refuses
 * rediss:// (ERR_UNSUPPORTED); any other error is thrown.
 */
function makeContenders({ port, tlsPort, ca }, hirecache, skipped) {
  const out = [];
  const hc = (name, options) => {
    let client;
    try {
      client = hirecache.redis.createClient(options);
    } catch (err) {
      if (err.code !== 'ERR_UNSUPPORTED') throw err;
      skipped.push(`${name}: ${err.message}`);
      return;
    }
    out.push({
      name,
      get: (seq) => client.get(KEYS[keyIndex(seq)]),
      set: (seq) => {
        const i = keyIndex(seq);
        return client.set(KEYS[i], VALUES[i], TTL_SEC);
      },
      setOk: okReply,
      close: () => client.quit(),
    });
  };
  if (hirecache.redis) {
    if (wanted(NAMES.hcTls)) hc(NAMES.hcTls, { url: `rediss://${HOST}:${tlsPort}`, tls: { ca } });
    if (wanted(NAMES.hcPlain)) hc(NAMES.hcPlain, { url: `redis://${HOST}:${port}` });
  } else {
    skipped.push(`hirecache: ${hirecache.missing}`);
  }
  const ioredis = (name, options) => {
    const io = new IORedis({ ...options, lazyConnect: true });
    out.push({
      name,
      connect: () => io.connect(),
      get: (seq) => io.get(KEYS[keyIndex(seq)]),
      set: (seq) => {
        const i = keyIndex(seq);
        return io.set(KEYS[i], VALUES[i], 'EX', TTL_SEC);
      },
      setOk: okReply,
      close: () => io.quit(),
    });
  };
  if (wanted(NAMES.ioTls)) ioredis(NAMES.ioTls, { host: HOST, port: tlsPort, tls: { ca } });
  // Not a target, a reference: how much TLS costs (or saves) ioredis on this machine.
  if (wanted(NAMES.ioPlain)) ioredis(NAMES.ioPlain, { host: HOST, port });
  if (wanted(NAMES.nrTls)) {
    const nr = nodeRedis.createClient({ socket: { host: HOST, port: tlsPort, tls: true, ca } });
    const setOptions = { expiration: { type: 'EX', value: TTL_SEC } };
    out.push({
      name: NAMES.nrTls,
      connect: () => nr.connect(),
      get: (seq) => nr.get(KEYS[keyIndex(seq)]),
      set: (seq) => {
        const i = keyIndex(seq);
        return nr.set(KEYS[i], VALUES[i], setOptions);
      },
      setOk: okReply,
      close: () => nr.quit(),
    });
  }
  return out;
}

/**
 * A ceiling as one more contender of the top in-flight level: redis-benchmark sending the
 * very commands the clients send (same keys, 100-byte value, EX 60), pipelined, from this
 * process's CPU, over TLS (`tlsArgs`) or plaintext. Its rounds alternate with the clients'
 * like any other, sized from the previous round's rate to last about a round.
 */
function ceilingContender(name, port, tlsArgs, op) {
  const command =
    op === 'GET'
      ? ['get', 'bench:__rand_int__']
      : ['set', 'bench:__rand_int__', 'v'.repeat(VALUE_BYTES), 'EX', String(TTL_SEC)];
  let rate = 500000;
  const run = () => {
    const n = Math.max(50000, Math.round((rate * ROUND_MS) / 1000));
    const args = [...tlsArgs, '-h', '127.0.0.1', '-p', String(port), '-c', String(CEILING_CONNECTIONS), '-P', String(CEILING_PIPELINE)];
    args.push('-r', String(KEY_SPACE), '-n', String(n), '-q', '--csv', ...command);
    const res = spawnSync('redis-benchmark', args, { encoding: 'utf8' });
    if (res.error) throw res.error;
    if (res.status !== 0) throw new Error(`redis-benchmark failed: ${res.stderr}`);
    const line = res.stdout.trim().split('\n')[1] || '';
    const rps = Number((line.split(',')[1] || '').replace(/"/g, ''));
    if (!Number.isFinite(rps) || rps <= 0) throw new Error(`cannot read redis-benchmark output: ${res.stdout} ${res.stderr}`);
    rate = rps;
    return { n, opsPerSec: rps, p50Ms: NaN, p99Ms: NaN };
  };
  return { name, ceiling: true, run };
}

/** Whether this redis-benchmark speaks TLS (built with BUILD_TLS): its help lists --tls. */
function benchmarkHasTls() {
  const r = spawnSync('redis-benchmark', ['--help'], { encoding: 'utf8' });
  return !r.error && /--tls\b/.test(`${r.stdout}${r.stderr}`);
}

// ---------------------------------------------------------------------------------------
// Measuring

/**
 * One round of a client at `inFlight`, with the CPU time per operation of this process (the
 * client's work, encryption included) and of redis-server (to 10 ms a round: a rough figure),
 * both divided by every operation started, the ones finished after the deadline included.
 * A ceiling round gives redis-server's CPU only (redis-benchmark is another process), per
 * command it sent.
 */
async function measure(c, op, inFlight, serverPid) {
  const server0 = procTicks(serverPid);
  if (c.ceiling) {
    const { n, ...r } = c.run();
    const serverUs = ((procTicks(serverPid) - server0) * 1e6) / TICKS_PER_SEC;
    return { ...r, serverUsPerOp: serverUs / n };
  }
  const fn = op === 'GET' ? c.get : c.set;
  const check = op === 'GET' ? getOk : c.setOk;
  let started = 0;
  const counted = (seq) => {
    started++;
    return fn(seq);
  };
  const cpu0 = process.cpuUsage();
  const r = await h.runInFlight(counted, inFlight, ROUND_MS, { check });
  const cpu = process.cpuUsage(cpu0);
  const serverUs = ((procTicks(serverPid) - server0) * 1e6) / TICKS_PER_SEC;
  return { ...r, cpuUsPerOp: (cpu.user + cpu.system) / started, serverUsPerOp: serverUs / started };
}

/**
 * How busy the machine is over the run, from /proc: this process, redis-server, everybody
 * else (redis-benchmark counts as "others"). stop() gives each as a share of the machine.
 */
function startMachineMeter(serverPid) {
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

/** Writes every key with its value (long TTL), pipelined, through a separate connection. */
async function preload(admin) {
  const pipe = admin.pipeline();
  for (let i = 0; i < KEY_SPACE; i++) pipe.set(KEYS[i], VALUES[i], 'EX', 3600);
  const res = await pipe.exec();
  if (res.some(([err, v]) => err || v !== 'OK')) throw new Error('preload failed');
}

// ---------------------------------------------------------------------------------------

async function main() {
  const certs = certificates();
  const tlsPort = await freePort();
  const server = await h.startServer({
    args: [
      '--tls-port', String(tlsPort),
      '--tls-cert-file', certs.certFile,
      '--tls-key-file', certs.keyFile,
      '--tls-ca-cert-file', certs.caFile,
      '--tls-auth-clients', 'no',
    ],
  });
  const hirecache = h.loadHirecache(server.url);
  const admin = new IORedis(server.url);
  const skipped = [];
  const contenders = makeContenders({ port: server.port, tlsPort, ca: certs.ca }, hirecache, skipped);
  const ceilings = [];
  let ceilingNote = '';
  if (process.env.BENCH_NO_CEILING) {
    ceilingNote = 'ceilings off (BENCH_NO_CEILING)';
  } else if (!benchmarkHasTls()) {
    ceilingNote = 'this redis-benchmark has no --tls: the TLS ceiling is left out';
    ceilings.push({ name: NAMES.ceilPlain, port: server.port, tlsArgs: [] });
  } else {
    ceilings.push({ name: NAMES.ceilTls, port: tlsPort, tlsArgs: ['--tls', '--cacert', certs.caFile, '--sni', HOST] });
    ceilings.push({ name: NAMES.ceilPlain, port: server.port, tlsArgs: [] });
  }
  const meter = startMachineMeter(server.pid);
  const started = Date.now();
  const load0 = os.loadavg();
  try {
    for (const c of contenders) if (c.connect) await c.connect();
    await preload(admin);
    // Every contender answers once before anything is timed (lazy connects and the TLS
    // handshakes happen here), through the checks the rounds use.
    for (const c of contenders) {
      if (!getOk(await c.get(0), 0)) throw new Error(`${c.name}: GET of a preloaded key returned the wrong value`);
      if (!c.setOk(await c.set(0))) throw new Error(`${c.name}: SET failed`);
    }

    const results = new Map(); // `${op} ${inFlight}` -> { field, res }
    const top = Math.max(...IN_FLIGHT);
    for (const inFlight of IN_FLIGHT) {
      for (const op of ['GET', 'SET']) {
        // GET rounds must find every key with its own value, whatever ran before (the SET
        // ceiling writes another value).
        if (op === 'GET') await preload(admin);
        const field = [...contenders];
        if (inFlight === top) for (const c of ceilings) field.push(ceilingContender(c.name, c.port, c.tlsArgs, op));
        const res = await h.alternate(field, (c) => measure(c, op, inFlight, server.pid), { rounds: ROUNDS });
        results.set(`${op} ${inFlight}`, { field, res });
      }
    }
    const machine = meter.stop();
    const load1 = os.loadavg();
    report(results, { certs, server, tlsPort, skipped, ceilingNote, machine, load0, load1, secs: (Date.now() - started) / 1000 });
  } finally {
    for (const c of contenders) await c.close().catch(() => {});
    admin.disconnect();
    await server.stop();
    certs.remove();
  }
}

function report(results, { certs, server, tlsPort, skipped, ceilingNote, machine, load0, load1, secs }) {
  const rows = [];
  for (const op of ['GET', 'SET']) {
    for (const inFlight of IN_FLIGHT) {
      const { field, res } = results.get(`${op} ${inFlight}`);
      if (rows.length) rows.push({ separator: true });
      const io = res.get(NAMES.ioTls);
      for (const c of field) {
        const r = res.get(c.name);
        rows.push({
          op,
          inFlight: c.ceiling ? CEILING_CONNECTIONS * CEILING_PIPELINE : inFlight,
          name: c.name,
          ops: h.fmtInt(r.median.opsPerSec),
          vsIo: c.name === NAMES.ioTls ? '1 (reference)' : fmtSpread(pairedRatio(r, io)),
          cpuUs: c.ceiling ? '-' : h.fmtMs(r.median.cpuUsPerOp, 1),
          serverUs: h.fmtMs(r.median.serverUsPerOp, 1),
          p50: h.fmtMicros(r.median.p50Ms),
          p99: h.fmtMicros(r.median.p99Ms),
        });
      }
    }
  }
  const machineText = machine
    ? `; CPU use over the run: this process ${h.fmtPercent(machine.own)}, redis-server ${h.fmtPercent(machine.redis)}, ` +
      `other processes (redis-benchmark included) ${h.fmtPercent(machine.others)} of the machine`
    : '';
  console.log(
    `\ntls: ${VALUE_BYTES}-byte values, ${KEY_SPACE} keys, SET with EX ${TTL_SEC}; one redis-server ` +
      `(plaintext port ${server.port}, TLS port ${tlsPort}${server.pinned ? ', pinned to its own CPU' : ''}); ` +
      `one connection per client to ${HOST}; median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms after a warm-up round each; ` +
      `${secs.toFixed(0)} s, load average ${load0[0].toFixed(2)} before, ${load1[0].toFixed(2)} after ` +
      `(${os.cpus().length} CPUs)${machineText}`,
  );
  console.log(`certificates: ${certs.source}; clients verify the server against the CA (ca option)\n`);
  h.printTable(
    [
      { key: 'op', title: 'op', align: 'left' },
      { key: 'inFlight', title: 'in flight' },
      { key: 'name', title: 'contender', align: 'left' },
      { key: 'ops', title: 'ops/s' },
      { key: 'vsIo', title: 'vs ioredis TLS [min–max]' },
      { key: 'cpuUs', title: 'client CPU µs/op' },
      { key: 'serverUs', title: 'server CPU µs/op' },
      { key: 'p50', title: 'p50 µs' },
      { key: 'p99', title: 'p99 µs' },
    ],
    rows,
  );
  console.log(
    '\n"client CPU µs/op": this process\'s user+system time per operation (TLS encryption included); "server CPU µs/op": ' +
      "redis-server's (read from /proc to 10 ms a round, so a rough figure). node-redis runs with its defaults (RESP3); " +
      'latency is per operation, as the caller sees it.',
  );

  // hirecache over TLS against the others, round by round.
  const ratioRows = [];
  const verdicts = [];
  const top = Math.max(...IN_FLIGHT);
  for (const op of ['GET', 'SET']) {
    for (const inFlight of IN_FLIGHT) {
      const { res } = results.get(`${op} ${inFlight}`);
      const tls = res.get(NAMES.hcTls);
      const plain = res.get(NAMES.hcPlain);
      const vsIo = pairedRatio(tls, res.get(NAMES.ioTls));
      const vsNr = pairedRatio(tls, res.get(NAMES.nrTls));
      const vsPlain = pairedRatio(tls, plain);
      const ceilTls = res.get(NAMES.ceilTls);
      const ceilPlain = res.get(NAMES.ceilPlain);
      ratioRows.push({
        op,
        inFlight,
        vsIo: fmtSpread(vsIo, 2),
        vsNr: fmtSpread(vsNr, 2),
        vsPlain: fmtSpread(vsPlain, 2),
        tlsShare: ceilTls && tls ? h.fmtPercent(pairedRatio(tls, ceilTls).median) : '',
        plainShare: ceilPlain && plain ? h.fmtPercent(pairedRatio(plain, ceilPlain).median) : '',
        ceilVs: ceilTls && ceilPlain ? fmtSpread(pairedRatio(ceilTls, ceilPlain), 2) : '',
      });
      if (vsIo && inFlight === top) {
        verdicts.push(h.targetLine(`hirecache TLS ${op} at ${inFlight} in flight >= 3x ioredis TLS`, vsIo.median >= 3, fmtSpread(vsIo, 3)));
      }
      if (vsPlain) {
        verdicts.push(
          h.targetLine(
            `hirecache TLS ${op} at ${inFlight} in flight within 25% of hirecache plaintext (>= 0.75x)`,
            vsPlain.median >= 0.75,
            fmtSpread(vsPlain, 3),
          ),
        );
      }
    }
  }
  console.log(`\n${NAMES.hcTls}, round by round (median of the per-round ratio [lowest–highest round])\n`);
  h.printTable(
    [
      { key: 'op', title: 'op', align: 'left' },
      { key: 'inFlight', title: 'in flight' },
      { key: 'vsIo', title: 'vs ioredis TLS' },
      { key: 'vsNr', title: 'vs node-redis TLS' },
      { key: 'vsPlain', title: 'vs hirecache plaintext' },
      { key: 'tlsShare', title: 'of TLS ceiling' },
      { key: 'plainShare', title: 'plaintext: of its ceiling' },
      { key: 'ceilVs', title: 'ceiling TLS / plaintext' },
    ],
    ratioRows,
  );
  if (ceilingNote) console.log(`\n${ceilingNote}`);
  for (const s of skipped) console.log(`\nskipped: ${s}`);
  if (verdicts.length && !ONLY_CLIENTS && IN_FLIGHT.join() === '1,512') console.log(`\nTargets (TLS):\n${verdicts.join('\n')}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
