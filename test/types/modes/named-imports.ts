// Named imports of every subpath, type-checked by test/types/resolution.modes.test.js under
// each resolution mode (node16 as an ES module and as CommonJS, bundler, node10). It is never
// run. The lines under `@ts-expect-error` are misuses the declarations must reject, so a
// subpath that resolved to nothing (any) would fail the check.
import { cacheGet as rootCacheGet, createLimiter as rootCreateLimiter, ReplyError as RootReplyError } from 'hirecache';
import type { HealthReport as RootHealthReport, CacheStats as RootCacheStats } from 'hirecache';
import {
  getRedisClient,
  isRedisEnabled,
  createClient,
  quitRedisClient,
  RedisClient,
  CLIENT_STATES,
  HirecacheError,
  ReplyError,
  ConnectionError,
  ConfigError,
} from 'hirecache/redis';
import type { ClientState, ClientOptions } from 'hirecache/redis';
import { cacheGet, cacheGetBuffer, cacheSet, cacheDel, cacheMGet, cacheDelPrefix, cacheBackend, cacheStats, createCache } from 'hirecache/cache';
import type { Cache, CacheStats } from 'hirecache/cache';
import { createLimiter, rateLimitByIp, rateLimitByKey, RateLimitResult, ipKey, RATE_LIMIT_SCRIPT_SHA } from 'hirecache/ratelimit';
import type { RateLimiter, RateLimitRequest, RateLimitResponse } from 'hirecache/ratelimit';
import { health, createHealth, healthHandlers, healthRouter } from 'hirecache/health';
import type { HealthReport } from 'hirecache/health';
import { metricsSnapshot, prometheusText, registerMetrics, metricsHandler, PROMETHEUS_CONTENT_TYPE } from 'hirecache/metrics';
import type { MetricsSnapshot } from 'hirecache/metrics';

export async function useEverySubpath(): Promise<void> {
  const options: ClientOptions = { url: 'redis://127.0.0.1:6379/0', commandTimeout: 500 };
  const client: RedisClient | null = isRedisEnabled() ? getRedisClient() : createClient(options);
  const state: ClientState | undefined = client?.status().state;
  const states: readonly ClientState[] = CLIENT_STATES;
  // @ts-expect-error a state the client never reports
  const never: ClientState = 'reconnecting';

  const hit: string | null = await cacheGet('k');
  const same: typeof cacheGet = rootCacheGet;
  const bytes: Buffer | null = await cacheGetBuffer('k');
  const stored: boolean = await cacheSet('k', 'v', 30);
  // @ts-expect-error the TTL is a number of seconds
  await cacheSet('k', 'v', '30');
  const gone: number = (await cacheDel('a', 'b')) + (await cacheDelPrefix('cache:'));
  const many: (string | null)[] = await cacheMGet(['a', 'b']);
  const backend: 'redis' | 'memory' = cacheBackend();
  const stats: CacheStats = cacheStats();
  const rootStats: RootCacheStats = stats;
  const own: Cache = createCache({ memory: { maxEntries: 100 } });

  const limiter: RateLimiter = createLimiter({ keyPrefix: 'rl:api', points: 100, duration: 60, store: 'memory' });
  const sameLimiter: typeof createLimiter = rootCreateLimiter;
  // @ts-expect-error points is a number, or an integer string
  createLimiter({ keyPrefix: 'x', points: true, duration: 1 });
  try {
    const r: RateLimitResult = await limiter.consume('client');
    void r.remainingPoints;
  } catch (err) {
    if (err instanceof RateLimitResult) void err.msBeforeNext;
  }
  const key: string | undefined = ipKey('::ffff:10.0.0.1');
  const middleware = [rateLimitByIp(limiter), rateLimitByKey(limiter, (req: RateLimitRequest, _res: RateLimitResponse) => req.headers.host)];

  const report: HealthReport = health();
  const rootReport: RootHealthReport = report;
  const custom: () => HealthReport = createHealth({ client, cache: own, limiters: [limiter] });
  const handlers = healthHandlers({ health: custom });
  const router: string = healthRouter({ Router: () => 'a router' });

  const snapshot: MetricsSnapshot = metricsSnapshot();
  const text: string = prometheusText(null, { prefix: 'api_' }) + PROMETHEUS_CONTENT_TYPE + RATE_LIMIT_SCRIPT_SHA;
  const remove: () => void = registerMetrics({ registerMetric: () => undefined });
  const serveMetrics = metricsHandler();

  // One class whichever subpath it came from, and a subclass of the base error.
  const err: HirecacheError = new RootReplyError('WRONGTYPE Operation', 'WRONGTYPE');
  const isReply: boolean = err instanceof ReplyError || err instanceof ConnectionError || err instanceof ConfigError;
  await quitRedisClient();
  void [state, states, never, hit, same, bytes, stored, gone, many, backend, rootStats, sameLimiter, key, middleware];
  void [rootReport, handlers, router, snapshot, text, remove, serveMetrics, isReply];
}
