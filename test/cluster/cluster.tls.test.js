'use strict';
// A client on a real 3-primary Redis Cluster over TLS, end to end. Every node listens on a TLS
// port (which clients use) and a plaintext port (which only this suite's own admin connections
// use, so the client's connections can be told apart in CLIENT LIST), with `tls-cluster yes`:
// the cluster bus and MIGRATE run over TLS too, and the node's announced port is its TLS port.
// Seeded with one `rediss://` node, the client reads the slot map, opens one TLS connection per
// primary (never a plaintext one), spreads 300 keys, splits MGET and cacheDelPrefix over the
// primaries, refuses a node whose certificate its CA did not sign (fast, naming the node), and
// follows ASK and MOVED over TLS while a slot is migrated under its reads.
//
// What Redis 7.0 does here (checked by the first test, relied on by the client):
// - CLUSTER SHARDS lists each node's plaintext `port` and its `tls-port`, the same whichever
//   connection asks; a node without a plaintext port (--port 0) has no `port` field at all.
// - CLUSTER SLOTS, CLUSTER NODES, MOVED and ASK give the port of the asking connection's kind:
//   the TLS port over TLS, the plaintext port over plaintext (with tls-cluster yes; with
//   tls-cluster no no node knows another's TLS port, and all of them give plaintext ports).
// - The cluster bus always asks for a client certificate (whatever tls-auth-clients says), and a
//   node presents tls-client-cert-file there, or tls-cert-file when that is not set: a server-only
//   certificate (extendedKeyUsage serverAuth) is refused and the nodes never meet. So each node
//   gets the test client certificate as tls-client-cert-file.
const tls = require('tls');
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const errors = require('../../lib/errors');
const binding = require('../../lib/binding');
const { startRedis, freePort } = require('../helpers/redis-server');
const { rawPipeline, encode, parse } = require('../helpers/raw-redis');
const { parseClusterNodes, parseInfo } = require('../helpers/cluster');
const { makeCertificates, tlsPing, UNTRUSTED_CHAIN_CODES } = require('../helpers/tls');
const { sleep, waitFor, watchUnhandledRejections } = require('../helpers/async');

const HOST = '127.0.0.1';
const CLIENT_NAME = 'hirecache-tls-cluster';
const SLOTS = 16384;

let certs;
let otherCerts;
let nodes = [];
let unhandled;
const clients = [];

// ---------------------------------------------------------------------------------------------
// Talking to one node: plaintext for administration, TLS to see what a TLS client is told.

const text = (v) => (Buffer.isBuffer(v) ? v.toString('utf8') : Array.isArray(v) ? v.map(text) : v);

/** One command on a node's plaintext port; an error reply rejects naming the node. */
async function admin(node, ...args) {
  const [reply] = await rawPipeline({ port: node.plainPort, host: HOST, timeoutMs: 5000 }, [args]);
  if (reply && reply.error) {
    const err = new Error(`${HOST}:${node.plainPort} ${args.slice(0, 2).join(' ')}: ${reply.error}`);
    err.code = reply.error.split(' ')[0];
    throw err;
  }
  return text(reply);
}

