'use strict';
// Proves the connection handshake: AUTH with a password and with an ACL user (from the URL
// and from options, percent-encoded characters included), SELECT isolating databases, and
// CLIENT SETNAME, all of it again after a reconnect; and that a password never shows up
// in an error, a stack, a status or util.inspect of the client.
const util = require('util');
const { createClient } = require('../../lib/redis');
const errors = require('../../lib/errors');
const { startRedis } = require('../helpers/redis-server');
const { rawCommand } = require('../helpers/raw-redis');
const { waitFor, outcome } = require('../helpers/async');

const PASSWORD = 'pw-S3cr3t-Zq9x';
const WRONG = 'wrong-Pw-Xk7m';
const ALICE_PW = 'alice-Pw-R4nd0m';
const BOB_PW = 'p@ss:w/rd%#?';

let server;
let aclServer;
const clients = [];

function client(options) {
  const c = createClient(options);
  clients.push(c);
  return c;
}

/** Asserts that no trace of `secret` is in anything a user could log about err/client. */
function expectNoSecret(secret, { err, client: c } = {}) {
  const texts = [];
  if (err) texts.push(String(err.message), String(err.stack), util.inspect(err, { depth: 5 }));
  if (err) texts.push(JSON.stringify(err));
  if (c) {
    texts.push(util.inspect(c, { depth: 5, showHidden: true }));
    texts.push(JSON.stringify(c.status()));
    try {
      texts.push(JSON.stringify(c));
    } catch {
      // A client need not be JSON-serialisable; it just must not leak when it is.
    }
  }
  for (const t of texts) expect(t).not.toContain(secret);
  // Percent-encoded forms must not leak either.
  for (const t of texts) expect(t).not.toContain(encodeURIComponent(secret));
}

beforeAll(async () => {
  server = await startRedis({ args: ['--requirepass', PASSWORD] });
  aclServer = await startRedis({
    args: [
      '--user', 'default', 'off',
      '--user', 'alice', 'on', `>${ALICE_PW}`, '~app:*', '+@all',
      '--user', 'bob', 'on', `>${BOB_PW}`, '~*', '+@all',
    ],
  });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.quit()));
  await Promise.allSettled([server && server.stop(), aclServer && aclServer.stop()]);
});

describe('AUTH with a password (requirepass)', () => {
  test('the password from the URL authenticates', async () => {
    const c = client({ url: `redis://:${PASSWORD}@127.0.0.1:${server.port}` });
    await expect(c.call('PING')).resolves.toBe('PONG');
    expectNoSecret(PASSWORD, { client: c });
  });

  test('the password from options authenticates', async () => {
    const c = client({ host: '127.0.0.1', port: server.port, password: PASSWORD });
    await expect(c.call('SET', 'k', 'v')).resolves.toBe('OK');
    expectNoSecret(PASSWORD, { client: c });
  });

  test('a wrong password rejects with code WRONGPASS and never shows the password', async () => {
    const c = client({ url: `redis://:${WRONG}@127.0.0.1:${server.port}`, connectTimeout: 3000 });
    const err = await c.call('PING').catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('WRONGPASS');
    expectNoSecret(WRONG, { err, client: c });
    const { lastError } = c.status();
    expect(lastError && lastError.code).toBe('WRONGPASS');
  });

  test('a wrong password in options never shows either', async () => {
    const c = client({ host: '127.0.0.1', port: server.port, password: WRONG, connectTimeout: 3000 });
    const err = await c.call('GET', 'k').catch((e) => e);
    expect(err.code).toBe('WRONGPASS');
    expectNoSecret(WRONG, { err, client: c });
  });

  test('no password against a server that needs one rejects with code NOAUTH', async () => {
    const c = client({ host: '127.0.0.1', port: server.port, connectTimeout: 3000 });
    const err = await c.call('GET', 'k').catch((e) => e);
    expect(err).toBeInstanceOf(errors.ReplyError);
    expect(err.code).toBe('NOAUTH');
  });
});

