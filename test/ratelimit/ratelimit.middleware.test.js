'use strict';
// Proves the Express middleware: 429 with a JSON body and Retry-After, the IETF RateLimit
// fields (by default as express-rate-limit writes draft-8) and the legacy X-RateLimit-* ones
// as configured, with the bucket's
// capacity when it differs from the quota, IPv6 clients keyed by their /56, IPv4 clients seen
// through IPv6 (mapped, translated, NAT64) as IPv4 and the special addresses of ::/96 as
// themselves, req.ip honouring 'trust proxy' (and one warning when X-Forwarded-For arrives
// without it) but never naming a bucket when it is no IP address, skip / handler / cost
// (a plain value not awaited, a throw or rejection passed to Express), a missing key
// answered 400 or skipped (never a shared bucket named "undefined"), and a store failure
// passed to Express as an error.
const { createHash } = require('crypto');
const express = require('express');
const { createLimiter, rateLimitByIp, rateLimitByKey, RateLimitResult, ipKey } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');
const { freePort } = require('../helpers/redis-server');

let counter = 0;
const servers = [];

/** The draft-8 partition key of `key`: base64 of the first 12 hex digits of its SHA-256. */
const pk = (key) => Buffer.from(createHash('sha256').update(key).digest('hex').slice(0, 12)).toString('base64');

const memoryLimiter = (options) => createLimiter({ store: 'memory', keyPrefix: `rl:mw:${++counter}`, ...options });

