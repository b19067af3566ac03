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
export function escapeGlob(prefix: string): string;

export interface CacheOptions {
  /** A client from hirecache/redis; without it the embedded in-process store is used. */
  client?: RedisClient | null;
  /** Options of the private embedded store created when there is no client. */
  memory?: MemoryStoreOptions;
  /** An embedded store to share between caches. */
  store?: MemoryStore;
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
}

export function createCache(options?: CacheOptions): Cache;
