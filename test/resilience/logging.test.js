'use strict';
// What the logger says across outages that follow each other. README, "When Redis
// misbehaves": each outage is logged once when it begins (warn, or error for refused
// credentials) and once when it ends (info), and an outage does not flood the log however many
// attempts fail. Must hold: a brief stall (a blip: on a busy host redis-server may go
// unscheduled for more than breaker.stallMs) followed a second later by a real outage of
// seconds does not leave the real outage unlogged; and a flapping Redis does not flood.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { suiteDatabase } = require('../helpers/suite-db');
const { createProxy } = require('../helpers/proxy');
const { waitFor, sleep, watchUnhandledRejections } = require('../helpers/async');
const { recordingLogger } = require('./support');

let db;
let unhandled;
const cleanups = [];

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  db = await suiteDatabase();
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

afterAll(() => {
  expect(unhandled.stop()).toEqual([]);
});

async function setup() {
  const proxy = await createProxy({ port: db.port });
  const log = recordingLogger();
  const client = createClient({ url: `${proxy.url}/${db.db}`, logger: log.logger });
  const cache = createCache({ client });
  cleanups.push(async () => {
    client.disconnect();
    await proxy.close();
  });
  await cache.cacheSet('k', 'v', 60);
  return { proxy, log, client, cache };
}

/** Replies held until the breaker opens for the stall, then released: a blip of a few ms. */
async function blip({ proxy, client, cache }) {
  proxy.hold('toClient');
  await waitFor(async () => {
    await cache.cacheGet('k');
    return client.breakerState !== 'closed';
  }, { what: 'the breaker to open for the blip' });
  proxy.release('toClient');
  await waitFor(() => client.breakerState === 'closed', { what: 'the breaker to close after the blip' });
}

/** Redis unreachable for `ms` (refused and cut), with calls going on; resolves { began, ended }. */
async function outage({ proxy, client, cache }, ms) {
  const began = Date.now();
  await proxy.refuse();
  proxy.cut();
  while (Date.now() - began < ms) {
    await cache.cacheGet('k');
    await sleep(50);
  }
  await proxy.accept();
  await waitFor(() => client.breakerState === 'closed', { timeoutMs: 10000, what: 'recovery' });
  return { began, ended: Date.now() };
}

const show = (log, t0) => JSON.stringify(log.lines.map((l) => [l.level, l.at - t0, l.message]));

test('a blip, then a 3 s outage a second later: the outage is logged when it begins, and its end', async () => {
  const env = await setup();
  const t0 = Date.now();
  await blip(env);
  await sleep(1000);
  const { began, ended } = await outage(env, 3000);
  console.log(`blip, then an outage from ${began - t0} to ${ended - t0} ms: log ${show(env.log, t0)}`);
  const during = env.log.lines.filter((l) => l.level !== 'info' && l.at >= began && l.at < began + 1000);
  expect(during).toHaveLength(1);
  expect(during[0].message).toMatch(/unreachable/);
  const recovered = env.log.lines.filter((l) => l.level === 'info' && l.at >= ended - 1000);
  expect(recovered).toHaveLength(1);
  expect(recovered[0].message).toMatch(/usable again/);
}, 30000);

test('a flapping Redis (6 short outages) does not flood the log', async () => {
  const env = await setup();
  const t0 = Date.now();
  for (let i = 0; i < 6; i++) {
    await outage(env, 100);
    await sleep(300);
  }
  console.log(`6 short outages: ${env.log.lines.length} lines: ${show(env.log, t0)}`);
  expect(env.log.lines.length).toBeGreaterThanOrEqual(1);
  expect(env.log.lines.length).toBeLessThanOrEqual(4);
}, 30000);
