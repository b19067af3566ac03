// An open-addressing index: a power-of-two table of buckets, linear probing, and
// backward-shift deletion, so no tombstones ever build up and a probe run always ends at
// an empty bucket. The embedded store finds its entries through one, and so does the local
// rate limiter; each keeps its entries elsewhere and stores in a bucket only what leads to
// an entry (its number) and enough of its hash to skip most entries that cannot match.
//
// A bucket's encoding is its user's, described by a Codec:
//
//   struct Codec {
//     using Bucket = ...;                // trivially copyable; all-zero bytes mean empty
//     static bool IsEmpty(Bucket b);
//     // The bucket where the probe run of b's entry starts, for a table of mask + 1.
//     size_t Home(Bucket b, size_t mask) const;
//   };
//
// The index never decides when to grow: its user keeps it below the load it wants (it must
// always leave one bucket empty) and rebuilds it with Reset() and Put(). Not thread-safe.
#ifndef HIRECACHE_UTIL_PROBE_INDEX_H_
#define HIRECACHE_UTIL_PROBE_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include "util/mapped_array.h"

namespace hirecache {

template <typename Codec>
class ProbeIndex {
 public:
  using Bucket = typename Codec::Bucket;

  // Where a probe stopped: at the matching bucket (found), or else at the empty bucket
  // that ends the run, where an entry with that hash belongs.
  struct Probe {
    size_t index;
    bool found;
  };

  explicit ProbeIndex(Codec codec = Codec()) : codec_(codec) {}

  // Replaces the table with 2^bits empty buckets. Throws std::bad_alloc (the index is then
  // unchanged).
  void Reset(uint32_t bits) {
    buckets_.AssignZeros(size_t{1} << bits);
    bits_ = bits;
    mask_ = (size_t{1} << bits) - 1;
  }

  uint32_t bits() const { return bits_; }
  size_t mask() const { return mask_; }
  size_t capacity() const { return buckets_.size(); }
  // The memory of the table.
  size_t bytes() const { return buckets_.size() * sizeof(Bucket); }
  const Bucket& operator[](size_t i) const { return buckets_[i]; }
  // The bucket where the probe run of `hash` starts, for prefetching.
  const Bucket* HomeOf(uint64_t hash) const { return &buckets_[hash & mask_]; }

  // Walks the probe run of `hash` until `match(bucket)` holds for a bucket or an empty one
  // ends the run.
  template <typename Match>
  Probe Find(uint64_t hash, Match&& match) const {
    const Bucket* const buckets = buckets_.data();
    const size_t mask = mask_;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Bucket b = buckets[i];
      if (Codec::IsEmpty(b)) return Probe{i, false};
      if (match(b)) return Probe{i, true};
    }
  }

  // The empty bucket that ends the probe run of `hash`.
  size_t FindEmpty(uint64_t hash) const {
    const Bucket* const buckets = buckets_.data();
    const size_t mask = mask_;
    size_t i = hash & mask;
    while (!Codec::IsEmpty(buckets[i])) i = (i + 1) & mask;
    return i;
  }

  // Writes bucket `i`: an empty one from Find() or FindEmpty() for a new entry, or the
  // found one of an entry whose bucket changes without changing its home.
  void Put(size_t i, Bucket b) { buckets_[i] = b; }

  // Empties bucket `i`. Each later bucket of the run moves back into the hole unless its
  // home lies cyclically after the hole (it would then become unreachable from its home),
  // and the hole moves on with it; the run keeps no gap, so probes need no tombstones.
  // Note: calls Codec::Home for every bucket after `i` in its run.
  void Erase(size_t i) {
    Bucket* const buckets = buckets_.data();
    const size_t mask = mask_;
    size_t hole = i;
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
      const Bucket b = buckets[j];
      if (Codec::IsEmpty(b)) break;
      const size_t home = codec_.Home(b, mask);
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        buckets[hole] = b;
        hole = j;
      }
    }
    buckets[hole] = Bucket{};
  }

  void swap(ProbeIndex& other) noexcept {
    buckets_.swap(other.buckets_);
    std::swap(mask_, other.mask_);
    std::swap(bits_, other.bits_);
  }

  // Frees the table; Reset() makes the index usable again.
  void Release() {
    buckets_.Reset();
    mask_ = 0;
    bits_ = 0;
  }

 private:
  Codec codec_;
  MappedArray<Bucket> buckets_;
  size_t mask_ = 0;
  uint32_t bits_ = 0;
};

}  // namespace hirecache

#endif  // HIRECACHE_UTIL_PROBE_INDEX_H_
