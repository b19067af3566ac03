'use strict';
// The set-up most client suites repeat: a database of the suite's own on the shared
// redis-server, optionally the fault proxy in front of it, and the clients a test opens,
// disconnected after each test. Call it at the top of a suite file; it registers the hooks.
//
//   const suite = clientSuite({ proxy: true, defaults: { logger: false } });
//   test('…', async () => { const c = suite.open({ url: `${suite.proxy.url}/${suite.db.db}` }); });
const { createClient } = require('../../lib/redis');
const { createProxy } = require('./proxy');
const { suiteDatabase } = require('./suite-db');
const { waitFor } = require('./async');

function clientSuite({ proxy = false, defaults = {} } = {}) {
  const suite = {
    db: null,
    proxy: null,
    clients: [],
    /** A client with the suite's defaults under `options`, disconnected after the test. */
    open(options) {
      const client = createClient({ ...defaults, ...options });
      suite.clients.push(client);
      return client;
    },
  };
  beforeAll(async () => {
    suite.db = await suiteDatabase();
    if (proxy) suite.proxy = await createProxy({ port: suite.db.port });
  });
  beforeEach(() => suite.db.flush());
  afterEach(() => {
    if (suite.proxy) suite.proxy.release().delay(0);
    for (const c of suite.clients.splice(0)) c.disconnect();
  });
  afterAll(() => suite.proxy && suite.proxy.close());
  return suite;
}

/**
 * Makes Redis unreachable for `client` behind `proxy` (nothing listens, open connections are
 * cut) and waits until its breaker has opened.
 */
async function outage({ proxy, client }) {
  await proxy.refuse();
  proxy.cut();
  await waitFor(
    async () => {
      await client.call('PING').catch(() => {});
      return client.breakerState !== 'closed';
    },
    { what: 'the breaker to open' },
  );
}

module.exports = { clientSuite, outage };
