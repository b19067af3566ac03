'use strict';
// A primary of a real cluster killed under load (SIGKILL, as a crash): its replica is
// promoted, and the client moves the slots with it. Meanwhile the shard's commands fail
// fast (never hang, never a wrong reply), the other shards keep serving, and once the
// cluster has promoted the replica the client serves the shard again; every write
// acknowledged and replicated before the kill is readable after it. The times are printed.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { createHealth } = require('../../lib/health');
const binding = require('../../lib/binding');
const { startCluster } = require('../helpers/cluster');
const { sleep, waitFor, watchUnhandledRejections } = require('../helpers/async');

let cluster;
let unhandled;

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  cluster = await startCluster({ nodeTimeoutMs: 1000 });
}, 60000);

afterAll(async () => {
  if (cluster) await cluster.stop();
  expect(unhandled.stop()).toEqual([]);
});

const ALLOWED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ERR_OUTCOME_UNKNOWN', 'CLUSTERDOWN', 'ERR_BREAKER_OPEN', 'ERR_NODE_CLOSED']);

test('a primary killed under load: its slots fail fast, then move to the promoted replica; acknowledged writes survive', async () => {
  // The default deadline (5 s): reads of the other shards wait out the cluster's CLUSTERDOWN
  // window within it, however long the election takes on a loaded machine.
  const client = createClient({ cluster: cluster.seeds.split(','), logger: false, connectTimeout: 1000 });
  const cache = createCache({ client });
  const N = 3000;
  await Promise.all(Array.from({ length: N }, (_, i) => client.set(`before:${i}`, `b${i}`)));
  // Acknowledged AND replicated: what a failover must not lose.
  for (const p of await cluster.primaries()) await cluster.command(p.port, 'WAIT', 1, 5000);

  const victim = (await cluster.primaries())[0];
  const inVictim = (key) => victim.slots.some(([a, b]) => binding.keySlot(key) >= a && binding.keySlot(key) <= b);
  const victimKeys = Array.from({ length: N }, (_, i) => `before:${i}`).filter(inVictim);
  const otherKeys = Array.from({ length: N }, (_, i) => `before:${i}`).filter((k) => !inVictim(k));

  // Open-loop load: every 5 ms, 10 reads on the victim's slots and 10 elsewhere.
  const events = [];
  let wrong = 0;
  let running = true;
  let slowest = 0;
  const pending = new Set();
  const issue = (key, expected, victimSide) => {
    const t = Date.now();
    const p = client.get(key).then(
      (v) => {
        if (v !== expected) wrong += 1;
        events.push({ at: Date.now(), ok: true, victimSide });
      },
      (err) => events.push({ at: Date.now(), ok: false, victimSide, code: err.code }),
    ).finally(() => {
      slowest = Math.max(slowest, Date.now() - t);
      pending.delete(p);
    });
    pending.add(p);
  };
  let n = 0;
  const loop = (async () => {
    while (running) {
      for (let j = 0; j < 10; j++, n++) {
        const vk = victimKeys[n % victimKeys.length];
        const ok = otherKeys[n % otherKeys.length];
        issue(vk, `b${vk.split(':')[1]}`, true);
        issue(ok, `b${ok.split(':')[1]}`, false);
      }
      await sleep(5);
    }
  })();

  await sleep(300);
  const killedAt = Date.now();
  const failover = cluster.failover(victim.port);
  // While the shard is down the others serve: the health report says degraded, not error.
  const health = createHealth({ client, cache });
  await waitFor(() => health().status === 'degraded', { what: 'a degraded health report while a primary is down', timeout: 10000 });
  expect(health().ready).toBe(true);
  const { newPrimaryPort, ms: promotedMs } = await failover;
  // The client serves the shard again once its reads succeed steadily.
  await waitFor(() => events.some((e) => e.victimSide && e.ok && e.at > killedAt + promotedMs), { what: 'a read of the failed shard served again', timeout: 20000 });
  await sleep(500);
  running = false;
  await loop;
  await Promise.all([...pending]);

  const victimAfter = events.filter((e) => e.victimSide && e.at > killedAt);
  const firstFailure = victimAfter.find((e) => !e.ok);
  const lastFailure = [...victimAfter].reverse().find((e) => !e.ok);
  const firstOkAfterFailure = victimAfter.find((e) => e.ok && firstFailure && e.at >= firstFailure.at);
  const otherFailures = events.filter((e) => !e.victimSide && !e.ok);
  const codes = {};
  for (const e of events) if (!e.ok) codes[e.code] = (codes[e.code] || 0) + 1;
  const recoveredMs = lastFailure ? lastFailure.at - killedAt : 0;
  console.log(`primary ${victim.port} killed; replica ${newPrimaryPort} promoted by the cluster after ${promotedMs} ms; `
    + `the client's last failure on that shard ${recoveredMs} ms after the kill (first served read after failures at `
    + `${firstOkAfterFailure ? firstOkAfterFailure.at - killedAt : '-'} ms); failures by code ${JSON.stringify(codes)}; `
    + `failures on other shards ${otherFailures.length}; slowest call ${slowest} ms; wrong replies ${wrong}; `
    + `map reads ${client.status().cluster.mapReads}`);

  expect(wrong).toBe(0);
  for (const code of Object.keys(codes)) expect(ALLOWED.has(code)).toBe(true);
  // No call waited past its deadline (commandTimeout, 5000 by default) plus a margin.
  expect(slowest).toBeLessThan(7000);
  // The client follows the cluster within a second or two of the promotion.
  expect(recoveredMs).toBeLessThan(promotedMs + 3000);
  // The other shards kept serving: while the cluster declared itself down (CLUSTERDOWN, for
  // want of the failed shard), their reads waited within their deadline instead of failing.
  expect(otherFailures).toEqual([]);

  // Every acknowledged, replicated write before the kill is readable.
  const all = await client.mget(Array.from({ length: N }, (_, i) => `before:${i}`));
  expect(all).toEqual(Array.from({ length: N }, (_, i) => `b${i}`));
  const nodes = client.status().cluster.nodes;
  expect(nodes.find((x) => x.endpoint === `127.0.0.1:${newPrimaryPort}`).role).toBe('primary');
  expect(nodes.find((x) => x.endpoint === `127.0.0.1:${victim.port}`)?.role).not.toBe('primary');
  expect(health().status).toBe('ok');

  // The old primary comes back as a replica; the client keeps serving, and a prefix delete
  // reaches every primary of the new map.
  await cluster.restart(victim.port);
  expect(await cache.cacheDelPrefix('before:')).toBe(N);
  await client.quit();
}, 90000);

