'use strict';
// Proves TLS verifies the server by default: against redis-server with TLS only (--port 0,
// so whatever works went over TLS), a certificate signed by the CA given as `ca` (a PEM
// string, a Buffer, or in an array) is accepted for `localhost`, 127.0.0.1 and ::1 (an IP
// literal is checked against the IP SANs); without `ca` the test CA is not trusted (the
// system store is used); an expired certificate, one for another name, or a self-signed
// one is refused with a TlsError whose stable code reaches the caller (the command's
// rejection, the 'error' event, status().lastError). `servername` replaces the host in
// the check and is sent as SNI (a host name is sent as SNI, an IP literal is not).
// `rejectUnauthorized: false` connects anyway and logs one warning per process.
const fs = require('fs');
const tls = require('tls');
const util = require('util');
const path = require('path');
const redis = require('../../../lib/redis');
const errors = require('../../../lib/errors');
const {
  makeCertificates,
  startTlsRedis,
  recordingLogger,
  tlsWitness,
  runNode,
  leakedSecrets,
  UNTRUSTED_CHAIN_CODES,
} = require('../../helpers/tls');
const { createCache } = require('../../../lib/cache');
const { createHealth } = require('../../../lib/health');
const { waitFor } = require('../../helpers/async');

const REDIS_MODULE = path.resolve(__dirname, '../../../lib/redis.js');

let certs;
const servers = {};
const clients = [];

function client(options) {
  const c = redis.createClient({ connectTimeout: 5000, reconnectBaseDelay: 50, ...options });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  certs = makeCertificates();
  const names = ['good', 'expired', 'notYetValid', 'other', 'ipOnly', 'selfSigned'];
  const started = await Promise.all(
    names.map((serverCert) =>
      startTlsRedis({ certs, serverCert, args: serverCert === 'good' ? ['--bind', '127.0.0.1', '::1'] : [] })),
  );
  names.forEach((name, i) => {
    servers[name] = started[i];
  });
});

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
  if (certs) certs.remove();
});

/**
 * Sends PING on a client that cannot connect and collects what its user sees: the
 * command's rejection, the first 'error' event, and status().lastError.
 */
async function failureOf(c) {
  const events = [];
  c.on('error', (e) => events.push(e));
  const err = await c.call('PING').then(
    (v) => {
      throw new Error(`PING resolved ${JSON.stringify(v)}; a TLS failure was expected`);
    },
    (e) => e,
  );
  await waitFor(() => events.length > 0, { what: "the 'error' event" });
  return { err, event: events[0], lastError: c.status().lastError };
}

/** The failure is a TlsError with `code` (a string, an array of allowed codes, or a RegExp), everywhere. */
function expectTlsFailure(f, code) {
  expect(f.err).toBeInstanceOf(errors.TlsError);
  expect(f.err).toBeInstanceOf(errors.ConnectionError);
  expect(f.err.name).toBe('TlsError');
  if (code instanceof RegExp) expect(f.err.code).toMatch(code);
  else if (Array.isArray(code)) expect(code).toContain(f.err.code);
  else expect(f.err.code).toBe(code);
  expect(typeof f.err.message).toBe('string');
  expect(f.err.message.length).toBeGreaterThan(0);
  expect(f.event).toBeInstanceOf(errors.TlsError);
  expect(f.event.code).toBe(f.err.code);
  expect(f.lastError).toMatchObject({ code: f.err.code });
  expect(leakedSecrets(`${f.err.message} ${util.inspect(f.err)} ${JSON.stringify(f.lastError)}`, certs)).toEqual([]);
}

test('TlsError is exported by lib/redis and lib/errors, a ConnectionError', () => {
  expect(typeof errors.TlsError).toBe('function');
  expect(redis.TlsError).toBe(errors.TlsError);
  expect(errors.TlsError.prototype).toBeInstanceOf(errors.ConnectionError);
});

