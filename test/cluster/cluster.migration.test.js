'use strict';
// A slot moved from one primary to another while a client keeps writing and reading it
// (CLUSTER SETSLOT … IMPORTING / MIGRATING, MIGRATE, SETSLOT … NODE): the client follows ASK
// while the slot is half-moved and MOVED once it has moved, and no reply is lost or handed
// to the wrong caller among 100,000 unique SET/GET pairs.
const { createClient } = require('../../lib/redis');
const binding = require('../../lib/binding');
const { startCluster } = require('../helpers/cluster');
const { sleep, watchUnhandledRejections } = require('../helpers/async');

let cluster;
let unhandled;

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  cluster = await startCluster();
}, 60000);

afterAll(async () => {
  if (cluster) await cluster.stop();
  expect(unhandled.stop()).toEqual([]);
});

const PAIRS = 100000;
const IN_FLIGHT_PAIRS = 256;

test('100,000 SET/GET pairs through a slot migration: ASK, then MOVED, nothing lost or misrouted', async () => {
  const client = createClient({ cluster: cluster.seeds.split(','), logger: false, commandTimeout: 10000 });
  const tag = '{moving}';
  const slot = binding.keySlot(tag);
  const from = await cluster.slotOwner(slot);
  const to = (await cluster.primaries()).map((p) => p.port).find((p) => p !== from);
  // Keys already in the slot make the move take a while (MIGRATE 100 at a time).
  const existing = 20000;
  for (let i = 0; i < existing; i += 1000) {
    await Promise.all(Array.from({ length: 1000 }, (_, j) => client.set(`${tag}:old:${i + j}`, `o${i + j}`)));
  }

  // Half the pairs in the moving slot, half spread over every slot.
  const keyOf = (i) => (i % 2 === 0 ? `${tag}:${i}` : `spread:${i}`);
  const valueOf = (i) => `value-${i}-${'x'.repeat(i % 37)}`;
  const failures = [];
  let wrong = 0;
  let done = 0;
  let next = 0;
  const worker = async () => {
    while (next < PAIRS) {
      const i = next++;
      try {
        await client.set(keyOf(i), valueOf(i));
        const got = await client.get(keyOf(i));
        if (got !== valueOf(i)) wrong += 1;
      } catch (err) {
        failures.push(`${keyOf(i)}: ${err.code} ${err.message}`);
      }
      done += 1;
    }
  };
  const load = Promise.all(Array.from({ length: IN_FLIGHT_PAIRS }, worker));

  // The move starts once the load runs, and stays half-done (ASK) for a while.
  while (done < 2000) await sleep(5);
  const doneAtStart = done;
  let doneWhileHalfMoved = 0;
  const moved = await cluster.migrateSlot(slot, to, {
    keysPerBatch: 100,
    beforeFinish: async () => {
      const at = done;
      await sleep(300);
      doneWhileHalfMoved = done - at;
    },
  });
  const doneAtEnd = done;
  await load;

  const status = client.status().cluster;
  console.log(`slot ${slot} moved from ${from} to ${to}: ${moved.moved} keys migrated; pairs done before the move ${doneAtStart}, `
    + `during it ${doneAtEnd - doneAtStart} (${doneWhileHalfMoved} while half-moved), after it ${PAIRS - doneAtEnd}; `
    + `redirections ${status.redirections}, map reads ${status.mapReads}; failures ${failures.length}, wrong replies ${wrong}`);
  expect(failures.slice(0, 5)).toEqual([]);
  expect(wrong).toBe(0);
  expect(doneAtEnd - doneAtStart).toBeGreaterThan(0);
  expect(doneWhileHalfMoved).toBeGreaterThan(0);
  expect(status.redirections).toBeGreaterThan(0);
  // Tens of thousands of redirections cost a handful of map reads: no stampede.
  expect(status.mapReads).toBeLessThan(30);
  // The slot and all its keys are on the new owner, and the client reads them all there.
  expect(await cluster.slotOwner(slot)).toBe(to);
  let inSlot = existing + PAIRS / 2;
  for (let i = 1; i < PAIRS; i += 2) if (binding.keySlot(keyOf(i)) === slot) inSlot += 1;
  expect(await cluster.command(to, 'CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe(inSlot);
  expect(await cluster.command(from, 'CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe(0);
  const sample = Array.from({ length: 2000 }, (_, n) => n * 50);
  expect(await client.mget(sample.map(keyOf))).toEqual(sample.map(valueOf));
  // Once the map is re-read, the moved slot costs no more redirections.
  await sleep(200);
  const before = client.status().cluster.redirections;
  await Promise.all(Array.from({ length: 500 }, (_, n) => client.get(`${tag}:${n * 2}`)));
  expect(client.status().cluster.redirections).toBe(before);
  await client.quit();
}, 120000);
