'use strict';
// Proves the transport's addressing: IPv4 and IPv6 literals, a name resolved through DNS
// (uv_getaddrinfo), and a name that does not resolve failing with ENOTFOUND; and the TCP
// keep-alive setting on the socket, read back from the kernel with `ss` (iproute2).
const { execFileSync } = require('child_process');
const { createClient } = require('../../lib/redis');
const errors = require('../../lib/errors');
const { startRedis } = require('../helpers/redis-server');

let server;
const clients = [];
function client(options) {
  const c = createClient(options);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  server = await startRedis({ args: ['--bind', '127.0.0.1', '::1'] });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.quit()));
  if (server) await server.stop();
});

test('an IPv4 literal', async () => {
  await expect(client({ url: `redis://127.0.0.1:${server.port}` }).call('PING')).resolves.toBe('PONG');
});

test('an IPv6 literal', async () => {
  const c = client({ url: `redis://[::1]:${server.port}` });
  await expect(c.call('PING')).resolves.toBe('PONG');
  const list = await c.call('CLIENT', 'INFO');
  expect(list).toMatch(/addr=\[?::1\]?:\d+/);
});

test('a host name (localhost) is resolved and connects', async () => {
  await expect(client({ host: 'localhost', port: server.port }).call('PING')).resolves.toBe('PONG');
});

test('a name that does not resolve rejects with a ConnectionError ENOTFOUND', async () => {
  const c = client({ host: 'no-such-host.invalid', port: server.port, connectTimeout: 5000 });
  const err = await c.call('PING').catch((e) => e);
  expect(err).toBeInstanceOf(errors.ConnectionError);
  expect(err.code).toBe('ENOTFOUND');
  expect(err.message).toContain('no-such-host.invalid');
});

/** Seconds of the keep-alive timer on the client's socket, or null when there is none. */
async function keepAliveSeconds(c) {
  const info = await c.call('CLIENT', 'INFO');
  const localPort = /addr=[^ ]*:(\d+) /.exec(info)[1];
  const out = execFileSync('ss', ['-tnoH', 'state', 'established', `( sport = :${localPort} )`], { encoding: 'utf8' });
  const m = /timer:\(keepalive,(?:(\d+)min)?(?:(\d+)(?:\.\d+)?sec)?/.exec(out);
  if (!m) return null;
  return Number(m[1] || 0) * 60 + Number(m[2] || 0);
}

describe('TCP keep-alive', () => {
  test('on by default, at 30 s', async () => {
    const seconds = await keepAliveSeconds(client({ url: `redis://127.0.0.1:${server.port}` }));
    expect(seconds).not.toBeNull();
    expect(seconds).toBeGreaterThan(20);
    expect(seconds).toBeLessThanOrEqual(30);
  });

  test('keepAlive: 90000 sets 90 s', async () => {
    const seconds = await keepAliveSeconds(client({ url: `redis://127.0.0.1:${server.port}`, keepAlive: 90000 }));
    expect(seconds).toBeGreaterThan(80);
    expect(seconds).toBeLessThanOrEqual(90);
  });

  test('keepAlive: 0 turns it off', async () => {
    await expect(keepAliveSeconds(client({ url: `redis://127.0.0.1:${server.port}`, keepAlive: 0 }))).resolves.toBeNull();
  });
});
