'use strict';
// Proves that createLimiter refuses bad options at once, naming the option, picks its store
// as documented, and that the limiter methods refuse bad arguments with an Error (never a
// result, which would read as "rate limited").
const { createLimiter, RateLimitResult } = require('../../lib/ratelimit');
const { createClient } = require('../../lib/redis');

describe('createLimiter options', () => {
  const base = { keyPrefix: 'rl:opt', points: 5, duration: 60, store: 'memory' };

  test.each([
    ['points', 0, RangeError],
    ['points', -3, RangeError],
    ['points', 1.5, RangeError],
    ['points', NaN, RangeError],
    ['points', '10.5', TypeError],
    ['points', 'ten', TypeError],
    ['points', undefined, TypeError],
    ['duration', -1, RangeError],
    ['duration', Infinity, RangeError],
    ['duration', '600', TypeError],
    ['duration', undefined, TypeError],
    ['burst', 0, RangeError],
    ['burst', 2.5, RangeError],
    ['blockDuration', -1, RangeError],
    ['blockDuration', 'x', TypeError],
    ['keyPrefix', 42, TypeError],
    ['store', 'mongo', TypeError],
    ['client', {}, TypeError],
    ['fallback', 'yes', TypeError],
    ['rejectLocally', 1, TypeError],
    ['maxEntries', 0, RangeError],
    ['maxKeyLength', -1, RangeError],
    ['inMemoryBlockOnConsumed', 2, RangeError],
    ['inMemoryBlockDuration', -1, RangeError],
    ['execEvenly', 'yes', TypeError],
    ['execEvenlyMinDelayMs', -5, RangeError],
    ['rejectIfRedisNotReady', 1, TypeError],
    ['insuranceLimiter', {}, TypeError],
    ['storeClient', {}, TypeError],
    ['useRedisPackage', true, TypeError],
  ])('%s = %p throws %p naming the option', (name, value, ErrorClass) => {
    const options = { ...base, [name]: value };
    expect(() => createLimiter(options)).toThrow(ErrorClass);
    expect(() => createLimiter(options)).toThrow(new RegExp(`option ${name}\\b`));
  });

  test('a nested fallback option is named with its path', () => {
    expect(() => createLimiter({ ...base, fallback: { points: 0 } })).toThrow(/option points/);
    expect(() => createLimiter({ ...base, fallback: { pionts: 3 } })).toThrow(/fallback\.pionts/);
  });

  test('an unknown option is refused, so a typo cannot pass silently', () => {
    expect(() => createLimiter({ ...base, durations: 10 })).toThrow(/unknown option durations/);
  });

  test('options must be an object', () => {
    expect(() => createLimiter()).toThrow(TypeError);
    expect(() => createLimiter(null)).toThrow(TypeError);
  });

  test('a bucket too large for exact integers is refused at creation', () => {
    expect(() => createLimiter({ ...base, points: 1, burst: 2 ** 30, duration: 10 * 365 * 86400 })).toThrow(RangeError);
  });

  test('the limiter exposes its numbers like rate-limiter-flexible does', () => {
    const l = createLimiter({ ...base, burst: 8, blockDuration: 30 });
    expect(l).toMatchObject({ keyPrefix: 'rl:opt', points: 5, duration: 60, burst: 8, blockDuration: 30, store: 'memory' });
    expect(l.getKey('a@b.c')).toBe('rl:opt:a@b.c');
  });
});

