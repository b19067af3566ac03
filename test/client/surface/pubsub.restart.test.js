'use strict';
// Subscriptions outlive the connection they were made on: across a redis-server killed and
// restarted on the same port, messages resume without subscribe() being called again, and a
// 'subscriptionGap' event says when messages may have been missed and for which channels and
// patterns. A subscribe() that failed because Redis was down must not leave the client
// believing it is subscribed.
const { createClient } = require('../../../lib/redis');
const { startRedis, freePort } = require('../../helpers/redis-server');
const { rawCommand } = require('../../helpers/raw-redis');
const { waitFor, outcome } = require('../../helpers/async');

const clients = [];
const servers = [];
function open(options) {
  const c = createClient({ logger: false, reconnectBaseDelay: 20, reconnectMaxDelay: 100, ...options });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of servers.splice(0)) await s.stop();
});

/** Publishes `message` until a listener has it (the subscriber may still be resubscribing). */
async function publishUntilSeen(port, channel, message, seen) {
  await waitFor(async () => {
    await rawCommand({ port }, 'PUBLISH', channel, message);
    return seen();
  }, { intervalMs: 50, what: `${message} on ${channel} to be delivered` });
}

test('killed and restarted on the same port: messages resume without a new subscribe(), and subscriptionGap says what was missed', async () => {
  let server = await startRedis();
  servers.push(server);
  const { port, dir } = server;
  const client = open({ url: server.url });
  const got = [];
  const gaps = [];
  client.on('subscriptionGap', (gap) => gaps.push(gap));
  await client.subscribe(['news', 'sport'], (message, channel) => got.push(`${channel}:${message}`));
  await client.psubscribe('orders.*', (message, channel, pattern) => got.push(`${pattern}:${channel}:${message}`));
  await rawCommand({ port }, 'PUBLISH', 'news', 'before');
  await waitFor(() => got.includes('news:before'), { what: 'the first message' });

  const lostAfter = Date.now();
  await server.kill();
  servers.length = 0;
  server = await startRedis({ port, dir });
  servers.push(server);

  await publishUntilSeen(port, 'sport', 'after', () => got.includes('sport:after'));
  await publishUntilSeen(port, 'orders.eu', 'after', () => got.includes('orders.*:orders.eu:after'));
  await waitFor(() => gaps.length === 1, { what: 'the subscriptionGap event' });
  const [gap] = gaps;
  expect(gap.channels.sort()).toEqual(['news', 'sport']);
  expect(gap.patterns).toEqual(['orders.*']);
  expect(typeof gap.from).toBe('number');
  expect(typeof gap.to).toBe('number');
  expect(gap.from).toBeGreaterThanOrEqual(lostAfter);
  expect(gap.to).toBeGreaterThanOrEqual(gap.from);
  expect(client.subscriptions()).toEqual({ channels: ['news', 'sport'], patterns: ['orders.*'], shardChannels: [] });
  const numsub = await rawCommand({ port }, 'PUBSUB', 'NUMSUB', 'news', 'sport');
  expect(numsub).toEqual(['news', 1, 'sport', 1]);
});

test('subscribe() while Redis is down rejects; once Redis is up, subscribing again delivers messages', async () => {
  const port = await freePort();
  const client = open({ port });
  const got = [];
  const listener = (message) => got.push(message);
  const first = await outcome(client.subscribe('early', listener));
  expect(first.ok).toBe(false);
  expect(first.error.code).toBe('ECONNREFUSED');

  const server = await startRedis({ port });
  servers.push(server);
  // The application retries, as it would after any failed call.
  await waitFor(async () => (await outcome(client.subscribe('early', listener))).ok, {
    what: 'subscribe() to succeed once Redis is up',
  });
  // subscribe() resolved: Redis has the subscription (a SUBSCRIBE is answered once it holds).
  expect(await rawCommand({ port }, 'PUBSUB', 'NUMSUB', 'early')).toEqual(['early', 1]);
  expect(await rawCommand({ port }, 'PUBLISH', 'early', 'hello')).toBe(1);
  await waitFor(() => got.length > 0, { what: 'the message on the channel subscribed after the outage' });
  expect(got).toEqual(['hello']);
});

test('with a password (a handshake on every connection), the subscriptions are renewed after a restart too', async () => {
  const args = ['--requirepass', 'secret'];
  let server = await startRedis({ args });
  servers.push(server);
  const { port, dir } = server;
  const client = open({ port, password: 'secret', db: 3 });
  const got = [];
  const gaps = [];
  client.on('subscriptionGap', (gap) => gaps.push(gap));
  await client.subscribe('news', (message) => got.push(message));
  await server.kill();
  servers.length = 0;
  await new Promise((resolve) => setTimeout(resolve, 300)); // a few failed attempts
  server = await startRedis({ port, dir, args });
  servers.push(server);
  await waitFor(async () => {
    await rawCommand({ port, password: 'secret' }, 'PUBLISH', 'news', 'after');
    return got.includes('after');
  }, { intervalMs: 50, what: 'a message after the restart' });
  await waitFor(() => gaps.length === 1, { what: 'the subscriptionGap event' });
  expect(await rawCommand({ port, password: 'secret' }, 'PUBSUB', 'NUMSUB', 'news')).toEqual(['news', 1]);
});

test('two subscribe() calls for one channel while Redis is down both reject, and nothing stays listed', async () => {
  const port = await freePort();
  const client = open({ port });
  const [a, b] = await Promise.all([outcome(client.subscribe('same', () => {})), outcome(client.subscribe('same', () => {}))]);
  expect(a.ok).toBe(false);
  expect(b.ok).toBe(false);
  expect(client.subscriptions().channels).toEqual([]);
});
