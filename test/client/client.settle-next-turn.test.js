'use strict';
// Proves a call is never settled inside the call itself, even when its answer is known at
// once: a connect that fails synchronously (a network the kernel refuses outright), Redis
// known to be down, a bound reached. A caller looping on `await` still lets the loop turn,
// and code after the call runs before any handler of its promise.
const { createClient } = require('../../lib/redis');

const clients = [];
afterEach(() => {
  while (clients.length) clients.pop().disconnect();
});

/** Calls `fn` and reports whether its promise settled within two microtask turns. */
async function settledAtOnce(fn) {
  let settled = false;
  const p = fn().then(
    (v) => {
      settled = true;
      return v;
    },
    (e) => {
      settled = true;
      return e;
    },
  );
  await Promise.resolve();
  await Promise.resolve();
  return { early: settled, outcome: await p };
}

test('a connect the kernel refuses at once fails the first call on a later turn', async () => {
  // connect() to the broadcast address fails synchronously with ENETUNREACH.
  const client = createClient({ host: '255.255.255.255', port: 6379 });
  clients.push(client);
  const first = await settledAtOnce(() => client.call('PING'));
  expect(first.early).toBe(false);
  // ENETUNREACH here; another routing table may answer EACCES or EHOSTUNREACH.
  expect(first.outcome).toBeInstanceOf(Error);
  expect(first.outcome.code).toMatch(/^E[A-Z]+$/);
  expect(first.outcome.code).not.toBe('ETIMEDOUT'); // a refusal, not a connect that hung
  expect(client.status().state).toBe('down');
  // Redis is now known to be down: later calls fail fast, but still on a later turn.
  const later = await settledAtOnce(() => client.call('PING'));
  expect(later.early).toBe(false);
  expect(later.outcome.code).toBe(first.outcome.code);
});

test('a call refused by maxQueue settles on a later turn', async () => {
  const client = createClient({ host: '255.255.255.255', port: 6379, maxQueue: 1 });
  clients.push(client);
  const first = client.call('PING').catch((e) => e);
  const refused = await settledAtOnce(() => client.call('PING'));
  expect(refused.early).toBe(false);
  expect(refused.outcome.code).toBe('ERR_QUEUE_FULL');
  await first;
});