describe('store selection', () => {
  test('a given client means Redis, without opening a connection', async () => {
    const client = createClient({ url: 'redis://127.0.0.1:1' });
    const l = createLimiter({ points: 1, duration: 1, client });
    expect(l.store).toBe('redis');
    expect(client.status().state).toBe('idle');
    await client.quit();
  });

  test('client must be a hirecache RedisClient: an ioredis-like object is refused, naming the option', () => {
    const ioredisLike = { call: async () => 'OK', status: 'ready' };
    expect(() => createLimiter({ points: 1, duration: 1, client: ioredisLike })).toThrow(TypeError);
    expect(() => createLimiter({ points: 1, duration: 1, client: ioredisLike })).toThrow(/option client/);
    expect(() => createLimiter({ points: 1, duration: 1, client: null })).toThrow(/option client/);
  });

  test('only an unreachable Redis sends a decision to the fallback; anything else rejects with the error', async () => {
    const { ConnectionError, CommandTimeoutError, OutcomeUnknownError } = require('../../lib/errors');
    // The breaker off: its state stays closed, and an unreachable Redis is the client's word.
    const client = createClient({ url: 'redis://127.0.0.1:1', breaker: false });
    const l = createLimiter({ keyPrefix: 'rl:opt:errors', points: 1, duration: 60, client });
    const bug = new TypeError('a bug in the client');
    client._command = () => Promise.reject(bug);
    await expect(l.consume('k')).rejects.toBe(bug);
    const noCode = new Error('NOSCRIPT-like error without a code');
    client._command = () => Promise.reject(noCode);
    await expect(l.consume('k')).rejects.toBe(noCode);
    // A slow reply, or one whose outcome is unknown, while the breaker is closed: an error,
    // never a local admission; its point is charged to the key's local bucket all the same.
    for (const err of [new CommandTimeoutError('slow', 'ETIMEDOUT'), new OutcomeUnknownError('lost', 'ERR_OUTCOME_UNKNOWN'), Object.assign(new Error('reset'), { code: 'ECONNRESET' })]) {
      client._command = () => Promise.reject(err);
      await expect(l.consume(`k:${err.message}`)).rejects.toBe(err);
      expect(l.status().usingFallback).toBe(false);
    }
    expect(l.status().decisions).toMatchObject({ allowed: 0, unknownCharged: 2, errors: 5, fallback: 0 });
    // Redis not reached (nothing was sent): the fallback decides.
    client._command = () => Promise.reject(new ConnectionError('down', 'ECONNREFUSED'));
    await expect(l.consume('k:down')).resolves.toBeInstanceOf(RateLimitResult);
    expect(l.status().usingFallback).toBe(true);
    // A charged key is spent locally: its one point went with the timed-out decision.
    await expect(l.consume('k:slow')).rejects.toBeInstanceOf(RateLimitResult);
    expect(l.status().decisions).toMatchObject({ allowed: 1, fallback: 2 });
    client.disconnect();
  });

  test("store 'redis' with Redis disabled and no client is an error at creation", () => {
    jest.isolateModules(() => {
      const saved = process.env.REDIS_URL;
      process.env.REDIS_URL = 'disabled';
      try {
        const { createLimiter: create } = require('../../lib/ratelimit');
        expect(() => create({ points: 1, duration: 1, store: 'redis' })).toThrow(/Redis is disabled/);
        expect(create({ points: 1, duration: 1 }).store).toBe('memory');
      } finally {
        if (saved === undefined) delete process.env.REDIS_URL;
        else process.env.REDIS_URL = saved;
      }
    });
  });
});

describe('method arguments', () => {
  const l = createLimiter({ points: 2, duration: 60, store: 'memory', maxKeyLength: 8 });

  test.each([[undefined], [null], [{}], [NaN]])('key %p rejects with a TypeError, not a result', async (key) => {
    const err = await l.consume(key).catch((e) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(err).not.toBeInstanceOf(RateLimitResult);
  });

  test('numbers are keys, as in rate-limiter-flexible', async () => {
    await expect(l.consume(12345)).resolves.toBeInstanceOf(RateLimitResult);
    await expect(l.get('12345')).resolves.toMatchObject({ consumedPoints: 1 });
  });

  test.each([[-1], [1.5], [NaN], [2 ** 31]])('points %p rejects with a RangeError', async (points) => {
    await expect(l.consume('k', points)).rejects.toBeInstanceOf(RangeError);
  });

  test.each([['2'], [null]])('points %p, not a number, rejects with a TypeError', async (points) => {
    await expect(l.consume('k', points)).rejects.toBeInstanceOf(TypeError);
    await expect(l.consume('k', points)).rejects.toThrow(/rate limiter: points must be a number/);
  });

  test.each([[-1], [Infinity], ['10'], [2 ** 31]])('block() refuses secDuration %p', async (sec) => {
    const err = await l.block('k', sec).catch((e) => e);
    expect(err).toBeInstanceOf(typeof sec === 'number' ? RangeError : TypeError);
    expect(err.message).toMatch(/secDuration/);
  });

  test('a key longer than maxKeyLength rejects with ERR_KEY_TOO_LONG', async () => {
    await expect(l.consume('123456789')).rejects.toMatchObject({ code: 'ERR_KEY_TOO_LONG' });
    await expect(l.consume('12345678')).resolves.toBeInstanceOf(RateLimitResult);
  });

  test('results serialize like RateLimiterRes', async () => {
    const res = await l.consume('json');
    expect(JSON.parse(JSON.stringify(res))).toEqual({ remainingPoints: 1, msBeforeNext: 30000, consumedPoints: 1, isFirstInDuration: true });
    expect(String(res)).toContain('"remainingPoints":1');
  });
});
