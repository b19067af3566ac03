#include "store/memory_store.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

namespace hirecache {

namespace {

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t Mix(uint64_t h) {
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}

bool IsAscii(std::string_view bytes) {
  const char* p = bytes.data();
  size_t n = bytes.size();
  uint64_t high = 0;
  for (; n >= 8; p += 8, n -= 8) high |= Load64(p);
  for (; n > 0; ++p, --n) high |= static_cast<unsigned char>(*p);
  return (high & 0x8080808080808080ull) == 0;
}

// The bucket table is sized up front for max_bytes / kPresizeEntryBytes entries (when
// max_entries allows that many): its bytes count against max_bytes, so sizing it for the
// smallest entries (about 40 bytes) would give a quarter of the bound to buckets. Stores of
// smaller entries grow the table by rebuilding it.
constexpr uint64_t kPresizeEntryBytes = 128;

}  // namespace

MemoryStore::MemoryStore(const Options& options)
    : max_entries_(std::clamp<uint32_t>(options.max_entries, 1, kMaxEntriesLimit)),
      max_bytes_(options.max_bytes),
      sweep_per_write_(options.sweep_per_write),
      // A seed per store keeps the bucket layout unpredictable from outside, so keys chosen
      // by a client cannot be made to pile up in one probe run.
      seed_(
          Mix(reinterpret_cast<uintptr_t>(this) ^
              static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()))),
      index_(BucketCodec{this}) {
  index_.Reset(PresizedBucketBits());
}

MemoryStore::~MemoryStore() = default;

// The table size that holds as many entries as the bounds allow at a load of at most 3/4.
uint32_t MemoryStore::PresizedBucketBits() const {
  const uint64_t most = std::min<uint64_t>(max_entries_, max_bytes_ / kPresizeEntryBytes);
  uint32_t bits = kMinBucketBits;
  while (bits < kMaxPresizedBucketBits && (uint64_t{1} << bits) * 3 < most * 4) ++bits;
  return bits;
}

// A multiply-xorshift hash over 8-byte words. The low bits of the result pick the home
// bucket and the high bits become the bucket's tag, so both ends must be well mixed.
uint32_t MemoryStore::HashKey(std::string_view key) const {
  const char* p = key.data();
  size_t n = key.size();
  uint64_t h = seed_ ^ (uint64_t{n} * 0x9E3779B97F4A7C15ull);
  for (; n >= 8; p += 8, n -= 8) {
    h = (h ^ Load64(p)) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  if (n > 0) {
    // The last 1-7 bytes: from one load of the key's final 8 bytes when there are that
    // many (bytes just written, as by the binding's encoder, are read back at full speed
    // by a load of the same width, not after a copy of single bytes), else byte by byte.
    uint64_t tail = 0;
    if (key.size() >= 8) {
      tail = Load64(p + n - 8) >> (64 - 8 * n);
    } else {
      for (size_t k = 0; k < n; ++k) tail |= uint64_t{static_cast<unsigned char>(p[k])} << (8 * k);
    }
    h = (h ^ tail) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  return static_cast<uint32_t>(Mix(h));
}

uint32_t MemoryStore::HashOf(uint32_t slot) const {
  const BlockHeader* h = BlockOf(slot);
  return HashKey(std::string_view(h->key(), h->key_len));
}

ProbeIndex<MemoryStore::BucketCodec>::Probe MemoryStore::Probe(std::string_view key,
                                                               uint32_t hash) const {
  const uint32_t m = mask();
  const uint32_t tag = hash & ~m;
  return index_.Find(hash, [&](uint32_t b) {
    if ((b & ~m) != tag) return false;
    const BlockHeader* h = BlockOf((b & m) - 1);
    return h->key_len == key.size() &&
           (key.empty() || std::memcmp(h->key(), key.data(), key.size()) == 0);
  });
}

size_t MemoryStore::BucketOfSlot(uint32_t slot) const {
  const uint32_t m = mask();
  const uint32_t want = slot + 1;
  return index_.Find(HashOf(slot), [&](uint32_t b) { return (b & m) == want; }).index;
}

// Rebuilds the table with twice the buckets from the slots. Every live slot number stays
// below 3/4 of the bucket count, so slot + 1 always fits under the mask and is never 0.
void MemoryStore::GrowBuckets() {
  if (index_.bits() >= 31) throw std::bad_alloc();  // Unreachable under kMaxEntriesLimit.
  ProbeIndex<BucketCodec> fresh(BucketCodec{this});
  fresh.Reset(index_.bits() + 1);
  const uint32_t m = static_cast<uint32_t>(fresh.mask());
  for (uint32_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s].block == SlabArena::kNoRef) continue;
    const uint32_t hash = HashOf(s);
    fresh.Put(fresh.FindEmpty(hash), (hash & ~m) | (s + 1));
  }
  index_.swap(fresh);
}

