'use strict';
// Every option name is honoured or refused by name, never ignored: createClient's (with
// what to do instead for the ioredis / node-redis names users bring along) and createCache's.
const { createClient } = require('../../lib/redis');
const { createCache } = require('../../lib/cache');

const refusal = (fn) => {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a refusal');
};

test('an unknown createClient option is refused by name, with a hint for ioredis and node-redis names', () => {
  const typo = refusal(() => createClient({ breakr: false }));
  expect(typo).toBeInstanceOf(TypeError);
  expect(typo.code).toBe('ERR_INVALID_CONFIG');
  expect(typo.message).toMatch(/^unknown option breakr; known: url, host/);
  expect(refusal(() => createClient({ enableOfflineQueue: false })).message).toMatch(/unknown option enableOfflineQueue \(not supported: commands wait/);
  expect(refusal(() => createClient({ keyPrefix: 5 })).message).toMatch(/option keyPrefix must be a string or a Buffer/);
  expect(refusal(() => createClient({ retryStrategy: 100 })).message).toMatch(/option retryStrategy must be a function/);
  expect(refusal(() => createClient({ maxRetriesPerRequest: -1 })).message).toMatch(/maxRetriesPerRequest/);
  expect(refusal(() => createClient({ socket: { host: 'x' } })).message).toMatch(/use host, port/);
});

test('lazyConnect is a boolean (false connects at once); connectionName is the name', () => {
  const lazy = createClient({ lazyConnect: true, connectionName: 'api', logger: false });
  expect(lazy.options.name).toBe('api');
  expect(lazy.status().state).toBe('idle');
  lazy.disconnect();
  expect(refusal(() => createClient({ lazyConnect: 'yes' })).message).toMatch(/option lazyConnect must be a boolean/);
  const eager = createClient({ url: 'redis://127.0.0.1:1', lazyConnect: false, logger: false });
  expect(eager.status().state).toBe('connecting');
  eager.disconnect();
  expect(refusal(() => createClient({ connectionName: 'a', name: 'b' })).message).toMatch(/connectionName/);
});

test('an unknown createCache option is refused by name, for a Redis cache and for an embedded one', () => {
  const client = createClient({ url: 'redis://127.0.0.1:1', logger: false });
  try {
    expect(refusal(() => createCache({ client, fallbak: false })).message).toMatch(/createCache \(on a Redis client\): unknown option fallbak/);
    expect(refusal(() => createCache({ client, memory: { maxEntries: 10 } })).message).toMatch(/unknown option memory/);
    expect(refusal(() => createCache({ ttl: 60 })).message).toMatch(/createCache \(on the embedded store\): unknown option ttl/);
    expect(() => createCache({ client, fallback: false, scanCount: 100 })).not.toThrow();
  } finally {
    client.disconnect();
  }
});
