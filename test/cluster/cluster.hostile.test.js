'use strict';
// Nodes that lie: fake servers posing as a cluster (test/helpers/fake-servers.js) answer
// the slot map and the commands with what a broken or hostile node might send. The client
// must stay bounded and explicit: no redirect loop, no hang, no crash, and an error that
// says what was wrong.
const { createClient } = require('../../lib/redis');
const binding = require('../../lib/binding');
const { commandServer } = require('../helpers/fake-servers');
const { watchUnhandledRejections } = require('../helpers/async');

// A port nothing listens on that no other suite can take meanwhile (a free port picked
// with listen(0) may be handed to another suite's server before it is used): tcpmux's, below
// the ephemeral range.
const NOWHERE = 1;

let unhandled;
const closers = [];

beforeAll(() => {
  unhandled = watchUnhandledRejections();
});

afterEach(async () => {
  while (closers.length) await closers.pop()();
});

afterAll(() => {
  expect(unhandled.stop()).toEqual([]);
});

const bulk = (s) => `$${Buffer.byteLength(String(s))}\r\n${s}\r\n`;
const arr = (items) => `*${items.length}\r\n${items.join('')}`;
const int = (n) => `:${n}\r\n`;

/** CLUSTER SHARDS as Redis 7 writes it: one shard holding every slot, its primary at port. */
function shards(port, { first = 0, last = 16383 } = {}) {
  const node = arr([bulk('id'), bulk('a'.repeat(40)), bulk('port'), int(port), bulk('ip'), bulk('127.0.0.1'),
    bulk('endpoint'), bulk('127.0.0.1'), bulk('role'), bulk('master'), bulk('replication-offset'), int(0),
    bulk('health'), bulk('online')]);
  return arr([arr([bulk('slots'), arr([int(first), int(last)]), bulk('nodes'), arr([node])])]);
}

async function fakeNode(handle) {
  const server = await commandServer(handle);
  closers.push(() => server.close());
  return server;
}

function client(options) {
  const c = createClient({ logger: false, connectTimeout: 1000, commandTimeout: 3000, ...options });
  closers.push(() => c.disconnect());
  return c;
}

test('a node that answers MOVED to itself forever: the command fails after maxRedirections, fast', async () => {
  let gets = 0;
  const node = await fakeNode((argv) => {
    if (argv[0] === 'CLUSTER') return shards(node.port);
    if (argv[0] === 'GET') {
      gets += 1;
      return `-MOVED 12182 127.0.0.1:${node.port}\r\n`;
    }
    return '+OK\r\n';
  });
  const c = client({ cluster: { nodes: [`127.0.0.1:${node.port}`], maxRedirections: 5 } });
  const t = Date.now();
  const err = await c.get('foo').catch((e) => e);
  expect(err.code).toBe('MOVED');
  expect(gets).toBe(6); // the first send and five redirections
  expect(Date.now() - t).toBeLessThan(2000);
});

test('TRYAGAIN forever: retried with backoff, then answered within the deadline', async () => {
  const node = await fakeNode((argv) => {
    if (argv[0] === 'CLUSTER') return shards(node.port);
    return '-TRYAGAIN Multiple keys request during rehashing of slot\r\n';
  });
  const c = client({ cluster: [`127.0.0.1:${node.port}`], commandTimeout: 1500 });
  const t = Date.now();
  const err = await c.get('foo').catch((e) => e);
  expect(err.code).toBe('TRYAGAIN');
  expect(Date.now() - t).toBeLessThan(4000);
});

test('a MOVED naming an address nobody listens on: the command fails with that connection\'s error', async () => {
  const nowhere = NOWHERE;
  const node = await fakeNode((argv) => {
    if (argv[0] === 'CLUSTER') return shards(node.port);
    if (argv[0] === 'GET') return `-MOVED 12182 127.0.0.1:${nowhere}\r\n`;
    return '+OK\r\n';
  });
  const c = client({ cluster: [`127.0.0.1:${node.port}`] });
  const err = await c.get('foo').catch((e) => e);
  expect(err.code).toBe('ECONNREFUSED');
  expect(err.message).toMatch(/127\.0\.0\.1:1\b/); // NOWHERE
});

test('malformed MOVED replies are the caller\'s answer, not a redirection', async () => {
  const replies = ['-MOVED\r\n', '-MOVED 99999 127.0.0.1:1\r\n', '-MOVED 5 127.0.0.1:0\r\n', '-MOVED 5 nohostport\r\n', '-MOVED x 127.0.0.1:6379\r\n'];
  let i = 0;
  const node = await fakeNode((argv) => {
    if (argv[0] === 'CLUSTER') return shards(node.port);
    if (argv[0] === 'GET') return replies[i++ % replies.length];
    return '+OK\r\n';
  });
  const c = client({ cluster: [`127.0.0.1:${node.port}`] });
  for (let n = 0; n < replies.length; n++) {
    const err = await c.get('foo').catch((e) => e);
    expect(err.code).toBe('MOVED');
  }
  expect(c.status().cluster.redirections).toBe(0);
});

test('slot maps that are not maps: refused with ERR_CLUSTER_MAP naming the node, never a hang', async () => {
  const bad = [
    '*1\r\n:5\r\n', // a shard that is an integer
    arr([arr([bulk('slots'), arr([int(5), int(1)]), bulk('nodes'), arr([])])]), // last < first
    arr([arr([bulk('slots'), arr([int(0), int(99999)]), bulk('nodes'), arr([])])]), // slot past 16383
    '*0\r\n', // no slot served (cluster-enabled but not created)
    '+OK\r\n',
  ];
  for (const reply of bad) {
    const node = await fakeNode((argv) => (argv[0] === 'CLUSTER' ? reply : '+OK\r\n'));
    const c = client({ cluster: [`127.0.0.1:${node.port}`] });
    const t = Date.now();
    const err = await c.get('foo').catch((e) => e);
    expect(Date.now() - t).toBeLessThan(2000);
    expect(err.code).toBe('ERR_CLUSTER_MAP');
    expect(err.message).toContain(`127.0.0.1:${node.port}`);
  }
});

test('a map of part of the slots: keys elsewhere fail with CLUSTERDOWN, keys it covers are served', async () => {
  const node = await fakeNode((argv) => {
    if (argv[0] === 'CLUSTER') return shards(node.port, { first: 0, last: 100 });
    if (argv[0] === 'GET') return bulk('v');
    return '+OK\r\n';
  });
  const c = client({ cluster: [`127.0.0.1:${node.port}`] });
  // 'foo' hashes to slot 12182, which this map leaves without a primary.
  const err = await c.get('foo').catch((e) => e);
  expect(err.code).toBe('CLUSTERDOWN');
  expect(err.message).toMatch(/no primary serves hash slot 12182/);
  // A key of a slot the map covers is served.
  let key = null;
  for (let i = 0; key === null; i++) if (binding.keySlot(`k${i}`) <= 100) key = `k${i}`;
  expect(await c.get(key)).toBe('v');
});
