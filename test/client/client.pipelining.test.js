'use strict';
// Proves automatic pipelining: all the commands issued in one turn of the event loop
// leave in one write. Write system calls are counted from /proc/self/io (Linux), against
// a client talking straight to the server so no proxy write is counted; the bound (3)
// separates "one write" from "one write per command" (200) by a wide margin.
const fs = require('fs');
const { createClient } = require('../../lib/redis');
const { suiteDatabase } = require('../helpers/suite-db');
const { createProxy } = require('../helpers/proxy');

function writeSyscalls() {
  const io = fs.readFileSync('/proc/self/io', 'utf8');
  return Number(/^syscw:\s*(\d+)/m.exec(io)[1]);
}

let db;
let client;

beforeAll(async () => {
  db = await suiteDatabase();
  client = createClient({ url: db.url });
  await client.call('PING');
});

afterAll(async () => {
  if (client) await client.quit();
});

test('200 commands issued in one turn take at most a few write system calls', async () => {
  const before = writeSyscalls();
  const pending = Array.from({ length: 200 }, (_, i) => client.call('ECHO', `p${i}`));
  const replies = await Promise.all(pending);
  const writes = writeSyscalls() - before;
  expect(replies).toEqual(Array.from({ length: 200 }, (_, i) => `p${i}`));
  expect(writes).toBeLessThanOrEqual(3);
});

test('commands issued in separate turns are not held back waiting for a batch', async () => {
  // Each await needs its reply before the next command is issued, so a client that
  // waited for a timer or a batch size would stall here; the test only checks it finishes
  // with the right replies.
  for (let i = 0; i < 50; i++) await expect(client.call('ECHO', `s${i}`)).resolves.toBe(`s${i}`);
});

test('one turn of commands reaches the server as one chunk through a proxy', async () => {
  const proxy = await createProxy({ port: db.port });
  const c = createClient({ url: `${proxy.url}/${db.db}` });
  try {
    await c.call('PING');
    const before = proxy.stats.toServer.chunks;
    await Promise.all(Array.from({ length: 100 }, (_, i) => c.call('SET', `pipe:${i}`, 'x')));
    expect(proxy.stats.toServer.chunks - before).toBe(1);
  } finally {
    await c.quit();
    await proxy.close();
  }
});
