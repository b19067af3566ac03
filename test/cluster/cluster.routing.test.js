'use strict';
// A client on a real 3-primary + 3-replica Redis Cluster: every command reaches the primary
// of its key's slot (checked against the node itself), hash tags keep keys together, the
// multi-key commands split by slot come back in the caller's order, cacheDelPrefix deletes
// on every primary, the limiter decides on every node, reads may go to replicas, and the
// settings users bring from ioredis and node-redis are honoured or refused by name.
const { createClient, createCluster, Cluster, RedisClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { createLimiter, HirecacheStore } = require('../../lib/ratelimit');
const { createHealth } = require('../../lib/health');
const { metricsSnapshot, prometheusText } = require('../../lib/metrics');
const { spawnSync } = require('child_process');
const binding = require('../../lib/binding');
const { startCluster } = require('../helpers/cluster');
const { sleep, waitFor, watchUnhandledRejections } = require('../helpers/async');
const { startBlackhole } = require('../helpers/blackhole');

// A port nothing listens on that no other suite can take meanwhile (a free port picked
// with listen(0) may be handed to another suite's server before it is used): tcpmux's, below
// the ephemeral range.
const NOWHERE = 1;

let cluster;
let unhandled;
const clients = [];

function client(options = {}) {
  const c = createClient({ cluster: cluster.seeds.split(','), logger: false, ...options });
  clients.push(c);
  return c;
}

/** The primary's port serving `key`, as the cluster itself says (CLUSTER KEYSLOT + its map). */
async function ownerOf(key) {
  return cluster.slotOwner(await cluster.keySlot(key));
}

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  cluster = await startCluster();
}, 60000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.quit()));
  if (cluster) await cluster.stop();
  expect(unhandled.stop()).toEqual([]);
});

beforeEach(async () => {
  await cluster.flushAll();
});

test('the slot of a key is Redis\'s own, hash tags included', async () => {
  for (const key of ['foo', '', 'user:1000', '{user1000}.following', '{user1000}.followers', 'a{}b', 'x{{y}}z', 'é€🙂']) {
    expect(binding.keySlot(key)).toBe(await cluster.keySlot(key));
  }
  expect(binding.keySlot(Buffer.from([0, 255, 10]))).toBe(binding.keySlot(Buffer.from([0, 255, 10])));
  expect(binding.keySlot('{user1000}.following')).toBe(binding.keySlot('{user1000}.followers'));
  expect(() => binding.keySlot(42)).toThrow(/a string or a Buffer/);
});

test('each command goes to the primary of its key\'s slot, with no redirection once the map is read', async () => {
  const c = client();
  const keys = Array.from({ length: 300 }, (_, i) => `route:${i}`);
  await Promise.all(keys.map((k, i) => c.set(k, `v${i}`)));
  expect(await Promise.all(keys.map((k) => c.get(k)))).toEqual(keys.map((_, i) => `v${i}`));
  // Each key lives on the node the cluster says owns its slot, and only there.
  const ports = (await cluster.primaries()).map((p) => p.port);
  for (const k of keys.slice(0, 30)) {
    const owner = await ownerOf(k);
    for (const port of ports) {
      const v = await cluster.command(port, 'EXISTS', k).catch((e) => e);
      if (port === owner) expect(v).toBe(1);
      else expect(String(v)).toMatch(/MOVED/);
    }
  }
  const s = c.status().cluster;
  expect(s.redirections).toBe(0);
  const primaries = s.nodes.filter((n) => n.role === 'primary');
  expect(primaries).toHaveLength(3);
  expect(primaries.reduce((sum, n) => sum + n.slots, 0)).toBe(16384);
  expect(primaries.every((n) => n.state === 'ready')).toBe(true);
  expect(s.nodes.filter((n) => n.role === 'replica')).toHaveLength(3);
  // Replicas are known but never connected to unless reads go there.
  expect(s.nodes.filter((n) => n.role === 'replica').every((n) => n.state === 'idle')).toBe(true);
});