describe('a certificate signed by the given CA', () => {
  test('rediss://localhost with ca: commands run, and land on the TLS-only server', async () => {
    const c = client({ url: servers.good.url, tls: { ca: certs.ca.cert } });
    await expect(c.call('PING')).resolves.toBe('PONG');
    await expect(c.set('verify:k', 'over tls')).resolves.toBe('OK');
    const witness = tlsWitness(servers.good, certs);
    try {
      await expect(witness.get('verify:k')).resolves.toBe('over tls');
    } finally {
      witness.disconnect();
    }
    expect(c.status()).toMatchObject({ state: 'ready', ready: true });
  });

  test('ca as a Buffer', async () => {
    const c = client({ url: servers.good.url, tls: { ca: Buffer.from(certs.ca.cert) } });
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('ca as an array: the CA among other certificates', async () => {
    const c = client({ url: servers.good.url, tls: { ca: [certs.servers.selfSigned.cert, Buffer.from(certs.ca.cert)] } });
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('{ host, port, tls: { ca } } without a URL', async () => {
    const c = client({ host: 'localhost', port: servers.good.port, tls: { ca: certs.ca.cert } });
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('an IPv4 literal is checked against the IP SANs (127.0.0.1)', async () => {
    const c = client({ url: `rediss://127.0.0.1:${servers.good.port}`, tls: { ca: certs.ca.cert } });
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('an IPv6 literal is checked against the IP SANs (::1)', async () => {
    const c = client({ url: `rediss://[::1]:${servers.good.port}`, tls: { ca: certs.ca.cert } });
    await expect(c.call('PING')).resolves.toBe('PONG');
    expect(await c.call('CLIENT', 'INFO')).toMatch(/addr=\[?::1\]?:\d+/);
  });

  test('a certificate with only an IP SAN: accepted for 127.0.0.1, refused for localhost', async () => {
    const byIp = client({ url: `rediss://127.0.0.1:${servers.ipOnly.port}`, tls: { ca: certs.ca.cert } });
    await expect(byIp.call('PING')).resolves.toBe('PONG');
    const byName = client({ url: `rediss://localhost:${servers.ipOnly.port}`, tls: { ca: certs.ca.cert } });
    expectTlsFailure(await failureOf(byName), 'ERR_TLS_CERT_ALTNAME_INVALID');
  });
});

describe('verification is on by default', () => {
  test('without ca, the test CA is not trusted (rediss://)', async () => {
    const c = client({ url: servers.good.url });
    expectTlsFailure(await failureOf(c), UNTRUSTED_CHAIN_CODES);
  });

  test('without ca, the test CA is not trusted ({ host, port, tls: true })', async () => {
    const c = client({ host: 'localhost', port: servers.good.port, tls: true });
    expectTlsFailure(await failureOf(c), UNTRUSTED_CHAIN_CODES);
  });

  test('an expired certificate: CERT_HAS_EXPIRED', async () => {
    const c = client({ url: servers.expired.url, tls: { ca: certs.ca.cert } });
    expectTlsFailure(await failureOf(c), 'CERT_HAS_EXPIRED');
  });

  test('a certificate not valid yet: CERT_NOT_YET_VALID', async () => {
    const c = client({ url: servers.notYetValid.url, tls: { ca: certs.ca.cert } });
    expectTlsFailure(await failureOf(c), 'CERT_NOT_YET_VALID');
  });

  test("the code reaches the log line and health() as well", async () => {
    const logger = recordingLogger();
    const c = client({ url: servers.expired.url, tls: { ca: certs.ca.cert }, logger });
    expectTlsFailure(await failureOf(c), 'CERT_HAS_EXPIRED');
    await waitFor(() => logger.matching(/CERT_HAS_EXPIRED/).length > 0, { what: 'a log line naming CERT_HAS_EXPIRED' });
    const report = await createHealth({ client: c, connect: false })();
    expect(report.redis.lastError).toMatchObject({ code: 'CERT_HAS_EXPIRED' });
  });

  test('the cache over a refused certificate never rejects: a read is a miss, a write goes to its fallback', async () => {
    const c = client({ url: servers.expired.url, tls: { ca: certs.ca.cert } });
    const cache = createCache({ client: c });
    await expect(cache.cacheGet('k')).resolves.toBeNull();
    expect(typeof (await cache.cacheSet('k', 'v', 30))).toBe('boolean');
    expect(c.status().lastError).toMatchObject({ code: 'CERT_HAS_EXPIRED' });
  });

  test('a certificate for another host name: ERR_TLS_CERT_ALTNAME_INVALID', async () => {
    const c = client({ url: servers.other.url, tls: { ca: certs.ca.cert } });
    expectTlsFailure(await failureOf(c), 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  test('an IP literal not in the IP SANs: ERR_TLS_CERT_ALTNAME_INVALID', async () => {
    const c = client({ url: `rediss://127.0.0.1:${servers.other.port}`, tls: { ca: certs.ca.cert } });
    expectTlsFailure(await failureOf(c), 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  test('a self-signed certificate and no ca: DEPTH_ZERO_SELF_SIGNED_CERT', async () => {
    const c = client({ url: servers.selfSigned.url });
    expectTlsFailure(await failureOf(c), 'DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  test('a self-signed certificate not signed by the given ca: refused as untrusted', async () => {
    const c = client({ url: servers.selfSigned.url, tls: { ca: certs.ca.cert } });
    expectTlsFailure(await failureOf(c), UNTRUSTED_CHAIN_CODES);
  });

  test('while the certificate is refused, later calls keep failing with the same TlsError (never a plaintext retry)', async () => {
    const c = client({ url: servers.expired.url, tls: { ca: certs.ca.cert } });
    const first = await failureOf(c);
    expectTlsFailure(first, 'CERT_HAS_EXPIRED');
    const again = await Promise.allSettled([c.call('PING'), c.get('k'), c.set('k', 'v')]);
    for (const r of again) {
      expect(r.status).toBe('rejected');
      expect(r.reason).toBeInstanceOf(errors.TlsError);
      expect(r.reason.code).toBe('CERT_HAS_EXPIRED');
    }
  });
});

describe('the default trust store', () => {
  // The environment a client reads is its second argument (createClient passes process.env).
  test('NODE_EXTRA_CA_CERTS adds the test CA to it', async () => {
    const c = new redis.RedisClient({ url: servers.good.url, tls: true, logger: false }, { NODE_EXTRA_CA_CERTS: certs.ca.certFile });
    clients.push(c);
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('SSL_CERT_FILE names the system store: with the test CA in it, tls: true verifies (a child process)', async () => {
    const source = `
      const { createClient } = require(${JSON.stringify(REDIS_MODULE)});
      const c = createClient({ host: 'localhost', port: ${servers.good.port}, tls: true });
      c.call('PING').then((v) => { process.stdout.write(v); c.disconnect(); },
                          (e) => { process.stdout.write(String(e.code)); c.disconnect(); });
    `;
    const trusted = await runNode(source, { env: { SSL_CERT_FILE: certs.ca.certFile, SSL_CERT_DIR: certs.dir } });
    expect(trusted).toMatchObject({ code: 0, timedOut: false, stdout: 'PONG' });
    // The same client with the test CA in neither is refused: the store was what decided.
    const untrusted = await runNode(source, { env: { SSL_CERT_FILE: certs.servers.selfSigned.certFile, SSL_CERT_DIR: '/nonexistent' } });
    expect(untrusted).toMatchObject({ code: 0, timedOut: false });
    expect(UNTRUSTED_CHAIN_CODES).toContain(untrusted.stdout);
  });

  test('NODE_TLS_REJECT_UNAUTHORIZED=0 turns verification off, as it does for Node', async () => {
    const logger = recordingLogger();
    const c = new redis.RedisClient({ url: servers.selfSigned.url, logger }, { NODE_TLS_REJECT_UNAUTHORIZED: '0' });
    clients.push(c);
    await expect(c.call('PING')).resolves.toBe('PONG');
  });
});

describe('servername', () => {
  test('replaces the host in the check: other.example accepted for a connection to localhost', async () => {
    const c = client({ url: servers.other.url, tls: { ca: certs.ca.cert, servername: 'other.example' } });
    await expect(c.call('PING')).resolves.toBe('PONG');
  });

  test('replaces the host in the check: other.example refused for the localhost certificate', async () => {
    const c = client({ url: servers.good.url, tls: { ca: certs.ca.cert, servername: 'other.example' } });
    expectTlsFailure(await failureOf(c), 'ERR_TLS_CERT_ALTNAME_INVALID');
  });
});

describe('SNI', () => {
  // A Node TLS server that records the SNI of each connection and answers +PONG to every
  // command (the client sends no handshake command without a password, db or name).
  let sni;
  beforeAll(async () => {
    const seen = [];
    const server = tls.createServer({ cert: certs.servers.good.cert, key: certs.servers.good.key }, (socket) => {
      seen.push(socket.servername);
      socket.on('error', () => {});
      socket.on('data', (chunk) => {
        for (const byte of chunk) if (byte === 0x2a) socket.write('+PONG\r\n');
      });
    });
    server.addContext('other.example', { cert: certs.servers.other.cert, key: certs.servers.other.key });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    sni = { server, seen, port: server.address().port };
  });
  afterAll(() => new Promise((resolve) => sni.server.close(resolve)));
  beforeEach(() => {
    sni.seen.length = 0;
  });

  test('a host name is sent as SNI', async () => {
    const c = client({ url: `rediss://localhost:${sni.port}`, tls: { ca: certs.ca.cert } });
    await expect(c.call('PING')).resolves.toBe('PONG');
    expect(sni.seen).toEqual(['localhost']);
  });

  test('an IP literal is not sent as SNI', async () => {
    const c = client({ url: `rediss://127.0.0.1:${sni.port}`, tls: { ca: certs.ca.cert } });
    await expect(c.call('PING')).resolves.toBe('PONG');
    expect(sni.seen).toHaveLength(1);
    expect(sni.seen[0]).toBeFalsy();
  });

  test('servername is sent as SNI (the server picks its certificate by it)', async () => {
    const c = client({ url: `rediss://127.0.0.1:${sni.port}`, tls: { ca: certs.ca.cert, servername: 'other.example' } });
    await expect(c.call('PING')).resolves.toBe('PONG');
    expect(sni.seen).toEqual(['other.example']);
  });
});

describe('rejectUnauthorized: false', () => {
  test.each([['selfSigned'], ['expired'], ['other']])('connects to the %s server anyway', async (name) => {
    const c = client({ url: servers[name].url, tls: { rejectUnauthorized: false } });
    await expect(c.call('PING')).resolves.toBe('PONG');
    await expect(c.set('insecure', name)).resolves.toBe('OK');
    await expect(c.get('insecure')).resolves.toBe(name);
  });

  test('logs at most one warning in this process, naming the setting', async () => {
    const logger = recordingLogger();
    const a = client({ url: servers.selfSigned.url, tls: { rejectUnauthorized: false }, logger });
    const b = client({ url: servers.expired.url, tls: { rejectUnauthorized: false }, logger });
    await Promise.all([a.call('PING'), b.call('PING')]);
    expect(logger.matching(/rejectUnauthorized|verif/i).length).toBeLessThanOrEqual(1);
  });

  test('logs exactly one warning per process, however many clients (a child process)', async () => {
    const source = `
      const { createClient } = require(${JSON.stringify(REDIS_MODULE)});
      const lines = [];
      const logger = { error: (t) => lines.push(['error', String(t)]), warn: (t) => lines.push(['warn', String(t)]),
                       info: (t) => lines.push(['info', String(t)]), debug: (t) => lines.push(['debug', String(t)]) };
      (async () => {
        const verified = createClient({ url: ${JSON.stringify(servers.good.url)}, tls: { ca: ${JSON.stringify(certs.ca.cert)} }, logger });
        await verified.call('PING');
        const before = lines.length;
        const a = createClient({ url: ${JSON.stringify(servers.selfSigned.url)}, tls: { rejectUnauthorized: false }, logger });
        const b = createClient({ url: ${JSON.stringify(servers.other.url)}, tls: { rejectUnauthorized: false }, logger });
        const replies = [await a.call('PING'), await b.call('PING'), await a.duplicate().call('PING')];
        await Promise.all([verified.quit(), a.quit(), b.quit()]);
        process.stdout.write(JSON.stringify({ replies, before, lines }));
        process.exit(0);
      })().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
    `;
    const r = await runNode(source);
    expect(r).toMatchObject({ code: 0, timedOut: false });
    const { replies, before, lines } = JSON.parse(r.stdout);
    expect(replies).toEqual(['PONG', 'PONG', 'PONG']);
    expect(before).toBe(0); // a verified connection warns about nothing
    const warnings = lines.filter(([, text]) => /rejectUnauthorized|verif/i.test(text));
    expect(warnings).toHaveLength(1);
    expect(warnings[0][0]).toBe('warn');
    expect(warnings[0][1]).toMatch(/rejectUnauthorized/);
  });
});

test('the generated certificates stay out of the repository', () => {
  expect(path.relative(path.resolve(__dirname, '../../..'), certs.dir).startsWith('..')).toBe(true);
  expect(fs.existsSync(certs.ca.certFile)).toBe(true);
});