/** One command on a node's TLS port, verified against the test CA; resolves with the reply (errors as { error }). */
function overTls(node, ...args) {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: HOST, port: node.tlsPort, ca: certs.ca.cert, servername: 'localhost' });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${HOST}:${node.tlsPort}: no reply over TLS within 5000 ms`));
    }, 5000);
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('secureConnect', () => sock.write(encode(args)));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parse(buf, 0);
      if (!r) return;
      clearTimeout(timer);
      sock.end();
      resolve(text(r.value));
    });
  });
}

/** A flat [name, value, …] list as an object. */
function fields(list) {
  const out = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]] = list[i + 1];
  return out;
}

// ---------------------------------------------------------------------------------------------
// The cluster: three primaries, each with a plaintext port, a TLS port and a cluster bus port.

/** Nine distinct ports that were free a moment ago. */
async function distinctPorts(n, used) {
  const out = [];
  while (out.length < n) {
    const p = await freePort();
    if (!used.has(p)) {
      used.add(p);
      out.push(p);
    }
  }
  return out;
}

/** One node, tried again on other ports if it exits at start (a port taken in the meantime). */
async function startNode(used) {
  for (let attempt = 1; ; attempt++) {
    const [plainPort, tlsPort, busPort] = await distinctPorts(3, used);
    const server = certs.servers.good;
    try {
      const redis = await startRedis({
        port: tlsPort,
        listenArgs: [
          '--port', String(plainPort), '--tls-port', String(tlsPort),
          '--tls-cert-file', server.certFile, '--tls-key-file', server.keyFile,
          '--tls-ca-cert-file', certs.ca.certFile, '--tls-auth-clients', 'no',
          // The cluster bus (and MIGRATE) always present a client certificate: see the top.
          '--tls-client-cert-file', certs.client.certFile, '--tls-client-key-file', certs.client.keyFile,
          '--tls-cluster', 'yes',
        ],
        args: [
          '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
          '--cluster-port', String(busPort), '--cluster-node-timeout', '2000',
        ],
        probe: (p) => tlsPing(p),
      });
      return { plainPort, tlsPort, busPort, redis, id: null };
    } catch (err) {
      if (attempt >= 3) throw new Error(`a TLS cluster node did not start: ${err.message}`, { cause: err });
    }
  }
}

/** The ranges `redis-cli --cluster create` would give three primaries. */
function slotRanges(count) {
  const per = SLOTS / count;
  return Array.from({ length: count }, (_, i) => [Math.round(i * per), Math.round((i + 1) * per) - 1]);
}

/**
 * Starts three primaries, gives each its slots and config epoch, meets them (over the TLS
 * bus), and resolves once every node reports cluster_state:ok, knows all three and all
 * three agree on who serves what. Faster than redis-cli --cluster create (which waits whole
 * seconds between its checks).
 */
async function startTlsCluster() {
  const used = new Set();
  const started = [];
  try {
    for (let i = 0; i < 3; i++) started.push(await startNode(used));
    const ranges = slotRanges(started.length);
    for (const [i, node] of started.entries()) {
      node.id = await admin(node, 'CLUSTER', 'MYID');
      node.slots = ranges[i];
      await admin(node, 'CLUSTER', 'SET-CONFIG-EPOCH', i + 1);
      await admin(node, 'CLUSTER', 'ADDSLOTSRANGE', ...ranges[i]);
    }
    for (const node of started.slice(1)) {
      await admin(started[0], 'CLUSTER', 'MEET', HOST, node.tlsPort, node.busPort);
    }
    await waitFor(async () => {
      for (const node of started) {
        const info = parseInfo(await admin(node, 'CLUSTER', 'INFO'));
        if (info.cluster_state !== 'ok' || info.cluster_known_nodes !== '3') return false;
        const view = parseClusterNodes(await admin(node, 'CLUSTER', 'NODES'));
        for (const other of started) {
          const row = view.find((r) => r.id === other.id);
          if (!row || !row.primary || row.handshake || row.noaddr || row.linkState !== 'connected') return false;
          if (row.slots.length !== 1 || row.slots[0][0] !== other.slots[0]) return false;
        }
      }
      return true;
    }, { timeoutMs: 20000, intervalMs: 50, what: 'the TLS cluster to form (cluster_state:ok on all three nodes)' });
    return started;
  } catch (err) {
    await Promise.allSettled(started.map((n) => n.redis.stop()));
    throw err;
  }
}

/** The node (of `nodes`) that serves `slot`, as the first node that answers says. */
async function ownerOf(slot) {
  const view = parseClusterNodes(await admin(nodes[0], 'CLUSTER', 'NODES'));
  const row = view.find((r) => r.primary && r.slots.some(([a, b]) => slot >= a && slot <= b));
  return nodes.find((n) => n.id === row.id);
}

/** The client's connections on a node: CLIENT LIST rows named CLIENT_NAME, with their local port. */
async function clientConnections(node) {
  const list = await admin(node, 'CLIENT', 'LIST');
  return list.split('\n').filter((l) => l.includes(` name=${CLIENT_NAME} `)).map((line) => {
    const row = Object.fromEntries(line.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    return { ...row, localPort: Number(row.laddr.slice(row.laddr.lastIndexOf(':') + 1)) };
  });
}

function client(options = {}) {
  const c = createClient({
    cluster: [`rediss://${HOST}:${nodes[0].tlsPort}`],
    tls: { ca: certs.ca.cert },
    name: CLIENT_NAME,
    logger: false,
    connectTimeout: 5000,
    ...options,
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  certs = makeCertificates();
  otherCerts = makeCertificates();
  nodes = await startTlsCluster();
}, 60000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.quit()));
  await Promise.allSettled(nodes.map((n) => n.redis.stop()));
  if (certs) certs.remove();
  if (otherCerts) otherCerts.remove();
  expect(unhandled.stop()).toEqual([]);
});

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.quit()));
  for (const node of nodes) await admin(node, 'FLUSHALL');
});