test('keys sharing a hash tag share a node and can be used together (MULTI, MSET, SUNIONSTORE)', async () => {
  const c = client();
  await c.mset('{cart:7}:items', '3', '{cart:7}:total', '42');
  expect(await c.mget('{cart:7}:items', '{cart:7}:total')).toEqual(['3', '42']);
  const replies = await c.multi().incr('{cart:7}:items').incrby('{cart:7}:total', 8).exec();
  expect(replies).toEqual([4, 50]);
  await c.sadd('{s}:a', 'x', 'y');
  await c.sadd('{s}:b', 'y', 'z');
  expect(await c.sunionstore('{s}:u', '{s}:a', '{s}:b')).toBe(3);
});

test('MGET, DEL, UNLINK, EXISTS and TOUCH over keys of many slots: split by slot, merged in the caller\'s order', async () => {
  const c = client();
  const keys = Array.from({ length: 200 }, (_, i) => `multi:${i}`);
  await Promise.all(keys.map((k, i) => (i % 3 === 0 ? null : c.set(k, `v${i}`))));
  const wanted = [...keys].reverse();
  const got = await c.mget(wanted);
  expect(got).toEqual(wanted.map((k) => {
    const i = Number(k.split(':')[1]);
    return i % 3 === 0 ? null : `v${i}`;
  }));
  // The same key twice answers twice, in place.
  expect(await c.mget('multi:1', 'multi:0', 'multi:1')).toEqual(['v1', null, 'v1']);
  const present = keys.filter((_, i) => i % 3 !== 0).length;
  expect(await c.exists(keys)).toBe(present);
  expect(await c.touch(...keys)).toBe(present);
  expect(await c.unlink(keys.slice(0, 100))).toBe(keys.slice(0, 100).filter((_, i) => i % 3 !== 0).length);
  expect(await c.del(...keys)).toBe(present - keys.slice(0, 100).filter((_, i) => i % 3 !== 0).length);
  expect(await c.exists(keys)).toBe(0);
  // The cache's MGET too, with the client's keyPrefix.
  const pc = client({ keyPrefix: 'app:' });
  const cache = createCache({ client: pc });
  await Promise.all(keys.slice(0, 50).map((k, i) => cache.cacheSet(k, `c${i}`, 60)));
  expect(await cache.cacheMGet([keys[49], 'nope', keys[0], keys[25]])).toEqual(['c49', null, 'c0', 'c25']);
  expect(await c.get(`app:${keys[3]}`)).toBe('c3');
});

test('a command over several slots that cannot be split is refused by Redis with CROSSSLOT, said plainly', async () => {
  const c = client();
  const err = await c.mset('cross:a', '1', 'cross:b', '2').catch((e) => e);
  expect(err.code).toBe('CROSSSLOT');
  expect(err.message).toMatch(/hash slot|hash tag/i);
  const multi = await c.multi().set('cross:a', '1').set('cross:b', '2').exec().catch((e) => e);
  expect(JSON.stringify(multi)).toMatch(/CROSSSLOT|EXECABORT/);
});

test('cacheDelPrefix deletes the prefix on every primary and returns the total, glob characters literal', async () => {
  const c = client();
  const cache = createCache({ client: c });
  const n = 3000;
  await Promise.all(Array.from({ length: n }, (_, i) => c.set(`del:${i}`, 'x')));
  await Promise.all(Array.from({ length: 50 }, (_, i) => c.set(`del*:${i}`, 'x')));
  await Promise.all(Array.from({ length: 50 }, (_, i) => c.set(`keep:${i}`, 'x')));
  // Every primary holds some of them.
  for (const p of await cluster.primaries()) expect(await cluster.command(p.port, 'DBSIZE')).toBeGreaterThan(500);
  expect(await cache.cacheDelPrefix('del*:')).toBe(50);
  expect(await cache.cacheDelPrefix('del:')).toBe(n);
  expect(await c.exists(Array.from({ length: n }, (_, i) => `del:${i}`))).toBe(0);
  expect(await c.exists(Array.from({ length: 50 }, (_, i) => `keep:${i}`))).toBe(50);
  expect(await cache.cacheDelPrefix('del:')).toBe(0);
});