/** Starts `app` on a loopback port; resolves with request(path, { headers, method, body }). */
async function serve(app) {
  // Four parameters, or Express would not take it for an error handler.
  app.use((err, req, res, _next) => res.status(500).json({ error: err.message, code: err.code }));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  const base = `http://127.0.0.1:${server.address().port}`;
  return async (path, { headers = {}, method = 'GET', body } = {}) => {
    const res = await fetch(base + path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
}

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

function appWith(...middleware) {
  const app = express();
  app.use(express.json());
  app.all('/x', ...middleware, (req, res) => res.json({ ok: true }));
  return app;
}

/** Resolves once the promise callbacks queued so far, and those they queue, have run. */
const settled = () => new Promise(setImmediate);

/** Runs `test` with process.emitWarning silenced; resolves with the calls made with `code`. */
async function warningsWhile(code, test) {
  const emit = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  try {
    await test();
    return emit.mock.calls.filter(([, o]) => o && o.code === code);
  } finally {
    emit.mockRestore();
  }
}

describe('ipKey', () => {
  test('NAT64 (64:ff9b::/96) and IPv4-translated (::ffff:0:a.b.c.d) addresses are keyed as the IPv4 client they carry', () => {
    expect(ipKey('64:ff9b::198.51.100.7')).toBe('198.51.100.7');
    expect(ipKey('64:ff9b::c633:6408')).toBe('198.51.100.8');
    expect(ipKey('64:ff9b:0:0:0:0:c633:6408', 128)).toBe('198.51.100.8');
    expect(ipKey('::ffff:0:198.51.100.9')).toBe('198.51.100.9');
    expect(ipKey('::ffff:198.51.100.7')).toBe('198.51.100.7');
    // A network-specific prefix does not say where its IPv4 address sits: keyed by the subnet.
    expect(ipKey('64:ff9b:1::198.51.100.7')).toBe('64:ff9b:1::/56');
  });

  test('::, ::1 and IPv4-compatible ::a.b.c.d are keyed as themselves, not as one bucket of ::/56', () => {
    expect(ipKey('::1')).toBe('::1/128');
    expect(ipKey('0:0:0:0:0:0:0:1')).toBe('::1/128');
    expect(ipKey('::1%lo')).toBe('::1/128');
    expect(ipKey('::')).toBe('::/128');
    expect(ipKey('::198.51.100.7')).toBe('::c633:6407/128');
    expect(ipKey('::198.51.100.8')).toBe('::c633:6408/128');
    // The rest of 0::/8 is an ordinary network to the subnet.
    expect(ipKey('::1:0:0:0:1')).toBe('::/56');
  });

  test('other IPv6 addresses are keyed by their network, in one written form; a non-IP has no key', () => {
    expect(ipKey('2001:db8:abcd:12ff:ffff:1:2:3')).toBe('2001:db8:abcd:1200::/56');
    expect(ipKey('2001:0DB8:0:0:1::1', 64)).toBe('2001:db8::/64');
    expect(ipKey('2001:db8:0:0:1::1', 128)).toBe('2001:db8::1:0:0:1/128');
    expect(ipKey('fe80::1%eth0', 64)).toBe('fe80::/64');
    expect(ipKey('198.51.100.7')).toBe('198.51.100.7');
    for (const junk of ['hello', '', '198.51.100.256', '2001:db8::g', undefined]) expect(ipKey(junk)).toBeUndefined();
  });
});

describe('rateLimitByIp', () => {
  test('sets both header families by default and answers 429 with a JSON body and Retry-After', async () => {
    const limiter = memoryLimiter({ points: 3, duration: 60 }); // a point every 20 s
    const request = await serve(appWith(rateLimitByIp(limiter)));
    const first = await request('/x');
    expect(first.status).toBe(200);
    const name = limiter.keyPrefix;
    expect(first.headers.get('ratelimit-policy')).toBe(`"${name}"; q=3; w=60; pk=:${pk('127.0.0.1')}:`);
    expect(first.headers.get('ratelimit')).toBe(`"${name}"; r=2; t=20`);
    expect(first.headers.get('x-ratelimit-limit')).toBe('3');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('2');
    const reset = Number(first.headers.get('x-ratelimit-reset'));
    expect(Math.abs(reset - (Date.now() / 1000 + 20))).toBeLessThan(5);
    await request('/x');
    await request('/x');
    const limited = await request('/x');
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ error: 'Too Many Requests', retryAfter: 20 });
    expect(limited.headers.get('retry-after')).toBe('20');
    expect(limited.headers.get('ratelimit')).toBe(`"${name}"; r=0; t=20`);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
  });

  test.each([
    ['draft', true, false],
    ['legacy', false, true],
    [false, false, false],
  ])('headers: %p', async (mode, draft, legacy) => {
    const request = await serve(appWith(rateLimitByIp(memoryLimiter({ points: 3, duration: 60 }), { headers: mode })));
    const r = await request('/x');
    expect(r.headers.has('ratelimit')).toBe(draft);
    expect(r.headers.has('ratelimit-policy')).toBe(draft);
    expect(r.headers.has('x-ratelimit-remaining')).toBe(legacy);
  });

  test('IPv6 clients are keyed by their /56; another /56 has its own bucket', async () => {
    const app = appWith(rateLimitByIp(memoryLimiter({ points: 2, duration: 600 })));
    app.set('trust proxy', true);
    const request = await serve(app);
    const from = (ip) => request('/x', { headers: { 'x-forwarded-for': ip } });
    expect((await from('2001:db8:abcd:1201::1')).status).toBe(200);
    expect((await from('2001:db8:abcd:12ff:ffff:1:2:3')).status).toBe(200);
    expect((await from('2001:db8:abcd:1234::42')).status).toBe(429); // same /56, third request
    expect((await from('2001:db8:abcd:1300::1')).status).toBe(200); // the next /56
    expect((await from('2001:0db8:abcd:1300:0:0:0:2')).status).toBe(200); // same, written long
    expect((await from('2001:db8:abcd:1300::3')).status).toBe(429);
  });

  test('IPv4-mapped IPv6 addresses share the IPv4 address bucket', async () => {
    const app = appWith(rateLimitByIp(memoryLimiter({ points: 2, duration: 600 })));
    app.set('trust proxy', true);
    const request = await serve(app);
    const from = (ip) => request('/x', { headers: { 'x-forwarded-for': ip } });
    expect((await from('198.51.100.7')).status).toBe(200);
    expect((await from('::ffff:198.51.100.7')).status).toBe(200);
    expect((await from('::ffff:c633:6407')).status).toBe(429);
    expect((await from('198.51.100.8')).status).toBe(200);
  });

  test('NAT64 clients each have a bucket; ::1 and ::2 do not share one', async () => {
    const app = appWith(rateLimitByIp(memoryLimiter({ points: 2, duration: 600 })));
    app.set('trust proxy', true);
    const request = await serve(app);
    const from = async (ip) => (await request('/x', { headers: { 'x-forwarded-for': ip } })).status;
    expect(await from('64:ff9b::198.51.100.7')).toBe(200);
    expect(await from('64:ff9b::198.51.100.7')).toBe(200);
    expect(await from('64:ff9b::198.51.100.8')).toBe(200); // another IPv4 client behind the NAT64
    expect(await from('198.51.100.7')).toBe(429); // the same client, met over IPv4
    expect(await from('::1')).toBe(200);
    expect(await from('::1')).toBe(200);
    expect(await from('::2')).toBe(200);
    expect(await from('::ffff:0:198.51.100.8')).toBe(200);
    expect(await from('198.51.100.8')).toBe(429);
  });

  test("a req.ip that is no IP address is keyed by the socket's address, with one warning; without one the key is missing", async () => {
    let mod;
    jest.isolateModules(() => {
      mod = require('../../lib/ratelimit');
    });
    const limiter = mod.createLimiter({ store: 'memory', keyPrefix: 'rl:mw:junk', points: 2, duration: 600 });
    const ours = await warningsWhile('HIRECACHE_RATELIMIT_NOT_AN_IP', async () => {
      const app = appWith(mod.rateLimitByIp(limiter));
      app.set('trust proxy', true);
      const request = await serve(app);
      // req.ip is what the client wrote; every one of these comes from 127.0.0.1.
      expect((await request('/x', { headers: { 'x-forwarded-for': 'hello' } })).status).toBe(200);
      expect((await request('/x', { headers: { 'x-forwarded-for': 'world' } })).status).toBe(200);
      expect((await request('/x', { headers: { 'x-forwarded-for': 'again' } })).status).toBe(429);
      expect(await limiter.get('hello')).toBeNull();
      expect((await limiter.get('127.0.0.1')).remainingPoints).toBe(0);

      // No IP address on the socket either (it is gone): a missing key, answered 400.
      const res = { status: jest.fn(() => res), json: jest.fn() };
      const next = jest.fn();
      mod.rateLimitByIp(limiter)({ ip: 'hello', socket: {}, headers: {} }, res, next);
      await settled();
      expect(next).not.toHaveBeenCalled();
      expect(res.status).toHaveBeenCalledWith(400);
    });
    expect(ours).toHaveLength(1);
    expect(ours[0][0]).toMatch(/not an IP address/);
  });

  test('a req.ip carrying a port, as some proxies write it, is keyed by its address', async () => {
    const limiter = createLimiter({ store: 'memory', keyPrefix: 'rl:mw:port', points: 1, duration: 600 });
    const app = appWith(rateLimitByIp(limiter));
    app.set('trust proxy', 1);
    const request = await serve(app);
    const status = async (xff) => (await request('/x', { headers: { 'x-forwarded-for': xff } })).status;
    // Two clients behind one proxy: each has its own bucket, whatever its source port.
    expect(await status('198.51.100.7:5678')).toBe(200);
    expect(await status('198.51.100.7:6789')).toBe(429);
    expect(await status('198.51.100.8:5678')).toBe(200);
    expect(await status('[2001:db8:1:2::7]:443')).toBe(200);
    expect(await status('[2001:db8:1:2::8]:444')).toBe(429); // the same /56
    expect(await limiter.get('127.0.0.1')).toBeNull(); // never the proxy's bucket
  });

  test('ipKey refuses a subnet that is not a prefix length', () => {
    for (const subnet of [0, 129, 64.5, NaN]) expect(() => ipKey('2001:db8::1', subnet)).toThrow(RangeError);
    // Not a number at all: a TypeError, as for every option of hirecache (lib/util/validate.js).
    expect(() => ipKey('2001:db8::1', '56')).toThrow(TypeError);
    expect(() => ipKey('2001:db8::1', '56')).toThrow(/subnet/);
    expect(ipKey('2001:db8::1', 128)).toBe('2001:db8::1/128');
  });

  test("req.ip decides: without 'trust proxy' X-Forwarded-For is ignored, with one warning", async () => {
    let mod;
    jest.isolateModules(() => {
      mod = require('../../lib/ratelimit');
    });
    const ours = await warningsWhile('HIRECACHE_RATELIMIT_TRUST_PROXY', async () => {
      const limiter = mod.createLimiter({ store: 'memory', keyPrefix: 'rl:mw:xff', points: 2, duration: 600 });
      const request = await serve(appWith(mod.rateLimitByIp(limiter)));
      // Every request comes from 127.0.0.1, whatever the header claims.
      expect((await request('/x', { headers: { 'x-forwarded-for': '203.0.113.1' } })).status).toBe(200);
      expect((await request('/x', { headers: { 'x-forwarded-for': '203.0.113.2' } })).status).toBe(200);
      expect((await request('/x', { headers: { 'x-forwarded-for': '203.0.113.3' } })).status).toBe(429);
    });
    expect(ours).toHaveLength(1);
    expect(ours[0][0]).toMatch(/trust proxy/);
  });

  test('skip, handler and cost', async () => {
    const limiter = memoryLimiter({ points: 5, duration: 600 });
    const seen = [];
    const request = await serve(
      appWith(
        rateLimitByIp(limiter, {
          skip: (req) => req.get('x-internal') === 'yes',
          cost: (req) => (req.query.heavy ? 3 : 1),
          handler: (req, res, next, result) => {
            seen.push(result);
            res.status(429).json({ custom: true, wait: result.msBeforeNext });
          },
        }),
      ),
    );
    for (let i = 0; i < 10; i++) expect((await request('/x', { headers: { 'x-internal': 'yes' } })).status).toBe(200);
    const heavy = await request('/x?heavy=1');
    expect(heavy.headers.get('x-ratelimit-remaining')).toBe('2');
    expect((await request('/x?heavy=1')).status).toBe(429);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(RateLimitResult);
    const last = await request('/x?heavy=1');
    expect(last.body).toEqual({ custom: true, wait: expect.any(Number) });
    expect((await request('/x')).status).toBe(200); // a cost of 1 still fits
  });

  test('a cost above the burst is passed to Express as a RangeError, never a 429 with a wait that would not do', async () => {
    const limiter = memoryLimiter({ points: 2, duration: 60 });
    const request = await serve(appWith(rateLimitByIp(limiter, { cost: 3 })));
    const r = await request('/x');
    expect(r.status).toBe(500);
    expect(r.body.error).toMatch(/points \(3\) must not exceed the burst \(2\)/);
  });

  test('two limiters on one route both show in the draft fields; the tighter one in the legacy ones', async () => {
    const wide = memoryLimiter({ points: 100, duration: 60 });
    const tight = memoryLimiter({ points: 2, duration: 60 });
    const request = await serve(appWith(rateLimitByIp(wide), rateLimitByIp(tight)));
    const r = await request('/x');
    const p = pk('127.0.0.1');
    expect(r.headers.get('ratelimit-policy')).toBe(`"${wide.keyPrefix}"; q=100; w=60; pk=:${p}:, "${tight.keyPrefix}"; q=2; w=60; pk=:${p}:`);
    expect(r.headers.get('x-ratelimit-limit')).toBe('2');
    expect(r.headers.get('x-ratelimit-remaining')).toBe('1');
  });

  test.each([
    [2, 5, '; hirecache-burst=5'],
    [5, 2, '; hirecache-burst=2'],
    [3, 3, ''],
  ])('points %i, burst %i: X-RateLimit-Limit is the capacity; RateLimit-Policy keeps q and adds a differing burst', async (points, burst, param) => {
    const limiter = memoryLimiter({ points, duration: 60, burst });
    const request = await serve(appWith(rateLimitByIp(limiter)));
    const r = await request('/x');
    expect(r.headers.get('ratelimit-policy')).toBe(`"${limiter.keyPrefix}"; q=${points}; w=60; pk=:${pk('127.0.0.1')}:${param}`);
    expect(r.headers.get('x-ratelimit-limit')).toBe(String(burst));
    expect(r.headers.get('x-ratelimit-remaining')).toBe(String(burst - 1));
    expect(r.headers.get('ratelimit')).toMatch(new RegExp(`; r=${burst - 1}; `));
  });

  test('skip, keyFn and cost answering plain values are not awaited: the limiter is asked within the call', async () => {
    const limiter = memoryLimiter({ points: 5, duration: 60 });
    const consume = jest.spyOn(limiter, 'consume');
    const req = { ip: '192.0.2.1', query: { k: 'a' }, headers: {} };
    const plain = { skip: () => false, cost: () => 2, headers: false };

    const next = jest.fn();
    rateLimitByKey(limiter, (r) => r.query.k, plain)(req, {}, next);
    expect(consume).toHaveBeenCalledWith('a', 2);
    rateLimitByIp(limiter, plain)(req, {}, next);
    expect(consume).toHaveBeenLastCalledWith('192.0.2.1', 2);
    const skipped = jest.fn();
    rateLimitByIp(limiter, { skip: () => true })(req, {}, skipped);
    expect(skipped).toHaveBeenCalledWith();
    await settled();
    expect(next.mock.calls).toEqual([[], []]);

    // Promises are still awaited.
    consume.mockClear();
    const asyncNext = jest.fn();
    const awaited = { skip: async () => false, cost: () => Promise.resolve(3), headers: false };
    rateLimitByKey(limiter, async (r) => r.query.k, awaited)(req, {}, asyncNext);
    expect(consume).not.toHaveBeenCalled();
    await settled();
    expect(consume).toHaveBeenCalledWith('a', 3);
    expect(asyncNext).toHaveBeenCalledWith();
  });

  const boom = () => {
    throw new Error('boom');
  };
  const rejectBoom = async () => boom();
  test.each([
    ['skip throws', { skip: boom }],
    ['skip rejects', { skip: rejectBoom }],
    ['keyFn throws', {}, boom],
    ['keyFn rejects', {}, rejectBoom],
    ['cost throws', { cost: boom }],
    ['cost rejects', { cost: rejectBoom }],
    ['handler throws', { handler: boom }],
    ['handler rejects', { handler: rejectBoom }],
    ['onMissingKey throws', { onMissingKey: boom }, () => undefined],
    ['onMissingKey rejects', { onMissingKey: rejectBoom }, () => undefined],
  ])('%s: the error goes to the Express error handler', async (_, options, keyFn = () => 'k') => {
    const request = await serve(appWith(rateLimitByKey(memoryLimiter({ points: 1, duration: 600 }), keyFn, options)));
    await request('/x'); // a handler is only asked once the bucket is empty
    const r = await request('/x');
    expect(r.status).toBe(500);
    expect(r.body.error).toBe('boom');
  });

  test('options are checked when the middleware is made', () => {
    const l = memoryLimiter({ points: 1, duration: 1 });
    expect(() => rateLimitByIp(l, { headers: 'yes' })).toThrow(/option headers/);
    expect(() => rateLimitByIp(l, { cost: -1 })).toThrow(/option cost/);
    expect(() => rateLimitByIp(l, { ipv6Subnet: 200 })).toThrow(/option ipv6Subnet/);
    expect(() => rateLimitByIp(l, { skipp: () => true })).toThrow(/unknown option skipp/);
    expect(() => rateLimitByIp({})).toThrow(/createLimiter/);
    expect(() => rateLimitByKey(l, 'email')).toThrow(/keyFn/);
  });
});

