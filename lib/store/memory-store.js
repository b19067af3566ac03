'use strict';
// The embedded store: an in-process, bounded key/value store with TTLs and LRU eviction,
// kept in native memory by the C++ core (src/store/memory_store.h). It serves the cache API
// when REDIS_URL=disabled. Every method is synchronous.
//
// maxBytes bounds the memory the store holds, not an estimate per entry: its arena pages
// (16 KiB each, whole, even when a single entry lives in one), large values, slots and
// bucket table; docs/store.md says exactly what counts. Pages left sparse by deletions are
// compacted before entries are evicted.
//
// Expired entries are removed when they are read, a few on every write, and by one
// unref'd interval per store that sweeps a bounded slice of the store at a time: never a
// timer per key, and the interval never keeps the process alive.
const { performance } = require('perf_hooks');
const binding = require('../binding');
const { describe, checkInteger } = require('../util/validate');

const NativeMemoryStore = binding.MemoryStore;

// The store's defaults and limits are the native core's own (one source for each).
const DEFAULTS = Object.freeze({
  maxEntries: NativeMemoryStore.DEFAULTS.maxEntries,
  maxBytes: NativeMemoryStore.DEFAULTS.maxBytes,
  sweepIntervalMs: 1000,
});

/** The most entries one store can be configured to hold. */
const MAX_ENTRIES = NativeMemoryStore.MAX_ENTRIES;
/** The smallest maxBytes: room for the bucket table, the first slots and a few pages. */
const MIN_BYTES = NativeMemoryStore.MIN_BYTES;
/** The arena's page: the unit in which the store takes memory for keys and small values. */
const PAGE_BYTES = NativeMemoryStore.PAGE_BYTES;
// Entries examined per sweep round: well under a millisecond when few have expired, about
// one when all of them have.
const SWEEP_BUDGET = NativeMemoryStore.SWEEP_BUDGET;
// A tick sweeps again while a round keeps finding at least a quarter of its entries
// expired, for at most SWEEP_TICK_MS, so a wave of expiries is reclaimed quickly without
// holding the event loop for long.
const SWEEP_AGAIN_AT = SWEEP_BUDGET / 4;
const SWEEP_TICK_MS = 2;
// Entries examined per step of deletePrefixAsync (a few milliseconds at most).
const PREFIX_STEP = NativeMemoryStore.PREFIX_STEP_BUDGET;
const MAX_INTERVAL_MS = 2 ** 31 - 1; // setInterval's own limit.

function integerOption(options, name, min, max) {
  const value = options[name] === undefined ? DEFAULTS[name] : options[name];
  return checkInteger(`option ${name}`, value, { where: 'MemoryStore', min, max });
}

function sweepTick(native) {
  const started = performance.now();
  let removed;
  do {
    removed = native.sweep(SWEEP_BUDGET);
  } while (removed >= SWEEP_AGAIN_AT && performance.now() - started < SWEEP_TICK_MS);
}

function checkPrefix(prefix) {
  if (prefix != null && prefix.length === 0) {
    throw new RangeError('MemoryStore: prefix must not be empty (it would match every key)');
  }
}

class MemoryStore {
  #native;
  #timer;
  // The native store's detached hot-path functions (they need no `this`).
  #get;
  #getBinary;
  #set;
  #del;