test('the limiter decides on the node of each key and loads its script on every primary', async () => {
  const c = client();
  for (const p of await cluster.primaries()) await cluster.command(p.port, 'SCRIPT', 'FLUSH');
  const limiter = createLimiter({ client: c, keyPrefix: 'rl', points: 3, duration: 60 });
  const users = Array.from({ length: 60 }, (_, i) => `user${i}`);
  const slotsOwners = new Set(await Promise.all(users.map((u) => ownerOf(`rl:tb:${u}`))));
  expect(slotsOwners.size).toBe(3);
  let admitted = 0;
  let refused = 0;
  for (let round = 0; round < 5; round++) {
    const r = await Promise.allSettled(users.map((u) => limiter.consume(u)));
    for (const x of r) {
      if (x.status === 'fulfilled') admitted += 1;
      else if (typeof x.reason.msBeforeNext === 'number') refused += 1;
      else throw x.reason;
    }
  }
  expect(admitted).toBe(3 * users.length);
  expect(refused).toBe(2 * users.length);
  expect((await limiter.get('user7')).consumedPoints).toBeGreaterThan(3);
});

test('token leases and the express-rate-limit store work across nodes; resetAll reaches every primary', async () => {
  const c = client();
  const leased = createLimiter({ client: c, keyPrefix: 'lease', points: 20, duration: 60, lease: true });
  const users = Array.from({ length: 30 }, (_, i) => `u${i}`);
  let admitted = 0;
  for (let round = 0; round < 25; round++) {
    const r = await Promise.allSettled(users.map((u) => leased.consume(u)));
    admitted += r.filter((x) => x.status === 'fulfilled').length;
  }
  expect(admitted).toBeLessThanOrEqual(20 * users.length);
  expect(admitted).toBeGreaterThan(15 * users.length);

  const store = new HirecacheStore({ client: c, prefix: 'erl:' });
  store.init({ windowMs: 60000 });
  for (const u of users) await store.increment(u);
  await c.set('erl:not-a-count', 'text');
  expect(await c.exists(users.map((u) => `erl:${u}`))).toBe(users.length);
  await store.resetAll();
  expect(await c.exists(users.map((u) => `erl:${u}`))).toBe(0);
  expect(await c.get('erl:not-a-count')).toBe('text');
});

