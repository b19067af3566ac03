'use strict';
// A client in Sentinel mode on a real setup (1 primary, 1 replica, 3 sentinels): it finds
// the primary through the sentinels, follows a failover (the primary killed under load, and a
// SENTINEL FAILOVER) to the new primary, keeps every write acknowledged and replicated before
// the failover, fails fast and says why when no sentinel answers, and reports which node
// serves. Recovery times are printed.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const { createClient, RedisClient } = require('../../lib/redis');
const { createHealth } = require('../../lib/health');
const { metricsSnapshot } = require('../../lib/metrics');
const { startSentinels } = require('../helpers/cluster');
const { freePort, ping } = require('../helpers/redis-server');
const { sleep, waitFor, watchUnhandledRejections } = require('../helpers/async');

// A port nothing listens on that no other suite can take meanwhile (a free port picked
// with listen(0) may be handed to another suite's server before it is used): tcpmux's, below
// the ephemeral range.
const NOWHERE = 1;

let setup;
let unhandled;
const clients = [];

function client(options = {}) {
  const c = createClient({ sentinels: setup.sentinelAddrs.split(','), name: setup.masterName, logger: false, ...options });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  unhandled = watchUnhandledRejections();
  setup = await startSentinels({ replicas: 1, sentinels: 3 });
}, 60000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.quit()));
  if (setup) await setup.stop();
  expect(unhandled.stop()).toEqual([]);
});

test('the primary is found through the sentinels; status, health and metrics say which node serves', async () => {
  const c = client({ connectionName: 'via-sentinel' });
  expect(await c.set('s:k', 'v')).toBe('OK');
  expect(await c.get('s:k')).toBe('v');
  const s = c.status();
  expect(s.sentinel).toEqual({ name: setup.masterName, primary: `127.0.0.1:${setup.primary.port}`, sentinels: setup.sentinelAddrs.split(',') });
  expect([s.host, s.port]).toEqual(['127.0.0.1', setup.primary.port]);
  // connectionName is CLIENT SETNAME; name is the primary's name for the sentinels.
  expect(await setup.command(setup.primary.port, 'CLIENT', 'LIST')).toMatch(/name=via-sentinel/);
  const report = createHealth({ client: c })();
  expect(report.status).toBe('ok');
  expect(report.redis).toMatchObject({ mode: 'sentinel', primary: `127.0.0.1:${setup.primary.port}`, sentinelName: setup.masterName });
  expect(metricsSnapshot(c).nodes).toEqual([expect.objectContaining({ node: `127.0.0.1:${setup.primary.port}`, role: 'primary', state: 'ready' })]);
});

test('a sentinel that is down is skipped; none reachable, or an unknown name, fails fast and says why', async () => {
  const dead = NOWHERE;
  const c = client({ sentinels: [`127.0.0.1:${dead}`, ...setup.sentinelAddrs.split(',')] });
  expect(await c.ping()).toBe('PONG');

  const nowhere = client({ sentinels: [`127.0.0.1:${dead}`], connectTimeout: 1000 });
  let t = Date.now();
  let err = await nowhere.get('k').catch((e) => e);
  expect(Date.now() - t).toBeLessThan(3000);
  expect(err.code).toBe('ERR_SENTINEL');
  expect(err.message).toContain(`127.0.0.1:${dead}: ECONNREFUSED`);

  const unknown = client({ name: 'no-such-primary', connectTimeout: 1000 });
  t = Date.now();
  err = await unknown.get('k').catch((e) => e);
  expect(Date.now() - t).toBeLessThan(3000);
  expect(err.code).toBe('ERR_SENTINEL');
  expect(err.message).toMatch(/knows no primary named "no-such-primary"/);
});

test('sentinels with a password of their own (sentinelPassword)', async () => {
  // A fourth sentinel, with requirepass, watching the same primary.
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hirecache-sentinel-auth-'));
  const conf = path.join(dir, 'sentinel.conf');
  fs.writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, 'requirepass s3nt1nel',
    `sentinel monitor ${setup.masterName} 127.0.0.1 ${setup.primary.port} 2`, ''].join('\n'));
  const proc = spawn('/usr/bin/redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  try {
    await waitFor(() => ping(port), { what: 'the password-protected sentinel' });
    const refused = client({ sentinels: [`127.0.0.1:${port}`], connectTimeout: 1000 });
    const err = await refused.get('k').catch((e) => e);
    expect(err.code).toBe('ERR_SENTINEL');
    expect(err.message).toMatch(/NOAUTH|WRONGPASS|AUTH/);
    expect(err.message).not.toContain('s3nt1nel');
    const ok = client({ sentinels: [`127.0.0.1:${port}`], sentinelPassword: 's3nt1nel' });
    expect(await ok.ping()).toBe('PONG');
    await ok.quit();
  } finally {
    proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a Sentinel client does not hold the process open: it exits once its work is done, without quit()', () => {
  const script = `const { createClient } = require(${JSON.stringify(path.join(__dirname, '../../lib/redis'))});
    const c = createClient({ sentinels: ${JSON.stringify(setup.sentinelAddrs.split(','))}, name: ${JSON.stringify(setup.masterName)}, logger: false });
    c.set('exit:k', 'v').then((r) => console.log(r));`;
  const t = Date.now();
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 15000 });
  expect(r.stdout.trim()).toBe('OK');
  expect(r.status).toBe(0);
  expect(Date.now() - t).toBeLessThan(10000);
});

