'use strict';
// Proves how TLS is asked for and configured (lib/client/config.js resolveConfig(env,
// options), then end to end): the rediss:// scheme (REDIS_URL or option url), REDIS_TLS=true
// with REDIS_HOST/REDIS_PORT, option tls: true or an object; REDIS_TLS's values; a plain
// redis:// URL without tls stays plaintext; minVersion checked at createClient (an unknown
// value is a RangeError/ConfigError) and enforced on the wire (TLSv1.3 against a server
// limited to TLSv1.2 is refused with a protocol error); option values of the wrong type
// refused at createClient; and no configuration error shows the passphrase or a key.
const util = require('util');
const { createClient, RedisClient } = require('../../../lib/redis');
const errors = require('../../../lib/errors');
const { resolveConfig } = require('../../../lib/client/config');
const { makeCertificates, startTlsRedis, leakedSecrets, UNTRUSTED_CHAIN_CODES } = require('../../helpers/tls');

let certs;
let server;
let server12; // TLS 1.2 only
const clients = [];

function track(c) {
  clients.push(c);
  return c;
}

/** Runs fn, returns the error it threw (fails the test when it does not throw). */
function thrown(fn) {
  try {
    const c = fn();
    if (c && typeof c.disconnect === 'function') c.disconnect();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

beforeAll(async () => {
  certs = makeCertificates();
  [server, server12] = await Promise.all([
    startTlsRedis({ certs }),
    startTlsRedis({ certs, args: ['--tls-protocols', 'TLSv1.2'] }),
  ]);
});

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

afterAll(async () => {
  await Promise.all([server, server12].filter(Boolean).map((s) => s.stop()));
  if (certs) certs.remove();
});

describe('resolveConfig: asking for TLS', () => {
  test('REDIS_URL=rediss://… turns TLS on, with its host, port and db', () => {
    const c = resolveConfig({ REDIS_URL: 'rediss://cache.internal:6380/2' });
    expect(c).toMatchObject({ enabled: true, host: 'cache.internal', port: 6380, db: 2 });
    expect(c.tls).toBeTruthy();
  });

  test('rediss:// without a port defaults to 6379 (as redis://)', () => {
    const c = resolveConfig({}, { url: 'rediss://cache.internal' });
    expect(c.port).toBe(6379);
    expect(c.tls).toBeTruthy();
  });

  test('option url rediss:// turns TLS on; a password in it is kept', () => {
    const c = resolveConfig({}, { url: 'rediss://:pw-123@h:6390' });
    expect(c).toMatchObject({ host: 'h', port: 6390, password: 'pw-123' });
    expect(c.tls).toBeTruthy();
  });

  test.each([['true'], ['1'], ['yes'], ['TRUE'], [' true ']])('REDIS_TLS=%j with REDIS_HOST and REDIS_PORT turns TLS on', (flag) => {
    const c = resolveConfig({ REDIS_TLS: flag, REDIS_HOST: 'cache.internal', REDIS_PORT: '6380' });
    expect(c).toMatchObject({ host: 'cache.internal', port: 6380 });
    expect(c.tls).toBeTruthy();
  });

  test.each([['false'], ['0'], ['no'], ['']])('REDIS_TLS=%j leaves it off', (flag) => {
    const c = resolveConfig({ REDIS_TLS: flag, REDIS_HOST: 'h' });
    expect(c.tls).toBeFalsy();
  });

  test('REDIS_TLS with another value is a ConfigError naming it', () => {
    const err = thrown(() => resolveConfig({ REDIS_TLS: 'maybe', REDIS_HOST: 'h' }));
    expect(err).toBeInstanceOf(errors.ConfigError);
    expect(err.code).toBe('ERR_INVALID_CONFIG');
    expect(err.message).toMatch(/REDIS_TLS/);
  });

  test('REDIS_TLS=true with a redis:// REDIS_URL: TLS on, or a ConfigError; never plaintext', () => {
    let config;
    try {
      config = resolveConfig({ REDIS_URL: 'redis://h:6380', REDIS_TLS: 'true' });
    } catch (err) {
      expect(err).toBeInstanceOf(errors.ConfigError);
      expect(err.message).toMatch(/REDIS_TLS/);
      return;
    }
    expect(config.tls).toBeTruthy();
  });

  test('option tls: true and tls: { … } turn TLS on for host and port', () => {
    expect(resolveConfig({}, { host: 'h', port: 1, tls: true }).tls).toBeTruthy();
    expect(resolveConfig({}, { host: 'h', port: 1, tls: { ca: certs.ca.cert } }).tls).toBeTruthy();
  });

  test('redis:// without tls stays plaintext', () => {
    expect(resolveConfig({ REDIS_URL: 'redis://h' }).tls).toBeFalsy();
    expect(resolveConfig({}, { url: 'redis://h' }).tls).toBeFalsy();
    expect(resolveConfig({}, { host: 'h' }).tls).toBeFalsy();
  });

  test('rediss:// is accepted by createClient (lazy: nothing connects)', () => {
    const c = track(createClient({ url: 'rediss://localhost:1', lazyConnect: true }));
    expect(c.status().state).toBe('idle');
  });
});

describe('REDIS_TLS and NODE_EXTRA_CA_CERTS', () => {
  test('REDIS_TLS=true holds for a redis:// url option too: never a plaintext connection', () => {
    expect(resolveConfig({ REDIS_TLS: 'true' }, { url: 'redis://cache.internal:6380' }).tls).toBeTruthy();
    expect(() => resolveConfig({ REDIS_TLS: 'true' }, { url: 'redis://h', tls: false })).toThrow(/REDIS_TLS/);
  });

  test('an unreadable NODE_EXTRA_CA_CERTS is a warning, as it is for Node, not a client that cannot be made', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const env = { NODE_EXTRA_CA_CERTS: '/nonexistent/extra-ca.pem' };
      const c = track(new RedisClient({ url: server.url, tls: { ca: certs.ca.cert }, logger: false }, env));
      await expect(c.call('PING')).resolves.toBe('PONG');
      // Without ca it is the system store alone, which does not trust the test CA.
      const d = track(new RedisClient({ url: server.url, tls: true, logger: false }, env));
      const err = await d.call('PING').catch((e) => e);
      expect(err).toBeInstanceOf(errors.TlsError);
      const codes = emitWarning.mock.calls.map(([, options]) => options && options.code);
      expect(codes).toContain('HIRECACHE_EXTRA_CA_UNREADABLE');
    } finally {
      emitWarning.mockRestore();
    }
  });
});