test('reads may go to replicas (READONLY on their connections); writes never do', async () => {
  // A replica that has received nothing yet reports itself 'loading' (Redis 7.0's CLUSTER
  // SHARDS) and is not read from: every shard gets a write, replicated, before the map is read.
  const writer = client();
  await Promise.all(Array.from({ length: 30 }, (_, i) => writer.set(`rr:warm:${i}`, 'x')));
  for (const p of await cluster.primaries()) await cluster.command(p.port, 'WAIT', 1, 2000);
  // The nodes learn each other's replication offsets by gossip: wait until every node's
  // CLUSTER SHARDS calls every replica online.
  await waitFor(async () => {
    for (const node of cluster.liveNodes()) {
      if (JSON.stringify(await cluster.command(node.port, 'CLUSTER', 'SHARDS')).includes('"loading"')) return false;
    }
    return true;
  }, { what: 'every replica online in every node\'s CLUSTER SHARDS', timeout: 10000 });
  const c = client({ cluster: { nodes: cluster.seeds.split(','), readFromReplicas: true } });
  await c.set('rr:k', 'v');
  const owner = await ownerOf('rr:k');
  const [replica] = await cluster.replicasOf(owner);
  await cluster.command(owner, 'WAIT', 1, 2000);
  const primaryBefore = await cluster.command(owner, 'INFO', 'commandstats');
  const before = await cluster.command(replica, 'INFO', 'commandstats');
  const reads = Number((/cmdstat_get:calls=(\d+)/.exec(before) || [0, 0])[1]);
  for (let i = 0; i < 20; i++) expect(await c.get('rr:k')).toBe('v');
  const after = await cluster.command(replica, 'INFO', 'commandstats');
  expect(Number(/cmdstat_get:calls=(\d+)/.exec(after)[1]) - reads).toBeGreaterThanOrEqual(20);
  // The primary served none of those reads, and the write went to it.
  const onPrimary = await cluster.command(owner, 'INFO', 'commandstats');
  const calls = (stats, verb) => Number((new RegExp(`cmdstat_${verb}:calls=(\\d+)`).exec(stats) || [0, 0])[1]);
  expect(calls(onPrimary, 'get')).toBe(calls(primaryBefore, 'get'));
  expect(calls(onPrimary, 'set')).toBeGreaterThanOrEqual(1);
  expect(c.status().cluster.nodes.find((n) => n.endpoint === `127.0.0.1:${replica}`).state).toBe('ready');
  // ioredis's and node-redis's names for it.
  for (const cluster2 of [{ scaleReads: 'slave' }, { useReplicas: true }]) {
    const other = client({ cluster: { nodes: cluster.seeds.split(','), ...cluster2 } });
    expect(await other.get('rr:k')).toBe('v');
  }
});

test('a seed that is down is skipped; no seed reachable fails fast and says why', async () => {
  const dead = NOWHERE;
  const c = client({ cluster: [`127.0.0.1:${dead}`, ...cluster.seeds.split(',')] });
  expect(await c.ping()).toBe('PONG');
  const nowhere = client({ cluster: [`127.0.0.1:${dead}`], connectTimeout: 500 });
  const t = Date.now();
  const err = await nowhere.get('k').catch((e) => e);
  expect(Date.now() - t).toBeLessThan(3000);
  expect(err.code).toMatch(/ECONNREFUSED|ERR_CLUSTER_MAP/);
  expect(String(err.message)).toMatch(/127\.0\.0\.1:1\b/); // NOWHERE
  // A node that is no cluster member says so.
});

test('quit() while the slot map is being read from a seed that does not answer: every call settles, nothing crashes', async () => {
  const hole = await startBlackhole();
  try {
    // The map read goes to the silent seed first; quit() makes its connection give up, and
    // the round must end there instead of asking the next seed for a client that is closing.
    const c = createClient({ cluster: [`127.0.0.1:${hole.port}`, ...cluster.seeds.split(',')], logger: false, connectTimeout: 2000 });
    const calls = [c.get('a'), c.set('b', '1'), c.mget('x', 'y', 'z')].map((p) => p.then(() => 'ok', (e) => e.code));
    await sleep(20);
    await c.quit();
    expect(await Promise.all(calls)).toEqual(['ERR_CLIENT_CLOSED', 'ERR_CLIENT_CLOSED', 'ERR_CLIENT_CLOSED']);
    expect(c.status().state).toBe('closed');
  } finally {
    await hole.close();
  }
});

test('quit() while the slot map read waits on a seed that is down (maxRetriesPerRequest): every call settles, nothing crashes', async () => {
  const dead = NOWHERE;
  // The map read waits through the dead seed's failed attempts; quit() fails it at once, and
  // the router must not pass its own read on to a caller.
  const c = createClient({ cluster: [`127.0.0.1:${dead}`, ...cluster.seeds.split(',')], logger: false, maxRetriesPerRequest: null });
  const calls = [c.get('a'), c.mget('x', 'y', 'z')].map((p) => p.then(() => 'ok', (e) => e.code));
  await sleep(50);
  await c.quit();
  expect(await Promise.all(calls)).toEqual(['ERR_CLIENT_CLOSED', 'ERR_CLIENT_CLOSED']);
  await sleep(50);
  expect(c.status().state).toBe('closed');
});

