// The embedded store: an in-process key/value store of byte strings with a TTL per entry,
// bounded by entry count and by bytes with least-recently-used eviction. It serves the cache
// API when Redis is disabled (and as a fallback), so it is built for compactness first.
//
// Memory layout, per entry:
//   * one block in a slab arena of 16 KiB pages: an 8-byte header (key and value lengths),
//     the key bytes and the value bytes, rounded up to 8 bytes, addressed by a 32-bit
//     reference rather than a pointer and without any allocator header;
//   * one 16-byte slot in a dense array: the block reference, the LRU links as 32-bit slot
//     numbers (so keeping recency never touches the blocks) and the expiry time as 32-bit
//     milliseconds from a base that is moved forward every 12 days;
//   * one 4-byte bucket in an open-addressing table (linear probing, load <= 3/4) that
//     holds the slot number in its low bits and the high bits of the key's hash above
//     them, so a probe rarely looks at a block whose key cannot match. The table is sized
//     for the store's bounds up front (its pages cost memory only once touched), so it
//     never has to be rebuilt while the store fills up: no pause of tens of milliseconds
//     at a million entries.
// With 20-byte keys and 100-byte values that is about 152 bytes per entry, 120 of them
// the key and value themselves.
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
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hirecache {

class MemoryStore {
 public:
  struct Options {
    // At most this many entries are kept (1 to kMaxEntriesLimit).
    uint32_t max_entries = 100000;
    // At most this many bytes are charged, counting keys, values and kEntryOverhead each.
    uint64_t max_bytes = uint64_t{64} << 20;
    // Each Set() also sweeps this many slots, so expired entries are reclaimed in step
    // with the write rate even when no one calls Sweep().
    uint32_t sweep_per_write = 2;
  };

  struct Stats {
    uint64_t entries;
    uint64_t bytes;
    uint64_t max_entries;
    uint64_t max_bytes;
    uint64_t hits;
    uint64_t misses;
    uint64_t evictions;  // Entries removed to respect max_entries / max_bytes.
    uint64_t expired;    // Entries removed because their TTL had passed.
  };

  enum class SetResult {
    kStored,
    kTooLarge,     // The entry alone exceeds max_bytes, or a size limit below; not stored.
    kOutOfMemory,  // The system refused memory; not stored.
  };

  // The bytes charged to each entry besides its key and value: its slot (16), its block
  // header (8), its share of the bucket table (about 8) and the rounding of its block to
  // 8 bytes (4 on average). memory_store.cc checks this against the real sizes.
  static constexpr uint64_t kEntryOverhead = 36;
  static constexpr uint32_t kMaxEntriesLimit = uint32_t{1} << 28;
  static constexpr uint64_t kMaxKeyBytes = UINT32_MAX;
  static constexpr uint64_t kMaxValueBytes = INT32_MAX;

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
  // expiry. Evicts least recently used entries until the bounds hold again, then sweeps
  // `sweep_per_write` slots. When the entry is refused (kTooLarge / kOutOfMemory) any
  // previous value of `key` is removed too, so a failed write never leaves a stale value.
  // Throws std::bad_alloc only when the slot or bucket array cannot grow (store unchanged).
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
  size_t Sweep(uint64_t now_ms, size_t budget);

  // Removes every entry and gives back the memory of the arena, slots and buckets.
  // The hit/miss/eviction/expiry counters are kept.
  void Clear();

  Stats GetStats() const;
  size_t size() const { return count_; }
  uint64_t bytes() const { return bytes_; }
  // The bytes the store holds from the system: arena pages, large blocks, slots, buckets.
  size_t footprint() const;

 private:
  // A growable array of trivially copyable T in a memory mapping of its own: growing
  // moves its pages (mremap) rather than copying them, capacity not yet used costs no
  // memory, and freeing it returns the memory to the system at once, where malloc would
  // keep a large freed buffer in its heap.
  template <typename T>
  class MappedArray {
    static_assert(std::is_trivially_copyable_v<T>, "MappedArray moves its bytes");

   public:
    MappedArray() = default;
    ~MappedArray() { Reset(); }
    MappedArray(const MappedArray&) = delete;
    MappedArray& operator=(const MappedArray&) = delete;

    size_t size() const { return size_; }
    size_t capacity() const { return capacity_; }
    T& operator[](size_t i) { return data_[i]; }
    const T& operator[](size_t i) const { return data_[i]; }
    // Throws std::bad_alloc when the mapping cannot grow (the array is then unchanged).
    void push_back(const T& v) {
      if (size_ == capacity_) Grow(size_ + 1);
      data_[size_++] = v;
    }
    // Replaces the contents with `n` zero-filled elements. Throws std::bad_alloc (the
    // array is then unchanged).
    void AssignZeros(size_t n);
    void Reset();
    void swap(MappedArray& other) noexcept {
      std::swap(data_, other.data_);
      std::swap(size_, other.size_);
      std::swap(capacity_, other.capacity_);
    }

   private:
    void Grow(size_t at_least);

    T* data_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 0;
  };

  // Hands out blocks of 8-byte units from 16 KiB pages, one size class per page, addressed
  // by 32-bit references; blocks over 4 KiB come from malloc. See memory_store.cc.
  class Arena {
   public:
    static constexpr uint32_t kNoRef = UINT32_MAX;

    Arena();
    ~Arena();
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

    // Returns a block of at least `bytes` bytes, or kNoRef when memory is exhausted.
    uint32_t Allocate(size_t bytes);
    // Frees a block; `bytes` must be the size it was allocated with (or one of the same
    // class, see SameClass).
    void Free(uint32_t ref, size_t bytes);
    char* At(uint32_t ref) const;
    // Whether a block allocated for `a` bytes can hold `b` bytes in place.
    static bool SameClass(size_t a, size_t b);
    void Clear();
    size_t footprint() const;

   private:
    struct Page {
      uint32_t prev;  // Neighbours in its class's list of pages with free blocks.
      uint32_t next;
      uint16_t size_class;
      uint16_t live;       // Blocks in use.
      uint16_t free_head;  // First freed block (unit offset), or kNoUnit.
      uint16_t bump;       // First never-used unit.
    };

    uint32_t NewPage();
    void ReleasePage(uint32_t page);
    void Unlink(uint32_t page);

    std::vector<char*> pages_;     // Page number -> address.
    std::vector<Page> page_info_;  // Page number -> state.
    std::vector<uint32_t> free_pages_;
    std::vector<uint32_t> partial_;  // Size class -> first page with a free block.
    std::vector<char*> chunks_;      // The mappings pages are carved from.
    std::vector<char*> large_;       // Large-block number -> malloc'd block.
    std::vector<uint32_t> free_large_;
    size_t large_bytes_ = 0;
  };

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
    uint32_t block;    // Arena reference; Arena::kNoRef while the slot is free.
    uint32_t newer;    // LRU neighbour toward the most recently used end, or kNil.
    uint32_t older;    // LRU neighbour toward the least recently used end, or kNil;
                       // the next free slot while the slot is free.
    uint32_t expires;  // 0: never. kFarExpiry: see far_expiries_. Else base_ms_ + expires.
  };

  static constexpr uint32_t kNil = UINT32_MAX;
  static constexpr uint32_t kFarExpiry = UINT32_MAX;
  static constexpr uint32_t kMinBucketBits = 4;
  // Tables sized up front stop at 2^22 buckets (16 MiB, for 3M entries); beyond that the
  // table grows by rebuilding.
  static constexpr uint32_t kMaxPresizedBucketBits = 22;

  static uint64_t Charge(size_t key_len, size_t value_len) {
    return uint64_t{key_len} + value_len + kEntryOverhead;
  }

  BlockHeader* BlockOf(uint32_t slot) const {
    return reinterpret_cast<BlockHeader*>(arena_.At(slots_[slot].block));
  }
  uint32_t HashKey(std::string_view key) const;
  uint32_t HashOf(uint32_t slot) const;
  uint32_t mask() const { return (uint32_t{1} << bucket_bits_) - 1; }
  uint32_t SlotOf(uint32_t bucket) const { return (bucket & mask()) - 1; }

  // Returns the bucket index holding `key` (*found = true), or else the empty bucket where
  // it would go (*found = false).
  size_t Probe(std::string_view key, uint32_t hash, bool* found) const;
  size_t BucketOfSlot(uint32_t slot) const;
  uint32_t PresizedBucketBits() const;
  void GrowBuckets();
  void RebuildBuckets(uint32_t bits);

  bool IsExpired(uint32_t slot, uint64_t now_ms) const;
  void SetExpiry(uint32_t slot, uint64_t expires_at);
  void Rebase(uint64_t now_ms);

  // Removes the entry in `slot`, whose bucket index is `bucket`.
  void RemoveAt(size_t bucket, uint32_t slot);
  void RemoveSlot(uint32_t slot) { RemoveAt(BucketOfSlot(slot), slot); }
  uint32_t AllocateSlot();
  void ReleaseSlot(uint32_t slot);
  void LinkNewest(uint32_t slot);
  void Unlink(uint32_t slot);
  void Touch(uint32_t slot);
  void EvictToBounds(uint64_t now_ms);

  const uint32_t max_entries_;
  const uint64_t max_bytes_;
  const uint32_t sweep_per_write_;
  const uint64_t seed_;

  Arena arena_;
  MappedArray<Slot> slots_;
  MappedArray<uint32_t> buckets_;  // 0 = empty; else (hash & ~mask) | (slot + 1).
  uint32_t bucket_bits_ = kMinBucketBits;
  uint32_t newest_ = kNil;
  uint32_t oldest_ = kNil;
  uint32_t free_ = kNil;
  size_t sweep_cursor_ = 0;

  // Expiry times are kept as 32-bit offsets from base_ms_, which Rebase() moves forward.
  // The rare expiry too far ahead for 32 bits is kept here, by slot.
  bool have_base_ = false;
  uint64_t base_ms_ = 0;
  std::unordered_map<uint32_t, uint64_t> far_expiries_;

  size_t count_ = 0;
  uint64_t bytes_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  uint64_t evictions_ = 0;
  uint64_t expired_ = 0;
};

}  // namespace hirecache

#endif  // HIRECACHE_STORE_MEMORY_STORE_H_
