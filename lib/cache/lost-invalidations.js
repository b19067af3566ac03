'use strict';
// The deletions Redis did not see: a cacheDel or cacheDelPrefix made while the breaker was
// open (it went to the fallback store only), or one whose DEL / SCAN failed. Until it is
// re-issued, other processes (and this one, once Redis is back) may read the value it was
// meant to remove. The record keeps what to re-issue, bounded: past MAX_PENDING keys and
// prefixes, a deletion is only counted, and can no longer be repaired.

/** Keys and prefixes kept for re-issuing, at most. */
const MAX_PENDING = 1000;

// A Buffer key and a string key with the same characters are different Redis keys unless
// their bytes agree; the identity is the bytes, tagged so the two kinds never collide.
function identityOf(key) {
  return typeof key === 'string' ? `s${key}` : `b${key.toString('latin1')}`;
}

class LostInvalidations {
  #keys = new Map(); // identity -> the key (a string, or a private copy of a Buffer)
  #prefixes = new Set();
  #unrecordedSinceTake = 0;
  /** Deletions (each key and each prefix counts one) that Redis did not see, since the start. */
  count = 0;
  /** Of those, how many could not be kept for re-issuing (the record was full): lost for good. */
  unrecorded = 0;
  /** How many were re-issued to Redis once it was back, and succeeded. */
  reissued = 0;

  /** Keys and prefixes waiting to be re-issued. */
  get pending() {
    return this.#keys.size + this.#prefixes.size;
  }

  /** Records keys whose deletion Redis did not see. */
  addKeys(keys) {
    this.count += keys.length;
    this.restoreKeys(keys);
  }

  /** Records a prefix whose deletion Redis did not see (or saw only in part). */
  addPrefix(prefix) {
    this.count += 1;
    this.restorePrefix(prefix);
  }

  /** Puts back keys taken for re-issuing whose DEL failed again (not counted twice). */
  restoreKeys(keys) {
    for (const key of keys) {
      const id = identityOf(key);
      if (this.#keys.has(id)) continue;
      if (this.pending >= MAX_PENDING) {
        this.#lose();
        continue;
      }
      this.#keys.set(id, Buffer.isBuffer(key) ? Buffer.from(key) : key);
    }
  }

  /** Puts back a prefix taken for re-issuing whose deletion failed again. */
  restorePrefix(prefix) {
    if (this.#prefixes.has(prefix)) return;
    if (this.pending >= MAX_PENDING) this.#lose();
    else this.#prefixes.add(prefix);
  }

  #lose() {
    this.unrecorded += 1;
    this.#unrecordedSinceTake += 1;
  }

  /**
   * Empties the record and returns what it held: { keys, prefixes, unrecorded }, where
   * unrecorded counts the deletions dropped since the last take.
   */
  take() {
    const taken = { keys: [...this.#keys.values()], prefixes: [...this.#prefixes], unrecorded: this.#unrecordedSinceTake };
    this.#keys.clear();
    this.#prefixes.clear();
    this.#unrecordedSinceTake = 0;
    return taken;
  }

  /** What waits to be re-issued, as copies: { keys, prefixes }. */
  list() {
    return {
      keys: [...this.#keys.values()].map((k) => (Buffer.isBuffer(k) ? Buffer.from(k) : k)),
      prefixes: [...this.#prefixes],
    };
  }
}

module.exports = { LostInvalidations, MAX_PENDING };