// Moves the expiry base to `now_ms`: offsets shrink by the difference, entries whose time
// has come are removed, and far expiries that now fit in 32 bits move into their slots.
// One pass over the slots every 12 days.
void MemoryStore::Rebase(uint64_t now_ms) {
  const uint64_t delta = expiry_.MoveBase(now_ms);
  for (uint32_t s = 0; s < slots_.size(); ++s) {
    Slot& slot = slots_[s];
    if (slot.block == SlabArena::kNoRef || ExpiryOffsets::Shift(&slot.expires, delta)) continue;
    RemoveSlot(s);
    ++expired_;
  }
  std::vector<std::pair<uint32_t, uint32_t>> fitting;
  std::vector<uint32_t> due;
  expiry_.SettleFar(now_ms, &fitting, &due);
  for (const auto& [s, code] : fitting) slots_[s].expires = code;
  for (uint32_t s : due) {
    RemoveSlot(s);
    ++expired_;
  }
}

uint32_t MemoryStore::AllocateSlot() {
  if (free_ != kNil) {
    const uint32_t s = free_;
    free_ = slots_[s].older;
    return s;
  }
  slots_.push_back(Slot{SlabArena::kNoRef, kNil, kNil, ExpiryOffsets::kNever});
  return static_cast<uint32_t>(slots_.size() - 1);
}

void MemoryStore::ReleaseSlot(uint32_t s) {
  Slot& slot = slots_[s];
  expiry_.Forget(s, slot.expires);
  slot = Slot{SlabArena::kNoRef, kNil, free_, ExpiryOffsets::kNever};
  free_ = s;
}

void MemoryStore::LinkNewest(uint32_t s) {
  Slot& slot = slots_[s];
  slot.newer = kNil;
  slot.older = newest_;
  if (newest_ != kNil) {
    slots_[newest_].newer = s;
  } else {
    oldest_ = s;
  }
  newest_ = s;
}

void MemoryStore::Unlink(uint32_t s) {
  Slot& slot = slots_[s];
  if (slot.newer != kNil) {
    slots_[slot.newer].older = slot.older;
  } else {
    newest_ = slot.older;
  }
  if (slot.older != kNil) {
    slots_[slot.older].newer = slot.newer;
  } else {
    oldest_ = slot.newer;
  }
}

void MemoryStore::Touch(uint32_t s) {
  if (newest_ == s) return;
  Unlink(s);
  LinkNewest(s);
}

void MemoryStore::RemoveAt(size_t bucket, uint32_t s) {
  index_.Erase(bucket);
  Unlink(s);
  arena_.Free(slots_[s].block, BlockOf(s)->block_bytes());
  ReleaseSlot(s);
  --count_;
}

void MemoryStore::EvictOldest(uint64_t now_ms) {
  const uint32_t s = oldest_;
  if (IsExpired(s, now_ms)) {
    ++expired_;
  } else {
    ++evictions_;
  }
  RemoveSlot(s);
}

bool MemoryStore::FreeMemory(size_t block_bytes, uint32_t keep, uint64_t now_ms) {
  const bool small = block_bytes > 0 && block_bytes <= SlabArena::kLargestSmallBlock;
  for (;;) {
    const size_t growth = block_bytes == 0 ? 0 : arena_.GrowthFor(block_bytes) + SlotGrowth();
    if (bytes() + growth <= max_bytes_) return true;
    // Kept empty pages hold no entry, so they go first; one stays if the block needs it.
    const bool needs_kept_page = small && !arena_.HasFreeBlockFor(block_bytes);
    if (arena_.ReleaseKeptPages(needs_kept_page ? 1 : 0)) continue;
    // Compaction empties pages without losing an entry; the pages it empties are kept,
    // and given back on the next turn if the bound still needs it.
    if (arena_.CanCompact()) {
      const size_t emptied = arena_.Compact(*this, kCompactPagesPerStep);
      compactions_ += emptied;
      if (emptied > 0) continue;
    }
    if (oldest_ == kNil || oldest_ == keep) return false;
    EvictOldest(now_ms);
  }
}

bool MemoryStore::Get(std::string_view key, uint64_t now_ms, std::string_view* value, bool* ascii) {
  const auto probe = Probe(key, HashKey(key));
  if (!probe.found) {
    ++misses_;
    return false;
  }
  const uint32_t s = SlotOf(index_[probe.index]);
  if (IsExpired(s, now_ms)) {
    RemoveAt(probe.index, s);
    ++expired_;
    ++misses_;
    return false;
  }
  Touch(s);
  ++hits_;
  const BlockHeader* h = BlockOf(s);
  *value = std::string_view(h->value(), h->value_len);
  if (ascii != nullptr) *ascii = h->value_ascii;
  return true;
}