describe('rateLimitByKey', () => {
  test('limits by the key and answers 400 for a missing one, never sharing an "undefined" bucket', async () => {
    const limiter = memoryLimiter({ points: 2, duration: 600 });
    const request = await serve(appWith(rateLimitByKey(limiter, (req) => req.body && req.body.email)));
    const login = (email) => request('/x', { method: 'POST', body: email === undefined ? {} : { email } });
    expect((await login('a@example.com')).status).toBe(200);
    expect((await login('a@example.com')).status).toBe(200);
    expect((await login('a@example.com')).status).toBe(429);
    expect((await login('b@example.com')).status).toBe(200);
    for (let i = 0; i < 5; i++) {
      const r = await login(undefined);
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('Bad Request');
    }
    expect((await login('')).status).toBe(400);
    expect(await limiter.get('undefined')).toBeNull();
    expect(await limiter.get('')).toBeNull();
  });

  test("onMissingKey 'skip' passes the request through untouched", async () => {
    const limiter = memoryLimiter({ points: 1, duration: 600 });
    const request = await serve(appWith(rateLimitByKey(limiter, (req) => req.query.phone, { onMissingKey: 'skip' })));
    for (let i = 0; i < 5; i++) {
      const r = await request('/x');
      expect(r.status).toBe(200);
      expect(r.headers.has('x-ratelimit-remaining')).toBe(false);
    }
    expect((await request('/x?phone=123')).status).toBe(200);
    expect((await request('/x?phone=123')).status).toBe(429);
  });

  test('an async keyFn and a key longer than maxKeyLength (answered like a missing key)', async () => {
    const limiter = createLimiter({ store: 'memory', keyPrefix: 'rl:mw:long', points: 1, duration: 600, maxKeyLength: 16 });
    const request = await serve(appWith(rateLimitByKey(limiter, async (req) => req.query.k)));
    expect((await request('/x?k=short')).status).toBe(200);
    expect((await request(`/x?k=${'x'.repeat(17)}`)).status).toBe(400);
  });

  test('a store failure goes to the Express error handler, not to a 429', async () => {
    const dead = createClient({ url: 'redis://127.0.0.1:1', connectTimeout: 500 });
    const limiter = createLimiter({ keyPrefix: 'rl:mw:dead', points: 5, duration: 60, client: dead, fallback: false });
    const request = await serve(appWith(rateLimitByKey(limiter, (req) => req.query.k)));
    const r = await request('/x?k=a');
    expect(r.status).toBe(500);
    expect(r.body.code).toBe('ECONNREFUSED');
    dead.disconnect();
  });

  test('works on the Redis limiter with its fallback when Redis is down', async () => {
    const port = await freePort();
    const dead = createClient({ url: `redis://127.0.0.1:${port}`, connectTimeout: 500 });
    const limiter = createLimiter({ keyPrefix: 'rl:mw:fb', points: 1, duration: 60, client: dead });
    const request = await serve(appWith(rateLimitByKey(limiter, (req) => req.query.k)));
    expect((await request('/x?k=a')).status).toBe(200);
    expect((await request('/x?k=a')).status).toBe(429);
    expect(limiter.status().usingFallback).toBe(true);
    dead.disconnect();
  });
});