test('REDIS_SENTINELS and REDIS_SENTINEL_NAME; what Sentinel mode cannot take, refused by name', () => {
  const env = { REDIS_SENTINELS: setup.sentinelAddrs, REDIS_SENTINEL_NAME: setup.masterName };
  const c = new RedisClient({ logger: false }, env);
  clients.push(c);
  expect(c.status().sentinel.sentinels).toEqual(setup.sentinelAddrs.split(','));
  expect(() => new RedisClient({}, { REDIS_SENTINELS: setup.sentinelAddrs })).toThrow(/REDIS_SENTINEL_NAME/);
  expect(() => new RedisClient({}, { ...env, REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow(/both set/);
  expect(() => createClient({ sentinels: ['127.0.0.1:1'], name: 'm', role: 'slave' })).toThrow(/role/);
  expect(() => createClient({ sentinels: ['127.0.0.1:1'], name: 'm', url: 'redis://x:1' })).toThrow(/leave out url/);
  expect(() => createClient({ sentinels: ['127.0.0.1:1'], name: 'm', cluster: true })).toThrow(/both given/);
  expect(() => createClient({ sentinelPassword: 'x' })).toThrow(/Sentinel mode/);
  expect(() => createClient({ sentinels: ['127.0.0.1:1'], name: 'm', enableTLSForSentinelMode: true })).toThrow(/enableTLSForSentinelMode/);
  expect(() => createClient({ sentinels: [], name: 'm' })).toThrow(/non-empty/);
});

test('the primary killed under load: the client follows the promotion; acknowledged, replicated writes survive', async () => {
  const c = client({ commandTimeout: 2000, connectTimeout: 1000 });
  const N = 2000;
  // Acknowledged AND replicated (WAIT counts its own connection's writes).
  const replicated = await c.isolated(async (conn) => {
    await Promise.all(Array.from({ length: N }, (_, i) => conn.set(`k:${i}`, `v${i}`)));
    return conn.call('WAIT', 1, 5000);
  });
  expect(replicated).toBe(1);
  const events = [];
  let wrong = 0;
  let slowest = 0;
  let running = true;
  let n = 0;
  const loop = (async () => {
    const pending = [];
    while (running) {
      for (let j = 0; j < 10; j++, n++) {
        const key = `k:${n % N}`;
        const expected = `v${n % N}`;
        const t = Date.now();
        pending.push(c.get(key).then(
          (v) => {
            if (v !== expected) wrong += 1;
            events.push({ at: Date.now(), ok: true });
          },
          (err) => events.push({ at: Date.now(), ok: false, code: err.code }),
        ).finally(() => { slowest = Math.max(slowest, Date.now() - t); }));
      }
      await sleep(5);
    }
    await Promise.all(pending);
  })();
  await sleep(300);
  const killedAt = Date.now();
  const killedPort = setup.primary.port;
  const { newPrimaryPort, ms } = await setup.failover({ kill: true });
  await waitFor(() => events.some((e) => e.ok && e.at > killedAt + ms), { what: 'reads served by the new primary', timeout: 20000 });
  await sleep(300);
  running = false;
  await loop;
  const after = events.filter((e) => e.at > killedAt);
  const failures = after.filter((e) => !e.ok);
  const lastFailure = failures.length ? failures[failures.length - 1].at - killedAt : 0;
  const codes = {};
  for (const e of failures) codes[e.code] = (codes[e.code] || 0) + 1;
  console.log(`primary killed: the sentinels named ${newPrimaryPort} after ${ms} ms; the client's last failure ${lastFailure} ms `
    + `after the kill; failures by code ${JSON.stringify(codes)}; slowest call ${slowest} ms; wrong replies ${wrong}`);
  expect(wrong).toBe(0);
  expect(slowest).toBeLessThan(4000);
  expect(lastFailure).toBeLessThan(ms + 3000);
  expect(c.status().sentinel.primary).toBe(`127.0.0.1:${newPrimaryPort}`);
  const all = await c.mget(Array.from({ length: N }, (_, i) => `k:${i}`));
  expect(all).toEqual(Array.from({ length: N }, (_, i) => `v${i}`));
  expect(await c.set('after', '1')).toBe('OK');
  // The old primary comes back, as a replica of the new one (for the next test).
  await setup.restart(killedPort);
}, 60000);

test('a graceful SENTINEL FAILOVER moves the client to the new primary', async () => {
  const c = client();
  // Acknowledged and replicated before the failover (WAIT counts its own connection's writes).
  expect(await c.isolated(async (conn) => {
    await conn.set('g:before', '1');
    return conn.call('WAIT', 1, 5000);
  })).toBe(1);
  const old = setup.primary.port;
  const { newPrimaryPort, ms } = await setup.failover({ kill: false });
  expect(newPrimaryPort).not.toBe(old);
  const t = Date.now();
  // Writes go on; each lands on the new primary once the client has moved.
  await waitFor(async () => (await c.set('g:after', String(Date.now())).then(() => true, () => false))
    && c.status().sentinel.primary === `127.0.0.1:${newPrimaryPort}`, { what: 'writes on the new primary', timeout: 15000 });
  console.log(`SENTINEL FAILOVER: a new primary after ${ms} ms; the client wrote to it ${Date.now() - t} ms later`);
  expect(await setup.command(newPrimaryPort, 'GET', 'g:after')).not.toBeNull();
  expect(await c.get('g:before')).toBe('1');
}, 60000);
