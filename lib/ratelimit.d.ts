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
  /** rate-limiter-flexible's defaults: 0, 0, 0, false (isFirstInDuration made a boolean). */
  constructor(remainingPoints?: number, msBeforeNext?: number, consumedPoints?: number, isFirstInDuration?: boolean | number);
  /** Whole points left after this request. */
  readonly remainingPoints: number;
  /**
   * Admitted: ms until the bucket is full again. Refused: ms until this request's points are
   * available (or the block ends); -1 for a block without end.
   */
  readonly msBeforeNext: number;
  /**
   * Points in use, plus the points refused since the last admission (this request's
   * included), as rate-limiter-flexible counts refused attempts: `consumedPoints > points`
   * once an attempt was refused, and for a blocked key (burst + 1 or more).
   */
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

/** Token leases (createLimiter's `lease` option; see docs/ratelimit.md, "Token leases"). */
export interface LeaseOptions {
  /** The most tokens a lease holds (an integer from 1 to the burst; default burst / 16, at least 1 and at most 64). */
  maxTokens?: number;
  /** How long a lease's tokens may be spent after it was asked for, in ms (default 1000; up to 3,600,000). */
  ttlMs?: number;
}

export interface LimiterOptions {
  /** Redis keys are `${keyPrefix}:tb:${key}`; also names the policy in the RateLimit headers. Default 'rl'. */
  keyPrefix?: string;
  /** Points per `duration` (a whole number >= 1, or such a number as a string). */
  points: number | string;
  /** Seconds (> 0; fractions allowed); 0: never refills (points over ten years), rate-limiter-flexible's "never expires". */
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
  /**
   * rate-limiter-flexible's insuranceLimiter: any limiter object (consume, get, penalty,
   * reward, block, delete) that decides instead of the fallback while Redis cannot be used.
   * Redis-backed limiters only; not with `fallback`.
   */
  insuranceLimiter?: Pick<RateLimiter, 'consume' | 'get' | 'penalty' | 'reward' | 'block' | 'delete'> | object;
  /** Once a consume reports this many points consumed (>= points), refuse the key in this process without asking the store. 0: off. */
  inMemoryBlockOnConsumed?: number;
  /** Seconds such a key stays refused in this process (0: until its msBeforeNext). */
  inMemoryBlockDuration?: number;
  /** Spread admitted consumes out: each resolves after msBeforeNext / (remainingPoints + 2) ms, at least execEvenlyMinDelayMs. */
  execEvenly?: boolean;
  /** Default duration * 1000 / points. */
  execEvenlyMinDelayMs?: number;
  /** Redis not ready: reject at once (ERR_REDIS_NOT_READY) or ask the insurance/fallback, instead of waiting. Redis-backed limiters only. */
  rejectIfRedisNotReady?: boolean;
  /**
   * Take a key's tokens from Redis a few at a time and admit from them in this process
   * (default false). Never admits more than Redis granted; results become this process's
   * view, and tokens held here are refused to other processes until spent, given back or
   * expired. Redis-backed limiters only.
   */
  lease?: boolean | LeaseOptions;
}

/** The per-call options of rate-limiter-flexible: refused by name (a bucket's refill is its duration). */
export interface LimiterCallOptions {
  customDuration?: never;
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
  /** With option lease only. */
  leases?: LeaseStatus;
}