describe('option values', () => {
  test.each([['TLSv1.2'], ['TLSv1.3']])('minVersion %s is accepted', (minVersion) => {
    expect(() => track(createClient({ url: server.url, tls: { ca: certs.ca.cert, minVersion } }))).not.toThrow();
  });

  test.each([['TLSv1.9'], ['tls1.3'], ['SSLv3'], [13]])('minVersion %j is refused at createClient', (minVersion) => {
    const err = thrown(() => createClient({ url: server.url, tls: { ca: certs.ca.cert, minVersion } }));
    expect(err instanceof RangeError || err instanceof TypeError || err instanceof errors.ConfigError).toBe(true);
    expect(err.message).toMatch(/minVersion/);
  });

  test.each([
    ['ca', 42],
    ['cert', { pem: 'x' }],
    ['key', 7],
    ['passphrase', 1234],
    ['servername', 5],
    ['rejectUnauthorized', 'no'],
  ])('tls.%s of the wrong type is refused at createClient', (name, value) => {
    const err = thrown(() => createClient({ url: server.url, tls: { [name]: value } }));
    expect(err instanceof TypeError || err instanceof RangeError || err instanceof errors.ConfigError).toBe(true);
    expect(err.message).toMatch(new RegExp(name));
  });

  test('tls: false with a rediss:// URL is a contradiction, refused (never plaintext)', () => {
    const err = thrown(() => createClient({ url: server.url, tls: false }));
    expect(err).toBeInstanceOf(errors.ConfigError);
    expect(err.message).toMatch(/tls/);
    expect(thrown(() => new RedisClient({ tls: false }, { REDIS_URL: server.url }))).toBeInstanceOf(errors.ConfigError);
    expect(thrown(() => new RedisClient({ tls: false }, { REDIS_TLS: 'true', REDIS_HOST: 'h' }))).toBeInstanceOf(errors.ConfigError);
  });

  test('tls of another type (a string) is refused', () => {
    const err = thrown(() => createClient({ url: server.url, tls: 'yes' }));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.code).toBe('ERR_INVALID_CONFIG');
  });

  test('an unknown tls name (a typo) is refused, never ignored', () => {
    const err = thrown(() => createClient({ url: server.url, tls: { rejectUnauthorised: false } }));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toMatch(/tls\.rejectUnauthorised/);
  });

  test.each([['checkServerIdentity', () => undefined], ['pfx', 'x'], ['ciphers', 'HIGH'], ['secureContext', {}]])(
    "tls.connect's %s, which hirecache does not take, is refused by name (ERR_UNSUPPORTED)",
    (name, value) => {
      const err = thrown(() => createClient({ url: server.url, tls: { [name]: value } }));
      expect(err).toBeInstanceOf(errors.UnsupportedError);
      expect(err.code).toBe('ERR_UNSUPPORTED');
      expect(err.message).toMatch(new RegExp(`tls\\.${name}`));
    },
  );

  test.each([['TLSv1'], ['TLSv1.1']])('minVersion %s, which OpenSSL 3 refuses anyway, is refused by name (ERR_UNSUPPORTED)', (minVersion) => {
    const err = thrown(() => createClient({ url: server.url, tls: { minVersion } }));
    expect(err).toBeInstanceOf(errors.UnsupportedError);
    expect(err.message).toMatch(/TLS 1\.0 and 1\.1/);
  });

  test('a servername with a NUL or a space is refused (a shortened name must not be the one verified)', () => {
    for (const servername of ['localhost\0.evil.example', 'local host']) {
      const err = thrown(() => createClient({ url: server.url, tls: { servername } }));
      expect(err.code).toBe('ERR_INVALID_CONFIG');
      expect(err.message).toMatch(/tls\.servername/);
    }
  });

  test('a string given as the tls option is refused without being shown (it may be a key)', () => {
    const secret = '-----BEGIN PRIVATE KEY-----\nMIIEsecretsecret\n-----END PRIVATE KEY-----';
    const err = thrown(() => createClient({ url: server.url, tls: secret }));
    expect(err.message).toMatch(/option tls/);
    expect(err.message).not.toContain('MIIEsecret');
  });

  test('maxVersion below minVersion is refused', () => {
    const err = thrown(() => createClient({ url: server.url, tls: { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' } }));
    expect(err).toBeInstanceOf(errors.ConfigError);
    expect(err.message).toMatch(/maxVersion/);
  });

  test('ca given as a file name instead of its contents is refused, saying so', () => {
    const err = thrown(() => createClient({ url: server.url, tls: { ca: certs.ca.certFile } }));
    expect(err).toBeInstanceOf(errors.ConfigError);
    expect(err.message).toMatch(/tls\.ca/);
    expect(err.message).toMatch(/file/);
  });

  test('ca that holds no certificate is refused', () => {
    const err = thrown(() => createClient({ url: server.url, tls: { ca: '-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n' } }));
    expect(err).toBeInstanceOf(errors.ConfigError);
    expect(err.message).toMatch(/tls\.ca/);
  });

  test('a configuration error never shows the passphrase or the key', () => {
    const err = thrown(() =>
      createClient({
        url: server.url,
        tls: { key: certs.clientEncrypted.key, cert: certs.client.cert, passphrase: certs.passphrase, minVersion: 'TLSv9' },
      }));
    expect(leakedSecrets(`${err.message} ${util.inspect(err)}`, certs)).toEqual([]);
  });

  test('a passphrase of the wrong type is not shown either', () => {
    const err = thrown(() => createClient({ url: server.url, tls: { passphrase: 98765432 } }));
    expect(err.message).not.toContain('98765432');
  });
});

describe('end to end', () => {
  test('REDIS_TLS=true, REDIS_HOST, REDIS_PORT (+ option tls.ca): commands run over TLS', async () => {
    const env = { REDIS_TLS: 'true', REDIS_HOST: 'localhost', REDIS_PORT: String(server.port) };
    const c = track(new RedisClient({ tls: { ca: certs.ca.cert }, logger: false }, env));
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('REDIS_TLS=true alone verifies against the default store: the test CA is not trusted', async () => {
    const env = { REDIS_TLS: 'true', REDIS_HOST: 'localhost', REDIS_PORT: String(server.port) };
    const c = track(new RedisClient({ connectTimeout: 5000, logger: false }, env));
    const err = await c.call('PING').catch((e) => e);
    expect(err).toBeInstanceOf(errors.TlsError);
    expect(UNTRUSTED_CHAIN_CODES).toContain(err.code);
  });

  test('REDIS_URL=rediss://… (+ option tls.ca): commands run over TLS', async () => {
    const c = track(new RedisClient({ tls: { ca: certs.ca.cert }, logger: false }, { REDIS_URL: server.url }));
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('minVersion TLSv1.2 connects to a TLS 1.2 server', async () => {
    const c = track(createClient({ url: server12.url, tls: { ca: certs.ca.cert, minVersion: 'TLSv1.2' } }));
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('minVersion TLSv1.3 against a server limited to TLSv1.2: refused with a protocol error', async () => {
    const c = track(createClient({ url: server12.url, tls: { ca: certs.ca.cert, minVersion: 'TLSv1.3' }, connectTimeout: 5000 }));
    const err = await c.call('PING').catch((e) => e);
    expect(err).toBeInstanceOf(errors.TlsError);
    expect(err.code).toMatch(/^ERR_SSL_/);
    expect(err.code).toMatch(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE/);
  });

  test('maxVersion TLSv1.2 connects to a server that speaks 1.2 and 1.3', async () => {
    const c = track(createClient({ url: server.url, tls: { ca: certs.ca.cert, maxVersion: 'TLSv1.2' } }));
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('status().tls and options.tls say whether the client speaks TLS', async () => {
    const secure = track(createClient({ url: server.url, tls: { ca: certs.ca.cert, servername: 'localhost' } }));
    await secure.call('PING');
    expect(secure.status().tls).toBe(true);
    expect(secure.options.tls).toMatchObject({ ca: 'given', servername: 'localhost', rejectUnauthorized: true, minVersion: 'TLSv1.2' });
    expect(util.inspect(secure)).toMatch(/rediss:\/\//);
    const plain = track(createClient({ url: 'redis://127.0.0.1:1', lazyConnect: true }));
    expect(plain.status().tls).toBe(false);
    expect(plain.options.tls).toBeNull();
  });

  test('minVersion TLSv1.3 connects to a server that speaks it', async () => {
    const c = track(createClient({ url: server.url, tls: { ca: certs.ca.cert, minVersion: 'TLSv1.3' } }));
    await expect(c.call('PING')).resolves.toBe('PONG');
  });
});