test('Redis 7.0 with tls-cluster yes: SHARDS lists port and tls-port; SLOTS and MOVED give the TLS port over TLS', async () => {
  const [a] = nodes;
  for (const ask of [(...args) => admin(a, ...args), (...args) => overTls(a, ...args)]) {
    const shards = (await ask('CLUSTER', 'SHARDS')).map(fields);
    expect(shards).toHaveLength(3);
    for (const node of nodes) {
      const shard = shards.find((s) => s.nodes.some((n) => fields(n).id === node.id));
      expect(fields(shard.nodes[0])).toMatchObject({ port: node.plainPort, 'tls-port': node.tlsPort, role: 'master' });
    }
  }
  const slotPorts = async (ask) => (await ask('CLUSTER', 'SLOTS')).map((range) => Number(range[2][1])).sort();
  expect(await slotPorts((...args) => overTls(a, ...args))).toEqual(nodes.map((n) => n.tlsPort).sort());
  expect(await slotPorts((...args) => admin(a, ...args))).toEqual(nodes.map((n) => n.plainPort).sort());
  // A key served elsewhere: MOVED names the TLS port over TLS, the plaintext port over plaintext.
  const key = Array.from({ length: 100 }, (_, i) => `moved:${i}`).find((k) => binding.keySlot(k) > a.slots[1]);
  const owner = await ownerOf(binding.keySlot(key));
  expect((await overTls(a, 'GET', key)).error).toBe(`MOVED ${binding.keySlot(key)} ${HOST}:${owner.tlsPort}`);
  expect((await admin(a, 'GET', key).catch((e) => e)).message).toMatch(`MOVED ${binding.keySlot(key)} ${HOST}:${owner.plainPort}`);
});

test('seeded with one rediss:// node: 300 keys over all slots, 3 primaries ready on their TLS ports, no plaintext connection', async () => {
  const c = client();
  const keys = Array.from({ length: 300 }, (_, i) => `tls:${i}`);
  await Promise.all(keys.map((k, i) => c.set(k, `v${i}`)));
  expect(await Promise.all(keys.map((k) => c.get(k)))).toEqual(keys.map((_, i) => `v${i}`));
  // The keys are where the cluster says, on every primary.
  const sizes = await Promise.all(nodes.map((n) => admin(n, 'DBSIZE')));
  expect(sizes.reduce((a, b) => a + b, 0)).toBe(300);
  expect(sizes.every((n) => n > 50)).toBe(true);
  for (const k of keys.slice(0, 15)) expect(await admin(await ownerOf(binding.keySlot(k)), 'GET', k)).toBe(`v${keys.indexOf(k)}`);

  const s = c.status().cluster;
  expect(s.redirections).toBe(0);
  const primaries = s.nodes.filter((n) => n.role === 'primary');
  expect(primaries).toHaveLength(3);
  expect(primaries.every((n) => n.state === 'ready' && n.lastError === null)).toBe(true);
  expect(primaries.reduce((sum, n) => sum + n.slots, 0)).toBe(SLOTS);
  expect(primaries.map((n) => n.endpoint).sort()).toEqual(nodes.map((n) => `${HOST}:${n.tlsPort}`).sort());
  // No endpoint the client knows is a plaintext port.
  expect(s.nodes.filter((n) => nodes.some((x) => n.endpoint === `${HOST}:${x.plainPort}`))).toEqual([]);

  // Every connection the client opened landed on a TLS port (laddr), at least one per node.
  for (const node of nodes) {
    const conns = await clientConnections(node);
    expect(conns.length).toBeGreaterThanOrEqual(1);
    expect(conns.map((r) => r.localPort)).toEqual(conns.map(() => node.tlsPort));
  }
});