describe('AUTH with an ACL user', () => {
  test('user and password from the URL authenticate as that user', async () => {
    const c = client({ url: `redis://alice:${ALICE_PW}@127.0.0.1:${aclServer.port}` });
    await expect(c.call('ACL', 'WHOAMI')).resolves.toBe('alice');
    await expect(c.call('SET', 'app:x', '1')).resolves.toBe('OK');
    expectNoSecret(ALICE_PW, { client: c });
  });

  test("the user's key permissions apply (NOPERM outside ~app:*)", async () => {
    const c = client({ host: '127.0.0.1', port: aclServer.port, username: 'alice', password: ALICE_PW });
    const err = await c.call('SET', 'other', '1').catch((e) => e);
    expect(err).toBeInstanceOf(errors.ReplyError);
    expect(err.code).toBe('NOPERM');
  });

  test('a percent-encoded password in the URL is decoded before AUTH', async () => {
    const url = `redis://bob:${encodeURIComponent(BOB_PW)}@127.0.0.1:${aclServer.port}`;
    const c = client({ url });
    await expect(c.call('ACL', 'WHOAMI')).resolves.toBe('bob');
    expectNoSecret(BOB_PW, { client: c });
  });

  test('a wrong password for the user rejects with WRONGPASS and does not leak', async () => {
    const c = client({ url: `redis://alice:${WRONG}@127.0.0.1:${aclServer.port}`, connectTimeout: 3000 });
    const err = await c.call('PING').catch((e) => e);
    expect(err.code).toBe('WRONGPASS');
    expectNoSecret(WRONG, { err, client: c });
  });
});

describe('SELECT and CLIENT SETNAME', () => {
  const raw = () => ({ port: server.port, password: PASSWORD });

  test('the db from the URL and from options isolate keys', async () => {
    const a = client({ url: `redis://:${PASSWORD}@127.0.0.1:${server.port}/2` });
    const b = client({ host: '127.0.0.1', port: server.port, password: PASSWORD, db: 3 });
    await a.call('SET', 'shared-name', 'in-2');
    await b.call('SET', 'shared-name', 'in-3');
    await expect(a.call('GET', 'shared-name')).resolves.toBe('in-2');
    await expect(b.call('GET', 'shared-name')).resolves.toBe('in-3');
    expect(await rawCommand({ ...raw(), db: 2 }, 'GET', 'shared-name')).toBe('in-2');
    expect(await rawCommand({ ...raw(), db: 3 }, 'GET', 'shared-name')).toBe('in-3');
    expect(await rawCommand({ ...raw(), db: 0 }, 'EXISTS', 'shared-name')).toBe(0);
  });

  test('the name is visible in CLIENT LIST', async () => {
    const c = client({ host: '127.0.0.1', port: server.port, password: PASSWORD, name: 'hc-auth-test' });
    await expect(c.call('CLIENT', 'GETNAME')).resolves.toBe('hc-auth-test');
    const list = await rawCommand(raw(), 'CLIENT', 'LIST');
    expect(list).toMatch(/ name=hc-auth-test /);
  });

  test('AUTH, SELECT and SETNAME are redone after the server drops the connection', async () => {
    const c = client({
      host: '127.0.0.1', port: server.port, password: PASSWORD, db: 5, name: 'hc-reconnects',
      reconnectBaseDelay: 10, reconnectMaxDelay: 100,
    });
    await c.call('SET', 'where', 'db5');
    const id = await c.call('CLIENT', 'ID');
    expect(await rawCommand(raw(), 'CLIENT', 'KILL', 'ID', String(id))).toBe(1);
    await waitFor(async () => (await outcome(c.call('PING'))).ok, { what: 'the client to reconnect' });
    expect(await c.call('CLIENT', 'ID')).not.toBe(id);
    await expect(c.call('GET', 'where')).resolves.toBe('db5');
    await expect(c.call('CLIENT', 'GETNAME')).resolves.toBe('hc-reconnects');
  });
});

test('no password for a server that wants one: NOAUTH is the last error, logged once, and opens the breaker', async () => {
  const lines = [];
  const logger = { error: (t) => lines.push(['error', t]), warn: (t) => lines.push(['warn', t]), info: (t) => lines.push(['info', t]) };
  const c = client({ host: '127.0.0.1', port: server.port, logger, breaker: { failureThreshold: 3 } });
  for (let i = 0; i < 6; i++) await outcome(c.get('k'));
  await waitFor(() => c.breakerState === 'open');
  expect(c.status()).toMatchObject({ breakerReason: 'failures', lastError: { code: 'NOAUTH' } });
  const fast = await outcome(c.get('k'));
  expect(fast.error.code).toBe('ERR_BREAKER_OPEN');
  await waitFor(() => lines.length > 0);
  expect(lines).toHaveLength(1);
  expect(lines[0][0]).toBe('error');
  expect(lines[0][1]).toMatch(/refused the credentials \(NOAUTH\)/);
});
