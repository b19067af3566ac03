/// <reference types="node" />
import type { RedisClient } from './redis';
import type { MemoryStore, MemoryStoreOptions } from './store/memory-store';

export type CacheKey = string | Buffer;

/** The cached string, or null on a miss. Never rejects: a Redis failure reads as a miss. */
export function cacheGet(key: CacheKey): Promise<string | null>;
export function cacheGetBuffer(key: CacheKey): Promise<Buffer | null>;
/** One atomic SET key value EX ttlSec. Resolves false when Redis failed; throws on bad arguments. */
export function cacheSet(key: CacheKey, value: string | Buffer, ttlSec?: number): Promise<boolean>;
export function cacheDel(...keys: CacheKey[]): Promise<number>;
export function cacheDel(keys: CacheKey[]): Promise<number>;
export function cacheMGet(keys: CacheKey[]): Promise<Array<string | null>>;
/** Deletes every key that literally starts with `prefix`; resolves how many went. */
export function cacheDelPrefix(prefix: string): Promise<number>;
export function cacheBackend(): 'redis' | 'memory';
/** What the cache holds and has done; for health reports and metrics. */
export function cacheStats(): CacheStats;
/**
 * Deletions Redis did not see (made while it was unavailable, or whose DEL failed) that wait
 * to be re-issued when it is back: copies, at most 1000 keys and prefixes in all.
 */
export function cacheLostInvalidations(): LostInvalidationList;
export function escapeGlob(prefix: string): string;

/** The fallback store that serves a Redis cache while the client's breaker is not closed. */
export interface CacheFallbackOptions {
  /** Most entries kept (default 10000); the least recently used go first. */
  maxEntries?: number;
  /** Most bytes of memory held, at least MIN_BYTES of hirecache's MemoryStore (default 16 MiB). */
  maxBytes?: number;
}

export interface CacheFallbackStats {
  /** A store exists: from the first call of an outage until the breaker closes. */
  active: boolean;
  entries: number;
  bytes: number;
  maxEntries: number;
  maxBytes: number;
  /** Reads served from the fallback since the start, and how many found a value. */
  reads: number;
  hits: number;
  /** Values the fallback stored since the start. */
  writes: number;
  /** Outages the fallback served. */
  activations: number;
}

export interface LostInvalidationStats {
  /** Deletions (one per key, one per prefix) Redis did not see, since the start. */
  count: number;
  /** Keys and prefixes waiting to be re-issued. */
  pending: number;
  /** Deletions that could not be kept for re-issuing (more than 1000 waiting): lost for good. */
  unrecorded: number;
  /** Deletions re-issued to Redis once it was back. */
  reissued: number;
}

export interface CacheStats {
  backend: 'redis' | 'memory';
  /** The embedded store's figures, when it is the backend (REDIS_URL=disabled). */
  store: { entries: number; bytes: number; maxEntries: number; maxBytes: number; hits: number; misses: number; evictions: number; expired: number } | null;
  /** The fallback of a Redis cache; null when it is off or the backend is the embedded store. */
  fallback: CacheFallbackStats | null;
  /** Redis backend only. */
  lostInvalidations: LostInvalidationStats | null;
}

export interface LostInvalidationList {
  keys: CacheKey[];
  prefixes: string[];
}

export interface CacheOptions {
  /** A client from hirecache/redis; without it the embedded in-process store is used. */
  client?: RedisClient | null;
  /** Options of the private embedded store created when there is no client. */
  memory?: MemoryStoreOptions;
  /** An embedded store to share between caches. */
  store?: MemoryStore;
  /**
   * With a client: the store that serves while Redis is unavailable (default on, 10000
   * entries, 16 MiB), or false for none (calls then miss / return false while Redis is down).
   */
  fallback?: CacheFallbackOptions | boolean;
  maxValueBytes?: number;
  scanCount?: number;
  deleteBatch?: number;
}

export interface Cache {
  cacheGet: typeof cacheGet;
  cacheGetBuffer: typeof cacheGetBuffer;
  cacheSet: typeof cacheSet;
  cacheDel: typeof cacheDel;
  cacheMGet: typeof cacheMGet;
  cacheDelPrefix: typeof cacheDelPrefix;
  cacheBackend: typeof cacheBackend;
  cacheStats: typeof cacheStats;
  cacheLostInvalidations: typeof cacheLostInvalidations;
}

export function createCache(options?: CacheOptions): Cache;
