'use strict';
// Edges found by attacking the client surface: promises kept waiting by maxRetriesPerRequest
// when the client closes, an isolated() connection and a failover (READONLY), command names
// and arguments given as other views of bytes than Buffers, and quit() with isolated
// connections open.
const { createClient } = require('../../../lib/redis');
const { startRedis, freePort } = require('../../helpers/redis-server');
const { rawCommand } = require('../../helpers/raw-redis');
const { outcome } = require('../../helpers/async');

const clients = [];
const servers = [];
function open(options) {
  const c = createClient({ logger: false, reconnectBaseDelay: 20, reconnectMaxDelay: 50, ...options });
  c.on('error', () => {});
  clients.push(c);
  return c;
}
const within = (p, ms) => Promise.race([outcome(p), new Promise((r) => setTimeout(() => r('pending'), ms))]);

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of servers.splice(0)) await s.stop();
});

describe('maxRetriesPerRequest never leaves a promise waiting when no attempt will follow', () => {
  test('an isolated() connection and a blocking command whose connect fails settle', async () => {
    const client = open({ port: await freePort(), maxRetriesPerRequest: 2, commandTimeout: 0 });
    const isolated = await within(client.isolated((conn) => conn.get('x')), 2000);
    expect(isolated).not.toBe('pending');
    expect(isolated.error.code).toBe('ECONNREFUSED');
    const pooled = await within(client.blpop('q', 1), 2000);
    expect(pooled).not.toBe('pending');
    expect(pooled.error.code).toBe('ECONNREFUSED');
  });

  test('quit() while Redis is down fails what was kept for the next attempt', async () => {
    const client = open({ port: await freePort(), maxRetriesPerRequest: null, commandTimeout: 0 });
    const kept = client.get('x');
    kept.catch(() => {}); // judged below
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(client.status().state).not.toBe('ready');
    await client.quit();
    const result = await within(kept, 1000);
    expect(result).not.toBe('pending');
    expect(result.error.code).toBe('ERR_CLIENT_CLOSED');
  });
});

test('an isolated() connection that gets READONLY (a failover) ends instead of reconnecting: its WATCH cannot be lost', async () => {
  const server = await startRedis();
  servers.push(server);
  const client = open({ url: server.url });
  const admin = open({ url: server.url });
  await client.set('k', '1');
  const result = await client.isolated(async (conn) => {
    await conn.watch('k');
    await admin.call('REPLICAOF', '127.0.0.1', '1');
    const readonly = await outcome(conn.set('x', '1'));
    await admin.call('REPLICAOF', 'NO', 'ONE');
    await admin.set('k', 'changed');
    const exec = await outcome(conn.multi().set('k', 'mine').exec());
    return { readonly: readonly.error.code, exec: exec.ok ? exec.value : exec.error.code, state: conn.status().state };
  });
  expect(result).toEqual({ readonly: 'READONLY', exec: 'ERR_CLIENT_CLOSED', state: 'closed' });
  expect(await client.get('k')).toBe('changed');
});

describe('names and arguments as any view of bytes are judged by their bytes', () => {
  let server;
  let client;
  const u8 = (s) => new Uint8Array(Buffer.from(s));
  beforeAll(async () => {
    server = await startRedis();
    client = createClient({ url: server.url, logger: false, commandTimeout: 1000 });
  });
  afterAll(async () => {
    client.disconnect();
    await server.stop();
  });

  test('MULTI, CLIENT REPLY and CLIENT SETNAME as Uint8Array or DataView are refused', async () => {
    for (const name of [u8('MULTI'), new DataView(u8('multi').buffer)]) {
      expect(() => client.call(name)).toThrow(expect.objectContaining({ code: 'ERR_COMMAND_REFUSED' }));
    }
    expect(() => client.client(u8('REPLY'), 'SKIP')).toThrow(expect.objectContaining({ code: 'ERR_COMMAND_REFUSED' }));
    expect(() => client.pipeline().client(u8('SETNAME'), 'x')).toThrow(expect.objectContaining({ code: 'ERR_COMMAND_REFUSED' }));
    await client.set('k1', 'v1');
    expect(await client.get('k1')).toBe('v1');
  });

  test('XREAD with a Uint8Array BLOCK is a blocking command: refused in a pipeline, on its own connection otherwise', async () => {
    expect(() => client.pipeline().xread(u8('BLOCK'), 100, 'STREAMS', 's', '$')).toThrow(expect.objectContaining({ code: 'ERR_COMMAND_REFUSED' }));
    const blocked = client.xread(u8('BLOCK'), 300, 'STREAMS', 's', '$');
    expect(await client.call('ECHO', 'not held')).toBe('not held');
    expect(await blocked).toBeNull();
  });
});

test('quit() closes isolated() connections too, and isolated() after it is refused', async () => {
  const server = await startRedis();
  servers.push(server);
  // quit() waits for a blocking command at most commandTimeout, then drops the connection.
  const client = open({ url: server.url, commandTimeout: 300 });
  const waiting = client.isolated((conn) => conn.blpop('never', 0));
  waiting.catch(() => {}); // judged below
  await new Promise((resolve) => setTimeout(resolve, 100));
  await client.quit();
  const result = await within(waiting, 2000);
  expect(result).not.toBe('pending');
  expect(result.ok).toBe(false);
  await expect(client.isolated(async () => 'x')).rejects.toMatchObject({ code: 'ERR_CLIENT_CLOSED' });
  const list = await rawCommand({ port: server.port }, 'CLIENT', 'LIST');
  expect(list.trim().split('\n')).toHaveLength(1); // only the one asking
});
