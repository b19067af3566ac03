'use strict';
// The Redis cache's fallback: an embedded MemoryStore (bounded, LRU, TTL) that serves the
// cache while the client's circuit breaker is not closed. It is created when an outage first
// needs it and thrown away, entries and all, when Redis is back: nothing in it is ever
// written to Redis, and nothing in it outlives the outage, so a value deleted in Redis
// meanwhile cannot be served from memory afterwards.
const { MemoryStore } = require('../store/memory-store');

class FallbackStore {
  #options;
  #store = null;
  /** Reads served from the fallback since the start, and how many of them were hits. */
  reads = 0;
  hits = 0;
  /** Writes kept by the fallback since the start. */
  writes = 0;
  /** How many outages the fallback has served. */
  activations = 0;

  /** @param {{ maxEntries: number, maxBytes: number }} options, already checked. */
  constructor(options) {
    this.#options = options;
  }

  get maxEntries() {
    return this.#options.maxEntries;
  }

  get maxBytes() {
    return this.#options.maxBytes;
  }

  /** Whether a store exists: true from the first use in an outage until Redis is back. */
  get active() {
    return this.#store !== null;
  }

  /** The store, created on first use in an outage. */
  store() {
    if (this.#store === null) {
      this.#store = new MemoryStore(this.#options);
      this.activations += 1;
    }
    return this.#store;
  }

  /** The store if one exists, else null (for deletions, which need none to exist). */
  peek() {
    return this.#store;
  }

  /** Drops every entry and the store itself (its timer and native memory go with it). */
  drop() {
    if (this.#store === null) return;
    this.#store.close();
    this.#store = null;
  }

  /** { entries, bytes } held now (0 and 0 when no store exists). */
  size() {
    if (this.#store === null) return { entries: 0, bytes: 0 };
    const { entries, bytes } = this.#store.stats();
    return { entries, bytes };
  }
}

module.exports = { FallbackStore };