/** status().leases: the token leases of this process (option lease). */
export interface LeaseStatus {
  /** Keys with a lease entry. */
  keys: number;
  /** Unexpired tokens held here now. */
  tokensHeld: number;
  maxTokens: number;
  ttlMs: number;
  /** Lease calls sent to Redis. */
  calls: number;
  /** Tokens Redis granted. */
  tokensLeased: number;
  /** Consumes admitted from a held lease, without a Redis call. */
  admittedLocally: number;
  /** Reward calls that gave unused tokens back, and their tokens. */
  returns: number;
  tokensReturned: number;
  /** Tokens neither spent nor given back (outcome unknown, the key deleted here, a failed return). */
  tokensLost: number;
  /** Lease calls whose outcome is unknown (counted as spent). */
  unknown: number;
  /** What the last lease call asked for and what Redis gave. */
  lastAsked: number;
  lastGranted: number;
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
  consume(key: RateLimitKey, points?: number, options?: LimiterCallOptions): Promise<RateLimitResult>;
  /** The key's numbers, or null when its bucket is full (no record). */
  get(key: RateLimitKey): Promise<RateLimitResult | null>;
  /** Takes `points` even past the limit. */
  penalty(key: RateLimitKey, points?: number, options?: LimiterCallOptions): Promise<RateLimitResult>;
  /** Gives back `points`, up to a full bucket, and forgives refused attempts. */
  reward(key: RateLimitKey, points?: number, options?: LimiterCallOptions): Promise<RateLimitResult>;
  /** Sets the points in use to exactly `points`, ending any block (no secDuration: use block() to hold a key). */
  set(key: RateLimitKey, points: number): Promise<RateLimitResult>;
  /** Refuses the key for `secDuration` seconds (0: until delete()); what the key owes outlives the block. */
  block(key: RateLimitKey, secDuration: number): Promise<RateLimitResult>;
  /** Forgets the key; resolves whether it had a bucket. */
  delete(key: RateLimitKey): Promise<boolean>;
  /** The key's name in the store: `${keyPrefix}:tb:${key}` on Redis, `${keyPrefix}:${key}` in memory. */
  getKey(key: RateLimitKey): string;
  /** The key getKey() was given. */
  parseKey(rlKey: string): string;
  status(): LimiterStatus;
}

/** Throws a TypeError / RangeError naming the option for any invalid option. */
export function createLimiter(options: LimiterOptions): RateLimiter;

/**
 * One decision across several limiters, all of them or none: resolves { [keyPrefix]: result }
 * when every one admitted; when any refused, gives back what the others took and rejects with
 * { [keyPrefix]: result } of the refusing ones; with an Error when one failed.
 */
export class RateLimiterUnion {
  constructor(...limiters: RateLimiter[]);
  consume(key: RateLimitKey, points?: number): Promise<Record<string, RateLimitResult>>;
}

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

/**
 * req.rateLimit (options.requestPropertyName), shaped as express-rate-limit's RateLimitInfo.
 */
export interface RateLimitInfo {
  /** The bucket's capacity (burst, by default points): what remaining can reach. */
  limit: number;
  /** Points in use; when refused, plus the refused request's points (limit + 1 at the first refusal). */
  used: number;
  remaining: number;
  /** Admitted: when the bucket is full again; refused: when the request's points are there. undefined for a block without end. */
  resetTime: Date | undefined;
  /** The bucket key (the client's address key for rateLimitByIp). */
  key: string;
  /** express-rate-limit's older name for used; not enumerable. */
  readonly current: number;
}

/** What a handler written for express-rate-limit reads from its fourth argument (its options). */
export interface RateLimitOptionsUsed {
  /** The limiter's duration, in ms. */
  windowMs: number;
  /** The limiter's points. */
  limit: number;
  statusCode: number;
  /** options.message, or express-rate-limit's default message. */
  message: unknown;
  standardHeaders: false | 'draft-6' | 'draft-7' | 'draft-8';
  legacyHeaders: boolean;
  requestPropertyName: string;
  identifier: string | ((req: RateLimitRequest, res: RateLimitResponse) => string | Promise<string>);
}

/** A handler's fourth argument: the refusal's numbers, with express-rate-limit's options beside them. */
export type RateLimitRefusal = RateLimitResult & RateLimitOptionsUsed;

/** express-rate-limit's validation names (its validate option), each on or off; `default` for those not named. */
export type RateLimitValidations = {
  [name in
    | 'default' | 'ip' | 'trustProxy' | 'xForwardedForHeader' | 'forwardedHeader' | 'positiveHits' | 'unsharedStore'
    | 'singleCount' | 'limit' | 'draftPolliHeaders' | 'onLimitReached' | 'headersDraftVersion' | 'headersResetTime'
    | 'knownOptions' | 'validationsConfig' | 'creationStack' | 'ipv6Subnet' | 'ipv6SubnetOrKeyGenerator'
    | 'keyGeneratorIpFallback' | 'windowMs']?: boolean;
};

