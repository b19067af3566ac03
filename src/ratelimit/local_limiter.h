// The local rate limiter: one token bucket per key in a bounded in-process table.
//
// Layout (chosen by measurement, see docs/ratelimit.md): the buckets live densely in a
// boost::container::vector of 32-byte entries (a keyed 64-bit hash of the key plus the
// 24-byte BucketState), found through an open-addressing index of 8-byte slots (entry
// position and 32 bits of the hash as a tag), at most half full, with linear probing and
// backward-shift deletion. Looking up a new key touches only the small index, never the
// entries, which keeps a flood of new keys cheap. Entries stored inline in the probed table
// (32-byte slots, at most half full: one cache line per lookup instead of two) were
// measured again with bench/native/ and in Node (10,000 busy keys, both addons A/B in one
// process): no faster on busy keys, in Node 1% faster to 38% slower per decision over a
// no-op in 7 runs (a build that skipped the table altogether saved only ~10 of ~120 ns: a
// decision's time is not in the table's misses); typically 1.5x (up to 1.8x) slower under a
// flood at a cap of 100,000 and 1.8x (up to 2.4x) for a million new keys, since at that cap
// the inline table takes 8 MiB where the index takes 2 MiB and stays in cache (three-quarters
// full, 4 MiB, still 1.4x). Its CLOCK hand also meets buckets in hash order, not in order of
// arrival, so newcomers need a protection that makes the hand run faster. flat_map (sorted) and
// stable_vector pay O(n) per insertion or eviction. Only hashes are kept, never the keys, so memory
// per key is fixed whatever the key's length; the hash is SipHash-1-3 under a per-table random key,
// so nobody can aim keys at one probe chain or at another user's bucket (two keys sharing a bucket
// would only make both stricter, never looser).
//
// No timer per key: once the table is half full, a CLOCK hand walks the entries, a couple of
// steps per operation, and drops idle buckets (full and unblocked: dropping them loses
// nothing, an absent key is a full bucket, and a full bucket is never stored in the first
// place). When the table is at its cap, an insertion moves the hand on until it finds an
// idle bucket, or else one that has not been used since the hand last passed it: the oldest
// idle bucket in the CLOCK's approximation of least-recently-used. So a flood of random keys
// can never grow the table past `max_entries`.
#ifndef HIRECACHE_RATELIMIT_LOCAL_LIMITER_H_
#define HIRECACHE_RATELIMIT_LOCAL_LIMITER_H_

#include <boost/container/vector.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ratelimit/token_bucket.h"
#include "util/probe_index.h"

namespace hirecache {

struct LocalLimiterStats {
  size_t entries = 0;      // buckets held now
  size_t max_entries = 0;  // the cap
  uint64_t swept = 0;      // idle buckets dropped by the hand (lossless)
  uint64_t evicted = 0;    // buckets dropped at the cap while they still owed tokens
};

class LocalLimiter {
 public:
  enum class Status { kOk, kKeyTooLong };

  // `max_entries` >= 1, `max_key_bytes` >= 1. `seed` keys the hash (random in production;
  // fixed in tests for reproducibility).
  LocalLimiter(const TokenBucket& bucket, size_t max_entries, size_t max_key_bytes, uint64_t seed0,
               uint64_t seed1);

  LocalLimiter(const LocalLimiter&) = delete;
  LocalLimiter& operator=(const LocalLimiter&) = delete;

  // Each operation takes the key's bytes and the current time (microseconds of a monotonic
  // clock). Keys longer than max_key_bytes are refused with kKeyTooLong before any work.

