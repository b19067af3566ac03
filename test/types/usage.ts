// Uses the public API of hirecache/redis and hirecache/cache as an application would. It is
// only type-checked (tsc --noEmit, by test/types.check.test.js), never run. The lines under
// `@ts-expect-error` are misuses the declarations must reject: if the types were too loose
// (e.g. `any`), the unused directive would fail the check.
import { createClient, createCluster, Cluster, getRedisClient, isRedisEnabled, CLIENT_STATES } from 'hirecache/redis';
import type { ClientState } from 'hirecache/redis';
import { cacheGet, cacheGetBuffer, cacheSet, cacheDel, cacheMGet, cacheDelPrefix, cacheStats, cacheLostInvalidations, createCache } from 'hirecache/cache';
import type { CacheStats } from 'hirecache/cache';
import { health, createHealth, healthHandlers, healthRouter } from 'hirecache';
import type { HealthReport, HealthStatus } from 'hirecache';
import express from 'express';
import { createLimiter, rateLimitByIp, rateLimitByKey, RateLimitResult } from 'hirecache/ratelimit';
import type { IncomingMessage, ServerResponse } from 'http';

export async function limits(req: IncomingMessage & { body: { email?: string } }, res: ServerResponse): Promise<void> {
  const loginByIp = createLimiter({ keyPrefix: 'rl:login:ip', points: 20, duration: 600 });
  const loginByEmail = createLimiter({ keyPrefix: 'rl:login:email', points: 5, duration: 600, blockDuration: 900 });
  const byIp = rateLimitByIp(loginByIp, { headers: 'both' });
  const byEmail = rateLimitByKey(loginByEmail, (r) => (r as typeof req).body.email, { onMissingKey: 'reject' });
  byIp(req, res, () => byEmail(req, res, () => undefined));
  try {
    const r: RateLimitResult = await loginByEmail.consume(`phone:${'+15550100'}`);
    const left: number = r.remainingPoints + r.msBeforeNext + r.consumedPoints;
    const first: boolean = r.isFirstInDuration;
    void [left, first];
  } catch (err) {
    if (err instanceof RateLimitResult) {
      const wait: number = err.msBeforeNext;
      void wait;
    }
  }
  // @ts-expect-error points is a number, or an integer string
  createLimiter({ keyPrefix: 'x', points: true, duration: 1 });
  const guarded = createLimiter({ keyPrefix: 'rl:api', points: 100, duration: 60, fallback: { graceMs: 100, maxEntries: 1000 } });
  const d = guarded.status().decisions;
  const counted: number = d.allowed + d.refused + d.local + d.fallback + d.unknownCharged + d.errors;
  const local: boolean = guarded.status().usingFallback;
  void [counted, local];
}


export async function route(ownerId: string, id: string): Promise<unknown> {
  const key = `cache:stats:campaign:v1:${ownerId}:${id}`;
  const hit = await cacheGet(key);
  if (hit) return JSON.parse(hit);
  const data = { ownerId, id };
  const stored: boolean = await cacheSet(key, JSON.stringify(data), 30);
  await cacheSet(key, JSON.stringify(data));
  await cacheSet(Buffer.from(key), Buffer.from([0, 1, 2]), 60);
  const n: number = await cacheDelPrefix(`cache:stats:campaign:v1:${ownerId}:`);
  const deleted: number = await cacheDel('a', 'b', Buffer.from('c'));
  const many: (string | null)[] = await cacheMGet(['a', 'b']);
  const bytes: Buffer | null = await cacheGetBuffer(key);
  return { stored, n, deleted, many, bytes };
}