MemoryStore::SetResult MemoryStore::Set(std::string_view key, std::string_view value,
                                        uint64_t ttl_ms, uint64_t now_ms) {
  if (!expiry_.started()) {
    expiry_.Start(now_ms);
  } else if (expiry_.RebaseDue(now_ms)) {
    Rebase(now_ms);
  }
  const uint32_t hash = HashKey(key);
  const auto probe = Probe(key, hash);
  const size_t block_bytes = sizeof(BlockHeader) + key.size() + value.size();
  // Whether the entry fits once every other entry is gone (no eviction can give back the
  // fixed part).
  const bool fits =
      key.size() <= kMaxKeyBytes && value.size() <= kMaxValueBytes &&
      FixedBytes() + arena_.CostAlone(block_bytes) + (probe.found ? 0 : SlotGrowth()) <= max_bytes_;
  if (!fits) {
    if (probe.found) RemoveAt(probe.index, SlotOf(index_[probe.index]));
    return SetResult::kTooLarge;
  }
  const bool ascii = IsAscii(value);
  const uint64_t expires_at =
      ttl_ms == 0 ? 0 : (ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + ttl_ms);

  const size_t far_before = expiry_.far_count();
  if (probe.found) {
    const uint32_t s = SlotOf(index_[probe.index]);
    BlockHeader* h = BlockOf(s);
    const size_t old_bytes = h->block_bytes();
    if (SlabArena::SameClass(old_bytes, block_bytes)) {
      // The same block: the memory held does not change.
      arena_.Resize(slots_[s].block, old_bytes, block_bytes);
      h->value_len = static_cast<uint32_t>(value.size());
      h->value_ascii = ascii;
      if (!value.empty()) std::memcpy(h->key() + key.size(), value.data(), value.size());
      expiry_.Forget(s, slots_[s].expires);
      slots_[s].expires = expiry_.Encode(s, expires_at);
      Touch(s);
    } else {
      // A block of another size class: the entry is written anew, so that making room for
      // it never has to hold its old block as well.
      RemoveAt(probe.index, s);
      const SetResult result = Insert(key, value, hash, kNoBucket, expires_at, ascii, now_ms);
      if (result != SetResult::kStored) return result;
    }
  } else {
    const SetResult result = Insert(key, value, hash, probe.index, expires_at, ascii, now_ms);
    if (result != SetResult::kStored) return result;
  }
  // A far expiry is recorded aside, which can cross the bound by its few bytes.
  if (expiry_.far_count() != far_before && bytes() > max_bytes_) MakeRoom(0, newest_, now_ms);
  if (sweep_per_write_ > 0) SweepSlots(now_ms, sweep_per_write_);
  return SetResult::kStored;
}

// Adds the entry for `key`, which the store does not hold, after making room for it.
// `bucket` is the empty bucket that ends the probe run of `hash`, or kNoBucket.
MemoryStore::SetResult MemoryStore::Insert(std::string_view key, std::string_view value,
                                           uint32_t hash, size_t bucket, uint64_t expires_at,
                                           bool ascii, uint64_t now_ms) {
  const size_t block_bytes = sizeof(BlockHeader) + key.size() + value.size();
  const size_t count_before = count_;
  while (count_ >= max_entries_ && oldest_ != kNil) EvictOldest(now_ms);
  // Set() checked that the entry fits once everything else is gone, so this succeeds.
  if (!MakeRoom(block_bytes, kNil, now_ms)) return SetResult::kTooLarge;
  const bool grow = (count_ + 1) * 4 > index_.capacity() * 3;
  if (grow) GrowBuckets();
  const SlabArena::Ref ref = arena_.Allocate(block_bytes);
  if (ref == SlabArena::kNoRef) return SetResult::kOutOfMemory;
  uint32_t s;
  try {
    s = AllocateSlot();
  } catch (...) {
    arena_.Free(ref, block_bytes);
    throw;
  }
  auto* h = new (arena_.At(ref))
      BlockHeader{static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size()), ascii};
  if (!key.empty()) std::memcpy(h->key(), key.data(), key.size());
  if (!value.empty()) std::memcpy(h->key() + key.size(), value.data(), value.size());
  slots_[s] = Slot{ref, kNil, kNil, ExpiryOffsets::kNever};
  slots_[s].expires = expiry_.Encode(s, expires_at);
  // Removals shift probe runs back, and a new table has runs of its own: then the bucket
  // is looked for again.
  if (bucket == kNoBucket || grow || count_ != count_before) bucket = index_.FindEmpty(hash);
  index_.Put(bucket, (hash & ~mask()) | (s + 1));
  LinkNewest(s);
  ++count_;
  // A table twice the size can cross the bound: older entries make room for it.
  if (grow && bytes() > max_bytes_) MakeRoom(0, s, now_ms);
  return SetResult::kStored;
}