test('pub/sub on a cluster: SUBSCRIBE is cluster-wide, SSUBSCRIBE goes to the channel\'s shard', async () => {
  const sub = client();
  const pub = client();
  const got = [];
  await sub.subscribe('news', (m) => got.push(['news', m]));
  await sub.ssubscribe('{shard}:orders', (m) => got.push(['orders', m]));
  await sub.ssubscribe('{other}:events', (m) => got.push(['events', m]));
  expect(await pub.publish('news', 'hello')).toBe(1);
  expect(await pub.call('SPUBLISH', '{shard}:orders', 'o1')).toBe(1);
  expect(await pub.call('SPUBLISH', '{other}:events', 'e1')).toBe(1);
  await waitFor(() => got.length === 3, { what: 'three messages' });
  expect(got.sort()).toEqual([['events', 'e1'], ['news', 'hello'], ['orders', 'o1']]);
  await sub.quit();
});

test('a cluster client does not hold the process open: it exits once its work is done, without quit()', () => {
  const script = `const { createClient } = require(${JSON.stringify(require.resolve('../../lib/redis'))});
    const c = createClient({ cluster: ${JSON.stringify(cluster.seeds.split(','))}, logger: false });
    Promise.all([c.set('exit:a', '1'), c.set('exit:b', '2'), c.mget('exit:a', 'exit:b')]).then((r) => console.log(JSON.stringify(r)));`;
  const t = Date.now();
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 15000 });
  expect(r.stdout.trim()).toBe('["OK","OK",["1","2"]]');
  expect(r.status).toBe(0);
  expect(Date.now() - t).toBeLessThan(10000);
});

test('a stalled event loop is not a cluster failure: commands in flight are answered, no breaker opens', async () => {
  const c = client();
  await Promise.all(Array.from({ length: 100 }, (_, i) => c.set(`stall:${i}`, `v${i}`)));
  const pending = Array.from({ length: 100 }, (_, i) => c.get(`stall:${i}`));
  const until = Date.now() + 1500;
  while (Date.now() < until) { /* the application holds the loop */ }
  expect(await Promise.all(pending)).toEqual(Array.from({ length: 100 }, (_, i) => `v${i}`));
  const s = c.status();
  expect(s.breaker).toBe('closed');
  expect(s.cluster.nodes.filter((n) => n.role === 'primary').every((n) => n.breaker === 'closed')).toBe(true);
});

test('two processes racing on one limiter key of the cluster admit exactly the limit between them', () => {
  const script = `const { createClient } = require(${JSON.stringify(require.resolve('../../lib/redis'))});
    const { createLimiter } = require(${JSON.stringify(require.resolve('../../lib/ratelimit'))});
    const c = createClient({ cluster: ${JSON.stringify(cluster.seeds.split(','))}, logger: false });
    const l = createLimiter({ client: c, keyPrefix: 'race', points: 50, duration: 3600 });
    Promise.allSettled(Array.from({ length: 100 }, () => l.consume('hot'))).then((r) => {
      console.log(r.filter((x) => x.status === 'fulfilled').length);
      return c.quit();
    });`;
  const { spawn } = require('child_process');
  return Promise.all([0, 1].map(() => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('exit', () => resolve(Number(out.trim())));
  }))).then((admitted) => {
    expect(admitted[0] + admitted[1]).toBe(50);
  });
}, 30000);

test('health and metrics report each node', async () => {
  const c = client();
  await Promise.all(Array.from({ length: 50 }, (_, i) => c.set(`h:${i}`, '1')));
  const report = createHealth({ client: c })();
  expect(report.status).toBe('ok');
  expect(report.redis.mode).toBe('cluster');
  expect(report.redis.nodes.filter((n) => n.role === 'primary').map((n) => n.state)).toEqual(['ready', 'ready', 'ready']);
  const snap = metricsSnapshot(c);
  expect(snap.nodes).toHaveLength(6);
  expect(snap.nodes.filter((n) => n.state === 'ready')).toHaveLength(3);
  // Prometheus: one series per node.
  const text = prometheusText(c);
  const up = text.split('\n').filter((l) => l.startsWith('hirecache_node_up{'));
  expect(up).toHaveLength(6);
  expect(up.filter((l) => /role="primary"\} 1$/.test(l))).toHaveLength(3);
  expect(text).toMatch(/^# TYPE hirecache_node_breaker_state gauge$/m);
});

