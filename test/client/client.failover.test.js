'use strict';
// Proves the failover rule: a READONLY reply (the node became a replica) rejects that
// command with a ReplyError READONLY and makes the client open a new connection.
const { createClient } = require('../../lib/redis');
const errors = require('../../lib/errors');
const { startRedis } = require('../helpers/redis-server');
const { createProxy } = require('../helpers/proxy');
const { waitFor } = require('../helpers/async');

let primary;
let replica;
let proxy;
let client;

beforeAll(async () => {
  primary = await startRedis();
  replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  proxy = await createProxy({ port: replica.port });
});

afterAll(async () => {
  if (client) client.disconnect();
  if (proxy) await proxy.close();
  await Promise.allSettled([replica && replica.stop(), primary && primary.stop()]);
});

test('a READONLY reply rejects with ReplyError READONLY and triggers a reconnect', async () => {
  client = createClient({ url: proxy.url, reconnectBaseDelay: 10, reconnectMaxDelay: 100 });
  await expect(client.call('GET', 'k')).resolves.toBeNull();
  expect(proxy.accepted).toBe(1);
  const err = await client.call('SET', 'k', 'v').catch((e) => e);
  expect(err).toBeInstanceOf(errors.ReplyError);
  expect(err.code).toBe('READONLY');
  await waitFor(() => proxy.accepted >= 2, { what: 'a new connection after READONLY' });
  await expect(client.call('PING')).resolves.toBe('PONG');
});