bool MemoryStore::Delete(std::string_view key, uint64_t now_ms) {
  const auto probe = Probe(key, HashKey(key));
  if (!probe.found) return false;
  const uint32_t s = SlotOf(index_[probe.index]);
  const bool live = !IsExpired(s, now_ms);
  if (!live) ++expired_;
  RemoveAt(probe.index, s);
  return live;
}

size_t MemoryStore::DeletePrefix(std::string_view prefix, uint64_t now_ms) {
  size_t cursor = 0;
  return DeletePrefixStep(prefix, now_ms, &cursor, SIZE_MAX);
}

size_t MemoryStore::DeletePrefixStep(std::string_view prefix, uint64_t now_ms, size_t* cursor,
                                     size_t budget) {
  size_t removed = 0;
  size_t s = *cursor;
  const size_t end = slots_.size();
  for (; s < end && budget > 0; ++s, --budget) {
    if (slots_[s].block == SlabArena::kNoRef) continue;
    const BlockHeader* h = BlockOf(static_cast<uint32_t>(s));
    if (h->key_len < prefix.size() ||
        (!prefix.empty() && std::memcmp(h->key(), prefix.data(), prefix.size()) != 0)) {
      continue;
    }
    if (IsExpired(static_cast<uint32_t>(s), now_ms)) {
      ++expired_;
    } else {
      ++removed;
    }
    RemoveSlot(static_cast<uint32_t>(s));
  }
  *cursor = s < end ? s : 0;
  return removed;
}

size_t MemoryStore::Sweep(uint64_t now_ms, size_t budget) {
  const size_t removed = SweepSlots(now_ms, budget);
  // Pages left sparse by deletions are compacted here too, a step at a time, once an
  // eighth of the pages could go: their memory goes back even when nothing is written.
  if (arena_.CanCompact() && arena_.spare_pages() * 8 >= arena_.pages_in_use()) {
    compactions_ += arena_.Compact(*this, kCompactPagesPerStep);
  }
  return removed;
}

size_t MemoryStore::SweepSlots(uint64_t now_ms, size_t budget) {
  if (expiry_.RebaseDue(now_ms)) Rebase(now_ms);
  const size_t n = slots_.size();
  size_t removed = 0;
  for (size_t examined = 0; examined < budget && examined < n; ++examined) {
    if (sweep_cursor_ >= n) sweep_cursor_ = 0;
    const uint32_t s = static_cast<uint32_t>(sweep_cursor_++);
    if (slots_[s].block != SlabArena::kNoRef && IsExpired(s, now_ms)) {
      RemoveSlot(s);
      ++expired_;
      ++removed;
    }
  }
  return removed;
}

void MemoryStore::Clear() {
  index_.Reset(PresizedBucketBits());  // First: if memory runs out, nothing has changed.
  arena_.Clear();
  slots_.Reset();
  expiry_.Clear();
  newest_ = oldest_ = free_ = kNil;
  sweep_cursor_ = 0;
  count_ = 0;
}

MemoryStore::Stats MemoryStore::GetStats() const {
  return Stats{count_,  bytes(),    max_entries_, max_bytes_,  hits_,
               misses_, evictions_, expired_,     compactions_};
}

size_t MemoryStore::BlockBytes(SlabArena::Ref ref) const {
  return reinterpret_cast<const BlockHeader*>(arena_.At(ref))->block_bytes();
}

// The slot that refers to `from` is found through the index, by the key's hash: the block
// keeps no slot number, which would cost every entry 8 bytes.
void MemoryStore::BlockMoved(SlabArena::Ref from, SlabArena::Ref to) {
  const auto* h = reinterpret_cast<const BlockHeader*>(arena_.At(to));
  const uint32_t hash = HashKey(std::string_view(h->key(), h->key_len));
  const uint32_t m = mask();
  const uint32_t tag = hash & ~m;
  const auto probe = index_.Find(
      hash, [&](uint32_t b) { return (b & ~m) == tag && slots_[(b & m) - 1].block == from; });
  slots_[SlotOf(index_[probe.index])].block = to;
}

}  // namespace hirecache
