// The embedded store: an in-process key/value store of byte strings with a TTL per entry,
// bounded by entry count and by bytes with least-recently-used eviction. It serves the cache
// API when Redis is disabled (and as a fallback), so it is built for compactness first.
//
// Memory layout, per entry:
//   * one block in a slab arena (util/slab_arena.h) of 16 KiB pages: an 8-byte header (key
//     and value lengths), the key bytes and the value bytes, rounded up to the block's size
//     class, addressed by a 32-bit reference rather than a pointer;
//   * one 16-byte slot in a dense array: the block reference, the LRU links as 32-bit slot
//     numbers (so keeping recency never touches the blocks) and the expiry time as 32-bit
//     milliseconds from a base that is moved forward every 12 days (store/expiry_offsets.h);
//   * one 4-byte bucket in an open-addressing index (util/probe_index.h, linear probing,
//     load <= 3/4) that holds the slot number in its low bits and the high bits of the key's
//     hash above them, so a probe rarely looks at a block whose key cannot match. The table is
//     sized up front for min(max_entries, max_bytes / 128) entries, so it is not rebuilt
//     while a store of ordinary entries fills up: no pause of tens of milliseconds at a
//     million entries.
// With 20-byte keys and 100-byte values that is about 152 bytes per entry, 120 of them the
// key and value themselves.
//
// What max_bytes bounds: the memory the store holds, not a sum of per-entry estimates.
// Precisely, bytes() (Stats::bytes) is the sum of
//   * the arena's pages, 16 KiB each, whole, whether full or holding a single live block,
//     including the up to 64 empty pages kept resident for reuse;
//   * each value block over 4 KiB (which comes from malloc) plus 16 bytes;
//   * the arena's page table (about 36 bytes per 16 KiB page ever mapped);
//   * the slot array up to its highest slot ever used, in whole 4 KiB pages;
//   * the whole bucket table (4 bytes per bucket, sized for the bounds up front);
//   * the rare expiry too far ahead for 32 bits (32 bytes each).
// Before a write makes the store hold more, the store frees memory until the bound holds
// with the new entry: first the kept empty pages, then by compacting the arena (moving the
// live blocks of sparse pages into fuller pages of their size class, which loses no entry)
// whenever that can empty a page, and only then by evicting the least recently used
// entries. So pages left nearly empty by deletions or by a change in value sizes are
// reclaimed instead of staying held, and bytes() <= max_bytes after every call (given a
// bound that leaves room for the parts no eviction gives back: see kMinBytes). The store's
// process also holds what is not the store's own: the binding's conversion buffers (a few
// KiB) and malloc's free lists.
//
// Expired entries are removed lazily when they are looked up and incrementally by Sweep(),
// which walks the slot array a bounded number of slots per call: no timer per key.
//
// Time is always passed in (`now_ms`, any monotonic millisecond clock, never going back),
// so tests control it. Not thread-safe: one store belongs to one thread.
#ifndef HIRECACHE_STORE_MEMORY_STORE_H_
#define HIRECACHE_STORE_MEMORY_STORE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "store/expiry_offsets.h"
#include "util/mapped_array.h"
#include "util/probe_index.h"
#include "util/slab_arena.h"

namespace hirecache {

class MemoryStore final : private SlabArena::Owner {
 public:
  static constexpr uint32_t kDefaultMaxEntries = 100000;
  static constexpr uint64_t kDefaultMaxBytes = uint64_t{64} << 20;
  static constexpr uint32_t kDefaultSweepPerWrite = 2;
  static constexpr uint32_t kMaxEntriesLimit = uint32_t{1} << 28;
  // The smallest byte bound worth having: the bucket table, the first slots and a few
  // pages. A store accepts a smaller one, but then refuses most writes as too large.
  static constexpr uint64_t kMinBytes = uint64_t{64} << 10;
  static constexpr uint64_t kMaxKeyBytes = UINT32_MAX;
  static constexpr uint64_t kMaxValueBytes = INT32_MAX;

  struct Options {
    // At most this many entries are kept (1 to kMaxEntriesLimit).
    uint32_t max_entries = kDefaultMaxEntries;
    // At most this many bytes are held; see the header comment for what counts.
    uint64_t max_bytes = kDefaultMaxBytes;
    // Each Set() also sweeps this many slots, so expired entries are reclaimed in step
    // with the write rate even when no one calls Sweep().
    uint32_t sweep_per_write = kDefaultSweepPerWrite;
  };

