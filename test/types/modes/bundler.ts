// A module compiled for a bundler (module esnext, moduleResolution bundler), type-checked by
// test/types/resolution.modes.test.js: its imports resolve to lib/esm/*.d.mts (the "import"
// condition), default and namespace imports included.
import hirecache from 'hirecache';
import cache from 'hirecache/cache';
import * as redis from 'hirecache/redis';
import { createLimiter } from 'hirecache/ratelimit';

export async function bundled(): Promise<void> {
  const hit: string | null = await cache.cacheGet('k');
  const sameFunction: typeof cache.cacheGet = hirecache.cacheGet;
  const client: redis.RedisClient = redis.createClient();
  const limiter = createLimiter({ points: 1, duration: 1, store: 'memory' });
  // @ts-expect-error consume takes a key
  await limiter.consume();
  void [hit, sameFunction, client];
}
