// An ES module ("type": "module", module node16) importing hirecache, type-checked by
// test/types/resolution.modes.test.js: its imports resolve to lib/esm/*.d.mts (the
// "import" condition). The default export is the module object, as Node gives it.
import hirecache from 'hirecache';
import cache from 'hirecache/cache';
import * as ratelimit from 'hirecache/ratelimit';
import redis, { ReplyError } from 'hirecache/redis';
import health from 'hirecache/health';
import metrics from 'hirecache/metrics';

const hit: Promise<string | null> = cache.cacheGet('k');
const sameFunction: typeof cache.cacheSet = hirecache.cacheSet;
const sameClass: typeof ReplyError = redis.ReplyError;
const limiter: ratelimit.RateLimiter = ratelimit.default.createLimiter({ points: 1, duration: 1 });
const status: 'ok' | 'degraded' | 'error' = health.health().status;
const text: string = metrics.prometheusText();
// @ts-expect-error the default export is module.exports, which has no `default` of its own
void cache.default;
const top: string | null = await cache.cacheGet('top-level await: this is an ES module');
void [hit, sameFunction, sameClass, limiter, status, text, top];
