/// <reference types="node" />

export interface MemoryStoreOptions {
  /** Most entries kept (default 100000); the least recently used go first. */
  maxEntries?: number;
  /** Most bytes kept, counting keys, values and ENTRY_OVERHEAD per entry (default 64 MiB). */
  maxBytes?: number;
  /** How often one unref'd timer sweeps a bounded slice of expired entries (default 1000 ms). */
  sweepIntervalMs?: number;
}

export interface MemoryStoreStats {
  entries: number;
  bytes: number;
  maxEntries: number;
  maxBytes: number;
  hits: number;
  misses: number;
  evictions: number;
  expired: number;
}

/** The embedded in-process store, kept in native memory; every method is synchronous. */
export class MemoryStore {
  constructor(options?: MemoryStoreOptions);
  get(key: string | Buffer): string | null;
  getBuffer(key: string | Buffer): Buffer | null;
  mget(keys: Array<string | Buffer>): Array<string | null>;
  /** ttlMs 0 means no expiry. False when the entry alone exceeds maxBytes. */
  set(key: string | Buffer, value: string | Buffer, ttlMs?: number): boolean;
  del(key: string | Buffer): boolean;
  deletePrefix(prefix: string | Buffer): number;
  deletePrefixAsync(prefix: string | Buffer): Promise<number>;
  sweep(budget?: number): number;
  clear(): void;
  stats(): MemoryStoreStats;
  close(): void;
}

export const DEFAULTS: Readonly<Required<MemoryStoreOptions>>;
export const MAX_ENTRIES: number;
export const ENTRY_OVERHEAD: number;