  /**
   * @param {{ maxEntries?: number, maxBytes?: number, sweepIntervalMs?: number }} [options]
   *   maxEntries: most entries kept (default 100000); maxBytes: most bytes of memory the
   *   store holds, at least MIN_BYTES (default 64 MiB; see docs/store.md for what counts);
   *   sweepIntervalMs: how often expired entries are swept (default 1000).
   */
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`MemoryStore: options must be an object, got ${describe(options)}`);
    }
    const maxEntries = integerOption(options, 'maxEntries', 1, MAX_ENTRIES);
    const maxBytes = integerOption(options, 'maxBytes', MIN_BYTES, Number.MAX_SAFE_INTEGER);
    const sweepIntervalMs = integerOption(options, 'sweepIntervalMs', 1, MAX_INTERVAL_MS);

    const native = new NativeMemoryStore({ maxEntries, maxBytes });
    this.#native = native;
    const fast = native.fastMethods();
    this.#get = fast.get;
    this.#getBinary = fast.getBinary;
    this.#set = fast.set;
    this.#del = fast.del;
    // The timer holds the store only weakly, so a store dropped without close() is still
    // collected, and its timer stops at the next tick.
    const ref = new WeakRef(native);
    const timer = setInterval(() => {
      const live = ref.deref();
      if (live === undefined) clearInterval(timer);
      else sweepTick(live);
    }, sweepIntervalMs);
    timer.unref();
    this.#timer = timer;
  }

  /** The value of `key` (string or Buffer) decoded as UTF-8, or null. */
  get(key) {
    return this.#get(key);
  }

  /** The value of `key` as a Buffer, or null. */
  getBuffer(key) {
    // The bytes come as a Latin-1 string: a Buffer made from it here, from Node's pool, is
    // much cheaper than a Buffer allocated natively.
    const bytes = this.#getBinary(key);
    return typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  }

  /** The values of `keys`, in order, null for each miss. */
  mget(keys) {
    return this.#native.mget(keys);
  }

  /**
   * Stores `value` (string or Buffer, any bytes) under `key` for `ttlMs` milliseconds
   * (0 = no expiry). Returns false when the entry alone does not fit in maxBytes (or memory
   * runs out); the key then holds no value at all, never an older one.
   */
  set(key, value, ttlMs = 0) {
    return this.#set(key, value, ttlMs);
  }

  /** Removes `key`; true when it held a live value. */
  del(key) {
    return this.#del(key);
  }

  /**
   * Removes every key that starts with `prefix` (its bytes, literally: `*`, `?` and `[`
   * are ordinary characters). Returns how many went. An empty prefix is refused; use
   * clear() to drop everything. One pass over the whole store: about 30 ms for a million
   * entries, during which nothing else runs; see deletePrefixAsync.
   */
  deletePrefix(prefix) {
    checkPrefix(prefix);
    return this.#native.deletePrefix(prefix);
  }

  /**
   * Like deletePrefix, in steps of a few milliseconds with the event loop free between
   * them. Resolves how many keys went. Keys written meanwhile may or may not be deleted,
   * as with Redis's SCAN.
   */
  async deletePrefixAsync(prefix) {
    checkPrefix(prefix);
    // A Buffer could change between steps; the steps must all look for the same bytes.
    const wanted = Buffer.isBuffer(prefix) ? Buffer.from(prefix) : prefix;
    let removed = 0;
    let cursor = 0;
    for (;;) {
      const [n, next] = this.#native.deletePrefixStep(wanted, cursor, PREFIX_STEP);
      removed += n;
      if (next === 0) return removed;
      cursor = next;
      await new Promise(setImmediate);
    }
  }

  /** Examines at most `budget` entries now; returns how many expired entries it removed. */
  sweep(budget = SWEEP_BUDGET) {
    return this.#native.sweep(budget);
  }

  /** Removes every entry. */
  clear() {
    this.#native.clear();
  }

  /**
   * { entries, bytes, maxEntries, maxBytes, hits, misses, evictions, expired, compactions }:
   * `bytes` is what maxBytes bounds, the memory the store holds; `compactions` counts the
   * pages emptied by moving their entries into fuller pages.
   */
  stats() {
    return this.#native.stats();
  }

  /**
   * Stops the sweep timer and drops every entry. The store still answers afterwards
   * (expired entries are then only removed on access and on writes). Idempotent.
   */
  close() {
    clearInterval(this.#timer);
    this.#native.clear();
  }
}

module.exports = { MemoryStore, DEFAULTS, MAX_ENTRIES, MIN_BYTES, PAGE_BYTES };
