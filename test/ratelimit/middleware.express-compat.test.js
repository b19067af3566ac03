'use strict';
// Proves that an app arriving from express-rate-limit (v8) finds its options and its fields.
// express-rate-limit's own middleware (its MemoryStore, N per windowMs) and hirecache's
// (a memory limiter of N points per windowMs / 1000 s) run side by side on two Express apps,
// over real HTTP, and answer the same sequence of requests:
// - every standardHeaders mode (false, true, 'draft-6', 'draft-7', 'draft-8') with and without
//   legacyHeaders, and each hirecache `headers` alias, give the same field names in the same
//   order with the same values, except where a token bucket's reset differs from a fixed
//   window's (asserted as the numbers the bucket predicts); the draft-8 partition key is the
//   same for an IPv4, an IPv6 (/56) and a keyGenerator key; 429 and Retry-After as there;
// - req.rateLimit has express-rate-limit's shape and numbers; a handler written for
//   express-rate-limit (reading statusCode and message from its fourth argument) answers
//   alike; statusCode, message and retryAfter as there;
// - skipFailedRequests / skipSuccessfulRequests give the points back (requestWasSuccessful,
//   a connection closed before the response) and never for a refusal;
// - passOnStoreError lets a store failure through, logged; validate turns hirecache's own
//   warnings off by express-rate-limit's names;
// - windowMs / limit / max are taken when they agree with the limiter; conflicting, unknown
//   and unsupported options are refused by name when the middleware is made.
const http = require('http');
const express = require('express');
const { rateLimit } = require('express-rate-limit');
const { createLimiter, rateLimitByIp, rateLimitByKey, RateLimitResult } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');

const N = 5;
const WINDOW_MS = 60000; // for the bucket: a point every 12 s
const INTERVAL_SEC = WINDOW_MS / 1000 / N;

let counter = 0;
const servers = [];

const limiterFor = (options) => createLimiter({ store: 'memory', keyPrefix: `rl:erl:${++counter}`, points: N, duration: WINDOW_MS / 1000, ...options });
const erl = (options) => rateLimit({ windowMs: WINDOW_MS, limit: N, ...options });

/**
 * An app with `middleware` in front of: /x (200, with req.rateLimit as its body), /fail (500),
 * /missing (404) and /hang (never answers). Resolves with its port.
 */
async function serve(middleware, { trustProxy } = {}) {
  const app = express();
  if (trustProxy !== undefined) app.set('trust proxy', trustProxy);
  const info = (req) => ({ rateLimit: req.rateLimit, current: req.rateLimit && req.rateLimit.current, keys: req.rateLimit && Object.keys(req.rateLimit) });
  app.get('/x', ...middleware, (req, res) => res.json(info(req)));
  app.get('/fail', ...middleware, (req, res) => res.status(500).json(info(req)));
  app.get('/missing', ...middleware, (req, res) => res.status(404).json(info(req)));
  app.get('/hang', ...middleware, () => {});
  // Four parameters, or Express would not take it for an error handler.
  app.use((err, req, res, _next) => res.status(500).json({ error: err.message, code: err.code }));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return server.address().port;
}

afterAll(async () => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

/** GET `path`; resolves with the status, the raw header lines as [name, value] and the body. */
function get(port, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const raw = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) raw.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
        const json = /json/.test(res.headers['content-type'] || '');
        resolve({ status: res.statusCode, raw, header: (name) => res.headers[name.toLowerCase()], body: json ? JSON.parse(text) : text });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** GET `path` and hang up before any answer; resolves once the connection is closed. */
function abandon(port, path) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false });
    req.on('error', () => {});
    req.on('close', resolve);
    req.end(() => setTimeout(() => req.destroy(), 50));
  });
}

