'use strict';
// Proves mutual TLS against redis-server with --tls-auth-clients yes: a client certificate
// and key (PEM strings or Buffers, the key plain or encrypted with `passphrase`) are
// presented and accepted; without them the server refuses the connection and the caller
// gets a TlsError (in TLS 1.3 the server's alert arrives after the client has finished its
// side of the handshake, so the failure may surface on the first command: it must reject,
// never hang); a wrong or missing passphrase or a key that does not match the certificate
// is a clear error, at createClient or at connect, that never shows the passphrase or the
// key, and never waits for a passphrase typed on a terminal.
const util = require('util');
const path = require('path');
const { createClient } = require('../../../lib/redis');
const errors = require('../../../lib/errors');
const { makeCertificates, startTlsRedis, tlsWitness, runNode, leakedSecrets } = require('../../helpers/tls');
const { waitFor } = require('../../helpers/async');

const REDIS_MODULE = path.resolve(__dirname, '../../../lib/redis.js');

let certs;
let server; // TLS 1.2 and 1.3, client certificates required
let server12; // the same, TLS 1.2 only: the refusal comes inside the handshake
const clients = [];

function client(options) {
  const c = createClient({ connectTimeout: 5000, commandTimeout: 5000, ...options });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  certs = makeCertificates();
  [server, server12] = await Promise.all([
    startTlsRedis({ certs, authClients: true }),
    startTlsRedis({ certs, authClients: true, args: ['--tls-protocols', 'TLSv1.2'] }),
  ]);
});

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

afterAll(async () => {
  await Promise.all([server, server12].filter(Boolean).map((s) => s.stop()));
  if (certs) certs.remove();
});

/**
 * Creates a client with `options` and sends PING; returns the error thrown at createClient
 * or the PING's rejection (fails the test when PING resolves).
 */
async function errorOf(options) {
  let c;
  try {
    c = client(options);
  } catch (err) {
    return err;
  }
  return c.call('PING').then(
    (v) => {
      throw new Error(`PING resolved ${JSON.stringify(v)}; an error was expected`);
    },
    (e) => e,
  );
}

function expectNoSecrets(err) {
  const text = `${err.message} ${String(err)} ${util.inspect(err)} ${err.stack}`;
  expect(leakedSecrets(text, certs)).toEqual([]);
}

