'use strict';
// client.subscribe() / psubscribe() / ssubscribe() on the client's pub/sub connection: the
// listener's arguments (strings, or Buffers with { buffers: true }, binary-safe), the
// client's ioredis events ('message', 'messageBuffer', 'pmessage'), ioredis's
// subscribe('a', 'b', callback) form, unsubscribe() of one listener or of all, the list of
// subscriptions, a listener that throws, and quit() closing the pub/sub connection too.
const { clientSuite } = require('../../helpers/client-suite');
const { rawCommand } = require('../../helpers/raw-redis');
const { waitFor, turns } = require('../../helpers/async');
const { connectionsNamed } = require('../../helpers/surface');
const { inChild } = require('../../ratelimit/in-child');

const suite = clientSuite({ defaults: { logger: false } });
const open = (options) => suite.open({ url: suite.db.url, ...options });
// Channels are server-wide: this suite's carry its database number.
const ch = (name) => `surface-pubsub:${suite.db.db}:${name}`;
const publish = (channel, message) => rawCommand(suite.db.raw, 'PUBLISH', channel, message);
const numsub = async (...channels) => {
  const flat = await rawCommand(suite.db.raw, 'PUBSUB', 'NUMSUB', ...channels);
  return Object.fromEntries(channels.map((c, i) => [c, flat[2 * i + 1]]));
};

test('subscribe(channel, listener): the listener gets (message, channel) as strings; resolves the number of subscriptions', async () => {
  const client = open();
  const got = [];
  await expect(client.subscribe(ch('news'), (...args) => got.push(args))).resolves.toBe(1);
  await expect(client.subscribe([ch('sport'), ch('weather')], (...args) => got.push(args))).resolves.toBe(3);
  expect(await publish(ch('news'), 'héllo')).toBe(1);
  expect(await publish(ch('weather'), 'rain')).toBe(1);
  await waitFor(() => got.length === 2, { what: 'two messages' });
  expect(got[0]).toEqual(['héllo', ch('news'), null]);
  expect(got[1]).toEqual(['rain', ch('weather'), null]);
});

test('{ buffers: true }: the listener gets Buffers, binary payloads intact', async () => {
  const client = open();
  const got = [];
  await client.subscribe(ch('bin'), (message, channel) => got.push([message, channel]), { buffers: true });
  const payload = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0x41]);
  await publish(ch('bin'), payload);
  await waitFor(() => got.length === 1, { what: 'the message' });
  expect(Buffer.isBuffer(got[0][0])).toBe(true);
  expect(got[0][0].equals(payload)).toBe(true);
  expect(Buffer.isBuffer(got[0][1])).toBe(true);
  expect(got[0][1].toString()).toBe(ch('bin'));
});

test('psubscribe(pattern, listener): the listener gets (message, channel, pattern); the client emits pmessage', async () => {
  const client = open();
  const got = [];
  const events = [];
  client.on('pmessage', (...args) => events.push(args));
  await expect(client.psubscribe(ch('orders.*'), (...args) => got.push(args))).resolves.toBe(1);
  await publish(ch('orders.eu'), 'one');
  await publish(ch('users.eu'), 'not for the pattern');
  await publish(ch('orders.us'), 'two');
  await waitFor(() => got.length === 2, { what: 'two pattern messages' });
  expect(got).toEqual([['one', ch('orders.eu'), ch('orders.*')], ['two', ch('orders.us'), ch('orders.*')]]);
  expect(events).toEqual([[ch('orders.*'), ch('orders.eu'), 'one'], [ch('orders.*'), ch('orders.us'), 'two']]);
});

test("the client emits 'message' (channel, message) and 'messageBuffer' (Buffers), with or without a listener", async () => {
  const client = open();
  const messages = [];
  const buffers = [];
  client.on('message', (channel, message) => messages.push([channel, message]));
  client.on('messageBuffer', (channel, message) => buffers.push([channel, message]));
  await client.subscribe(ch('events'));
  await publish(ch('events'), Buffer.from([0xc3, 0xa9, 0x00]));
  await waitFor(() => messages.length === 1 && buffers.length === 1, { what: 'the events' });
  expect(messages).toEqual([[ch('events'), 'é\u0000']]);
  expect(Buffer.isBuffer(buffers[0][0]) && Buffer.isBuffer(buffers[0][1])).toBe(true);
  expect(buffers[0][0].toString()).toBe(ch('events'));
  expect(buffers[0][1].equals(Buffer.from([0xc3, 0xa9, 0x00]))).toBe(true);
});

test("ioredis's form subscribe('a', 'b', (err, count) => …): called back with (null, 2)", async () => {
  const client = open();
  const called = await new Promise((resolve) => {
    client.subscribe(ch('a'), ch('b'), (err, count) => resolve([err, count]));
  });
  expect(called).toEqual([null, 2]);
  expect(await numsub(ch('a'), ch('b'))).toEqual({ [ch('a')]: 1, [ch('b')]: 1 });
});