/**
 * The options of rateLimitByIp and rateLimitByKey: hirecache's own and express-rate-limit's
 * (docs/ratelimit.md has the table). Anything the middleware cannot honour is refused by name
 * when it is made.
 */
export interface MiddlewareOptions {
  /** Return true (or a promise of true) to let the request through without counting it. */
  skip?: (req: RateLimitRequest, res: RateLimitResponse) => boolean | Promise<boolean>;
  /**
   * Answers a refused request instead of the default one (statusCode with a JSON body). Its
   * fourth argument is the refusal's RateLimitResult, which also carries express-rate-limit's
   * options (options.statusCode, options.message). Retry-After is set before it is called.
   */
  handler?: (req: RateLimitRequest, res: RateLimitResponse, next: Next, result: RateLimitRefusal) => unknown;
  /** Points per request (default 1). */
  cost?: number | ((req: RateLimitRequest, res: RateLimitResponse) => number | Promise<number>);
  /**
   * hirecache's name for a pair of header families (default 'both'): 'both' is standardHeaders
   * 'draft-8' with legacyHeaders true, 'draft' is 'draft-8' alone, 'legacy' and true the legacy
   * fields alone, false none. Not with standardHeaders or legacyHeaders.
   */
  headers?: 'draft' | 'legacy' | 'both' | boolean;
  /** express-rate-limit's IETF RateLimit fields (default false once legacyHeaders is given); true is 'draft-6'. */
  standardHeaders?: boolean | 'draft-6' | 'draft-7' | 'draft-8';
  /** express-rate-limit's X-RateLimit-* fields (default true once standardHeaders is given). */
  legacyHeaders?: boolean;
  /** A missing or too long key: 'reject' (400, default), 'skip', or your own answer. */
  onMissingKey?: 'reject' | 'skip' | ((req: RateLimitRequest, res: RateLimitResponse, next: Next) => unknown);
  /** The draft-8 policy name (default the limiter's keyPrefix); express-rate-limit calls it identifier. */
  policyName?: string | ((req: RateLimitRequest, res: RateLimitResponse) => string | Promise<string>);
  /** express-rate-limit's name for policyName; not with policyName. */
  identifier?: string | ((req: RateLimitRequest, res: RateLimitResponse) => string | Promise<string>);
  /**
   * The refusal's body: a string is the `message` of hirecache's JSON body
   * ({ error, message, retryAfter }); an object is the whole JSON body; a function of the
   * request answers either.
   */
  message?: string | object | ((req: RateLimitRequest, res: RateLimitResponse) => string | object | Promise<string | object>);
  /** The refusal's status (default 429). */
  statusCode?: number;
  /** The Retry-After value in seconds instead of the wait the bucket computed; a function may answer undefined for that one. */
  retryAfter?: number | ((req: RateLimitRequest, res: RateLimitResponse) => number | undefined | Promise<number | undefined>);
  /** Where the request gets its RateLimitInfo (default 'rateLimit'). */
  requestPropertyName?: string;
  /** Give back the points of a request whose response failed (requestWasSuccessful false), or whose connection closed first. */
  skipFailedRequests?: boolean;
  /** Give back the points of a request whose response succeeded (requestWasSuccessful true). */
  skipSuccessfulRequests?: boolean;
  /** Whether a finished response succeeded (default: status < 400); only with skipFailedRequests or skipSuccessfulRequests. */
  requestWasSuccessful?: (req: RateLimitRequest, res: RateLimitResponse) => boolean | Promise<boolean>;
  /** When the limiter fails, let the request through uncounted instead of next(err) (default false). */
  passOnStoreError?: boolean;
  /** express-rate-limit's validations: only ip and xForwardedForHeader have a counterpart here (hirecache's two warnings). */
  validate?: boolean | RateLimitValidations;
  /** Where failures nobody awaits go (a give-back, passOnStoreError): error(err, message); false for nowhere; default one process warning per kind. */
  logger?: false | { error(err: unknown, message?: string): void; warn(err: unknown, message?: string): void };
  /** Only the limiter's duration in ms: the limiter sets the window. */
  windowMs?: number;
  /** Only the limiter's points: the limiter sets the limit. */
  limit?: number;
  /** Only the limiter's points (express-rate-limit's older name for limit). */
  max?: number;
  /** Refused: the limiter is the store. To keep express-rate-limit, give it HirecacheStore. */
  store?: never;
}

