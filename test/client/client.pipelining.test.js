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
  // The count is the whole process's: the test runner's own writes (its reports to the
  // parent process) may fall inside one trial, so the fewest of three trials is judged.
  const trials = [];
  for (let t = 0; t < 3; t++) {
    const before = writeSyscalls();
    const pending = Array.from({ length: 200 }, (_, i) => client.call('ECHO', `p${i}`));
    const replies = await Promise.all(pending);
    trials.push(writeSyscalls() - before);
    expect(replies).toEqual(Array.from({ length: 200 }, (_, i) => `p${i}`));
  }
  expect(Math.min(...trials)).toBeLessThanOrEqual(3);
});

test('a command issued alone is written in the turn it was issued, not held for a batch', async () => {
  // setImmediate runs in the check phase of this same loop turn, after the client's own
  // flush: by then the command must have been handed to the socket (in flight, or already
  // answered when the flush ran before the poll and the reply came back in it; never still
  // queued). A client that waited for a timer or for a batch to fill would still hold it.
  for (let i = 0; i < 50; i++) {
    const reply = client.call('ECHO', `s${i}`);
    expect(client.status()).toMatchObject({ inFlight: 0, queued: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.status().queued).toBe(0);
    expect(client.status().inFlight).toBeLessThanOrEqual(1);
    await expect(reply).resolves.toBe(`s${i}`);
  }
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