test('MGET across slots, DEL/EXISTS split by slot, and cacheDelPrefix on every primary, over TLS', async () => {
  const c = client();
  const keys = Array.from({ length: 200 }, (_, i) => `multi:${i}`);
  await Promise.all(keys.map((k, i) => (i % 4 === 0 ? null : c.set(k, `v${i}`))));
  const wanted = [...keys].reverse();
  expect(await c.mget(wanted)).toEqual(wanted.map((k) => {
    const i = Number(k.split(':')[1]);
    return i % 4 === 0 ? null : `v${i}`;
  }));
  const present = keys.filter((_, i) => i % 4 !== 0).length;
  expect(await c.exists(keys)).toBe(present);
  expect(await c.del(keys.slice(0, 100))).toBe(keys.slice(0, 100).filter((_, i) => i % 4 !== 0).length);

  const cache = createCache({ client: c });
  const n = 600;
  await Promise.all(Array.from({ length: n }, (_, i) => c.set(`del:${i}`, 'x')));
  await Promise.all(Array.from({ length: 20 }, (_, i) => c.set(`keep:${i}`, 'x')));
  // Every primary holds some of the prefix.
  for (const node of nodes) expect(Number(await admin(node, 'DBSIZE'))).toBeGreaterThan(100);
  expect(await cache.cacheDelPrefix('del:')).toBe(n);
  expect(await c.exists(Array.from({ length: n }, (_, i) => `del:${i}`))).toBe(0);
  expect(await c.exists(Array.from({ length: 20 }, (_, i) => `keep:${i}`))).toBe(20);
  expect(await cache.cacheMGet(['keep:3', 'del:3', 'keep:19'])).toEqual(['x', null, 'x']);
  expect(c.status().cluster.nodes.filter((x) => x.state === 'ready').map((x) => x.endpoint).sort())
    .toEqual(nodes.map((x) => `${HOST}:${x.tlsPort}`).sort());
});

test('a CA that did not sign the nodes\' certificates: a TlsError naming the node, fast, every time', async () => {
  const seeds = nodes.map((n) => `rediss://${HOST}:${n.tlsPort}`);
  for (const [ca, what] of [[otherCerts.ca.cert, 'another CA'], [undefined, 'the system store']]) {
    const c = client({ cluster: seeds, tls: ca ? { ca } : {}, connectTimeout: 5000 });
    const events = [];
    c.on('error', (e) => events.push(e));
    for (let attempt = 0; attempt < 2; attempt++) {
      const t = Date.now();
      const err = await c.get('k').then((v) => new Error(`GET resolved ${v} with ${what}`), (e) => e);
      expect(Date.now() - t).toBeLessThan(2500);
      expect(err).toBeInstanceOf(errors.TlsError);
      expect(err).toBeInstanceOf(errors.ConnectionError);
      expect(UNTRUSTED_CHAIN_CODES).toContain(err.code);
      expect(seeds.some((s) => err.message.includes(s.replace('rediss://', '')))).toBe(true);
      await sleep(50);
    }
    // MGET and a key-less command fail the same way, and no node was ever ready.
    expect(await c.mget('a', 'b', 'c').catch((e) => e.code)).toMatch(new RegExp(UNTRUSTED_CHAIN_CODES.join('|')));
    expect(c.status().cluster.nodes.every((n) => n.state !== 'ready')).toBe(true);
    await waitFor(() => events.length > 0, { what: `an 'error' event with ${what}` });
    expect(events[0]).toBeInstanceOf(errors.TlsError);
  }
  // With one seed, the error names that node.
  const one = client({ tls: { ca: otherCerts.ca.cert } });
  const err = await one.set('k', 'v').catch((e) => e);
  expect(err).toBeInstanceOf(errors.TlsError);
  expect(err.message).toContain(`${HOST}:${nodes[0].tlsPort}`);
  // Nothing reached any node.
  for (const node of nodes) expect(await admin(node, 'DBSIZE')).toBe(0);
});

