'use strict';
// The health report tells how the pub/sub connection fares once anything was subscribed:
// its state, what it holds, and since when it is renewing after a lost connection. It is
// informational: a lost pub/sub connection does not make an API degraded.
const { createClient } = require('../../lib/redis');
const { createHealth } = require('../../lib/health');
const { startRedis } = require('../helpers/redis-server');
const { waitFor } = require('../helpers/async');

test('no pubsub section before a subscription; then its state, counts and renewal', async () => {
  let server = await startRedis();
  const { port, dir } = server;
  const client = createClient({ port, logger: false, reconnectBaseDelay: 20, reconnectMaxDelay: 50 });
  client.on('error', () => {});
  const health = createHealth({ client });
  try {
    expect(health().pubsub).toBeUndefined();
    await client.subscribe(['a', 'b'], () => {});
    await client.psubscribe('p.*', () => {});
    expect(health().pubsub).toEqual({
      state: 'ready', channels: 2, patterns: 1, shardChannels: 0, renewingSince: null, lastError: null,
    });
    await server.kill();
    await waitFor(() => health().pubsub.renewingSince !== null, { what: 'the renewal to begin' });
    const down = health();
    expect(down.pubsub.state).not.toBe('ready');
    expect(down.pubsub.lastError.code).toMatch(/^E/);
    server = await startRedis({ port, dir });
    await waitFor(() => health().pubsub.renewingSince === null && health().pubsub.state === 'ready', { what: 'the renewal to end' });
  } finally {
    client.disconnect();
    await server.stop();
  }
});
