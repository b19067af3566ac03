'use strict';
// Proves configuration parsing (lib/client/config.js resolveConfig(env, options)): REDIS_URL in
// all its parts, the word disabled, REDIS_HOST/PORT/USERNAME/PASSWORD/DB, options in code
// overriding the environment, malformed values refused with an error naming the variable
// (and never showing the password), TLS refused as not supported yet rather than silently
// connecting in plaintext; and that a bad REDIS_URL fails at first use, not at require.
const util = require('util');
const { resolveConfig } = require('../../lib/client/config');

const SECRET = 'S3cr3t-pw-Qz';

/** Runs fn, returns the error it threw (fails the test when it does not throw). */
function thrown(fn) {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('REDIS_URL', () => {
  test('every part of redis://user:pass@host:port/db', () => {
    const c = resolveConfig({ REDIS_URL: `redis://alice:${SECRET}@cache.internal:6380/4` });
    expect(c).toMatchObject({ enabled: true, host: 'cache.internal', port: 6380, username: 'alice', password: SECRET, db: 4 });
  });

  test('only a password (redis://:pass@host)', () => {
    const c = resolveConfig({ REDIS_URL: `redis://:${SECRET}@h` });
    expect(c.password).toBe(SECRET);
    expect(c.username || '').toBe('');
  });

  test('percent-encoded user and password are decoded', () => {
    const c = resolveConfig({ REDIS_URL: `redis://us%40er:${encodeURIComponent('p@ss:w/rd%#?')}@h:1/0` });
    expect(c.username).toBe('us@er');
    expect(c.password).toBe('p@ss:w/rd%#?');
  });

  test('host alone gives port 6379 and db 0', () => {
    expect(resolveConfig({ REDIS_URL: 'redis://cache' })).toMatchObject({ host: 'cache', port: 6379, db: 0 });
    expect(resolveConfig({ REDIS_URL: 'redis://cache/' })).toMatchObject({ host: 'cache', port: 6379, db: 0 });
  });

  test('an IPv6 literal host', () => {
    expect(resolveConfig({ REDIS_URL: 'redis://[::1]:6390/2' })).toMatchObject({ host: '::1', port: 6390, db: 2 });
  });

  test('the word disabled turns Redis off', () => {
    expect(resolveConfig({ REDIS_URL: 'disabled' }).enabled).toBe(false);
  });

  test('REDIS_URL wins over REDIS_HOST and friends', () => {
    const c = resolveConfig({ REDIS_URL: 'redis://from-url:1111/1', REDIS_HOST: 'from-host', REDIS_PORT: '2222', REDIS_DB: '2' });
    expect(c).toMatchObject({ host: 'from-url', port: 1111, db: 1 });
  });

  const malformed = [
    ['not a URL at all', 'not a url'],
    ['a scheme only', 'redis://'],
    ['a port that is not a number', 'redis://h:port/0'],
    ['a port over 65535', 'redis://h:70000'],
    ['port 0', 'redis://h:0'],
    ['an empty port', 'redis://h:/0'],
    ['a db that is not a number', 'redis://h:6379/abc'],
    ['a negative db', 'redis://h:6379/-1'],
    ['a fractional db', 'redis://h:6379/1.5'],
    ['a db with a trailing path', 'redis://h:6379/1/2'],
    ['another scheme', 'http://h:6379'],
  ];

  test.each(malformed)('%s is refused with an error naming REDIS_URL', (_, url) => {
    const err = thrown(() => resolveConfig({ REDIS_URL: url }));
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/REDIS_URL/);
    expect(err.code).toBe('ERR_INVALID_CONFIG');
  });

  test.each([
    ['a bad port', `redis://u:${SECRET}@h:notaport/0`],
    ['a bad db', `redis://u:${SECRET}@h:6379/x`],
    ['a bad scheme', `http://u:${SECRET}@h:6379`],
    ['unparseable', `redis://u:${SECRET}@h:6379:7/0`],
  ])('the error for %s does not show the password', (_, url) => {
    const err = thrown(() => resolveConfig({ REDIS_URL: url }));
    expect(err.message).not.toContain(SECRET);
    expect(String(err.stack)).not.toContain(SECRET);
    expect(util.inspect(err)).not.toContain(SECRET);
  });
});