  struct Stats {
    uint64_t entries;
    uint64_t bytes;  // What max_bytes bounds: bytes().
    uint64_t max_entries;
    uint64_t max_bytes;
    uint64_t hits;
    uint64_t misses;
    uint64_t evictions;    // Entries removed to respect max_entries / max_bytes.
    uint64_t expired;      // Entries removed because their TTL had passed.
    uint64_t compactions;  // Arena pages emptied by moving their blocks elsewhere.
  };

  enum class SetResult {
    kStored,
    kTooLarge,     // The entry alone exceeds max_bytes, or a size limit below; not stored.
    kOutOfMemory,  // The system refused memory; not stored.
  };

  explicit MemoryStore(const Options& options);
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // Looks `key` up. On a hit, points `*value` at the stored bytes (valid until the next
  // call that modifies the store), sets `*ascii` (when given) to whether they are all
  // below 0x80 (recorded by Set, so callers can skip decoding), makes the entry the most
  // recently used and returns true. An entry whose TTL has passed is removed and reads
  // as a miss.
  bool Get(std::string_view key, uint64_t now_ms, std::string_view* value, bool* ascii = nullptr);

  // Stores `value` under `key`, replacing any previous value and TTL. `ttl_ms` 0 means no
  // expiry. First frees memory until the bounds hold with the new entry (kept pages,
  // compaction, then least recently used entries), then sweeps `sweep_per_write` slots.
  // When the entry is refused (kTooLarge / kOutOfMemory) any previous value of `key` is
  // removed too, so a failed write never leaves a stale value. Throws std::bad_alloc only
  // when the slot or bucket array cannot grow (the key then holds no value either).
  SetResult Set(std::string_view key, std::string_view value, uint64_t ttl_ms, uint64_t now_ms);

  // Removes `key`. Returns true when a live entry was removed (an expired one counts as
  // already gone, as in Redis).
  bool Delete(std::string_view key, uint64_t now_ms);

  // Removes every entry whose key starts with the bytes of `prefix` (literally: no pattern
  // characters). Returns how many live entries went; expired ones are removed as well but
  // counted in Stats::expired. An empty prefix matches every key.
  size_t DeletePrefix(std::string_view prefix, uint64_t now_ms);

  // The same, in steps: examines at most `budget` slots from `*cursor` (0 to start) and
  // sets `*cursor` to where the next step goes on, or to 0 when the pass is complete.
  // As with Redis's SCAN, an entry written between steps may or may not be seen.
  size_t DeletePrefixStep(std::string_view prefix, uint64_t now_ms, size_t* cursor, size_t budget);

  // Examines at most `budget` slots, continuing where the previous call stopped and
  // wrapping around, and removes the expired entries among them. Returns how many went.
  // Then, when an eighth of the arena's pages could be emptied by compaction, compacts one
  // step (at most kCompactPagesPerStep pages), so that the memory of deleted entries goes
  // back even when nothing is written.
  size_t Sweep(uint64_t now_ms, size_t budget);

  // Removes every entry and gives back the memory of the arena and the slots; the bucket
  // table is made anew at its size for the bounds. The hit/miss/eviction/expiry counters
  // are kept. Throws std::bad_alloc if the new table cannot be mapped (nothing changes).
  void Clear();

  Stats GetStats() const;
  size_t size() const { return count_; }
  // What max_bytes bounds (see the header comment): the memory the store holds.
  size_t bytes() const { return arena_.held_bytes() - arena_.table_bytes() + FixedBytes(); }
  size_t footprint() const { return bytes(); }

 private:
  // The start of every block; the key bytes follow it, then the value bytes.
  struct BlockHeader {
    uint32_t key_len;
    uint32_t value_len : 31;
    uint32_t value_ascii : 1;

    char* key() { return reinterpret_cast<char*>(this) + sizeof(BlockHeader); }
    const char* key() const { return reinterpret_cast<const char*>(this) + sizeof(BlockHeader); }
    const char* value() const { return key() + key_len; }
    size_t block_bytes() const { return sizeof(BlockHeader) + key_len + value_len; }
  };

  struct Slot {
    uint32_t block;    // Arena reference; SlabArena::kNoRef while the slot is free.
    uint32_t newer;    // LRU neighbour toward the most recently used end, or kNil.
    uint32_t older;    // LRU neighbour toward the least recently used end, or kNil;
                       // the next free slot while the slot is free.
    uint32_t expires;  // ExpiryOffsets' code for the slot's expiry time.
  };

  // A bucket is 0 when empty, else (hash & ~mask) | (slot + 1): its home is not in it, so
  // the index asks the store to hash the slot's key again.
  struct BucketCodec {
    using Bucket = uint32_t;
    static bool IsEmpty(uint32_t b) { return b == 0; }
    size_t Home(uint32_t b, size_t mask) const {
      return store->HashOf(static_cast<uint32_t>((b & mask) - 1)) & mask;
    }
    const MemoryStore* store;
  };

