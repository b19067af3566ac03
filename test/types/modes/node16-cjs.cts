// A CommonJS module (.cts, module node16) using hirecache, type-checked by
// test/types/resolution.modes.test.js: require() resolves to lib/*.d.ts (the "default"
// condition), a dynamic import() to lib/esm/*.d.mts, and both describe the same classes.
import cache = require('hirecache/cache');
import hirecache = require('hirecache');
import { ReplyError, createClient } from 'hirecache/redis';
import type { RedisClient } from 'hirecache/redis';

export async function both(): Promise<void> {
  const hit: string | null = await cache.cacheGet('k');
  const esm = await import('hirecache/cache');
  const sameFunction: typeof cache.cacheGet = esm.cacheGet;
  const viaDefault: typeof cache.cacheSet = esm.default.cacheSet;
  const esmRedis = await import('hirecache/redis');
  const err: ReplyError = new esmRedis.ReplyError('ERR x', 'ERR');
  const client: RedisClient = esmRedis.createClient();
  const created: typeof createClient = hirecache.createClient;
  // @ts-expect-error require() gives module.exports, which has no `default`
  void cache.default;
  void [hit, sameFunction, viaDefault, err, client, created];
}