describe('with a client certificate', () => {
  test('cert and key as PEM strings: commands run', async () => {
    const c = client({ url: server.url, tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key } });
    await expect(c.call('PING')).resolves.toBe('PONG');
    await expect(c.set('mtls:k', 'v')).resolves.toBe('OK');
    const witness = tlsWitness(server, certs);
    try {
      await expect(witness.get('mtls:k')).resolves.toBe('v');
    } finally {
      witness.disconnect();
    }
  });

  test('cert and key as Buffers', async () => {
    const c = client({
      url: server.url,
      tls: { ca: Buffer.from(certs.ca.cert), cert: Buffer.from(certs.client.cert), key: Buffer.from(certs.client.key) },
    });
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('an encrypted key with its passphrase', async () => {
    const c = client({
      url: server.url,
      tls: { ca: certs.ca.cert, cert: certs.clientEncrypted.cert, key: certs.clientEncrypted.key, passphrase: certs.passphrase },
    });
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('over TLS 1.2 as well', async () => {
    const c = client({ url: server12.url, tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key } });
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('status(), options and inspect never show the key or the passphrase', async () => {
    const c = client({
      url: server.url,
      tls: { ca: certs.ca.cert, cert: certs.clientEncrypted.cert, key: certs.clientEncrypted.key, passphrase: certs.passphrase },
    });
    await c.call('PING');
    const text = `${util.inspect(c, { depth: 10 })} ${JSON.stringify(c.status())} ${JSON.stringify(c.options)} ${util.inspect(c.options)}`;
    expect(leakedSecrets(text, certs)).toEqual([]);
    expect(c.options.tls).toMatchObject({ key: '***', passphrase: '***' });
  });
});

describe('without a client certificate', () => {
  test('TLS 1.3: the refusal fails the connect attempt with a TlsError, not a caller\'s command as outcome-unknown', async () => {
    // The server's alert arrives after the client's side of the handshake: the client's
    // own PING after the handshake meets it. Five fresh clients: the alert must win every
    // time over the reset that follows it.
    for (let i = 0; i < 5; i++) {
      const c = client({ url: server.url, tls: { ca: certs.ca.cert } });
      const events = [];
      c.on('error', (e) => events.push(e));
      const err = await c.call('PING').then(
        (v) => {
          throw new Error(`PING resolved ${JSON.stringify(v)}`);
        },
        (e) => e,
      );
      expect(err).toBeInstanceOf(errors.TlsError);
      expect(err.code).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
      await waitFor(() => events.length > 0, { what: "the 'error' event" });
      expect(events[0]).toBeInstanceOf(errors.TlsError);
      expect(events[0].code).toBe(err.code);
      expect(c.status().lastError.code).toBe(err.code);
      // Later calls fail with the TLS error, never succeed without a certificate.
      const later = await c.call('PING').catch((e) => e);
      expect(later).toBeInstanceOf(errors.TlsError);
      expect(later.code).toMatch(/^ERR_SSL_/);
      c.disconnect();
    }
  });

  test('TLS 1.2: the refusal comes in the handshake: the command rejects with the TlsError', async () => {
    const err = await errorOf({ url: server12.url, tls: { ca: certs.ca.cert } });
    expect(err).toBeInstanceOf(errors.TlsError);
    expect(err.code).toMatch(/^ERR_SSL_/);
    expect(err.code).toMatch(/HANDSHAKE_FAILURE|CERTIFICATE_REQUIRED|ALERT/);
  });
});

/** The error createClient(options) throws (fails the test when it does not throw). */
function thrownAtCreate(options) {
  try {
    client(options);
  } catch (err) {
    return err;
  }
  throw new Error('createClient did not throw');
}

describe('passphrase and key errors: a ConfigError from createClient, without the secret', () => {
  test('a wrong passphrase', () => {
    const wrong = 'not-the-Passphrase-7731';
    const err = thrownAtCreate({
      url: server.url,
      tls: { ca: certs.ca.cert, cert: certs.clientEncrypted.cert, key: certs.clientEncrypted.key, passphrase: wrong },
    });
    expect(err).toBeInstanceOf(errors.ConfigError);
    expect(err.code).toBe('ERR_INVALID_CONFIG');
    expect(err.message).toMatch(/tls\.key/);
    expect(err.message).toMatch(/passphrase/);
    expect(err.message).not.toContain(wrong);
    expect(util.inspect(err)).not.toContain(wrong);
    expectNoSecrets(err);
  });

  test('an encrypted key without a passphrase: never a prompt on the terminal (a child process)', async () => {
    const source = `
      const { createClient } = require(${JSON.stringify(REDIS_MODULE)});
      (async () => {
        let err;
        try {
          const c = createClient({ url: ${JSON.stringify(server.url)}, connectTimeout: 3000,
            tls: { ca: ${JSON.stringify(certs.ca.cert)}, cert: ${JSON.stringify(certs.clientEncrypted.cert)}, key: ${JSON.stringify(certs.clientEncrypted.key)} } });
          err = await c.call('PING').then(() => null, (e) => e);
          c.disconnect();
        } catch (e) { err = e; }
        process.stdout.write(JSON.stringify(err && { name: err.name, code: err.code, message: err.message }));
        process.exit(0);
      })();
    `;
    const r = await runNode(source, { timeoutMs: 15000 });
    expect(r).toMatchObject({ code: 0, timedOut: false });
    const err = JSON.parse(r.stdout);
    expect(err).toMatchObject({ name: 'ConfigError', code: 'ERR_INVALID_CONFIG' });
    expect(err.message).toMatch(/passphrase/);
    expect(leakedSecrets(`${err.message} ${r.stderr}`, certs)).toEqual([]);
  });

  test('a key that does not match the certificate', () => {
    const err = thrownAtCreate({ url: server.url, tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.servers.other.key } });
    expect(err).toBeInstanceOf(errors.ConfigError);
    expect(err.message).toMatch(/tls\.key/);
    expectNoSecrets(err);
  });

  test('a key that is not a PEM key OpenSSL can read', () => {
    const bogus = `-----BEGIN PRIVATE KEY-----\n${'QUJD'.repeat(16)}\n-----END PRIVATE KEY-----\n`;
    const err = thrownAtCreate({ url: server.url, tls: { ca: certs.ca.cert, cert: certs.client.cert, key: bogus } });
    expect(err).toBeInstanceOf(errors.ConfigError);
    expect(err.message).not.toContain('QUJDQUJD');
  });

  test('a key without a certificate, or a certificate without a key', () => {
    expect(thrownAtCreate({ url: server.url, tls: { key: certs.client.key } })).toBeInstanceOf(errors.ConfigError);
    const err = thrownAtCreate({ url: server.url, tls: { cert: certs.client.cert } });
    expect(err).toBeInstanceOf(errors.ConfigError);
    expect(err.message).toMatch(/tls\.key/);
  });
});