  // Takes `cost` tokens from the key's bucket if it has them (see TokenBucket::Consume).
  Status Consume(std::string_view key, int64_t cost, int64_t now_us, BucketDecision* out);
  // The same, reading the time from `clock` once the key's place in the table is on its way
  // into cache (the clock and the memory then cost one wait instead of two).
  using Clock = int64_t (*)();
  Status ConsumeNow(std::string_view key, int64_t cost, Clock clock, BucketDecision* out);
  // The key's current numbers; `*found` is false when the key has no bucket or a full one.
  Status Get(std::string_view key, int64_t now_us, BucketDecision* out, bool* found);
  Status Penalty(std::string_view key, int64_t cost, int64_t now_us, BucketDecision* out);
  Status Reward(std::string_view key, int64_t cost, int64_t now_us, BucketDecision* out);
  Status Block(std::string_view key, int64_t duration_us, int64_t now_us, BucketDecision* out);
  // Forgets the key; `*erased` says whether it had a bucket.
  Status Erase(std::string_view key, bool* erased);

  // For a limiter whose buckets live elsewhere (Redis): remembers that the key owed `debt`
  // units as of `now_us`, an observation trusted for `trust_us` (another process may delete
  // or reward the key meanwhile). `trust_us` <= 0 forgets the key.
  Status Observe(std::string_view key, int64_t debt, int64_t trust_us, int64_t now_us);
  // What Consume would decide on the remembered debt, without changing it (the remembered
  // state is never blocked: a remote block is remembered as a debt that refuses as long).
  // `*known` is false when nothing is remembered for the key or the observation is older
  // than its trust (then it is forgotten and `*out` is left alone).
  Status Check(std::string_view key, int64_t cost, int64_t now_us, BucketDecision* out,
               bool* known);

  // Forgets every key. Throws std::bad_alloc if the new, small index cannot be mapped
  // (nothing changes then).
  void Clear();
  size_t size() const { return entries_.size(); }
  size_t max_key_bytes() const { return max_key_bytes_; }
  const TokenBucket& bucket() const { return bucket_; }
  LocalLimiterStats stats() const;

  // Runs the hand over up to `steps` entries, dropping idle buckets. Operations do this a
  // little at a time on their own; exposed for tests and for an idle-time sweep.
  void Sweep(size_t steps, int64_t now_us);

 private:
  struct Entry {
    uint64_t hash;
    BucketState state;  // state.mark is the CLOCK reference bit
  };
  // An index slot: 0 is empty, else (entry position + 1) and the hash's low 32 bits, which
  // hold its home for any table of up to 2^32 slots.
  struct Slot {
    uint32_t position_plus_one;
    uint32_t tag;
  };
  struct SlotCodec {
    using Bucket = Slot;
    static bool IsEmpty(Slot s) { return s.position_plus_one == 0; }
    size_t Home(Slot s, size_t mask) const { return s.tag & mask; }
  };

  uint64_t Hash(std::string_view key) const;
  void ConsumeHashed(uint64_t hash, int64_t cost, int64_t now_us, BucketDecision* out);
  // The entry of `hash`, or nullptr.
  Entry* Find(uint64_t hash);
  // The entry of `hash` (marked as used), or a new unmarked full bucket (evicting at the cap).
  Entry* FindOrInsert(uint64_t hash, int64_t now_us);
  // Adds an unmarked entry for `hash` (absent) with `state`, evicting at the cap.
  Entry* Insert(uint64_t hash, const BucketState& state, int64_t now_us);
  // The index slot that leads to the entry at `position`, whose hash is `hash`.
  size_t SlotOf(uint64_t hash, uint32_t position) const;
  void RemoveAt(size_t position);
  void EvictOne(int64_t now_us);
  void Grow();
  void Step(int64_t now_us);

  TokenBucket bucket_;
  size_t max_entries_;
  size_t max_key_bytes_;
  uint64_t k0_, k1_;
  boost::container::vector<Entry> entries_;
  // The index (util/probe_index.h, shared with the embedded store), at most half full.
  ProbeIndex<SlotCodec> index_;
  size_t hand_ = 0;
  uint64_t swept_ = 0;
  uint64_t evicted_ = 0;
};

}  // namespace hirecache

#endif  // HIRECACHE_RATELIMIT_LOCAL_LIMITER_H_
