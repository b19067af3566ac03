#include "store/memory_store.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

// Under AddressSanitizer the arena marks free and unused bytes as poisoned, so a read or
// write past the end of a block is caught even though blocks share pages.
#if defined(__SANITIZE_ADDRESS__)
#define HIRECACHE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HIRECACHE_ASAN 1
#endif
#endif
#ifdef HIRECACHE_ASAN
#include <sanitizer/asan_interface.h>
#define HIRECACHE_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HIRECACHE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define HIRECACHE_POISON(p, n) ((void)(p), (void)(n))
#define HIRECACHE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace hirecache {

namespace {

// ---- arena geometry ----------------------------------------------------------------------
// A reference is (page << kOffsetBits) | unit for a block in a page, or kLargeFlag | index
// for a block from malloc. Units are 8 bytes, so blocks are 8-byte aligned.
constexpr size_t kUnit = 8;
constexpr size_t kPageBytes = 16 * 1024;
constexpr uint32_t kUnitsPerPage = kPageBytes / kUnit;
constexpr uint32_t kOffsetBits = 11;
static_assert((uint32_t{1} << kOffsetBits) == kUnitsPerPage, "offset bits must cover a page");
constexpr uint32_t kLargeFlag = uint32_t{1} << 31;
constexpr uint32_t kMaxPages = kLargeFlag >> kOffsetBits;  // 16 GiB of pages.
constexpr size_t kChunkPages = 64;                         // Pages are mapped 1 MiB at a time.
constexpr size_t kKeepFreePages = 64;  // Empty pages kept resident before being given back.
constexpr uint16_t kNoUnit = UINT16_MAX;
constexpr uint32_t kNoPage = UINT32_MAX;

// Size classes: every multiple of 8 bytes up to 1 KiB (so a block wastes at most 7 bytes),
// then steps of 128 bytes up to 4 KiB (at most 11%). Larger blocks come from malloc, whose
// 16 bytes of overhead no longer matter.
constexpr size_t kFineMax = 1024;
constexpr size_t kCoarseStep = 128;
constexpr size_t kSmallMax = 4096;
constexpr uint32_t kFineClasses = kFineMax / kUnit;
constexpr uint32_t kClasses = kFineClasses + (kSmallMax - kFineMax) / kCoarseStep;

uint32_t ClassOf(size_t bytes) {
  if (bytes <= kFineMax)
    return bytes == 0 ? 0 : static_cast<uint32_t>((bytes + kUnit - 1) / kUnit - 1);
  return kFineClasses - 1 +
         static_cast<uint32_t>((bytes - kFineMax + kCoarseStep - 1) / kCoarseStep);
}

uint32_t ClassUnits(uint32_t size_class) {
  if (size_class < kFineClasses) return size_class + 1;
  return static_cast<uint32_t>((kFineMax + (size_class - kFineClasses + 1) * kCoarseStep) / kUnit);
}

// ---- hashing -----------------------------------------------------------------------------

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

// Makes room for `n` elements, growing geometrically so repeated calls stay amortized O(1).
template <typename T>
void ReserveFor(std::vector<T>& v, size_t n) {
  if (n > v.capacity()) v.reserve(std::max(n, v.capacity() * 2));
}

// Expiry offsets are moved to a new base this often, long before 32 bits run out.
constexpr uint64_t kRebaseAfterMs = uint64_t{1} << 30;  // About 12.4 days.

}  // namespace

// The charge per entry is meant to track what an entry really costs (see the header).
static_assert(MemoryStore::kEntryOverhead == 16 + 8 + 8 + 4, "update kEntryOverhead");

// ==== MappedArray =========================================================================

namespace {

constexpr size_t kSystemPage = 4096;

size_t RoundToPages(size_t bytes) { return (bytes + kSystemPage - 1) / kSystemPage * kSystemPage; }

}  // namespace

