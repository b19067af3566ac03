'use strict';
// TLS for the suites: certificates made with the openssl CLI for each test run (never
// committed), redis-server with TLS only, and a proxy that splits or cuts the TLS bytes.
//
//   const certs = makeCertificates();               // a new temp folder of keys and certs
//   const server = await startTlsRedis({ certs });  // rediss://localhost:<port>, no plaintext port
//   const c = createClient({ url: server.url, tls: { ca: certs.ca.cert } });
//   ...
//   await server.stop(); certs.remove();
//
// makeCertificates() makes, with EC P-256 keys (fast) and one CA of its own:
//   ca                 the CA: { cert, key, certFile, keyFile } (PEM strings and paths)
//   servers.good       CN localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1, signed by the CA
//   servers.expired    the same names, signed by the CA, valid 2020-01-01 to 2020-01-02
//                      (`openssl ca -startdate/-enddate`: OpenSSL 3.0's x509 has no
//                      -not_before/-not_after and -days cannot go negative)
//   servers.notYetValid the same names, signed by the CA, valid from 2099-01-01 to 2100-01-01
//   servers.other      CN/SAN other.example only (no localhost, no IP), signed by the CA
//   servers.ipOnly     SAN IP:127.0.0.1 only (CN hirecache-ip-only), signed by the CA
//   servers.selfSigned CN/SAN localhost, 127.0.0.1, ::1, self-signed (not the CA's)
//   client             a client certificate (clientAuth) signed by the CA, plain key
//   clientEncrypted    the same certificate with its key encrypted (AES-256) under
//                      `passphrase`: { cert, key, certFile, keyFile, passphrase }
//   passphrase         that passphrase; dir the folder; remove() deletes it
// Each server entry is { cert, key, certFile, keyFile }.
const { execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const tls = require('tls');
const { startRedis, freePort } = require('./redis-server');

const OPENSSL = fs.existsSync('/usr/bin/openssl') ? '/usr/bin/openssl' : 'openssl';
const PASSPHRASE = 'hirecache-Pass-9fQ2-phrase';

const OPENSSL_CONFIG = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = .
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied
[ server_localhost ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ server_other ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ server_ip_only ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ self_signed ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/**
 * Makes the CA, server and client certificates described at the top into `dir` (default a
 * new temporary folder). Synchronous; about 20 openssl runs.
 */
function makeCertificates(dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hirecache-tls-'))) {
  fs.mkdirSync(path.join(dir, 'issued'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'openssl.cnf'), OPENSSL_CONFIG);
  fs.writeFileSync(path.join(dir, 'index.txt'), '');
  fs.writeFileSync(path.join(dir, 'serial'), '1000\n');
  const run = (...args) => execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const file = (name) => path.join(dir, name);
  const newKey = (name) => run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(name));
  const entry = (certName, keyName) => ({
    certFile: file(certName),
    keyFile: file(keyName),
    cert: fs.readFileSync(file(certName), 'utf8'),
    key: fs.readFileSync(file(keyName), 'utf8'),
  });
  /** A certificate for `subject` with the extensions of `section`, signed by the CA. */
  const issue = (name, subject, section, validity = ['-days', '3650']) => {
    newKey(`${name}.key`);
    run('req', '-config', 'openssl.cnf', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`);
    run(
      'ca', '-config', 'openssl.cnf', '-batch', '-notext', '-keyfile', 'ca.key', '-cert', 'ca.crt',
      '-extensions', section, ...validity, '-in', `${name}.csr`, '-out', `${name}.crt`,
    );
    return entry(`${name}.crt`, `${name}.key`);
  };

  newKey('ca.key');
  run('req', '-config', 'openssl.cnf', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=hirecache test CA',
    '-days', '3650', '-extensions', 'v3_ca', '-out', 'ca.crt');
  const ca = entry('ca.crt', 'ca.key');

  const good = issue('server-good', '/CN=localhost', 'server_localhost');
  const expired = issue('server-expired', '/CN=localhost', 'server_localhost',
    ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z']);
  const notYetValid = issue('server-not-yet-valid', '/CN=localhost', 'server_localhost',
    ['-startdate', '20990101000000Z', '-enddate', '21000101000000Z']);
  const other = issue('server-other', '/CN=other.example', 'server_other');
  const ipOnly = issue('server-ip-only', '/CN=hirecache-ip-only', 'server_ip_only');

  newKey('server-self-signed.key');
  run('req', '-config', 'openssl.cnf', '-x509', '-new', '-key', 'server-self-signed.key', '-subj', '/CN=localhost',
    '-days', '3650', '-extensions', 'self_signed', '-out', 'server-self-signed.crt');
  const selfSigned = entry('server-self-signed.crt', 'server-self-signed.key');

  const client = issue('client', '/CN=hirecache test client', 'client');
  run('pkey', '-in', 'client.key', '-aes-256-cbc', '-passout', `pass:${PASSPHRASE}`, '-out', 'client-encrypted.key');
  const clientEncrypted = { ...entry('client.crt', 'client-encrypted.key'), passphrase: PASSPHRASE };

  return {
    dir,
    passphrase: PASSPHRASE,
    ca,
    servers: { good, expired, notYetValid, other, ipOnly, selfSigned },
    client,
    clientEncrypted,
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Resolves whether a TLS server on 127.0.0.1:port answers PING with +PONG (or -NOAUTH).
 * Never verifies the server (a readiness probe, also for the bad-certificate servers);
 * presents `client` ({ cert, key }) when the server asks for one.
 */
function tlsPing(port, { client, timeoutMs = 500 } = {}) {
  return new Promise((resolve) => {
    const sock = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
      ...(client ? { cert: client.cert, key: client.key } : {}),
    });
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('error', () => done(false));
    sock.on('secureConnect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) done(/^(\+PONG|-NOAUTH)/.test(buf));
    });
  });
}

/**
 * Starts redis-server with TLS only (--port 0: nothing in plaintext) on `port` (default a
 * free one), presenting certs.servers[serverCert] with certs.ca as its CA for client
 * certificates (--tls-auth-clients yes|no). `args` go last (e.g. ['--tls-protocols',
 * 'TLSv1.2'], or ['--bind', '127.0.0.1', '::1']); `dir` as for startRedis (a restart).
 * Resolves when it answers PING over TLS, with startRedis's shape: { port, host, url
 * (rediss://localhost:port), dir, pid, stop(), kill() }.
 */
async function startTlsRedis({ certs, serverCert = 'good', authClients = false, args = [], port, dir } = {}) {
  if (!certs) throw new TypeError('startTlsRedis: certs (from makeCertificates()) is required');
  const server = certs.servers[serverCert];
  if (!server) throw new TypeError(`startTlsRedis: serverCert must be one of ${Object.keys(certs.servers).join(', ')}`);
  const tlsPort = port || (await freePort());
  const started = await startRedis({
    port: tlsPort,
    dir,
    listenArgs: [
      '--port', '0', '--tls-port', String(tlsPort),
      '--tls-cert-file', server.certFile, '--tls-key-file', server.keyFile,
      '--tls-ca-cert-file', certs.ca.certFile, '--tls-auth-clients', authClients ? 'yes' : 'no',
    ],
    args,
    probe: (p) => tlsPing(p, { client: certs.client }),
  });
  return { ...started, host: 'localhost', url: `rediss://localhost:${tlsPort}` };
}

/**
 * A loopback TCP proxy for TLS bytes (it does not decrypt). Unlike test/helpers/proxy.js it
 * can split what it forwards into `chunkBytes` pieces, one piece per turn of the event loop
 * (setImmediate), so a client in this process reads them one by one; and cut a connection
 * after a number of bytes toward the client. Resolves with
 * { port, accepted, open, stats, cutAfter(bytes), cut(), close() }.
 */
async function createTlsProxy({ port, host = '127.0.0.1', chunkBytes = 0 }) {
  const conns = new Set();
  const proxy = {
    port: 0,
    accepted: 0,
    /** pieces: writes made; bytes: bytes forwarded, per direction. */
    stats: { toServer: { bytes: 0, pieces: 0 }, toClient: { bytes: 0, pieces: 0 } },
    /** null, or the bytes toward the client after which every connection is cut. */
    budget: null,
    get open() {
      return conns.size;
    },
    /** From now on, cuts each connection (FIN, no close_notify) once `bytes` more reached the client. */
    cutAfter(bytes) {
      proxy.budget = bytes;
      return proxy;
    },
    /** Destroys every open connection on both sides (no close_notify is sent). */
    cut() {
      for (const c of [...conns]) c.destroy();
      return proxy;
    },
    async close() {
      proxy.cut();
      await new Promise((resolve) => listener.close(() => resolve()));
    },
  };

  const listener = net.createServer((clientSocket) => {
    proxy.accepted += 1;
    const upstream = net.connect({ port, host });
    clientSocket.setNoDelay(true);
    upstream.setNoDelay(true);
    const queues = { toServer: [], toClient: [] };
    const pumping = { toServer: false, toClient: false };
    const ended = { toServer: false, toClient: false };
    const conn = {
      closed: false,
      stopping: false, // cut after the bytes written last: forward nothing more
      destroy() {
        if (conn.closed) return;
        conn.closed = true;
        clientSocket.destroy();
        upstream.destroy();
        conns.delete(conn);
      },
    };
    conns.add(conn);
    const outOf = (dir) => (dir === 'toServer' ? upstream : clientSocket);
    const write = (dir, piece) => {
      if (dir === 'toClient' && proxy.budget !== null) {
        if (piece.length >= proxy.budget) {
          const last = piece.subarray(0, proxy.budget);
          proxy.budget = null;
          conn.stopping = true;
          if (last.length) outOf(dir).write(last, () => conn.destroy());
          else conn.destroy();
          proxy.stats[dir].bytes += last.length;
          return false;
        }
        proxy.budget -= piece.length;
      }
      proxy.stats[dir].bytes += piece.length;
      proxy.stats[dir].pieces += 1;
      outOf(dir).write(piece);
      return true;
    };
    const pump = (dir) => {
      if (conn.closed || conn.stopping) return;
      const q = queues[dir];
      if (chunkBytes <= 0) {
        while (q.length) if (!write(dir, q.shift())) return;
      } else if (q.length) {
        if (pumping[dir]) return;
        pumping[dir] = true;
        const head = q[0];
        const piece = head.subarray(0, chunkBytes);
        if (piece.length === head.length) q.shift();
        else q[0] = head.subarray(chunkBytes);
        if (!write(dir, piece)) return;
        setImmediate(() => {
          pumping[dir] = false;
          pump(dir);
        });
        return;
      }
      if (q.length === 0 && ended[dir] && !pumping[dir]) outOf(dir).end();
    };
    const push = (dir, chunk) => {
      if (conn.closed || conn.stopping) return;
      queues[dir].push(chunk);
      pump(dir);
    };
    clientSocket.on('data', (c) => push('toServer', c));
    upstream.on('data', (c) => push('toClient', c));
    clientSocket.on('end', () => {
      ended.toServer = true;
      pump('toServer');
    });
    upstream.on('end', () => {
      ended.toClient = true;
      pump('toClient');
    });
    for (const s of [clientSocket, upstream]) {
      s.on('error', () => conn.destroy());
      s.on('close', () => conn.destroy());
    }
  });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  proxy.port = listener.address().port;
  return proxy;
}

/**
 * A logger for the `logger` option that records every line: { lines: [[level, text]],
 * error, warn, info, matching(re) }.
 */
function recordingLogger() {
  const lines = [];
  const logger = { lines };
  for (const level of ['error', 'warn', 'info', 'debug']) logger[level] = (text) => lines.push([level, String(text)]);
  logger.matching = (re) => lines.filter(([, text]) => re.test(text));
  return logger;
}

/**
 * An ioredis client over TLS to `server` (trusting certs.ca, presenting certs.client): an
 * independent witness to seed data and check what the client under test did. Disconnect it.
 */
function tlsWitness(server, certs, options = {}) {
  const IORedis = require('ioredis');
  const witness = new IORedis({
    host: 'localhost',
    port: server.port,
    tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key, servername: 'localhost' },
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    ...options,
  });
  witness.on('error', () => {});
  return witness;
}

/**
 * Runs `source` with `node -e` in a process of its own. Resolves { code, signal, stdout,
 * stderr, timedOut }; a child still running after timeoutMs is killed (SIGKILL) and
 * reported as timedOut: a hang fails the test instead of hanging it.
 */
function runNode(source, { timeoutMs = 20000, env = {} } = {}) {
  const { spawn } = require('child_process');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', source], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/**
 * The pieces of secret material in `certs` that no error message, log line or inspect
 * output may contain: the passphrase and every base64 line of each private key.
 */
function secretsOf(certs) {
  const keys = [certs.ca, certs.client, certs.clientEncrypted, ...Object.values(certs.servers)].map((e) => e.key);
  const lines = keys.flatMap((pem) => pem.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----')));
  return [certs.passphrase, ...lines];
}

/** The secrets of `certs` that `text` contains (an empty array when none). */
function leakedSecrets(text, certs) {
  return secretsOf(certs).filter((secret) => String(text).includes(secret));
}

// Node's names for OpenSSL's X509_V_ERR_* when the chain does not lead to a trusted CA.
const UNTRUSTED_CHAIN_CODES = [
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
];

module.exports = {
  makeCertificates,
  startTlsRedis,
  tlsPing,
  createTlsProxy,
  recordingLogger,
  tlsWitness,
  runNode,
  secretsOf,
  leakedSecrets,
  UNTRUSTED_CHAIN_CODES,
  PASSPHRASE,
};
