'use strict';
// Proves a reply is untrusted input: a fake server sending hostile headers (a 2^31-1
// element array, a 2^40-byte bulk, a line that never ends, arrays nested past the limit)
// makes the connection fail with ERR_PROTOCOL at the header, without waiting for the
// bytes it announces, and the client keeps working against a sane server afterwards.
const { createClient } = require('../../lib/redis');
const { ProtocolError } = require('../../lib/errors');
const { scriptedServer } = require('../helpers/fake-servers');

const servers = [];
const clients = [];

async function fakeServer(reply) {
  const server = await scriptedServer(reply);
  servers.push(server);
  return server;
}

function open(options) {
  const client = createClient({ commandTimeout: 20000, ...options });
  clients.push(client);
  return client;
}

afterEach(async () => {
  while (clients.length) clients.pop().disconnect();
  while (servers.length) await servers.pop().close();
});

async function expectProtocolError(promise) {
  const err = await promise.then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(Error);
  // The command had been written when the connection was dropped: its outcome is unknown,
  // and the protocol error is what the client reports as the cause.
  expect(['ERR_OUTCOME_UNKNOWN', 'ERR_PROTOCOL']).toContain(err.code);
  return err;
}

test('an array header of 2^31-1 elements fails the connection at once', async () => {
  const server = await fakeServer(() => '*2147483647\r\n');
  const client = open({ url: server.url });
  await expectProtocolError(client.call('PING'));
  const s = client.status();
  expect(s.lastError.code).toBe('ERR_PROTOCOL');
  expect(s.lastError.message).toMatch(/maxAggregateElements/);
});

test('a 2^40-byte bulk header fails before any of its bytes arrive', async () => {
  const server = await fakeServer(() => '$1099511627776\r\n');
  const client = open({ url: server.url });
  await expectProtocolError(client.call('GET', 'k'));
  expect(client.status().lastError.message).toMatch(/maxBulkBytes/);
});

test('a bulk larger than a configured maxBulkBytes fails; one within it is read', async () => {
  const server = await fakeServer((n) => (n === 0 ? `$1000\r\n${'x'.repeat(1000)}\r\n` : `$1001\r\n${'x'.repeat(1001)}\r\n`));
  const client = open({ url: server.url, maxBulkBytes: 1000 });
  expect(await client.call('GET', 'a')).toBe('x'.repeat(1000));
  await expectProtocolError(client.call('GET', 'b'));
  expect(client.status().lastError.message).toMatch(/maxBulkBytes \(1000\)/);
});

test('a line that never ends fails at maxLineBytes instead of being rescanned forever', async () => {
  let sent = 0;
  const server = await fakeServer(() => null);
  const client = open({ url: server.url, maxLineBytes: 65536 });
  const pending = client.call('PING').then(
    () => null,
    (e) => e,
  );
  // Stream a status line of 10 MB without CRLF, in 64 KiB chunks.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const [socket] = server.sockets;
  socket.write('+');
  const chunk = 'a'.repeat(65536);
  while (sent < 10 * 1024 * 1024 && !socket.destroyed) {
    const ok = socket.write(chunk);
    sent += chunk.length;
    if (!ok) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
  }
  const err = await pending;
  expect(err.code).toBe('ERR_OUTCOME_UNKNOWN');
  expect(client.status().lastError.message).toMatch(/maxLineBytes/);
  // It failed at the limit, not after the whole 10 MB.
  expect(sent).toBeLessThan(10 * 1024 * 1024);
});

test('arrays nested deeper than maxDepth fail', async () => {
  const server = await fakeServer(() => '*1\r\n*1\r\n*1\r\n:1\r\n');
  const client = open({ url: server.url, maxDepth: 2 });
  await expectProtocolError(client.call('PING'));
  expect(client.status().lastError.message).toMatch(/maxDepth \(2\)/);
});

test('a large legitimate array is read whole', async () => {
  const n = 100000;
  const body = `*${n}\r\n${':1\r\n'.repeat(n)}`;
  const server = await fakeServer(() => body);
  const client = open({ url: server.url });
  const reply = await client.call('LRANGE', 'k', 0, -1);
  expect(reply).toHaveLength(n);
});

test('the reader limits are validated as options', () => {
  expect(() => createClient({ maxBulkBytes: 0 })).toThrow(RangeError);
  expect(() => createClient({ maxDepth: 8 })).toThrow(/maxDepth/);
  expect(() => createClient({ maxLineBytes: 'big' })).toThrow(TypeError);
  expect(ProtocolError).toBeDefined();
});

test('a handshake answered with anything but OK fails the connection instead of shifting replies', async () => {
  const server = await fakeServer(() => '$3\r\nabc\r\n');
  const client = open({ url: server.url, name: 'app', connectTimeout: 2000 });
  const err = await client.call('ECHO', 'x').catch((e) => e);
  expect(err.code).toBe('ERR_PROTOCOL');
  expect(client.status().lastError.message).toMatch(/out of step/);
});

test('a bulk string not followed by CRLF is a protocol error', async () => {
  const server = await fakeServer(() => '$3\r\nabcXY');
  const client = open({ url: server.url });
  await expectProtocolError(client.call('GET', 'k'));
  expect(client.status().lastError.message).toMatch(/not followed by CRLF/);
});

test('an empty error reply still has a code', async () => {
  const server = await fakeServer(() => '-\r\n');
  const client = open({ url: server.url });
  const err = await client.call('GET', 'k').catch((e) => e);
  expect(err.code).toBe('ERR');
});