template <typename T>
void MemoryStore::MappedArray<T>::Grow(size_t at_least) {
  const size_t old_bytes = RoundToPages(capacity_ * sizeof(T));
  const size_t new_bytes =
      RoundToPages(std::max({at_least, capacity_ * 2, kSystemPage / sizeof(T)}) * sizeof(T));
  void* mem = data_ == nullptr ? mmap(nullptr, new_bytes, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                               : mremap(data_, old_bytes, new_bytes, MREMAP_MAYMOVE);
  if (mem == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<T*>(mem);
  capacity_ = new_bytes / sizeof(T);
}

template <typename T>
void MemoryStore::MappedArray<T>::AssignZeros(size_t n) {
  MappedArray fresh;
  fresh.Grow(n);  // A fresh anonymous mapping reads as zeros.
  fresh.size_ = n;
  swap(fresh);
}

template <typename T>
void MemoryStore::MappedArray<T>::Reset() {
  if (data_ != nullptr) munmap(data_, RoundToPages(capacity_ * sizeof(T)));
  data_ = nullptr;
  size_ = capacity_ = 0;
}

// ==== Arena ===============================================================================

MemoryStore::Arena::Arena() : partial_(kClasses, kNoPage) {}

MemoryStore::Arena::~Arena() { Clear(); }

char* MemoryStore::Arena::At(uint32_t ref) const {
  if (ref & kLargeFlag) return large_[ref & ~kLargeFlag];
  return pages_[ref >> kOffsetBits] + size_t{ref & (kUnitsPerPage - 1)} * kUnit;
}

bool MemoryStore::Arena::SameClass(size_t a, size_t b) {
  if (a > kSmallMax || b > kSmallMax) return a == b;
  return ClassOf(a) == ClassOf(b);
}

// Takes a page from the free pages, or maps a new chunk of them. Returns kNoPage when the
// system has no memory left or the reference space is exhausted.
uint32_t MemoryStore::Arena::NewPage() {
  if (free_pages_.empty()) {
    if (pages_.size() + kChunkPages > kMaxPages) return kNoPage;
    // Grow the bookkeeping first, so a failure leaves nothing half done.
    // free_pages_ can come to hold every page, so ReleasePage() never needs to allocate.
    ReserveFor(pages_, pages_.size() + kChunkPages);
    ReserveFor(page_info_, pages_.size() + kChunkPages);
    ReserveFor(free_pages_, pages_.size() + kChunkPages);
    ReserveFor(chunks_, chunks_.size() + 1);
    void* mem = mmap(nullptr, kChunkPages * kPageBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return kNoPage;
    char* base = static_cast<char*>(mem);
    HIRECACHE_POISON(base, kChunkPages * kPageBytes);
    chunks_.push_back(base);
    const uint32_t first = static_cast<uint32_t>(pages_.size());
    for (size_t i = 0; i < kChunkPages; ++i) {
      pages_.push_back(base + i * kPageBytes);
      page_info_.push_back(Page{kNoPage, kNoPage, 0, 0, kNoUnit, 0});
    }
    // Lower pages first, so a small store stays within few of them.
    for (size_t i = kChunkPages; i-- > 0;) free_pages_.push_back(first + static_cast<uint32_t>(i));
  }
  const uint32_t page = free_pages_.back();
  free_pages_.pop_back();
  return page;
}

void MemoryStore::Arena::ReleasePage(uint32_t page) {
  char* p = pages_[page];
  HIRECACHE_POISON(p, kPageBytes);
  // Past a small reserve, the page's memory goes back to the system; the address stays
  // mapped and reads as zeros when the page is used again.
  if (free_pages_.size() >= kKeepFreePages) madvise(p, kPageBytes, MADV_DONTNEED);
  page_info_[page] = Page{kNoPage, kNoPage, 0, 0, kNoUnit, 0};
  free_pages_.push_back(page);  // Capacity was reserved when the page was mapped.
}

void MemoryStore::Arena::Unlink(uint32_t page) {
  Page& info = page_info_[page];
  if (info.prev != kNoPage) {
    page_info_[info.prev].next = info.next;
  } else {
    partial_[info.size_class] = info.next;
  }
  if (info.next != kNoPage) page_info_[info.next].prev = info.prev;
  info.prev = info.next = kNoPage;
}

uint32_t MemoryStore::Arena::Allocate(size_t bytes) {
  if (bytes > kSmallMax) {
    if (free_large_.empty() && large_.size() >= (kLargeFlag - 1)) return kNoRef;
    ReserveFor(large_, large_.size() + 1);
    ReserveFor(free_large_, large_.size() + 1);  // So Free() never needs to allocate.
    char* block = static_cast<char*>(std::malloc(bytes));
    if (block == nullptr) return kNoRef;
    uint32_t index;
    if (!free_large_.empty()) {
      index = free_large_.back();
      free_large_.pop_back();
      large_[index] = block;
    } else {
      index = static_cast<uint32_t>(large_.size());
      large_.push_back(block);
    }
    large_bytes_ += bytes;
    return kLargeFlag | index;
  }

  const uint32_t size_class = ClassOf(bytes);
  const uint32_t units = ClassUnits(size_class);
  uint32_t page = partial_[size_class];
  if (page == kNoPage) {
    page = NewPage();
    if (page == kNoPage) return kNoRef;
    Page& fresh = page_info_[page];
    fresh.size_class = static_cast<uint16_t>(size_class);
    fresh.next = kNoPage;
    partial_[size_class] = page;
  }
  Page& info = page_info_[page];
  char* const page_base = pages_[page];
  uint16_t unit;
  if (info.free_head != kNoUnit) {
    unit = info.free_head;
    char* block = page_base + size_t{unit} * kUnit;
    HIRECACHE_UNPOISON(block, sizeof(uint16_t));
    std::memcpy(&info.free_head, block, sizeof(uint16_t));
  } else {
    unit = info.bump;
    info.bump = static_cast<uint16_t>(info.bump + units);
  }
  ++info.live;
  if (info.free_head == kNoUnit && info.bump + units > kUnitsPerPage) Unlink(page);  // Full.
  HIRECACHE_UNPOISON(page_base + size_t{unit} * kUnit, bytes);
  return (page << kOffsetBits) | unit;
}

void MemoryStore::Arena::Free(uint32_t ref, size_t bytes) {
  if (ref & kLargeFlag) {
    const uint32_t index = ref & ~kLargeFlag;
    std::free(large_[index]);
    large_[index] = nullptr;
    free_large_.push_back(index);
    large_bytes_ -= bytes;
    return;
  }
  const uint32_t page = ref >> kOffsetBits;
  const uint16_t unit = static_cast<uint16_t>(ref & (kUnitsPerPage - 1));
  Page& info = page_info_[page];
  const uint32_t units = ClassUnits(info.size_class);
  const bool was_full = info.free_head == kNoUnit && info.bump + units > kUnitsPerPage;
  char* block = pages_[page] + size_t{unit} * kUnit;
  HIRECACHE_UNPOISON(block, sizeof(uint16_t));
  std::memcpy(block, &info.free_head, sizeof(uint16_t));
  HIRECACHE_POISON(block, size_t{units} * kUnit);
  info.free_head = unit;
  --info.live;
  if (info.live == 0) {
    if (!was_full) Unlink(page);
    ReleasePage(page);
    return;
  }
  if (was_full) {
    info.prev = kNoPage;
    info.next = partial_[info.size_class];
    if (info.next != kNoPage) page_info_[info.next].prev = page;
    partial_[info.size_class] = page;
  }
}

void MemoryStore::Arena::Clear() {
  for (char* chunk : chunks_) {
    HIRECACHE_UNPOISON(chunk, kChunkPages * kPageBytes);
    munmap(chunk, kChunkPages * kPageBytes);
  }
  for (char* block : large_) std::free(block);
  std::vector<char*>().swap(pages_);
  std::vector<Page>().swap(page_info_);
  std::vector<uint32_t>().swap(free_pages_);
  std::vector<char*>().swap(chunks_);
  std::vector<char*>().swap(large_);
  std::vector<uint32_t>().swap(free_large_);
  std::fill(partial_.begin(), partial_.end(), kNoPage);
  large_bytes_ = 0;
}

size_t MemoryStore::Arena::footprint() const {
  return (pages_.size() - free_pages_.size()) * kPageBytes + large_bytes_ +
         pages_.capacity() * sizeof(char*) + page_info_.capacity() * sizeof(Page) +
         large_.capacity() * sizeof(char*);
}

// ==== MemoryStore =========================================================================

MemoryStore::MemoryStore(const Options& options)
    : max_entries_(std::clamp<uint32_t>(options.max_entries, 1, kMaxEntriesLimit)),
      max_bytes_(options.max_bytes),
      sweep_per_write_(options.sweep_per_write),
      // A seed per store keeps the bucket layout unpredictable from outside, so keys chosen
      // by a client cannot be made to pile up in one probe run.
      seed_(
          Mix(reinterpret_cast<uintptr_t>(this) ^
              static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()))) {
  bucket_bits_ = PresizedBucketBits();
  buckets_.AssignZeros(size_t{1} << bucket_bits_);
}

// The table size that holds as many entries as the bounds allow (each entry is charged at
// least kEntryOverhead bytes) at a load of at most 3/4.
uint32_t MemoryStore::PresizedBucketBits() const {
  const uint64_t most = std::min<uint64_t>(max_entries_, max_bytes_ / kEntryOverhead);
  uint32_t bits = kMinBucketBits;
  while (bits < kMaxPresizedBucketBits && (uint64_t{1} << bits) * 3 < most * 4) ++bits;
  return bits;
}

MemoryStore::~MemoryStore() = default;

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

size_t MemoryStore::Probe(std::string_view key, uint32_t hash, bool* found) const {
  const uint32_t m = mask();
  const uint32_t tag = hash & ~m;
  // The table is never more than 3/4 full, so an empty bucket ends every probe run.
  for (uint32_t i = hash & m;; i = (i + 1) & m) {
    const uint32_t b = buckets_[i];
    if (b == 0) {
      *found = false;
      return i;
    }
    if ((b & ~m) != tag) continue;
    const BlockHeader* h = BlockOf((b & m) - 1);
    if (h->key_len == key.size() &&
        (key.empty() || std::memcmp(h->key(), key.data(), key.size()) == 0)) {
      *found = true;
      return i;
    }
  }
}

size_t MemoryStore::BucketOfSlot(uint32_t slot) const {
  const uint32_t m = mask();
  const uint32_t want = slot + 1;
  uint32_t i = HashOf(slot) & m;
  while ((buckets_[i] & m) != want) i = (i + 1) & m;
  return i;
}

void MemoryStore::GrowBuckets() {
  if (bucket_bits_ >= 31) throw std::bad_alloc();  // Unreachable under kMaxEntriesLimit.
  RebuildBuckets(bucket_bits_ + 1);
}

// Rebuilds the table with 2^bits buckets from the slots. Every live slot number stays below
// 3/4 of the bucket count, so slot + 1 always fits under the mask and is never 0.
void MemoryStore::RebuildBuckets(uint32_t bits) {
  MappedArray<uint32_t> fresh;
  fresh.AssignZeros(size_t{1} << bits);
  const uint32_t m = (uint32_t{1} << bits) - 1;
  for (uint32_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s].block == Arena::kNoRef) continue;
    const uint32_t hash = HashOf(s);
    uint32_t i = hash & m;
    while (fresh[i] != 0) i = (i + 1) & m;
    fresh[i] = (hash & ~m) | (s + 1);
  }
  buckets_.swap(fresh);
  bucket_bits_ = bits;
}