export async function client(): Promise<void> {
  const enabled: boolean = isRedisEnabled();
  const shared = getRedisClient();
  if (shared !== null) await shared.call('PING');

  const c = createClient({
    url: 'redis://user:pass@127.0.0.1:6379/0',
    name: 'api',
    connectTimeout: 10000,
    commandTimeout: 5000,
    keepAlive: 30000,
    maxQueue: 10000,
    maxValueBytes: 1 << 20,
    reconnectBaseDelay: 50,
    reconnectMaxDelay: 2000,
  });
  createClient({ host: '127.0.0.1', port: 6379, username: 'u', password: 'p', db: 2 });
  createClient();
  // Redis Cluster and Sentinel, in hirecache's, ioredis's and node-redis's forms.
  const clustered = createClient({ cluster: { nodes: ['10.0.0.1:6379', { host: '10.0.0.2', port: 6379 }], readFromReplicas: true } });
  const nodes: number | undefined = clustered.status().cluster?.nodes.length;
  void nodes;
  new Cluster([{ host: '10.0.0.1', port: 6379 }], { scaleReads: 'slave', redisOptions: { password: 'p' } });
  createCluster({ rootNodes: [{ url: 'redis://10.0.0.1:6379' }], defaults: { password: 'p' }, useReplicas: true });
  const viaSentinel = createClient({ sentinels: ['10.0.0.1:26379'], name: 'mymaster', sentinelPassword: 's' });
  const primary: string | null | undefined = viaSentinel.status().sentinel?.primary;
  void primary;
  const guarded = createClient({
    breaker: { stallMs: 50, failureThreshold: 3, failureRatePercent: 50, windowMs: 10000, minimumRequests: 20, openMs: 500, maxOpenMs: 10000 },
    logger: console,
    metrics: false,
  });
  createClient({ breaker: false, logger: false });
  guarded.on('error', (err) => void err.code.toUpperCase());
  guarded.on('reconnecting', (delayMs: number) => void delayMs);
  guarded.on('breaker', ({ state, reason }) => void (state === 'open' && reason === 'stalled'));
  guarded.once('ready', () => undefined).on('end', () => undefined);
  const breakerNow: 'closed' | 'open' | 'half-open' = guarded.breakerState;
  const st = guarded.status();
  const openedAt: number | null = st.breakerOpenedAt;
  const errorAt: number | null = st.lastErrorTime;
  void [breakerNow, openedAt, errorAt, st.breaker, st.breakerReason];

  const reply: unknown = await c.call('HSET', 'k', 'f', 1);
  await c.call('SET', Buffer.from('k'), Buffer.from('v'));
  const raw: unknown = await c.callBuffer('GET', 'k');
  const s: string | null = await c.get('k');
  const b: Buffer | null = await c.getBuffer('k');
  await c.set('k', 'v', 30);
  await c.set('k', Buffer.from('v'), 30);
  const values: (string | null)[] = await c.mget(['a', 'b']);
  const d: number = await c.del('a', 'b');
  const u: number = await c.unlink('a');

  // Generated command methods (lib/commands.d.ts).
  const added: number = await c.hset('user:1', { name: 'Ada', visits: 1 });
  await c.hset('user:1', new Map<string, string | number>([['name', 'Ada']]));
  await c.hset('user:1', 'name', 'Ada', 'visits', 2);
  const user: Record<string, string> = await c.hgetall('user:1');
  const userBytes: Record<string, Buffer> = await c.hgetallBuffer('user:1');
  const name: string | null = await c.hget('user:1', 'name');
  const nameBytes: Buffer | null = await c.hgetBuffer('user:1', 'name');
  const counted: number = (await c.incr('n')) + (await c.incrby('n', 5)) + (await c.expire('n', 60)) + (await c.ttl('n'));
  const popped: string | null = await c.lpop('l');
  const poppedMany: string[] | null = await c.lpop('l', 2);
  await c.sadd('s', ['a', 'b'], 'c');
  await c.mset({ k1: 'v1', k2: 2 });
  await c.zadd('z', 1, 'a', 2n, 'b');
  const maxmemory: unknown = await c.config('GET', 'maxmemory');
  const cursor: [cursor: string, elements: string[]] = await c.scan('0', 'MATCH', 'user:*');
  const viaCallback: Promise<number> = c.incr('n', (err, value) => void (err === null && value !== undefined && value + 1));
  c.hgetall('user:1', (err, all) => void (err ?? all?.name));
  void [added, user, userBytes, name, nameBytes, counted, popped, poppedMany, maxmemory, cursor, viaCallback];

  const status = c.status();
  const state: ClientState = status.state;
  const states: readonly ClientState[] = CLIENT_STATES;
  void states;
  // @ts-expect-error a state the client never reports
  const never: ClientState = 'reconnecting';
  void never;
  const ready: boolean = status.ready;
  const code: string | undefined = status.lastError?.code;
  const message: string | undefined = status.lastError?.message;
  const counts: number = status.reconnectAttempts + status.inFlight + status.queued;
  const fallbacks: string[] = status.fallbacks;
  c.noteFallback('ratelimit', true);

  await c.quit();
  c.disconnect();
  void [enabled, reply, raw, s, b, values, d, u, state, ready, code, message, counts, fallbacks];
}

export async function sharedSafely(): Promise<void> {
  const redis = createClient({ keyPrefix: 'app:', retryStrategy: (times) => (times > 5 ? null : times * 100), maxRetriesPerRequest: 1, lazyConnect: false });
  const results: Array<unknown> | null = await redis.multi().set('a', '1').incr('n').call('GET', 'a').exec();
  const pairs: Array<[Error | null, unknown]> = await redis.pipeline([['get', 'a']]).hgetall('h').exec();
  const watched = await redis.isolated(async (conn) => {
    await conn.watch('balance');
    return conn.multi().set('balance', '9').exec();
  });
  const count: number = await redis.subscribe('news', (message: string, channel: string) => void [message, channel]);
  await redis.subscribe('bin', (message: Buffer) => void message, { buffers: true });
  await redis.psubscribe('news.*', (message, channel, pattern) => void [message, channel, pattern]);
  await redis.unsubscribe('news');
  redis.on('message', (channel: string, message: string) => void [channel, message]);
  redis.on('subscriptionGap', (gap) => void gap.to);
  await redis.connect();
  const copy = redis.duplicate({ db: 2 });
  await redis.set('k', 'v', 'EX', 60, 'NX');
  void [results, pairs, watched, count, copy];
}