/** Resolves once `check()` holds, polling; rejects with its last value after `ms`. */
async function eventually(check, ms = 3000) {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value === true) return;
    if (Date.now() > until) throw new Error(`never held: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// The rate-limit fields of a response, in the order it sent them.
const FIELDS = new Set([
  'ratelimit', 'ratelimit-policy', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset',
  'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after',
]);
// Where a field states a reset, which a token bucket means otherwise than a fixed window.
const RESETS = {
  'ratelimit-reset': /^(\d+)$/,
  'x-ratelimit-reset': /^(\d+)$/,
  'retry-after': /^(\d+)$/,
  ratelimit: /(?:, reset=|; t=)(\d+)$/,
};

/**
 * The rate-limit fields of `response` as "Name: value" lines, each reset number replaced by
 * '#', and the reset numbers by field name: { lines, resets }.
 */
function fieldsOf(response) {
  const lines = [];
  const resets = {};
  for (const [name, value] of response.raw) {
    const lower = name.toLowerCase();
    if (!FIELDS.has(lower)) continue;
    const reset = RESETS[lower] && RESETS[lower].exec(value);
    if (reset) resets[lower] = Number(reset[1]);
    lines.push(`${name}: ${reset ? value.slice(0, reset.index) + value.slice(reset.index).replace(reset[1], '#') : value}`);
  }
  return { lines, resets };
}

/**
 * Sends the same requests to both apps, one after the other; resolves with the pairs of
 * responses [theirs, ours].
 */
async function sideBySide(theirPort, ourPort, paths, headers) {
  const pairs = [];
  for (const path of paths) pairs.push([await get(theirPort, path, headers), await get(ourPort, path, headers)]);
  return pairs;
}

const nowSec = () => Date.now() / 1000;

describe('the same fields as express-rate-limit, for the same numbers', () => {
  test.each([
    [false, true],
    [false, false],
    [true, true],
    [true, false],
    ['draft-6', true],
    ['draft-6', false],
    ['draft-7', true],
    ['draft-7', false],
    ['draft-8', true],
    ['draft-8', false],
  ])('standardHeaders %p, legacyHeaders %p', async (standardHeaders, legacyHeaders) => {
    const options = { standardHeaders, legacyHeaders, identifier: 'api' };
    const theirs = await serve([erl(options)]);
    const ours = await serve([rateLimitByIp(limiterFor(), options)]);
    const pairs = await sideBySide(theirs, ours, new Array(N + 2).fill('/x'));
    const anyFields = standardHeaders !== false || legacyHeaders;

    pairs.forEach(([a, b], i) => {
      const admitted = i < N;
      expect([a.status, b.status]).toEqual(admitted ? [200, 200] : [429, 429]);
      const their = fieldsOf(a);
      const our = fieldsOf(b);
      // Names, order and formats, and every value but the resets, byte for byte.
      expect(our.lines).toEqual(their.lines);
      expect(our.lines.length > 0).toBe(anyFields);
      if (!anyFields) return;
      // The fixed window resets 60 s after its first request; the bucket is full again
      // 12 s per point taken after an admission, and has its next point 12 s after a refusal.
      const ourReset = admitted ? INTERVAL_SEC * (i + 1) : INTERVAL_SEC;
      for (const field of ['ratelimit-reset', 'ratelimit', 'retry-after']) {
        if (our.resets[field] === undefined) continue;
        expect(our.resets[field]).toBe(ourReset);
        expect(their.resets[field]).toBeGreaterThanOrEqual(59);
      }
      if (legacyHeaders) {
        expect(Math.abs(our.resets['x-ratelimit-reset'] - (nowSec() + ourReset))).toBeLessThan(3);
        expect(Math.abs(their.resets['x-ratelimit-reset'] - (nowSec() + 60))).toBeLessThan(3);
      }
      expect(our.resets['retry-after'] !== undefined).toBe(!admitted);
    });
    // The numbers the formats carry, spelt out once for the strictest of them.
    const [, fifth] = pairs[N - 1];
    if (standardHeaders === 'draft-7') expect(fifth.header('ratelimit')).toBe(`limit=${N}, remaining=0, reset=${INTERVAL_SEC * N}`);
    if (standardHeaders === 'draft-7') expect(fifth.header('ratelimit-policy')).toBe(`${N};w=60`);
    if (standardHeaders === 'draft-8') expect(fifth.header('ratelimit')).toBe(`"api"; r=0; t=${INTERVAL_SEC * N}`);
    if (standardHeaders === 'draft-8') expect(fifth.header('ratelimit-policy')).toMatch(/^"api"; q=5; w=60; pk=:[A-Za-z0-9+/]{16}:$/);
  });

  test.each([
    ['both', 'draft-8', true],
    ['draft', 'draft-8', false],
    ['legacy', false, true],
    [true, false, true],
    [false, false, false],
    [undefined, 'draft-8', true],
  ])("hirecache's headers: %p is standardHeaders %p with legacyHeaders %p", async (headers, standardHeaders, legacyHeaders) => {
    const limiter = limiterFor();
    // hirecache's policy name is the limiter's keyPrefix unless identifier (or policyName) says otherwise.
    const theirs = await serve([erl({ standardHeaders, legacyHeaders, identifier: limiter.keyPrefix })]);
    const ours = await serve([rateLimitByIp(limiter, headers === undefined ? {} : { headers })]);
    for (const [a, b] of await sideBySide(theirs, ours, new Array(N + 1).fill('/x'))) {
      expect(b.status).toBe(a.status);
      expect(fieldsOf(b).lines).toEqual(fieldsOf(a).lines);
    }
  });

  test('draft-8 lists every limiter of a route, as express-rate-limit appends them', async () => {
    const options = (identifier) => ({ standardHeaders: 'draft-8', legacyHeaders: false, identifier });
    const theirs = await serve([erl(options('wide')), erl({ ...options('tight'), limit: 2 })]);
    const tight = limiterFor({ points: 2 });
    const ours = await serve([rateLimitByIp(limiterFor(), options('wide')), rateLimitByIp(tight, { ...options('tight'), limit: 2 })]);
    for (const [a, b] of await sideBySide(theirs, ours, ['/x', '/x', '/x'])) {
      expect(b.status).toBe(a.status);
      expect(fieldsOf(b).lines).toEqual(fieldsOf(a).lines);
      expect(fieldsOf(b).lines.filter((l) => l.startsWith('RateLimit-Policy'))).toHaveLength(2);
    }
  });

  test('the draft-8 partition key and req.rateLimit.key of an IPv6 client are those of its /56, as there', async () => {
    const options = { standardHeaders: 'draft-8', legacyHeaders: false, identifier: 'v6' };
    const theirs = await serve([erl(options)], { trustProxy: 'loopback' });
    const ours = await serve([rateLimitByIp(limiterFor(), options)], { trustProxy: 'loopback' });
    const from = (ip) => ({ 'x-forwarded-for': ip });
    const [[a1, b1]] = await sideBySide(theirs, ours, ['/x'], from('2001:db8:abcd:12ff::1'));
    const [[a2, b2]] = await sideBySide(theirs, ours, ['/x'], from('2001:0db8:abcd:1234:0:0:0:42'));
    expect(b1.body.rateLimit.key).toBe('2001:db8:abcd:1200::/56');
    expect(b1.body.rateLimit.key).toBe(a1.body.rateLimit.key);
    expect(b1.header('ratelimit-policy')).toBe(a1.header('ratelimit-policy'));
    // The same /56 written otherwise: the same bucket, the same partition key.
    expect(b2.header('ratelimit-policy')).toBe(b1.header('ratelimit-policy'));
    expect(fieldsOf(b2).lines).toEqual(fieldsOf(a2).lines);
    expect(b2.body.rateLimit.remaining).toBe(N - 2);
  });

  test('keyGenerator keys rateLimitByIp as it keys express-rate-limit, partition key included', async () => {
    const options = { standardHeaders: 'draft-8', legacyHeaders: true, identifier: 'user', keyGenerator: (req) => req.get('x-user') };
    const theirs = await serve([erl(options)]);
    const ours = await serve([rateLimitByIp(limiterFor(), options)]);
    const alice = await sideBySide(theirs, ours, new Array(N + 1).fill('/x'), { 'x-user': 'alice' });
    for (const [a, b] of alice) {
      expect(b.status).toBe(a.status);
      expect(fieldsOf(b).lines).toEqual(fieldsOf(a).lines);
    }
    expect(alice[0][1].body.rateLimit.key).toBe('alice');
    const [[a, b]] = await sideBySide(theirs, ours, ['/x'], { 'x-user': 'bob' });
    expect([a.status, b.status]).toEqual([200, 200]);
  });
});

describe('req.rateLimit, statusCode, message, handler and retryAfter as express-rate-limit', () => {
  // A handler as express-rate-limit's documentation writes one: it reads the options from its
  // fourth argument. hirecache's fourth argument is the refusal, which carries them too.
  const handler = (req, res, next, options) =>
    res.status(options.statusCode).json({ info: req.rateLimit, message: options.message, limit: options.limit, windowMs: options.windowMs });

  test("req.rateLimit has express-rate-limit's fields and numbers, on admissions and in a handler", async () => {
    const seen = [];
    const ours = rateLimitByIp(limiterFor(), {
      handler: (req, res, next, result) => {
        seen.push(result);
        return handler(req, res, next, result);
      },
    });
    const pairs = await sideBySide(await serve([erl({ handler })]), await serve([ours]), new Array(N + 1).fill('/x'));
    for (const [a, b] of pairs.slice(0, N)) {
      expect(b.body.keys).toEqual(['limit', 'used', 'remaining', 'resetTime', 'key']);
      expect(b.body.keys).toEqual(a.body.keys);
      const { resetTime: ourReset, ...our } = b.body.rateLimit;
      const { resetTime: theirReset, ...their } = a.body.rateLimit;
      expect(our).toEqual(their);
      expect(b.body.current).toBe(a.body.current); // the older name of used, not enumerable
      expect(new Date(ourReset).getTime()).toBeGreaterThan(Date.now());
      expect(typeof theirReset).toBe('string');
    }
    const [a, b] = pairs[N];
    expect(b.status).toBe(429);
    expect(b.status).toBe(a.status);
    const { resetTime: ourRefusalReset, ...our } = b.body.info;
    const { resetTime: theirRefusalReset, ...their } = a.body.info;
    expect(our).toEqual(their); // used is limit + 1 at the first refusal in both
    // The bucket's next point, 12 s away; the window's end, 60 s away.
    expect(Math.abs(new Date(ourRefusalReset).getTime() - (Date.now() + INTERVAL_SEC * 1000))).toBeLessThan(2000);
    expect(Math.abs(new Date(theirRefusalReset).getTime() - (Date.now() + WINDOW_MS))).toBeLessThan(2000);
    expect(our).toMatchObject({ limit: N, used: N + 1, remaining: 0, key: '127.0.0.1' });
    expect({ ...b.body, info: undefined }).toEqual({ ...a.body, info: undefined });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(RateLimitResult);
    expect(seen[0].remainingPoints).toBe(0);
    expect(JSON.parse(JSON.stringify(seen[0]))).toEqual({ remainingPoints: 0, msBeforeNext: expect.any(Number), consumedPoints: N + 1, isFirstInDuration: false });
  });

  test('requestPropertyName', async () => {
    const port = await serve([rateLimitByIp(limiterFor(), { requestPropertyName: 'quota' }), (req, res) => res.json({ quota: req.quota, rateLimit: req.rateLimit })]);
    const r = await get(port, '/x');
    expect(r.body.quota).toMatchObject({ limit: N, used: 1, remaining: N - 1, key: '127.0.0.1' });
    expect(r.body.rateLimit).toBeUndefined();
  });

  test.each([
    ['an object', { error: 'slow down' }],
    ['a function', (req) => ({ path: req.path, at: 'limit' })],
    ['an async function', async (req) => ({ path: req.path })],
  ])('statusCode and message (%s) answer as there', async (_, message) => {
    const options = { statusCode: 503, message };
    const pairs = await sideBySide(await serve([erl(options)]), await serve([rateLimitByIp(limiterFor(), options)]), new Array(N + 1).fill('/x'));
    const [a, b] = pairs[N];
    expect([a.status, b.status]).toEqual([503, 503]);
    expect(b.body).toEqual(a.body);
  });

  test('a message string is the message of the JSON body (express-rate-limit sends it as text)', async () => {
    const port = await serve([rateLimitByIp(limiterFor(), { message: 'Easy there.', statusCode: 503 })]);
    for (let i = 0; i < N; i++) await get(port, '/x');
    const r = await get(port, '/x');
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ error: 'Service Unavailable', message: 'Easy there.', retryAfter: INTERVAL_SEC });
  });

  test('retryAfter (a number or a function) replaces the Retry-After value, as there', async () => {
    for (const retryAfter of [7, (req) => Number(req.query.wait)]) {
      const options = { retryAfter, legacyHeaders: true };
      const pairs = await sideBySide(await serve([erl(options)]), await serve([rateLimitByIp(limiterFor(), options)]), new Array(N + 1).fill('/x?wait=7'));
      const [a, b] = pairs[N];
      expect([a.header('retry-after'), b.header('retry-after')]).toEqual(['7', '7']);
      expect(b.body.retryAfter).toBe(7);
    }
  });
});

describe('skipFailedRequests and skipSuccessfulRequests give the points back', () => {
  test('skipFailedRequests: failed requests (status >= 400) do not count; refusals never give points back', async () => {
    const limiter = limiterFor();
    const options = { skipFailedRequests: true };
    const theirs = await serve([erl(options)]);
    const ours = await serve([rateLimitByIp(limiter, options)]);
    for (const [a, b] of await sideBySide(theirs, ours, new Array(N * 2).fill('/fail'))) expect([a.status, b.status]).toEqual([500, 500]);
    for (const [a, b] of await sideBySide(theirs, ours, ['/missing', '/missing'])) expect([a.status, b.status]).toEqual([404, 404]);
    await eventually(async () => (await limiter.get('127.0.0.1')) === null);
    const pairs = await sideBySide(theirs, ours, new Array(N + 3).fill('/x'));
    expect(pairs.map(([a]) => a.status)).toEqual([...new Array(N).fill(200), 429, 429, 429]);
    expect(pairs.map(([, b]) => b.status)).toEqual(pairs.map(([a]) => a.status));
    expect(pairs[0][1].body.rateLimit.remaining).toBe(N - 1);
    // The 429s are failures too, yet took nothing, so nothing came back.
    expect((await limiter.get('127.0.0.1')).remainingPoints).toBe(0);
  });

  test('skipFailedRequests: a connection closed before the response gives its points back', async () => {
    const counted = limiterFor();
    const skipped = limiterFor();
    const countedPort = await serve([rateLimitByIp(counted)]);
    const skippedPort = await serve([rateLimitByIp(skipped, { skipFailedRequests: true })]);
    await abandon(countedPort, '/hang');
    await abandon(skippedPort, '/hang');
    await eventually(async () => (await skipped.get('127.0.0.1')) === null);
    expect((await counted.get('127.0.0.1')).remainingPoints).toBe(N - 1);
  });

  test('skipSuccessfulRequests: successful requests do not count; failed ones do', async () => {
    const limiter = limiterFor();
    const options = { skipSuccessfulRequests: true };
    const theirs = await serve([erl(options)]);
    const ours = await serve([rateLimitByIp(limiter, options)]);
    for (const [a, b] of await sideBySide(theirs, ours, new Array(N * 2).fill('/x'))) expect([a.status, b.status]).toEqual([200, 200]);
    await eventually(async () => (await limiter.get('127.0.0.1')) === null);
    const pairs = await sideBySide(theirs, ours, [...new Array(N).fill('/fail'), '/x']);
    expect(pairs.map(([, b]) => b.status)).toEqual([...new Array(N).fill(500), 429]);
    expect(pairs.map(([a]) => a.status)).toEqual(pairs.map(([, b]) => b.status));
  });

  test('requestWasSuccessful decides what failed; a cost is given back whole', async () => {
    const limiter = limiterFor({ points: 6 });
    const options = { skipFailedRequests: true, requestWasSuccessful: (req, res) => res.statusCode !== 404, cost: 2 };
    const port = await serve([rateLimitByIp(limiter, options)]);
    for (let i = 0; i < 6; i++) expect((await get(port, '/missing')).status).toBe(404);
    await eventually(async () => (await limiter.get('127.0.0.1')) === null);
    // A 500 is a success to this function: it counts.
    expect((await get(port, '/fail')).status).toBe(500);
    expect((await get(port, '/fail')).status).toBe(500);
    expect((await get(port, '/fail')).status).toBe(500);
    expect((await get(port, '/x')).status).toBe(429);
  });

  test('a requestWasSuccessful that throws is reported to the logger, and the request counts', async () => {
    const logger = { error: jest.fn(), warn: jest.fn() };
    const limiter = limiterFor();
    const requestWasSuccessful = () => {
      throw new Error('cannot tell');
    };
    const port = await serve([rateLimitByIp(limiter, { skipFailedRequests: true, requestWasSuccessful, logger })]);
    await get(port, '/fail');
    await eventually(() => logger.error.mock.calls.length === 1);
    expect(logger.error.mock.calls[0][0].message).toBe('cannot tell');
    expect(logger.error.mock.calls[0][1]).toMatch(/requestWasSuccessful/);
    expect((await limiter.get('127.0.0.1')).remainingPoints).toBe(N - 1);
  });
});

describe('passOnStoreError', () => {
  const deadLimiter = (dead) => createLimiter({ keyPrefix: `rl:erl:dead:${++counter}`, points: N, duration: 60, client: dead, fallback: false });

  test('true lets a request through uncounted when the limiter fails, and logs it; false passes the error to Express', async () => {
    const dead = createClient({ url: 'redis://127.0.0.1:1', connectTimeout: 500 });
    try {
      const logger = { error: jest.fn(), warn: jest.fn() };
      const open = await serve([rateLimitByIp(deadLimiter(dead), { passOnStoreError: true, logger })]);
      const closed = await serve([rateLimitByIp(deadLimiter(dead))]);
      const r = await get(open, '/x');
      expect(r.status).toBe(200);
      expect(r.body.rateLimit).toBeUndefined();
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0][0].code).toBe('ECONNREFUSED');
      expect(logger.error.mock.calls[0][1]).toMatch(/passOnStoreError/);
      const e = await get(closed, '/x');
      expect(e.status).toBe(500);
      expect(e.body.code).toBe('ECONNREFUSED');
    } finally {
      dead.disconnect();
    }
  });

  test("an app's mistake (a cost above the burst) still goes to Express", async () => {
    const port = await serve([rateLimitByIp(limiterFor(), { passOnStoreError: true, cost: N + 1, logger: false })]);
    const r = await get(port, '/x');
    expect(r.status).toBe(500);
    expect(r.body.error).toMatch(/must not exceed the burst/);
  });
});

describe('validate', () => {
  /** Runs `test` with a fresh middleware module and process.emitWarning silenced; resolves with the codes emitted. */
  async function warningCodes(test) {
    let mod;
    jest.isolateModules(() => {
      mod = require('../../lib/ratelimit');
    });
    const emit = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      await test(mod);
      return emit.mock.calls.map(([, o]) => o && o.code).filter((c) => c && c.startsWith('HIRECACHE_RATELIMIT'));
    } finally {
      emit.mockRestore();
    }
  }

  const forwarded = async (mod, options) => {
    const limiter = mod.createLimiter({ store: 'memory', points: N, duration: 60 });
    const port = await serve([mod.rateLimitByIp(limiter, options)]);
    expect((await get(port, '/x', { 'x-forwarded-for': '203.0.113.1' })).status).toBe(200);
  };

  test.each([
    ['absent', {}, ['HIRECACHE_RATELIMIT_TRUST_PROXY']],
    ['true', { validate: true }, ['HIRECACHE_RATELIMIT_TRUST_PROXY']],
    ['{ ip: false }', { validate: { ip: false } }, ['HIRECACHE_RATELIMIT_TRUST_PROXY']],
    ['false', { validate: false }, []],
    ['{ xForwardedForHeader: false }', { validate: { xForwardedForHeader: false } }, []],
    ['{ default: false, creationStack: true }', { validate: { default: false, creationStack: true } }, []],
  ])("validate %s: express-rate-limit's xForwardedForHeader is hirecache's 'trust proxy' warning", async (_, options, codes) => {
    expect(await warningCodes((mod) => forwarded(mod, options))).toEqual(codes);
  });

  test("validate.ip is hirecache's warning for a req.ip that is no IP address", async () => {
    const junk = (options) => async (mod) => {
      const limiter = mod.createLimiter({ store: 'memory', points: N, duration: 60 });
      const port = await serve([mod.rateLimitByIp(limiter, options)], { trustProxy: true });
      expect((await get(port, '/x', { 'x-forwarded-for': 'hello' })).status).toBe(200);
    };
    expect(await warningCodes(junk({}))).toEqual(['HIRECACHE_RATELIMIT_NOT_AN_IP']);
    expect(await warningCodes(junk({ validate: { ip: false } }))).toEqual([]);
  });
});

describe('options are honoured or refused by name when the middleware is made', () => {
  test('windowMs, limit and max are taken when they agree with the limiter', () => {
    const limiter = limiterFor();
    expect(() => rateLimitByIp(limiter, { windowMs: WINDOW_MS, limit: N, max: N })).not.toThrow();
    expect(() => rateLimitByKey(createLimiter({ store: 'memory', points: 3, duration: 1.1 }), () => 'k', { windowMs: 1100, max: 3 })).not.toThrow();
  });

  test.each([
    ['windowMs disagrees', { windowMs: 30000 }, TypeError, 'ERR_INVALID_ARG_VALUE', /option windowMs must be 60000 \(the limiter's duration, in ms\) or absent.*createLimiter's duration/],
    ['limit disagrees', { limit: 10 }, TypeError, 'ERR_INVALID_ARG_VALUE', /option limit must be 5 \(the limiter's points\) or absent.*createLimiter's points/],
    ['max disagrees', { max: 10 }, TypeError, 'ERR_INVALID_ARG_VALUE', /option max must be 5/],
    ['limit is a function', { limit: () => 5 }, TypeError, 'ERR_INVALID_ARG_TYPE', /option limit must be 5 .*give a cost or one limiter per limit, got function/],
    ['store', { store: {} }, TypeError, 'ERR_INVALID_ARG_VALUE', /option store must be absent: the limiter .* is the store.*HirecacheStore from hirecache\/ratelimit/],
    ['onLimitReached', { onLimitReached: () => {} }, TypeError, 'ERR_INVALID_ARG_VALUE', /option onLimitReached must be absent .*handler/],
    ['draft_polli_ratelimit_headers', { draft_polli_ratelimit_headers: true }, TypeError, 'ERR_INVALID_ARG_VALUE', /standardHeaders: 'draft-6'/],
    ['headers with standardHeaders', { headers: 'both', standardHeaders: 'draft-7' }, TypeError, 'ERR_INVALID_ARG_VALUE', /option headers must be absent when standardHeaders or legacyHeaders is given/],
    ['headers with legacyHeaders', { headers: false, legacyHeaders: true }, TypeError, 'ERR_INVALID_ARG_VALUE', /option headers must be absent/],
    ['an unknown draft', { standardHeaders: 'draft-9' }, TypeError, 'ERR_INVALID_ARG_VALUE', /option standardHeaders must be 'draft-6', 'draft-7', 'draft-8', true/],
    ['legacyHeaders not a boolean', { legacyHeaders: 'yes' }, TypeError, 'ERR_INVALID_ARG_TYPE', /option legacyHeaders must be a boolean/],
    ['keyGenerator with ipv6Subnet', { keyGenerator: () => 'k', ipv6Subnet: 64 }, TypeError, 'ERR_INVALID_ARG_VALUE', /option ipv6Subnet must be absent when keyGenerator is given/],
    ['identifier with policyName', { identifier: 'a', policyName: 'b' }, TypeError, 'ERR_INVALID_ARG_VALUE', /option policyName must be absent when identifier is given/],
    ['identifier not a string', { identifier: 42 }, TypeError, 'ERR_INVALID_ARG_TYPE', /option identifier must be a string or a function/],
    ['requestWasSuccessful alone', { requestWasSuccessful: () => true }, TypeError, 'ERR_INVALID_ARG_VALUE', /option requestWasSuccessful must be absent unless skipFailedRequests or skipSuccessfulRequests/],
    ['an unknown validation', { validate: { nope: false } }, TypeError, 'ERR_INVALID_ARG_VALUE', /unknown option validate\.nope/],
    ['a validation not a boolean', { validate: { ip: 'no' } }, TypeError, 'ERR_INVALID_ARG_TYPE', /option validate\.ip must be a boolean/],
    ['statusCode', { statusCode: 99 }, RangeError, 'ERR_OUT_OF_RANGE', /option statusCode must be an integer from 100 to 599/],
    ['retryAfter', { retryAfter: -1 }, RangeError, 'ERR_OUT_OF_RANGE', /option retryAfter/],
    ['skipFailedRequests', { skipFailedRequests: 'yes' }, TypeError, 'ERR_INVALID_ARG_TYPE', /option skipFailedRequests must be a boolean/],
    ['passOnStoreError', { passOnStoreError: 1 }, TypeError, 'ERR_INVALID_ARG_TYPE', /option passOnStoreError must be a boolean/],
    ['logger', { logger: {} }, TypeError, 'ERR_INVALID_ARG_TYPE', /option logger must be an object with error and warn methods/],
    ['requestPropertyName', { requestPropertyName: '' }, TypeError, 'ERR_INVALID_ARG_TYPE', /option requestPropertyName must be a non-empty string/],
    ['an express-slow-down option', { delayMs: 100 }, TypeError, 'ERR_INVALID_ARG_VALUE', /unknown option delayMs/],
  ])('rateLimitByIp: %s', (_, options, Class, code, message) => {
    let err;
    try {
      rateLimitByIp(limiterFor(), options);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Class);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(/^rateLimitByIp: /);
    expect(err.message).toMatch(message);
  });

  test.each([
    ['keyGenerator', { keyGenerator: () => 'k' }, /option keyGenerator must be absent: rateLimitByKey's key function is its second argument/],
    ['ipv6Subnet', { ipv6Subnet: 64 }, /option ipv6Subnet must be absent: rateLimitByKey keys by its key function.*ipKey\(req\.ip, subnet\)/],
    ['store', { store: {} }, /option store must be absent/],
  ])('rateLimitByKey: %s', (_, options, message) => {
    expect(() => rateLimitByKey(limiterFor(), () => 'k', options)).toThrow(message);
  });

  test('ipv6Subnet takes false (the whole address) and a function of the request, as there', async () => {
    const whole = await serve([rateLimitByIp(limiterFor({ points: 1 }), { ipv6Subnet: false })], { trustProxy: 'loopback' });
    const byHeader = await serve([rateLimitByIp(limiterFor({ points: 1 }), { ipv6Subnet: (req) => Number(req.get('x-subnet')) })], { trustProxy: 'loopback' });
    const from = (port, ip, subnet = '64') => get(port, '/x', { 'x-forwarded-for': ip, 'x-subnet': subnet });
    expect((await from(whole, '2001:db8::1')).body.rateLimit.key).toBe('2001:db8::1/128');
    expect((await from(whole, '2001:db8::2')).status).toBe(200); // its own bucket
    expect((await from(byHeader, '2001:db8::1')).body.rateLimit.key).toBe('2001:db8::/64');
    expect((await from(byHeader, '2001:db8::2')).status).toBe(429);
    const bad = await from(byHeader, '2001:db8:1::1', '200');
    expect(bad.status).toBe(500);
    expect(bad.body.error).toMatch(/the result of option ipv6Subnet must be an integer from 1 to 128 or false/);
  });

  test('the draft-8 policy name: identifier as a function of the request; by default the keyPrefix', async () => {
    const limiter = limiterFor();
    const named = await serve([rateLimitByIp(limiterFor(), { standardHeaders: 'draft-8', identifier: async (req) => `per-${req.path.slice(1)}` })]);
    const byDefault = await serve([rateLimitByIp(limiter, { standardHeaders: 'draft-8' })]);
    expect((await get(named, '/x')).header('ratelimit')).toBe(`"per-x"; r=${N - 1}; t=${INTERVAL_SEC}`);
    expect((await get(byDefault, '/x')).header('ratelimit')).toBe(`"${limiter.keyPrefix}"; r=${N - 1}; t=${INTERVAL_SEC}`);
  });
});
