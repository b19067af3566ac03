// A CommonJS module compiled with module commonjs (TypeScript's node10 resolution, which
// ignores "exports"), type-checked by test/types/resolution.modes.test.js: the subpaths
// resolve through package.json's "typesVersions" to lib/*.d.ts.
import cache = require('hirecache/cache');
import * as redis from 'hirecache/redis';
import { createLimiter } from 'hirecache/ratelimit';
import { health } from 'hirecache/health';
import { prometheusText } from 'hirecache/metrics';
import { cacheGet } from 'hirecache';

export async function legacy(): Promise<void> {
  const hit: string | null = await cache.cacheGet('k');
  const sameFunction: typeof cache.cacheGet = cacheGet;
  const client: redis.RedisClient = redis.createClient();
  const limiter = createLimiter({ points: 1, duration: 1, store: 'memory' });
  // @ts-expect-error cacheSet needs a value
  await cache.cacheSet('k');
  void [hit, sameFunction, client, limiter, health(), prometheusText()];
}