bool MemoryStore::IsExpired(uint32_t slot, uint64_t now_ms) const {
  const uint32_t e = slots_[slot].expires;
  if (e == 0) return false;
  if (e == kFarExpiry) return far_expiries_.find(slot)->second <= now_ms;
  return base_ms_ + e <= now_ms;
}

// Records `expires_at` (0: never) for `slot`, as an offset from base_ms_ when it fits.
void MemoryStore::SetExpiry(uint32_t slot, uint64_t expires_at) {
  Slot& s = slots_[slot];
  if (s.expires == kFarExpiry) far_expiries_.erase(slot);
  if (expires_at == 0) {
    s.expires = 0;
    return;
  }
  const uint64_t offset = expires_at > base_ms_ ? expires_at - base_ms_ : 1;
  if (offset < kFarExpiry) {
    s.expires = static_cast<uint32_t>(offset);
    return;
  }
  try {
    far_expiries_[slot] = expires_at;
    s.expires = kFarExpiry;
  } catch (const std::bad_alloc&) {
    // Expiring earlier than asked (in ~49 days) is harmless for a cache entry.
    s.expires = kFarExpiry - 1;
  }
}

// Moves base_ms_ to `now_ms`: offsets shrink by the difference, entries whose time has
// come are removed, and far expiries that now fit in 32 bits move into their slots.
// One pass over the slots every 12 days.
void MemoryStore::Rebase(uint64_t now_ms) {
  const uint64_t delta = now_ms - base_ms_;
  for (uint32_t s = 0; s < slots_.size(); ++s) {
    Slot& slot = slots_[s];
    if (slot.block == Arena::kNoRef || slot.expires == 0 || slot.expires == kFarExpiry) continue;
    if (slot.expires <= delta) {
      RemoveSlot(s);
      ++expired_;
    } else {
      slot.expires = static_cast<uint32_t>(slot.expires - delta);
    }
  }
  base_ms_ = now_ms;
  std::vector<uint32_t> due;
  for (auto it = far_expiries_.begin(); it != far_expiries_.end();) {
    if (it->second <= now_ms) {
      due.push_back(it->first);
      ++it;
    } else if (it->second - now_ms < kFarExpiry) {
      slots_[it->first].expires = static_cast<uint32_t>(it->second - now_ms);
      it = far_expiries_.erase(it);
    } else {
      ++it;
    }
  }
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
  slots_.push_back(Slot{Arena::kNoRef, kNil, kNil, 0});
  return static_cast<uint32_t>(slots_.size() - 1);
}

