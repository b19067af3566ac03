'use strict';
// Attacks on the subscriber connection: a SUBSCRIBE that Redis refuses as a whole (one error
// for several channels must not leave the connection waiting for replies that never come),
// a server that answers a SUBSCRIBE with something that is not a confirmation, one that
// pushes a message on a channel nobody subscribed to, and a flood of messages.
const { createClient } = require('../../../lib/redis');
const { suiteDatabase } = require('../../helpers/suite-db');
const { rawCommand } = require('../../helpers/raw-redis');
const { commandServer } = require('../../helpers/fake-servers');
const { waitFor } = require('../../helpers/async');

let db;
const clients = [];
const open = (options) => {
  const c = createClient({ logger: false, ...options });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  db = await suiteDatabase();
});

afterEach(async () => {
  while (clients.length) clients.pop().disconnect();
});

afterAll(async () => {
  await rawCommand(db.raw, 'ACL', 'DELUSER', 'pubsub-limited');
});

const bulk = (s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
const array = (...items) => `*${items.length}\r\n${items.join('')}`;

test('a SUBSCRIBE refused as a whole (NOPERM) rejects, subscribes nothing, and the connection stays in step', async () => {
  await rawCommand(db.raw, 'ACL', 'SETUSER', 'pubsub-limited', 'on', '>pw', '~*', 'resetchannels', '&allowed:*', '+@all');
  const url = new URL(db.url);
  const client = open({ url: `redis://pubsub-limited:pw@${url.host}${url.pathname}` });
  const err = await client.subscribe(['allowed:a', 'forbidden', 'allowed:c'], () => {}).catch((e) => e);
  expect(err.code).toBe('NOPERM');
  expect(client.subscriptions().channels).toEqual([]);
  const got = [];
  expect(await client.subscribe('allowed:b', (m, ch) => got.push([m, ch]))).toBe(1);
  expect(await client.publish('allowed:b', 'hello')).toBe(1);
  await waitFor(() => got.length === 1);
  expect(got).toEqual([['hello', 'allowed:b']]);
});

test('a message on a channel nobody subscribed to is dropped; a reply that is no confirmation fails the subscribe', async () => {
  const server = await commandServer((argv) => {
    const verb = argv[0].toString().toUpperCase();
    if (verb === 'SUBSCRIBE' && argv[1].toString() === 'odd') return '+OK\r\n';
    if (verb === 'SUBSCRIBE') {
      // A stray message first, then the confirmations and a real message.
      return array(bulk('message'), bulk('nobody'), bulk('stray'))
        + argv.slice(1).map((ch, i) => array(bulk('subscribe'), bulk(ch.toString()), `:${i + 1}\r\n`)).join('')
        + array(bulk('message'), bulk(argv[1].toString()), bulk('first'));
    }
    return '-ERR unexpected\r\n';
  });
  try {
    const client = open({ url: server.url });
    const got = [];
    const events = [];
    client.on('message', (ch, m) => events.push([ch, m]));
    expect(await client.subscribe(['a', 'b'], (m, ch) => got.push([m, ch]))).toBe(2);
    await waitFor(() => got.length === 1);
    expect(got).toEqual([['first', 'a']]);
    expect(events).toEqual([['nobody', 'stray'], ['a', 'first']]);
    // +OK is a reply, but not a confirmation: the subscribe fails, subscribes nothing, and
    // the connection is still in step after it.
    const odd = await client.subscribe('odd', () => {}).catch((e) => e);
    expect(odd.code).toBe('ERR_PROTOCOL');
    expect(client.subscriptions().channels).toEqual(['a', 'b']);
    expect(await client.subscribe('c', () => {})).toBe(3);
  } finally {
    await server.close();
  }
});

test('a flood of 20,000 messages arrives complete and in order, while the shared client keeps serving', async () => {
  const client = open({ url: db.url });
  const other = open({ url: db.url });
  const got = [];
  await client.subscribe('flood', (m) => got.push(Number(m)));
  await other.connect();
  const pubs = [];
  for (let i = 0; i < 20000; i++) pubs.push(other.publish('flood', String(i)));
  const echo = client.call('ECHO', 'still here');
  expect(await echo).toBe('still here');
  await Promise.all(pubs);
  await waitFor(() => got.length === 20000, { timeoutMs: 10000, what: `20,000 messages (got ${got.length})` });
  expect(got.every((v, i) => v === i)).toBe(true);
});
