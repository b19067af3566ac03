/// <reference types="node" />
import type { IncomingMessage, ServerResponse } from 'http';
import type { RedisClient } from './redis';
// @types/express is optional. Without it this import fails (the error is silenced) and the
// two names are unresolved (any); RateLimitRequest and RateLimitResponse then fall back to
// Node's types.
// @ts-ignore -- resolves only when the application has @types/express installed.
import type { Request as ExpressRequest, Response as ExpressResponse } from 'express';

/**
 * The outcome of one decision, shaped like rate-limiter-flexible's RateLimiterRes.
 * consume() resolves with it when admitted and rejects with it when refused. The limiters'
 * results are plain objects with these fields and methods; `x instanceof RateLimitResult`
 * recognizes any object with the four fields that is not an Error, so a refusal can be told
 * from a store failure.
 */
export class RateLimitResult {
  constructor(remainingPoints: number, msBeforeNext: number, consumedPoints: number, isFirstInDuration: boolean);
  /** Whole points left after this request. */
  readonly remainingPoints: number;
  /**
   * Admitted: ms until the bucket is full again. Refused: ms until this request's points are
   * available (or the block ends); -1 for a block without end.
   */
  readonly msBeforeNext: number;
  /** Points in use; when refused, plus the refused request's points. */
  readonly consumedPoints: number;
  /** Admitted into a full bucket. */
  readonly isFirstInDuration: boolean;
  toJSON(): { remainingPoints: number; msBeforeNext: number; consumedPoints: number; isFirstInDuration: boolean };
  toString(): string;
  static [Symbol.hasInstance](value: unknown): value is RateLimitResult;
}

export type RateLimitKey = string | number;

export interface FallbackOptions {
  points?: number;
  duration?: number;
  burst?: number;
  maxEntries?: number;
  /**
   * Ms after the client's breaker opened for a stall or for failures (not for an unreachable
   * Redis) during which decisions wait for it to close before the fallback decides (default
   * 250; 0: at once).
   */
  graceMs?: number;
}

export interface LimiterOptions {
  /** Redis keys are `${keyPrefix}:${key}`; also names the policy in the RateLimit headers. Default 'rl'. */
  keyPrefix?: string;
  /** Points per `duration` (a whole number >= 1). */
  points: number;
  /** Seconds (> 0; fractions allowed). */
  duration: number;
  /** Capacity of the bucket (default `points`). */
  burst?: number;
  /** Seconds a key stays refused after it first goes over its limit (default 0: none). */
  blockDuration?: number;
  /** Default: Redis when `client` is given or REDIS_URL enables it, else memory. */
  store?: 'redis' | 'memory';
  /** The Redis client (default: getRedisClient()); must be a hirecache RedisClient, else a TypeError. */
  client?: RedisClient;
  /**
   * While the client's circuit breaker is open (Redis unreachable; or stalled or failing for
   * longer than graceMs), decide with a local limiter (per process), each key starting from
   * what Redis last said of it. true (default): the same numbers; false: reject with the
   * client's Error; or other numbers. A timeout or an unknown outcome while the breaker is
   * closed is never answered locally: it rejects with its Error.
   */
  fallback?: boolean | FallbackOptions;
  /** Refuse keys known to be over their limit without asking Redis (default true). */
  rejectLocally?: boolean;
  /** Cap on buckets held in this process (default 100000). */
  maxEntries?: number;
  /** Cap on a key's length in UTF-16 code units (default 512). */
  maxKeyLength?: number;
}

/** consume() decisions since the limiter was made. */
export interface LimiterDecisions {
  /** Admitted, by Redis or in this process. */
  allowed: number;
  /** Refused, by Redis or in this process. */
  refused: number;
  /** Decided in this process: keys known to be over their limit, and the fallback. */
  local: number;
  /** Decided by the fallback while Redis could not be used. */
  fallback: number;
  /** Operations whose outcome at Redis is unknown, charged to the key's local bucket as spent. */
  unknownCharged: number;
  /** Consumes that rejected with an Error. */
  errors: number;
}

export interface LimiterStatus {
  store: 'redis' | 'memory';
  /**
   * The local fallback decides: the client's breaker is not closed, or Redis could not be
   * reached since it last answered.
   */
  usingFallback: boolean;
  /**
   * The last error that sent decisions to the fallback (at: ms since the epoch), kept after
   * Redis recovers, as the client's is; null if there was none. usingFallback is the state.
   */
  lastError: { code: string; message: string; at: number } | null;
  /** Buckets held in this process. */
  entries: number;
  maxEntries?: number;
  evicted?: number;
  fallbackEntries?: number;
  knownRefusedEntries?: number;
  decisions: LimiterDecisions;
}