void MemoryStore::ReleaseSlot(uint32_t s) {
  Slot& slot = slots_[s];
  if (slot.expires == kFarExpiry) far_expiries_.erase(s);
  slot = Slot{Arena::kNoRef, kNil, free_, 0};
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

// Backward-shift deletion: the entries after the hole in its probe run move back into it
// when the hole lies on their own probe path, so no tombstones are ever needed.
void MemoryStore::RemoveAt(size_t bucket, uint32_t s) {
  const uint32_t m = mask();
  size_t hole = bucket;
  for (size_t j = (bucket + 1) & m; buckets_[j] != 0; j = (j + 1) & m) {
    const uint32_t b = buckets_[j];
    const size_t home = HashOf((b & m) - 1) & m;
    if (((j - home) & m) >= ((j - hole) & m)) {
      buckets_[hole] = b;
      hole = j;
    }
  }
  buckets_[hole] = 0;

  Unlink(s);
  const BlockHeader* h = BlockOf(s);
  bytes_ -= Charge(h->key_len, h->value_len);
  arena_.Free(slots_[s].block, h->block_bytes());
  ReleaseSlot(s);
  --count_;
}

void MemoryStore::EvictToBounds(uint64_t now_ms) {
  while ((count_ > max_entries_ || bytes_ > max_bytes_) && oldest_ != kNil) {
    const uint32_t s = oldest_;
    if (IsExpired(s, now_ms)) {
      ++expired_;
    } else {
      ++evictions_;
    }
    RemoveSlot(s);
  }
}

bool MemoryStore::Get(std::string_view key, uint64_t now_ms, std::string_view* value, bool* ascii) {
  bool found;
  const size_t i = Probe(key, HashKey(key), &found);
  if (!found) {
    ++misses_;
    return false;
  }
  const uint32_t s = SlotOf(buckets_[i]);
  if (IsExpired(s, now_ms)) {
    RemoveAt(i, s);
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
  if (!have_base_) {
    base_ms_ = now_ms;
    have_base_ = true;
  } else if (now_ms > base_ms_ && now_ms - base_ms_ >= kRebaseAfterMs) {
    Rebase(now_ms);
  }
  const uint32_t hash = HashKey(key);
  bool found;
  size_t i = Probe(key, hash, &found);

  if (key.size() > kMaxKeyBytes || value.size() > kMaxValueBytes ||
      Charge(key.size(), value.size()) > max_bytes_) {
    if (found) RemoveAt(i, SlotOf(buckets_[i]));
    return SetResult::kTooLarge;
  }
  const bool ascii = IsAscii(value);
  const uint64_t expires_at =
      ttl_ms == 0 ? 0 : (ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + ttl_ms);
  const size_t block_bytes = sizeof(BlockHeader) + key.size() + value.size();

  uint32_t s;
  BlockHeader* h;
  if (found) {
    s = SlotOf(buckets_[i]);
    h = BlockOf(s);
    const size_t old_bytes = h->block_bytes();
    bytes_ -= Charge(h->key_len, h->value_len);
    if (!Arena::SameClass(old_bytes, block_bytes)) {
      // Move to a block of the new size class, keeping the header and the key.
      const uint32_t ref = arena_.Allocate(block_bytes);
      if (ref == Arena::kNoRef) {
        bytes_ += Charge(h->key_len, h->value_len);
        RemoveAt(i, s);
        return SetResult::kOutOfMemory;
      }
      auto* moved = reinterpret_cast<BlockHeader*>(arena_.At(ref));
      std::memcpy(static_cast<void*>(moved), h, sizeof(BlockHeader) + key.size());
      arena_.Free(slots_[s].block, old_bytes);
      slots_[s].block = ref;
      h = moved;
    }
#ifdef HIRECACHE_ASAN
    else {
      // Same block: only its addressable length changes.
      HIRECACHE_POISON(reinterpret_cast<char*>(h), std::max(old_bytes, block_bytes));
      HIRECACHE_UNPOISON(reinterpret_cast<char*>(h), block_bytes);
    }
#endif
    h->value_len = static_cast<uint32_t>(value.size());
    bytes_ += Charge(key.size(), value.size());
    Touch(s);
  } else {
    if ((count_ + 1) * 4 > buckets_.size() * 3) {
      GrowBuckets();
      i = Probe(key, hash, &found);
    }
    const uint32_t ref = arena_.Allocate(block_bytes);
    if (ref == Arena::kNoRef) return SetResult::kOutOfMemory;
    try {
      s = AllocateSlot();
    } catch (...) {
      arena_.Free(ref, block_bytes);
      throw;
    }
    h = new (arena_.At(ref))
        BlockHeader{static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size()), 0};
    if (!key.empty()) std::memcpy(h->key(), key.data(), key.size());
    slots_[s] = Slot{ref, kNil, kNil, 0};
    buckets_[i] = (hash & ~mask()) | (s + 1);
    LinkNewest(s);
    ++count_;
    bytes_ += Charge(key.size(), value.size());
  }
  if (!value.empty()) std::memcpy(h->key() + key.size(), value.data(), value.size());
  h->value_ascii = ascii;
  SetExpiry(s, expires_at);

  // The new entry is the most recently used and fits the bounds alone, so it survives.
  EvictToBounds(now_ms);
  if (sweep_per_write_ > 0) Sweep(now_ms, sweep_per_write_);
  return SetResult::kStored;
}

bool MemoryStore::Delete(std::string_view key, uint64_t now_ms) {
  bool found;
  const size_t i = Probe(key, HashKey(key), &found);
  if (!found) return false;
  const uint32_t s = SlotOf(buckets_[i]);
  const bool live = !IsExpired(s, now_ms);
  if (!live) ++expired_;
  RemoveAt(i, s);
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
    if (slots_[s].block == Arena::kNoRef) continue;
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
  if (have_base_ && now_ms > base_ms_ && now_ms - base_ms_ >= kRebaseAfterMs) Rebase(now_ms);
  const size_t n = slots_.size();
  size_t removed = 0;
  for (size_t examined = 0; examined < budget && examined < n; ++examined) {
    if (sweep_cursor_ >= n) sweep_cursor_ = 0;
    const uint32_t s = static_cast<uint32_t>(sweep_cursor_++);
    if (slots_[s].block != Arena::kNoRef && IsExpired(s, now_ms)) {
      RemoveSlot(s);
      ++expired_;
      ++removed;
    }
  }
  return removed;
}

void MemoryStore::Clear() {
  arena_.Clear();
  slots_.Reset();
  bucket_bits_ = PresizedBucketBits();
  buckets_.AssignZeros(size_t{1} << bucket_bits_);
  far_expiries_.clear();
  newest_ = oldest_ = free_ = kNil;
  sweep_cursor_ = 0;
  have_base_ = false;
  count_ = 0;
  bytes_ = 0;
}

MemoryStore::Stats MemoryStore::GetStats() const {
  return Stats{count_, bytes_, max_entries_, max_bytes_, hits_, misses_, evictions_, expired_};
}

size_t MemoryStore::footprint() const {
  return arena_.footprint() + slots_.capacity() * sizeof(Slot) +
         buckets_.capacity() * sizeof(uint32_t) + far_expiries_.size() * (sizeof(uint64_t) * 4);
}

}  // namespace hirecache