/** rateLimitByIp's options: the middleware's, and how it keys the client. */
export interface IpMiddlewareOptions extends MiddlewareOptions {
  /** Prefix length IPv6 clients are keyed by (default 56); false for the whole address; or a function of the request. */
  ipv6Subnet?: number | false | ((req: RateLimitRequest, res: RateLimitResponse) => number | false | Promise<number | false>);
  /** Keys by this function instead of the client's address, as rateLimitByKey's keyFn; not with ipv6Subnet. */
  keyGenerator?: (req: RateLimitRequest, res: RateLimitResponse) => RateLimitKey | null | undefined | Promise<RateLimitKey | null | undefined>;
}

export type RateLimitMiddleware = (req: Req, res: Res, next: Next) => void;

export function rateLimitByIp(limiter: RateLimiter, options?: IpMiddlewareOptions): RateLimitMiddleware;
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

export interface ExpressStoreOptions {
  /** The client the counts are kept through (default getRedisClient()); its keyPrefix comes first in every key. */
  client?: RedisClient;
  /** Put before each key, after the client's keyPrefix (default 'rl:', as rate-limit-redis). */
  prefix?: string;
  /** Every increment and decrement restarts the key's window (rate-limit-redis's option before v6; default false). */
  resetExpiryOnChange?: boolean;
}

/** A key's count in its window, as express-rate-limit's ClientRateLimitInfo. */
export interface ExpressStoreHits {
  totalHits: number;
  /** When the window ends: now on this server plus the ms Redis says the key's window still runs. */
  resetTime: Date;
}

/**
 * A Store for express-rate-limit on a hirecache client: `rateLimit({ windowMs, limit, store:
 * new HirecacheStore() })`. A fixed window per key, as rate-limit-redis keeps it; one
 * EVALSHA per hit. When Redis fails every method rejects with the client's Error (never a
 * made-up count); express-rate-limit's passOnStoreError then decides. Unknown options, and
 * rate-limit-redis's sendCommand, throw a TypeError naming them.
 */
export class HirecacheStore {
  constructor(options?: ExpressStoreOptions);
  readonly client: RedisClient;
  readonly prefix: string;
  /** Counts are shared by every store on the same Redis and prefix. */
  readonly localKeys: false;
  readonly resetExpiryOnChange: boolean;
  /** express-rate-limit's windowMs (whole ms), once init() was called. */
  readonly windowMs: number | undefined;
  /** Called by express-rate-limit; throws a TypeError / RangeError naming windowMs (1 ms to ten years). */
  init(options: { windowMs: number }): void;
  increment(key: string): Promise<ExpressStoreHits>;
  /** Takes back one hit (skipSuccessfulRequests / skipFailedRequests); never below zero, never creates a key. */
  decrement(key: string): Promise<void>;
  /** The key's count, or undefined when it has none (resetTime undefined for a key without expiry). */
  get(key: string): Promise<{ totalHits: number; resetTime: Date | undefined } | undefined>;
  resetKey(key: string): Promise<void>;
  /**
   * Deletes every count under the prefix (SCAN + UNLINK: never blocks Redis, walks the whole
   * database, not atomic); rejects with a RangeError when the whole prefix is empty.
   */
  resetAll(): Promise<void>;
}

/** `new HirecacheStore(options)`. */
export function createExpressStore(options?: ExpressStoreOptions): HirecacheStore;

/** The Lua script of the Redis limiter, and its SHA1 (for EVALSHA / redis-benchmark). */
export const RATE_LIMIT_SCRIPT: string;
export const RATE_LIMIT_SCRIPT_SHA: string;
