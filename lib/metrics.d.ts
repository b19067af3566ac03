/// <reference types="node" />
import type { IncomingMessage, ServerResponse } from 'http';
import type { BreakerState } from './redis';

/** The verbs the client core counts apart; every other command counts as 'other'. */
export type CommandVerb = 'get' | 'set' | 'mget' | 'del' | 'scan' | 'eval' | 'ping' | 'other';

/** Outcomes of the commands of one verb, since the client was created. */
export interface CommandOutcomes {
  /** GET with a value (MGET: per key). */
  hit: number;
  /** GET without one (MGET: per key). */
  miss: number;
  /** Any other reply that is not an error. */
  ok: number;
  /** An error reply, or a connection failure before the command was written. */
  error: number;
  /** The command's deadline (commandTimeout) passed. */
  timeout: number;
  /** Written, then the connection was lost or the breaker gave up on it: it may have run. */
  unknown: number;
  /** Failed fast without socket work (breaker open, queue full). */
  refused: number;
}

/** A latency histogram of replies: counts per bucket (not cumulative), the last one past 1 s. */
export interface LatencyHistogram {
  /** One count per bound of `bucketsMs`, then one for everything slower. */
  counts: number[];
  sumMs: number;
  /** Replies counted (timeouts and refusals are not: they have no reply). */
  count: number;
}


/** What RedisClient#metrics() returns: the counters of the client core. */
export interface ClientMetrics {
  commands: Record<CommandVerb, CommandOutcomes>;
  latency: {
    /** Upper bounds of the buckets in milliseconds: 0.1, 0.25, 0.5, 1, 2.5, … 1000. */
    bucketsMs: number[];
    byCommand: Record<CommandVerb, LatencyHistogram>;
  };
  connectionsOpened: number;
  /** Failed connection attempts since the last successful one. */
  reconnectAttempts: number;
  breakerOpened: number;
  breakerClosed: number;
  breakerState: BreakerState;
  inFlight: number;
  queued: number;
}

/** One node's connection (hirecache_node_up, _node_breaker_state, _node_in_flight). */
export interface NodeMetrics {
  /** "host:port" */
  node: string;
  role: 'primary' | 'replica';
  state: string;
  breakerState: BreakerState;
  inFlight: number;
  queued: number;
}

/** A client whose metrics can be read: a RedisClient from hirecache/redis. */
export interface MetricsClient {
  metrics(): ClientMetrics;
}

/** The figures of a cache's fallback store, summed over the caches reported. */
export interface FallbackMetrics {
  active: boolean;
  entries: number;
  bytes: number;
  reads: number;
  hits: number;
  writes: number;
  activations: number;
}

export interface LostInvalidationMetrics {
  count: number;
  pending: number;
  unrecorded: number;
  reissued: number;
}

/** What metricsSnapshot() returns. */
export interface MetricsSnapshot {
  /** Whether a client was given (false when Redis is disabled). */
  redis: boolean;
  /** False for a client created with `metrics: false`: the per-command counters stay at 0. */
  metricsEnabled: boolean;
  commands: Partial<Record<CommandVerb, CommandOutcomes>>;
  latency: { bucketsMs: number[]; byCommand: Partial<Record<CommandVerb, LatencyHistogram>> };
  connectionsOpened: number;
  reconnectAttempts: number;
  breakerState: BreakerState;
  breakerOpened: number;
  breakerClosed: number;
  inFlight: number;
  queued: number;
  /** Each node of a cluster client, or the primary of a Sentinel client; [] for one Redis. */
  nodes: NodeMetrics[];
  /** Cache reads that found a value: Redis GET / MGET keys, plus fallback store hits. */
  hits: number;
  /** Cache reads that found none, from Redis or from the fallback store. */
  misses: number;
  /** hits / (hits + misses); null before the first read. */
  hitRate: number | null;
  /** null when no cache with a fallback store reports. */
  fallback: FallbackMetrics | null;
  lostInvalidations: LostInvalidationMetrics | null;
  /** Each limiter's decision counters, by its keyPrefix (or the name it was given). */
  limiters: Record<string, Record<string, number>>;
}

/** An object with cacheStats(): hirecache/cache, or what createCache() returned. */
export interface CacheStatsSource {
  cacheStats(): unknown;
}

/** A limiter with status(): what createLimiter() returned. */
export interface LimiterStatusSource {
  status(): unknown;
}

export interface MetricsExtras {
  /** Caches to include (those not registered on the client). */
  cache?: CacheStatsSource | CacheStatsSource[] | null;
  /** Limiters to include, by name or as an array (named by their keyPrefix). */
  limiters?: Record<string, LimiterStatusSource> | LimiterStatusSource[] | null;
}

export interface ExpositionOptions extends MetricsExtras {
  /** Prepended to every metric name. Default 'hirecache_'. */
  prefix?: string;
}

/** A client, null (Redis disabled), or a function returning either, read at each scrape. */
export type ClientSource = MetricsClient | null | (() => MetricsClient | null);

/**
 * Everything hirecache counts, as a plain object; no I/O. Without a client (undefined): the
 * process-wide client (getRedisClient()) and cache (hirecache/cache).
 */
export function metricsSnapshot(client?: MetricsClient | null, extras?: MetricsExtras): MetricsSnapshot;

/** The Prometheus text exposition format (0.0.4) of the same figures; client as for metricsSnapshot. */
export function prometheusText(client?: MetricsClient | null, options?: ExpositionOptions): string;

/** The shape of a metric as prom-client's Registry reads it; what registerMetrics registers. */
export interface PromClientMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  aggregator: string;
  get(): {
    name: string;
    help: string;
    type: 'counter' | 'gauge' | 'histogram';
    aggregator: string;
    values: Array<{ value: number; labels: Record<string, string>; metricName?: string }>;
  };
  reset(): void;
}

/** The part of prom-client's Registry that registerMetrics uses. */
export interface PromClientRegistryLike {
  registerMetric(metric: PromClientMetric): void;
  getSingleMetric?(name: string): unknown;
  removeSingleMetric?(name: string): void;
}

/**
 * Registers hirecache's metric families into an existing prom-client Registry (prom-client
 * is not a dependency of hirecache). Without a client: the process-wide client and cache,
 * read at each scrape. Returns a function that removes them again.
 */
export function registerMetrics(registry: PromClientRegistryLike, client?: ClientSource, options?: ExpositionOptions): () => void;

/**
 * An Express-style /metrics handler serving prometheusText() as text/plain; version=0.0.4.
 * Without a client: the process-wide client and cache, read at each request.
 */
export function metricsHandler(
  client?: ClientSource,
  options?: ExpositionOptions,
): (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

/** 'text/plain; version=0.0.4; charset=utf-8'. */
export const PROMETHEUS_CONTENT_TYPE: string;