test('subscriptions survive a failover: shard channels are renewed on the new owner, with a subscriptionGap', async () => {
  const sub = createClient({ cluster: cluster.seeds.split(','), logger: false });
  const pub = createClient({ cluster: cluster.seeds.split(','), logger: false });
  const victim = (await cluster.primaries())[1];
  // A shard channel whose slot the victim serves, and a plain channel.
  let channel = null;
  for (let i = 0; channel === null; i++) {
    const name = `orders:${i}`;
    if (victim.slots.some(([a, b]) => binding.keySlot(name) >= a && binding.keySlot(name) <= b)) channel = name;
  }
  const got = [];
  const gaps = [];
  sub.on('subscriptionGap', (gap) => gaps.push(gap));
  await sub.ssubscribe(channel, (m) => got.push(['shard', m]));
  await sub.subscribe('news', (m) => got.push(['news', m]));
  await pub.call('SPUBLISH', channel, 'before');
  await pub.publish('news', 'before');
  await waitFor(() => got.length === 2, { what: 'the messages before the failover' });

  const { ms } = await cluster.failover(victim.port);
  // Once the subscriptions are renewed, messages flow again on both.
  await waitFor(async () => {
    await pub.call('SPUBLISH', channel, 'after').catch(() => 0);
    return got.some(([k, m]) => k === 'shard' && m === 'after');
  }, { what: 'a shard message after the failover', timeout: 20000 });
  await waitFor(async () => {
    await pub.publish('news', 'after').catch(() => 0);
    return got.some(([k, m]) => k === 'news' && m === 'after');
  }, { what: 'a channel message after the failover', timeout: 20000 });
  console.log(`subscriptions after a failover (promoted in ${ms} ms): gaps ${JSON.stringify(gaps.map((g) => g.to - g.from))} ms`);
  expect(gaps.length).toBeGreaterThan(0);
  expect(gaps.at(-1)).toMatchObject({ channels: ['news'], shardChannels: [channel] });
  await cluster.restart(victim.port);
  await Promise.all([sub.quit(), pub.quit()]);
}, 90000);