test('unsubscribe(channel, listener) removes that listener only; unsubscribe() removes every subscription', async () => {
  const client = open();
  const first = [];
  const second = [];
  const one = (m) => first.push(m);
  const two = (m) => second.push(m);
  await client.subscribe(ch('u'), one);
  await client.subscribe(ch('u'), two);
  await client.psubscribe(ch('p.*'), one);
  expect(client.subscriptions()).toEqual({ channels: [ch('u')], patterns: [ch('p.*')], shardChannels: [] });

  await client.unsubscribe(ch('u'), one);
  await publish(ch('u'), 'after removing one');
  await waitFor(() => second.length === 1, { what: 'the message to the remaining listener' });
  await publish(ch('p.x'), 'pattern');
  await waitFor(() => first.length === 1, { what: 'the pattern message' });
  expect(first).toEqual(['pattern']);
  expect(second).toEqual(['after removing one']);
  expect(await numsub(ch('u'))).toEqual({ [ch('u')]: 1 });

  await client.unsubscribe();
  await client.punsubscribe();
  expect(client.subscriptions()).toEqual({ channels: [], patterns: [], shardChannels: [] });
  expect(await numsub(ch('u'))).toEqual({ [ch('u')]: 0 });
  await publish(ch('u'), 'nobody listens');
  await publish(ch('p.x'), 'nobody listens');
  await turns(20);
  expect(first).toHaveLength(1);
  expect(second).toHaveLength(1);
});

test('subscriptions() lists channels, patterns and shard channels', async () => {
  const client = open();
  expect(client.subscriptions()).toEqual({ channels: [], patterns: [], shardChannels: [] });
  const got = [];
  await client.subscribe([ch('x'), ch('y')], () => {});
  await client.psubscribe(ch('z*'), () => {});
  await client.ssubscribe(ch('s'), (message, channel) => got.push([message, channel]));
  expect(client.subscriptions()).toEqual({ channels: [ch('x'), ch('y')], patterns: [ch('z*')], shardChannels: [ch('s')] });
  await rawCommand(suite.db.raw, 'SPUBLISH', ch('s'), 'sharded');
  await waitFor(() => got.length === 1, { what: 'the shard message' });
  expect(got).toEqual([['sharded', ch('s')]]);
});

test('a listener that throws does not stop delivery to the others; its error surfaces as an uncaught exception', async () => {
  // Run in a process of its own: an uncaught exception in the Jest worker would fail the test
  // for the wrong reason.
  const channel = ch('throwing');
  const body = `async ({ createClient, url, arg }) => {
    const uncaught = [];
    process.on('uncaughtException', (err) => uncaught.push(err.message));
    const client = createClient({ url, logger: false });
    const delivered = [];
    await client.subscribe(arg, () => { throw new Error('listener failure'); });
    await client.subscribe(arg, (m) => delivered.push('second:' + m));
    client.on('message', (c, m) => delivered.push('event:' + m));
    const publisher = createClient({ url, logger: false });
    for (const m of ['one', 'two']) await publisher.call('PUBLISH', arg, m);
    const deadline = Date.now() + 5000;
    while ((delivered.length < 4 || uncaught.length < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await client.quit();
    await publisher.quit();
    return { delivered, uncaught };
  }`;
  const { value } = await inChild(body, { url: suite.db.url, arg: channel }).done;
  expect(value.delivered.sort()).toEqual(['event:one', 'event:two', 'second:one', 'second:two']);
  expect(value.uncaught).toEqual(['listener failure', 'listener failure']);
});

test('quit() closes the pub/sub connection too', async () => {
  const name = 'surface-pubsub-quit';
  const client = open({ name });
  await client.call('PING');
  await client.subscribe(ch('closing'), () => {});
  const conns = await connectionsNamed(suite.db.raw, name);
  expect(conns).toHaveLength(2);
  expect(conns.map((c) => c.sub).sort()).toEqual(['0', '1']);
  await expect(client.quit()).resolves.toBe('OK');
  await waitFor(async () => (await connectionsNamed(suite.db.raw, name)).length === 0, {
    what: 'both connections to leave CLIENT LIST',
  });
  expect(await numsub(ch('closing'))).toEqual({ [ch('closing')]: 0 });
});

describe('a process that only listens', () => {
  const { spawn } = require('child_process');
  const path = require('path');
  const script = (url, channel) => `
    const { createClient } = require(${JSON.stringify(path.join(__dirname, '../../../lib/redis'))});
    const client = createClient({ url: ${JSON.stringify(url)}, logger: false });
    client.subscribe(${JSON.stringify(channel)}, async (message) => {
      console.log('got ' + message);
      await client.unsubscribe(${JSON.stringify(channel)});
      await client.quit();
    }).then(() => console.log('subscribed'));
  `;

  test('stays alive while subscribed (as with ioredis), and exits once it unsubscribed and quit', async () => {
    const child = spawn(process.execPath, ['-e', script(suite.db.url, ch('wake'))], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await waitFor(() => out.includes('subscribed'), { what: 'the child to subscribe' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(child.exitCode).toBeNull(); // nothing else keeps it alive
    await publish(ch('wake'), 'up');
    expect(await exited).toBe(0);
    expect(out).toContain('got up');
  });
});