describe('TLS: rediss://, REDIS_TLS and the tls option, never a plaintext fallback', () => {
  test('rediss:// asks for TLS, verified against the system store', () => {
    const config = resolveConfig({ REDIS_URL: `rediss://u:${SECRET}@h:6380/0` });
    expect(config.tls).toMatchObject({ rejectUnauthorized: true, ca: '', servername: '', minVersion: 0x0303 });
    expect(config.port).toBe(6380);
  });

  test('REDIS_TLS=true asks for TLS, with REDIS_HOST or alongside a redis:// URL', () => {
    expect(resolveConfig({ REDIS_HOST: 'h', REDIS_TLS: 'true' }).tls).not.toBeNull();
    expect(resolveConfig({ REDIS_URL: 'redis://h', REDIS_TLS: 'true' }).tls).not.toBeNull();
  });

  test('REDIS_TLS=false, and no TLS asked for, is plaintext', () => {
    expect(resolveConfig({ REDIS_HOST: 'h', REDIS_TLS: 'false' }).tls).toBeNull();
    expect(resolveConfig({ REDIS_HOST: 'h' }).tls).toBeNull();
  });

  test('a bad REDIS_TLS is refused by name', () => {
    expect(() => resolveConfig({ REDIS_HOST: 'h', REDIS_TLS: 'maybe' })).toThrow(/REDIS_TLS/);
  });

  test('tls: false against a rediss:// URL is a conflict, not a plaintext connection', () => {
    expect(() => resolveConfig({}, { url: 'rediss://h', tls: false })).toThrow(/never falls back/);
    expect(() => resolveConfig({ REDIS_URL: 'rediss://h' }, { tls: null })).toThrow(/REDIS_URL/);
  });

  test('tls: true or an object asks for TLS over a redis:// URL or host', () => {
    expect(resolveConfig({}, { host: 'h', tls: true }).tls).not.toBeNull();
    expect(resolveConfig({}, { url: 'redis://h', tls: { servername: 'redis.example' } }).tls.servername).toBe('redis.example');
  });

  test("tls.connect names hirecache does not take are refused by name, unknown ones as unknown", () => {
    expect(() => resolveConfig({}, { url: 'rediss://h', tls: { checkServerIdentity: () => undefined } })).toThrow(
      expect.objectContaining({ code: 'ERR_UNSUPPORTED', message: expect.stringMatching(/tls\.checkServerIdentity/) }),
    );
    expect(() => resolveConfig({}, { url: 'rediss://h', tls: { caFile: 'x' } })).toThrow(/unknown option tls\.caFile/);
  });

  test('tls.ca must be PEM text, not a file name', () => {
    expect(() => resolveConfig({}, { url: 'rediss://h', tls: { ca: '/etc/ssl/ca.pem' } })).toThrow(/PEM text/);
    expect(() => resolveConfig({}, { url: 'rediss://h', tls: { ca: 42 } })).toThrow(/tls\.ca/);
  });

  test('minVersion and maxVersion take Node\'s names', () => {
    expect(resolveConfig({}, { url: 'rediss://h', tls: { minVersion: 'TLSv1.3' } }).tls.minVersion).toBe(0x0304);
    expect(() => resolveConfig({}, { url: 'rediss://h', tls: { minVersion: 'TLS1.3' } })).toThrow(/tls\.minVersion/);
    expect(() => resolveConfig({}, { url: 'rediss://h', tls: { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' } })).toThrow(/maxVersion/);
  });

  test('NODE_TLS_REJECT_UNAUTHORIZED=0 turns verification off, as it does for Node\'s tls', () => {
    expect(resolveConfig({ REDIS_URL: 'rediss://h', NODE_TLS_REJECT_UNAUTHORIZED: '0' }).tls.rejectUnauthorized).toBe(false);
    expect(resolveConfig({ REDIS_URL: 'rediss://h', NODE_TLS_REJECT_UNAUTHORIZED: '0' }, { tls: { rejectUnauthorized: true } }).tls.rejectUnauthorized).toBe(true);
  });

  test('a passphrase of the wrong type never reaches the message', () => {
    const err = thrown(() => resolveConfig({}, { url: 'rediss://h', tls: { passphrase: 12345678 } }));
    expect(err.message).toMatch(/tls\.passphrase/);
    expect(err.message).not.toContain('12345678');
  });
});

describe('REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB', () => {
  test('each variable lands in its field', () => {
    const c = resolveConfig({
      REDIS_HOST: 'cache.local',
      REDIS_PORT: '6390',
      REDIS_USERNAME: 'bob',
      REDIS_PASSWORD: SECRET,
      REDIS_DB: '7',
    });
    expect(c).toMatchObject({ enabled: true, host: 'cache.local', port: 6390, username: 'bob', password: SECRET, db: 7 });
  });

  test('nothing set: the documented defaults', () => {
    const c = resolveConfig({});
    expect(c).toMatchObject({
      enabled: true,
      port: 6379,
      db: 0,
      connectTimeout: 10000,
      commandTimeout: 5000,
      keepAlive: 30000,
      maxQueue: 10000,
      reconnectBaseDelay: 50,
      reconnectMaxDelay: 2000,
    });
    expect(['127.0.0.1', 'localhost']).toContain(c.host);
  });

  test.each([
    ['REDIS_PORT', 'abc'],
    ['REDIS_PORT', '0'],
    ['REDIS_PORT', '65536'],
    ['REDIS_PORT', '63 79'],
    ['REDIS_PORT', '6379.5'],
    ['REDIS_DB', 'x'],
    ['REDIS_DB', '-1'],
    ['REDIS_DB', '1.5'],
  ])('%s=%j is refused with an error naming the variable', (name, value) => {
    const err = thrown(() => resolveConfig({ REDIS_HOST: 'h', [name]: value }));
    expect(err.message).toContain(name);
    expect(err.code).toBe('ERR_INVALID_CONFIG');
  });
});

describe('options in code override the environment', () => {
  test('individual options override REDIS_URL parts', () => {
    const c = resolveConfig({ REDIS_URL: `redis://u:${SECRET}@env-host:1111/1` }, { host: 'opt-host', db: 5 });
    expect(c).toMatchObject({ host: 'opt-host', db: 5 });
  });

  test('individual options override REDIS_HOST and friends', () => {
    const c = resolveConfig({ REDIS_HOST: 'env', REDIS_PORT: '1111', REDIS_DB: '1' }, { port: 2222, db: 3, name: 'api' });
    expect(c).toMatchObject({ host: 'env', port: 2222, db: 3, name: 'api' });
  });

  test('an option url replaces REDIS_URL', () => {
    const c = resolveConfig({ REDIS_URL: 'redis://env-host:1111/1' }, { url: 'redis://opt-host:2222/2' });
    expect(c).toMatchObject({ host: 'opt-host', port: 2222, db: 2 });
  });

  test('an option url works when REDIS_URL=disabled', () => {
    const c = resolveConfig({ REDIS_URL: 'disabled' }, { url: 'redis://opt-host' });
    expect(c).toMatchObject({ enabled: true, host: 'opt-host' });
  });

  test('timeouts and limits from options', () => {
    const c = resolveConfig({}, { connectTimeout: 1234, commandTimeout: 567, maxQueue: 9, maxValueBytes: 100 });
    expect(c).toMatchObject({ connectTimeout: 1234, commandTimeout: 567, maxQueue: 9, maxValueBytes: 100 });
  });

  test.each([
    ['port', '6379', TypeError],
    ['port', 70000, RangeError],
    ['db', -1, RangeError],
    ['connectTimeout', -5, RangeError],
    // A number of the wrong value (NaN, a fraction) is a RangeError, as everywhere else in
    // hirecache (lib/util/validate.js); a value of the wrong type is a TypeError.
    ['connectTimeout', NaN, RangeError],
    ['connectTimeout', '5000', TypeError],
    ['maxQueue', 1.5, RangeError],
    ['url', 42, TypeError],
  ])('option %s = %p is refused naming the option', (name, value, Type) => {
    const err = thrown(() => resolveConfig({}, { [name]: value }));
    expect(err).toBeInstanceOf(Type);
    expect(err.message).toContain(name);
  });

  test('a malformed option url names the option, not REDIS_URL', () => {
    const err = thrown(() => resolveConfig({}, { url: 'redis://h:bad' }));
    expect(err.message).toMatch(/url/);
    expect(err.message).not.toMatch(/REDIS_URL/);
  });
});

describe('a bad configuration fails at first use, not at require', () => {
  let saved;
  beforeEach(() => {
    saved = process.env.REDIS_URL;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = saved;
  });

  test('requiring lib/redis and lib/cache with a malformed REDIS_URL does not throw; first use names REDIS_URL', () => {
    process.env.REDIS_URL = `redis://u:${SECRET}@h:notaport/0`;
    let redis;
    jest.isolateModules(() => {
      redis = require('../../lib/redis');
      require('../../lib/cache');
    });
    const err = thrown(() => redis.getRedisClient());
    expect(err.message).toMatch(/REDIS_URL/);
    expect(err.message).not.toContain(SECRET);
  });

  test('REDIS_URL=disabled: isRedisEnabled() is false and getRedisClient() is null', () => {
    process.env.REDIS_URL = 'disabled';
    let redis;
    jest.isolateModules(() => {
      redis = require('../../lib/redis');
    });
    expect(redis.isRedisEnabled()).toBe(false);
    expect(redis.getRedisClient()).toBeNull();
  });

  test('createClient with a tls option it cannot use throws at once, before any socket', () => {
    const { createClient } = require('../../lib/redis');
    expect(() => createClient({ url: 'rediss://h:6380', tls: { ca: '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n' } })).toThrow(/tls\.ca holds no PEM certificate/);
  });
});