  static constexpr uint32_t kNil = UINT32_MAX;
  static constexpr uint32_t kMinBucketBits = 4;
  // Tables sized up front stop at 2^22 buckets (16 MiB, for 3M entries); beyond that the
  // table grows by rebuilding.
  static constexpr uint32_t kMaxPresizedBucketBits = 22;
  // Pages one compaction step may empty: enough to amortize sorting a class's pages, few
  // enough to keep the step well under a millisecond.
  static constexpr size_t kCompactPagesPerStep = 16;

  BlockHeader* BlockOf(uint32_t slot) const {
    return reinterpret_cast<BlockHeader*>(arena_.At(slots_[slot].block));
  }
  uint32_t HashKey(std::string_view key) const;
  uint32_t HashOf(uint32_t slot) const;
  uint32_t mask() const { return static_cast<uint32_t>(index_.mask()); }
  uint32_t SlotOf(uint32_t bucket) const { return (bucket & mask()) - 1; }

  // The probe for `key`: its bucket (found), or else the empty bucket where it would go.
  ProbeIndex<BucketCodec>::Probe Probe(std::string_view key, uint32_t hash) const;
  size_t BucketOfSlot(uint32_t slot) const;
  uint32_t PresizedBucketBits() const;
  void GrowBuckets();

  // Sweep() without the compaction step, as every write does it.
  size_t SweepSlots(uint64_t now_ms, size_t budget);
  bool IsExpired(uint32_t slot, uint64_t now_ms) const {
    return expiry_.IsExpired(slot, slots_[slot].expires, now_ms);
  }
  void Rebase(uint64_t now_ms);

  // Removes the entry in `slot`, whose bucket index is `bucket`.
  void RemoveAt(size_t bucket, uint32_t slot);
  void RemoveSlot(uint32_t slot) { RemoveAt(BucketOfSlot(slot), slot); }
  // Removes the least recently used entry, counted as expired or evicted.
  void EvictOldest(uint64_t now_ms);
  uint32_t AllocateSlot();
  void ReleaseSlot(uint32_t slot);
  void LinkNewest(uint32_t slot);
  void Unlink(uint32_t slot);
  void Touch(uint32_t slot);

  // The memory the store holds that no eviction gives back: the bucket table, the slot
  // array, the page table and the far expiries.
  size_t FixedBytes() const {
    return arena_.table_bytes() + slots_.used_bytes() + index_.bytes() +
           expiry_.far_count() * ExpiryOffsets::kFarEntryBytes;
  }
  // What bytes() grows by when a new slot is taken.
  size_t SlotGrowth() const {
    if (free_ != kNil) return 0;
    return mapped_memory::RoundToPages((slots_.size() + 1) * sizeof(Slot)) - slots_.used_bytes();
  }
  // Frees memory until a new entry whose block is `block_bytes` fits under max_bytes:
  // kept pages, then compaction, then least recently used entries other than `keep`.
  // Returns false when even that is not enough.
  bool MakeRoom(size_t block_bytes, uint32_t keep, uint64_t now_ms) {
    const size_t growth = block_bytes == 0 ? 0 : arena_.GrowthFor(block_bytes) + SlotGrowth();
    return bytes() + growth <= max_bytes_ || FreeMemory(block_bytes, keep, now_ms);
  }
  // MakeRoom() once something has to go.
  bool FreeMemory(size_t block_bytes, uint32_t keep, uint64_t now_ms);
  static constexpr size_t kNoBucket = SIZE_MAX;
  SetResult Insert(std::string_view key, std::string_view value, uint32_t hash, size_t bucket,
                   uint64_t expires_at, bool ascii, uint64_t now_ms);

  // SlabArena::Owner: compaction moves blocks, and the slot that refers to one follows it.
  size_t BlockBytes(SlabArena::Ref ref) const override;
  void BlockMoved(SlabArena::Ref from, SlabArena::Ref to) override;

  const uint32_t max_entries_;
  const uint64_t max_bytes_;
  const uint32_t sweep_per_write_;
  const uint64_t seed_;

  SlabArena arena_;
  MappedArray<Slot> slots_;
  ProbeIndex<BucketCodec> index_;
  ExpiryOffsets expiry_;
  uint32_t newest_ = kNil;
  uint32_t oldest_ = kNil;
  uint32_t free_ = kNil;
  size_t sweep_cursor_ = 0;

  size_t count_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  uint64_t evictions_ = 0;
  uint64_t expired_ = 0;
  uint64_t compactions_ = 0;
};

}  // namespace hirecache

#endif  // HIRECACHE_STORE_MEMORY_STORE_H_