export async function fallbackAndHealth(): Promise<void> {
  const c = createClient({ url: 'redis://127.0.0.1:6379' });
  const own = createCache({ client: c, fallback: { maxEntries: 1000, maxBytes: 1 << 20 } });
  createCache({ client: c, fallback: false });
  createCache({ client: c, fallback: {} });
  const stats: CacheStats = own.cacheStats();
  const entries: number = (stats.fallback?.entries ?? 0) + (stats.lostInvalidations?.pending ?? 0);
  const backend: 'redis' | 'memory' = cacheStats().backend;
  const lost = cacheLostInvalidations();
  const prefixes: string[] = lost.prefixes;
  const keys: (string | Buffer)[] = own.cacheLostInvalidations().keys;

  const report: HealthReport = health();
  const status: HealthStatus = report.status;
  const ready: boolean = report.ready;
  const breaker: 'closed' | 'open' | 'half-open' | null = report.redis.breaker;
  const usingFallback: boolean = report.redis.usingFallback;
  const code: string | null | undefined = report.redis.lastError?.code;
  const when: number | null = report.redis.lastErrorTime;
  const counts: number = report.redis.reconnectAttempts + report.redis.inFlight + report.redis.queued;
  const held: number = report.fallback.entries + report.fallback.bytes;

  const mine = createHealth({ client: c, cache: own, limiters: { login: createLimiter({ points: 5, duration: 60, client: c }) } });
  const again: HealthStatus = mine().status;
  createHealth({ client: null });
  const handlers = healthHandlers({ health: mine });
  const app = express();
  app.get('/healthz', handlers.health);
  app.get('/livez', handlers.live);
  app.get('/readyz', handlers.ready);
  app.use(healthRouter(express));
  app.use(healthRouter(express, { path: '/status', health: mine }));

  // @ts-expect-error fallback is an object or a boolean
  createCache({ client: c, fallback: 'off' });
  // @ts-expect-error an unknown fallback option
  createCache({ client: c, fallback: { maxEntrys: 1 } });
  // @ts-expect-error the status is one of three words
  const wrong: 'up' = health().status;
  // @ts-expect-error createHealth takes a client, not a URL
  createHealth({ client: 'redis://127.0.0.1' });
  void [entries, backend, prefixes, keys, status, ready, breaker, usingFallback, code, when, counts, held, again, wrong];
}

export async function misuses(): Promise<void> {
  // @ts-expect-error a key is a string or a Buffer
  await cacheGet(42);
  // @ts-expect-error the TTL is a number of seconds, not a string
  await cacheSet('k', 'v', '30');
  // @ts-expect-error a value is a string or a Buffer
  await cacheSet('k', { a: 1 });
  // @ts-expect-error cacheGet resolves a string or null
  const n: number | null = await cacheGet('k');
  // @ts-expect-error cacheSet resolves a boolean
  const s: string = await cacheSet('k', 'v');
  // @ts-expect-error cacheMGet takes an array of keys
  await cacheMGet('a', 'b');
  // @ts-expect-error cacheDelPrefix takes one prefix
  await cacheDelPrefix();
  // @ts-expect-error an unknown option
  createClient({ hots: 'typo' });
  // @ts-expect-error the port is a number
  createClient({ port: '6379' });
  const c = createClient();
  // @ts-expect-error status() has no such field
  c.status().nope;
  // @ts-expect-error the state is one of the documented names
  const state: 'open' = c.status().state;
  // @ts-expect-error INCR resolves a number
  const incremented: string = await c.incr('n');
  // @ts-expect-error a boolean is not a command argument
  await c.hset('h', 'f', true);
  // @ts-expect-error only HSET, HMSET, MSET and MSETNX take an object of pairs
  await c.sadd('s', { a: 1 });
  // @ts-expect-error a Buffer variant resolves Buffers
  const all: Record<string, string> = await c.hgetallBuffer('h');
  // @ts-expect-error keyPrefix is a string or a Buffer
  createClient({ keyPrefix: 5 });
  // @ts-expect-error exec() of a pipeline resolves pairs, not a promise of strings
  const flat: string[] = await c.pipeline().get('a').exec();
  // @ts-expect-error isolated takes a function of the connection
  await c.isolated('conn');
  void [n, s, state, incremented, all, flat];
}
