'use strict';
// Proves that the fallback never serves an entry from an earlier outage when the breaker
// closed and opened again before its 'closed' event was delivered (the state is read from
// the core at once, the events a turn later). The client's view is staged: no server is
// needed, and the two outages are told apart by the count of openings, as in the core.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');
const { turns } = require('../helpers/async');

test('a store from an earlier outage is dropped, not served, even without a closed event', async () => {
  const client = createClient({ url: 'redis://127.0.0.1:1', logger: false });
  const state = 'open';
  let openings = 1;
  Object.defineProperty(client, 'breakerState', { get: () => state });
  Object.defineProperty(client, '_breakerOpenings', { get: () => openings });
  try {
    const cache = createCache({ client });
    await expect(cache.cacheSet('k', 'outage-1', 60)).resolves.toBe(true);
    await expect(cache.cacheGet('k')).resolves.toBe('outage-1');
    await turns();
    // Same outage, later turns: still served.
    await expect(cache.cacheGet('k')).resolves.toBe('outage-1');

    // The breaker closed (Redis served, another process deleted k there) and opened again;
    // the 'closed' event has not arrived yet.
    openings = 2;
    await turns();
    await expect(cache.cacheGet('k')).resolves.toBeNull();
    expect(cache.cacheStats().fallback).toMatchObject({ active: true, entries: 0, activations: 2 });
    await expect(cache.cacheSet('k', 'outage-2', 60)).resolves.toBe(true);
    await expect(cache.cacheGet('k')).resolves.toBe('outage-2');
  } finally {
    client.disconnect();
  }
});