export interface RateLimiter {
  readonly store: 'redis' | 'memory';
  readonly keyPrefix: string;
  readonly points: number;
  readonly duration: number;
  readonly burst: number;
  readonly blockDuration: number;
  readonly maxKeyLength: number;
  /**
   * Takes `points` (default 1); rejects with a RateLimitResult when refused, with an Error on a
   * store failure, and with a RangeError when `points` exceeds the burst (it could never fit).
   */
  consume(key: RateLimitKey, points?: number): Promise<RateLimitResult>;
  /** The key's numbers, or null when its bucket is full (no record). */
  get(key: RateLimitKey): Promise<RateLimitResult | null>;
  /** Takes `points` even past the limit. */
  penalty(key: RateLimitKey, points?: number): Promise<RateLimitResult>;
  /** Gives back `points`, up to a full bucket. */
  reward(key: RateLimitKey, points?: number): Promise<RateLimitResult>;
  /** Refuses the key for `secDuration` seconds (0: until delete()); what the key owes outlives the block. */
  block(key: RateLimitKey, secDuration: number): Promise<RateLimitResult>;
  /** Forgets the key; resolves whether it had a bucket. */
  delete(key: RateLimitKey): Promise<boolean>;
  /** `${keyPrefix}:${key}` */
  getKey(key: RateLimitKey): string;
  status(): LimiterStatus;
}

/** Throws a TypeError / RangeError naming the option for any invalid option. */
export function createLimiter(options: LimiterOptions): RateLimiter;

/**
 * What the middleware accepts: a Node request or response with whatever the framework added
 * (req.ip, req.body, res.status…). Interfaces rather than intersections, so that Node's own
 * fields keep their types instead of becoming `any`.
 */
interface Req extends IncomingMessage {
  ip?: string;
  [key: string]: any;
}
interface Res extends ServerResponse {
  [key: string]: any;
}
type Next = (err?: unknown) => void;
// `unknown extends T` holds only for T any or unknown: here, for an express import that did
// not resolve (a test on `any` itself does not work, the unresolved type spreads through it).
/** The request the middleware's callbacks get: Express's Request with @types/express installed, else Req. */
export type RateLimitRequest = unknown extends ExpressRequest ? Req : ExpressRequest;
/** The response the middleware's callbacks get: Express's Response with @types/express installed, else Res. */
export type RateLimitResponse = unknown extends ExpressResponse ? Res : ExpressResponse;

export interface MiddlewareOptions {
  /** Return true (or a promise of true) to let the request through without counting it. */
  skip?: (req: RateLimitRequest, res: RateLimitResponse) => boolean | Promise<boolean>;
  /** Answers a refused request instead of the default 429 JSON. */
  handler?: (req: RateLimitRequest, res: RateLimitResponse, next: Next, result: RateLimitResult) => unknown;
  /** Points per request (default 1). */
  cost?: number | ((req: RateLimitRequest, res: RateLimitResponse) => number | Promise<number>);
  /** Which headers to set (default 'both'). */
  headers?: 'draft' | 'legacy' | 'both' | false;
  /** A missing or too long key: 'reject' (400, default), 'skip', or your own answer. */
  onMissingKey?: 'reject' | 'skip' | ((req: RateLimitRequest, res: RateLimitResponse, next: Next) => unknown);
  /** Prefix length IPv6 clients are keyed by (default 56). */
  ipv6Subnet?: number;
  /** The policy name in the RateLimit headers (default the keyPrefix). */
  policyName?: string;
  /** The 429 body: a message, or the whole JSON body. */
  message?: string | object;
}

export type RateLimitMiddleware = (req: Req, res: Res, next: Next) => void;

export function rateLimitByIp(limiter: RateLimiter, options?: MiddlewareOptions): RateLimitMiddleware;
export function rateLimitByKey(
  limiter: RateLimiter,
  keyFn: (req: RateLimitRequest, res: RateLimitResponse) => RateLimitKey | null | undefined | Promise<RateLimitKey | null | undefined>,
  options?: MiddlewareOptions,
): RateLimitMiddleware;

/**
 * The bucket key of a client address: IPv4 as is; IPv6 that carries an IPv4 client
 * (::ffff:a.b.c.d, ::ffff:0:a.b.c.d, NAT64 64:ff9b::/96) as that IPv4; ::/96 (::, ::1,
 * ::a.b.c.d) as itself (/128); other IPv6 by its /subnet (default 56). undefined for a
 * string that is not an IP address.
 */
export function ipKey(address: string, subnet?: number): string | undefined;

/** The Lua script of the Redis limiter, and its SHA1 (for EVALSHA / redis-benchmark). */
export const RATE_LIMIT_SCRIPT: string;
export const RATE_LIMIT_SCRIPT_SHA: string;
