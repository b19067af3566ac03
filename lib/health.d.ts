/// <reference types="node" />
import type { IncomingMessage, ServerResponse } from 'http';
import type { RedisClient, ClientState } from './redis';
import type { Cache } from './cache';
import type { RateLimiter } from './ratelimit';

export type HealthStatus = 'ok' | 'degraded' | 'error';

export interface HealthReport {
  /**
   * ok: Redis ready and the breaker closed (or not contacted yet, with no failure so far), or
   * Redis disabled by configuration. degraded: Redis not usable, the cache's fallback serves.
   * error: nothing serves, or Redis refused the credentials (WRONGPASS / NOAUTH).
   */
  status: HealthStatus;
  /** False only when neither Redis nor the fallback can serve (GET /health/ready answers 503). */
  ready: boolean;
  redis: {
    /** 'disabled' for REDIS_URL=disabled, 'misconfigured' when the settings were refused. */
    state: ClientState | 'disabled' | 'misconfigured';
    /** null when there is no client. */
    breaker: 'closed' | 'open' | 'half-open' | null;
    breakerReason: 'stalled' | 'unreachable' | 'failures' | null;
    /** The cache (or a limiter) serves from process memory in Redis's place. */
    usingFallback: boolean;
    /** Never holds a password. */
    lastError: { code: string | null; message: string } | null;
    /** Epoch milliseconds of lastError, or null. */
    lastErrorTime: number | null;
    reconnectAttempts: number;
    inFlight: number;
    queued: number;
    /** Absent for a single Redis. */
    mode?: 'cluster' | 'sentinel';
    /**
     * A cluster's nodes, each with its own connection's state (a node never needed yet is
     * 'idle'). A primary whose breaker is not closed makes the status 'degraded'.
     */
    nodes?: Array<{
      node: string;
      role: 'primary' | 'replica';
      slots: number;
      state: ClientState;
      breaker: 'closed' | 'open' | 'half-open';
      lastError: { code: string | null; message: string } | null;
      inFlight: number;
      queued: number;
    }>;
    /** Sentinel mode: the primary the sentinels named ("host:port"), null before they answered. */
    primary?: string | null;
    sentinelName?: string;
  };
  /**
   * The pub/sub connection, once anything was subscribed (absent before). Informational: it
   * does not change status. renewingSince: epoch ms since when the subscriptions are being
   * renewed after a lost connection, or null.
   */
  pubsub?: {
    state: ClientState;
    channels: number;
    patterns: number;
    shardChannels: number;
    renewingSince: number | null;
    lastError: { code: string | null; message: string } | null;
  };
  fallback: {
    enabled: boolean;
    /** A store exists (from the first call of an outage until Redis is back). */
    active: boolean;
    entries: number;
    bytes: number;
    maxEntries?: number;
    maxBytes?: number;
  };
  /** null when the report was built without a cache. */
  cache: {
    backend: 'redis' | 'memory' | null;
    /** The embedded store's size, when it is the backend. */
    entries?: number;
    bytes?: number;
    lostInvalidations?: { count: number; pending: number; unrecorded: number; reissued: number };
    /** The cache's settings were refused. */
    error?: { code: string | null; message: string };
  } | null;
  /** Each limiter's own report, by name. */
  limiters: Record<string, unknown>;
}

export interface HealthOptions {
  /** A client of your own; null when the cache runs without Redis. */
  client?: RedisClient | null;
  /** What createCache() returned (or hirecache/cache itself). */
  cache?: Pick<Cache, 'cacheStats'> | null;
  limiters?: Record<string, RateLimiter> | RateLimiter[] | null;
  /** Start an idle client (one PING) when the report is read. Default true. */
  connect?: boolean;
}

/** The report for the process-wide client and cache. */
export function health(): HealthReport;
/** A health function over a setup of your own. */
export function createHealth(options?: HealthOptions): () => HealthReport;

export type HealthHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface HealthHandlerOptions {
  /** The report to serve: hirecache's health() by default, or one from createHealth(). */
  health?: () => HealthReport;
}

/** Plain (req, res) handlers: GET /health (503 on error), /health/live (200), /health/ready (503 when nothing serves). */
export function healthHandlers(options?: HealthHandlerOptions): { health: HealthHandler; live: HealthHandler; ready: HealthHandler };

/** A Router of the application's own express with GET `${path}`, `${path}/live`, `${path}/ready` (path default '/health'). */
export function healthRouter<R>(express: { Router(): R }, options?: HealthHandlerOptions & { path?: string }): R;