test('ioredis\'s new Cluster(startupNodes, options) and node-redis\'s createCluster({ rootNodes, defaults }) work as they do there', async () => {
  const [first, second] = cluster.seeds.split(',');
  const [host, port] = first.split(':');
  const io = new Cluster([{ host, port: Number(port) }, second], { scaleReads: 'master', slotsRefreshInterval: 2000, redisOptions: { connectionName: 'io-style' }, logger: false });
  clients.push(io);
  const nr = createCluster({ rootNodes: [{ url: `redis://${first}` }, { socket: { host, port: Number(port) } }], defaults: { name: 'nr-style' }, useReplicas: false, logger: false });
  clients.push(nr);
  expect(io).toBeInstanceOf(RedisClient);
  expect(io.options.cluster).toMatchObject({ refreshInterval: 2000, readFromReplicas: false });
  await io.set('styles:a', '1');
  expect(await nr.get('styles:a')).toBe('1');
  expect(await nr.mget('styles:a', 'styles:b')).toEqual(['1', null]);
  const list = await cluster.command(await ownerOf('styles:a'), 'CLIENT', 'LIST');
  expect(list).toMatch(/name=io-style/);
  expect(list).toMatch(/name=nr-style/);
  expect(() => new Cluster([first], { clusterRetryStrategy: () => 1 })).toThrow(/cluster\.clusterRetryStrategy/);
  expect(() => createCluster({ rootNodes: [first], defaults: { socket: { tls: true } } })).toThrow(/unknown option socket/);
  expect(() => createCluster({ defaults: {} })).toThrow(/rootNodes/);
});

test('REDIS_CLUSTER_NODES, and what a cluster cannot take, refused by name', () => {
  const env = { REDIS_CLUSTER_NODES: cluster.seeds };
  const c = new RedisClient({ logger: false }, env);
  clients.push(c);
  expect(c.options.cluster.nodes).toHaveLength(6);
  expect(() => new RedisClient({}, { ...env, REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow(/both set/);
  expect(() => createClient({ cluster: true, db: 2 })).toThrow(/one database/);
  expect(() => createClient({ cluster: true, retryStrategy: () => 10 })).toThrow(/retryStrategy/);
  for (const name of ['natMap', 'redisOptions', 'clusterRetryStrategy', 'retryDelayOnMoved', 'slotsRefreshTimeout']) {
    expect(() => createClient({ cluster: { nodes: ['127.0.0.1:1'], [name]: 1 } })).toThrow(new RegExp(`cluster\\.${name}`));
  }
  expect(() => createClient({ cluster: { nodes: ['127.0.0.1:1'], bogus: 1 } })).toThrow(/bogus/);
  expect(() => createClient({ cluster: ['not a node'] })).toThrow(/host:port/);
  // A node written with credentials but no scheme: refused without showing the password.
  const leak = (() => { try { createClient({ cluster: ['bob:s3cret@host:1'] }); } catch (e) { return e.message; } return ''; })();
  expect(leak).toMatch(/not shown/);
  expect(leak).not.toContain('s3cret');
  expect(() => createClient({ cluster: ['redis://a:1', 'rediss://b:1'] })).toThrow(/disagree/);
  expect(() => createClient({ cluster: { nodes: ['127.0.0.1:1'], scaleReads: 'all' } })).toThrow(/scaleReads/);
  expect(() => createClient({ cluster: [] })).toThrow(/no node/);
});
