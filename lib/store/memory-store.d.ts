/// <reference types="node" />

export interface MemoryStoreOptions {
  /** Most entries kept (default 100000); the least recently used go first. */
  maxEntries?: number;
  /**
   * Most bytes of memory the store holds (default 64 MiB, at least MIN_BYTES): its arena
   * pages (PAGE_BYTES each, whole), values over 4 KiB, slots and bucket table.
   */
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
  /** Arena pages emptied by moving their entries into fuller pages. */
  compactions: number;
}

/** The embedded in-process store, kept in native memory; every method is synchronous. */
export class MemoryStore {
  constructor(options?: MemoryStoreOptions);
  get(key: string | Buffer): string | null;
  getBuffer(key: string | Buffer): Buffer | null;
  mget(keys: Array<string | Buffer>): Array<string | null>;
  /** ttlMs 0 means no expiry. False when the entry alone does not fit in maxBytes. */
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
export const MIN_BYTES: number;
export const PAGE_BYTES: number;