test('a slot migrated (MIGRATE over the TLS bus) while the client reads it: ASK, then MOVED, followed over TLS', async () => {
  const c = client();
  const keys = Array.from({ length: 40 }, (_, i) => `{mig}:${i}`);
  const slot = binding.keySlot(keys[0]);
  await Promise.all(keys.map((k, i) => c.set(k, `m${i}`)));
  const source = await ownerOf(slot);
  const target = nodes.find((n) => n !== source);

  // Reads of every key, over and over, until told to stop: each round GETs each key and MGETs
  // them. While the slot is half-moved, an MGET over keys on both nodes is refused by Redis
  // itself (TRYAGAIN until the move ends), so the MGETs then take the moved half and the rest
  // apart: the first is ASKed to the target, the second served by the source.
  let reading = true;
  let rounds = 0;
  let mgetGroups = [keys];
  const failures = [];
  const describe = (v) => (v && v.message ? `${v.code} ${v.message}` : JSON.stringify(v));
  const reader = (async () => {
    while (reading) {
      const groups = mgetGroups;
      const got = await Promise.all(keys.map((k) => c.get(k).catch((e) => e)));
      const many = await Promise.all(groups.map((g) => c.mget(g).catch((e) => e)));
      got.forEach((v, i) => {
        if (v !== `m${i}`) failures.push(`GET ${keys[i]}: ${describe(v)}`);
      });
      many.forEach((values, g) => {
        const expected = groups[g].map((k) => `m${keys.indexOf(k)}`);
        if (JSON.stringify(values) !== JSON.stringify(expected)) failures.push(`MGET of ${groups[g].length}: ${describe(values)}`);
      });
      rounds += 1;
    }
  })();
  const moreRounds = async (n, what) => {
    const until = rounds + n;
    await waitFor(() => rounds >= until, { timeoutMs: 10000, what });
  };
  try {
    await moreRounds(2, 'reads before the migration');
    expect(c.status().cluster.redirections).toBe(0);

    // Half-way: IMPORTING / MIGRATING, half the keys moved (MIGRATE to the target's TLS port).
    mgetGroups = [keys.slice(0, 20), keys.slice(20)];
    await moreRounds(2, 'a round of split MGETs');
    await admin(target, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
    await admin(source, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
    const migrate = (batch) => admin(source, 'MIGRATE', HOST, target.tlsPort, '', 0, 5000, 'KEYS', ...batch);
    expect(await migrate(keys.slice(0, 20))).toBe('OK');
    expect(await admin(target, 'DBSIZE')).toBe(20);
    await moreRounds(3, 'reads while the slot is half-moved');
    const asked = c.status().cluster.redirections;
    expect(asked).toBeGreaterThan(0);

    // The rest, then the slot is the target's on every node.
    expect(await migrate(keys.slice(20))).toBe('OK');
    for (const node of [target, source, ...nodes.filter((n) => n !== source && n !== target)]) {
      await admin(node, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
    }
    await waitFor(async () => {
      for (const node of nodes) {
        const view = parseClusterNodes(await admin(node, 'CLUSTER', 'NODES'));
        const row = view.find((r) => r.primary && r.slots.some(([a, b]) => slot >= a && slot <= b));
        if (!row || row.id !== target.id) return false;
      }
      return true;
    }, { timeoutMs: 10000, what: `every node to see slot ${slot} at ${HOST}:${target.tlsPort}` });
    mgetGroups = [keys];
    await moreRounds(3, 'reads after the migration');
    expect(c.status().cluster.redirections).toBeGreaterThan(asked);
    // Once the map was read again, the slot's reads go straight to the target.
    const settled = c.status().cluster.redirections;
    await moreRounds(3, 'reads with the new map');
    expect(c.status().cluster.redirections).toBe(settled);
  } finally {
    reading = false;
    await reader;
  }
  expect(failures).toEqual([]);
  expect(await admin(source, 'DBSIZE')).toBe(0);
  expect(await admin(target, 'EXISTS', ...keys)).toBe(keys.length);

  // Still only TLS: the client's endpoints and its connections on the target.
  const s = c.status().cluster;
  const primaries = s.nodes.filter((n) => n.role === 'primary');
  // (A node is connected to when a command first needs it: the third primary may be idle.)
  const stateOf = (node) => primaries.find((n) => n.endpoint === `${HOST}:${node.tlsPort}`).state;
  expect([stateOf(source), stateOf(target)]).toEqual(['ready', 'ready']);
  expect(primaries.every((n) => n.state === 'ready' || n.state === 'idle')).toBe(true);
  expect(s.nodes.map((n) => n.endpoint).sort()).toEqual(nodes.map((n) => `${HOST}:${n.tlsPort}`).sort());
  for (const node of nodes) {
    const conns = await clientConnections(node);
    expect(conns.every((r) => r.localPort === node.tlsPort)).toBe(true);
  }
  expect((await clientConnections(target)).length).toBeGreaterThanOrEqual(1);
  expect(primaries.find((n) => n.endpoint === `${HOST}:${target.tlsPort}`).slots).toBe(target.slots[1] - target.slots[0] + 2);
});
