#include "util/slab_arena.h"

#include <sys/mman.h>

#include <algorithm>
#include <bitset>
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

constexpr size_t kChunkPages = 64;  // Pages are mapped 1 MiB at a time.
constexpr uint16_t kNoUnit = UINT16_MAX;

// Makes room for `n` elements, growing geometrically so repeated calls stay amortized O(1).
template <typename T>
void ReserveFor(std::vector<T>& v, size_t n) {
  if (n > v.capacity()) v.reserve(std::max(n, v.capacity() * 2));
}

// How many bytes ReserveFor(v, n) adds to v's capacity.
template <typename T>
size_t ReserveGrowth(const std::vector<T>& v, size_t n) {
  return n > v.capacity() ? (std::max(n, v.capacity() * 2) - v.capacity()) * sizeof(T) : 0;
}

template <typename T>
size_t CapacityBytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}

// Reads the free-list link stored in the first bytes of a free block.
uint16_t ReadLink(char* block) {
  uint16_t link;
  HIRECACHE_UNPOISON(block, sizeof link);
  std::memcpy(&link, block, sizeof link);
  HIRECACHE_POISON(block, sizeof link);
  return link;
}

}  // namespace

uint32_t SlabArena::ClassUnits(uint32_t size_class) {
  if (size_class < kFineClasses) return size_class + 1;
  return static_cast<uint32_t>((kFineMax + (size_class - kFineClasses + 1) * kCoarseStep) / kUnit);
}

SlabArena::SlabArena() : classes_(kClasses) {
  for (uint32_t c = 0; c < kClasses; ++c) {
    const uint32_t units = ClassUnits(c);
    classes_[c] = SizeClass{units, kUnitsPerPage / units, kNoPage, 0, 0, 0};
  }
  CountTable();
}

SlabArena::~SlabArena() { Clear(); }

bool SlabArena::SameClass(size_t a, size_t b) {
  if (a > kLargestSmallBlock || b > kLargestSmallBlock) return a == b;
  return ClassOf(a) == ClassOf(b);
}

size_t SlabArena::ChunkTableGrowth() const {
  const size_t total = pages_.size() + kChunkPages;
  return ReserveGrowth(pages_, total) + ReserveGrowth(page_info_, total) +
         ReserveGrowth(unused_, total) + ReserveGrowth(order_, total) +
         ReserveGrowth(kept_, kKeptPages) + ReserveGrowth(chunks_, chunks_.size() + 1);
}

size_t SlabArena::LargeTableGrowth() const {
  if (!free_large_.empty()) return 0;  // A freed number is reused.
  return ReserveGrowth(large_, large_.size() + 1) + ReserveGrowth(free_large_, large_.size() + 1);
}

size_t SlabArena::CostAloneOfNewMemory(size_t bytes) const {
  // Once every block is freed, every large-block number is free and every page mapped.
  if (bytes > kLargestSmallBlock) {
    return bytes + kLargeBlockOverhead + (large_.empty() ? LargeTableGrowth() : 0);
  }
  return kPageBytes + (pages_.empty() ? ChunkTableGrowth() : 0);
}

size_t SlabArena::GrowthForNewMemory(size_t bytes) const {
  if (bytes > kLargestSmallBlock) return bytes + kLargeBlockOverhead + LargeTableGrowth();
  return kPageBytes + (unused_.empty() ? ChunkTableGrowth() : 0);
}

void SlabArena::CountTable() {
  table_bytes_ = CapacityBytes(pages_) + CapacityBytes(page_info_) + CapacityBytes(kept_) +
                 CapacityBytes(unused_) + CapacityBytes(order_) + CapacityBytes(classes_) +
                 CapacityBytes(chunks_) + CapacityBytes(large_) + CapacityBytes(free_large_);
}

bool SlabArena::IsFull(const Page& info, uint32_t units) const {
  return info.free_head == kNoUnit && info.bump + units > kUnitsPerPage;
}

void SlabArena::OneBlockTaken(SizeClass& c) {
  if (c.spare_blocks == 0) {
    c.spare_blocks = c.blocks_per_page - 1;
    --c.spare_pages;
    --spare_pages_;
  } else {
    --c.spare_blocks;
  }
}

void SlabArena::OneBlockFreed(SizeClass& c) {
  if (++c.spare_blocks == c.blocks_per_page) {
    c.spare_blocks = 0;
    ++c.spare_pages;
    ++spare_pages_;
  }
}

// Takes a kept page, else one given back earlier, else maps a new chunk of them. Returns
// kNoPage when the system has no memory left or the reference space is exhausted.
uint32_t SlabArena::NewPage() {
  std::vector<uint32_t>* source = !kept_.empty() ? &kept_ : &unused_;
  if (source->empty()) {
    if (pages_.size() + kChunkPages > kMaxPages) return kNoPage;
    // Grow the bookkeeping first, so a failure leaves nothing half done; unused_ and
    // order_ get room for every page, so neither ReleasePage() nor Compact() allocates.
    const size_t total = pages_.size() + kChunkPages;
    try {
      ReserveFor(pages_, total);
      ReserveFor(page_info_, total);
      ReserveFor(unused_, total);
      ReserveFor(order_, total);
      ReserveFor(kept_, kKeptPages);
      ReserveFor(chunks_, chunks_.size() + 1);
    } catch (const std::bad_alloc&) {
      CountTable();
      return kNoPage;
    }
    CountTable();
    void* mem = mmap(nullptr, kChunkPages * kPageBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return kNoPage;
    char* base = static_cast<char*>(mem);
    HIRECACHE_POISON(base, kChunkPages * kPageBytes);
    chunks_.push_back(base);
    const uint32_t first = static_cast<uint32_t>(pages_.size());
    for (size_t i = 0; i < kChunkPages; ++i) {
      pages_.push_back(base + i * kPageBytes);
      page_info_.push_back(Page{kNoPage, kNoPage, 0, 0, 0, kNoUnit, 0});
    }
    // Lower pages first, so a small store stays within few of them.
    for (size_t i = kChunkPages; i-- > 0;) unused_.push_back(first + static_cast<uint32_t>(i));
  }
  const uint32_t page = source->back();
  source->pop_back();
  return page;
}

// Takes an empty page out of its class: it is kept resident for reuse while there are few
// kept pages, else its memory goes back to the system (the address stays mapped and reads
// as zeros when the page is used again).
void SlabArena::ReleasePage(uint32_t page) {
  Page& info = page_info_[page];
  SizeClass& c = classes_[info.size_class];
  --c.pages;
  --c.spare_pages;  // Its blocks_per_page free blocks leave the class with it.
  --spare_pages_;
  --pages_in_use_;
  char* p = pages_[page];
  HIRECACHE_POISON(p, kPageBytes);
  info = Page{kNoPage, kNoPage, 0, 0, 0, kNoUnit, 0};
  if (kept_.size() < kKeptPages) {
    kept_.push_back(page);  // Capacity reserved when the first chunk was mapped.
  } else {
    madvise(p, kPageBytes, MADV_DONTNEED);
    unused_.push_back(page);  // Capacity reserved for every page.
  }
}

bool SlabArena::ReleaseKeptPages(size_t keep) {
  if (kept_.size() <= keep) return false;
  while (kept_.size() > keep) {
    const uint32_t page = kept_.back();
    kept_.pop_back();
    madvise(pages_[page], kPageBytes, MADV_DONTNEED);
    unused_.push_back(page);
  }
  return true;
}

void SlabArena::Unlink(uint32_t page) {
  Page& info = page_info_[page];
  if (info.prev != kNoPage) {
    page_info_[info.prev].next = info.next;
  } else {
    classes_[info.size_class].partial = info.next;
  }
  if (info.next != kNoPage) page_info_[info.next].prev = info.prev;
  info.prev = info.next = kNoPage;
}

void SlabArena::PushPartial(uint32_t page) {
  Page& info = page_info_[page];
  SizeClass& c = classes_[info.size_class];
  info.prev = kNoPage;
  info.next = c.partial;
  if (info.next != kNoPage) page_info_[info.next].prev = page;
  c.partial = page;
}

SlabArena::Ref SlabArena::Allocate(size_t bytes) {
  if (bytes > kLargestSmallBlock) {
    if (free_large_.empty()) {
      if (large_.size() >= (kLargeFlag - 1)) return kNoRef;
      try {
        ReserveFor(large_, large_.size() + 1);
        ReserveFor(free_large_, large_.size() + 1);  // So Free() never needs to allocate.
      } catch (const std::bad_alloc&) {
        CountTable();
        return kNoRef;
      }
      CountTable();
    }
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
    large_bytes_ += bytes + kLargeBlockOverhead;
    return kLargeFlag | index;
  }

  const uint32_t size_class = ClassOf(bytes);
  SizeClass& c = classes_[size_class];
  uint32_t page = c.partial;
  if (page == kNoPage) {
    page = NewPage();
    if (page == kNoPage) return kNoRef;
    page_info_[page].size_class = static_cast<uint8_t>(size_class);
    ++c.pages;
    ++c.spare_pages;  // A whole page of free blocks.
    ++spare_pages_;
    ++pages_in_use_;
    PushPartial(page);
  }
  Page& info = page_info_[page];
  char* const page_base = pages_[page];
  uint16_t unit;
  if (info.free_head != kNoUnit) {
    unit = info.free_head;
    info.free_head = ReadLink(page_base + size_t{unit} * kUnit);
  } else {
    unit = info.bump;
    info.bump = static_cast<uint16_t>(info.bump + c.units);
  }
  ++info.live;
  OneBlockTaken(c);
  if (IsFull(info, c.units)) Unlink(page);
  HIRECACHE_UNPOISON(page_base + size_t{unit} * kUnit, bytes);
  return (page << kOffsetBits) | unit;
}

void SlabArena::Free(Ref ref, size_t bytes) {
  if (ref & kLargeFlag) {
    const uint32_t index = ref & ~kLargeFlag;
    std::free(large_[index]);
    large_[index] = nullptr;
    free_large_.push_back(index);
    large_bytes_ -= bytes + kLargeBlockOverhead;
    return;
  }
  const uint32_t page = ref >> kOffsetBits;
  const uint16_t unit = static_cast<uint16_t>(ref & (kUnitsPerPage - 1));
  Page& info = page_info_[page];
  SizeClass& c = classes_[info.size_class];
  const bool was_full = IsFull(info, c.units);
  char* block = pages_[page] + size_t{unit} * kUnit;
  HIRECACHE_UNPOISON(block, sizeof(uint16_t));
  std::memcpy(block, &info.free_head, sizeof(uint16_t));
  HIRECACHE_POISON(block, size_t{c.units} * kUnit);
  info.free_head = unit;
  --info.live;
  OneBlockFreed(c);
  // A page being drained by Compact() stays out of the list until it is released.
  const bool listed = !was_full && !info.draining;
  if (info.live == 0) {
    if (listed) Unlink(page);
    ReleasePage(page);
    return;
  }
  if (was_full && !info.draining) PushPartial(page);
}

void SlabArena::Resize(Ref ref, size_t old_bytes, size_t new_bytes) {
#ifdef HIRECACHE_ASAN
  char* block = At(ref);
  HIRECACHE_POISON(block, std::max(old_bytes, new_bytes));
  HIRECACHE_UNPOISON(block, new_bytes);
#else
  (void)ref, (void)old_bytes, (void)new_bytes;
#endif
}

uint32_t SlabArena::MostSpareClass() const {
  uint32_t best = 0;
  for (uint32_t c = 1; c < kClasses; ++c) {
    if (classes_[c].spare_pages > classes_[best].spare_pages) best = c;
  }
  return best;
}

size_t SlabArena::Compact(Owner& owner, size_t max_pages) {
  if (spare_pages_ == 0 || max_pages == 0) return 0;
  SizeClass& c = classes_[MostSpareClass()];
  // Every free block of the class is in a page of its list: gather them, fullest first.
  order_.clear();
  for (uint32_t p = c.partial; p != kNoPage; p = page_info_[p].next) order_.push_back(p);
  std::sort(order_.begin(), order_.end(),
            [this](uint32_t a, uint32_t b) { return page_info_[a].live > page_info_[b].live; });
  uint64_t room = 0;
  for (uint32_t p : order_) room += c.blocks_per_page - page_info_[p].live;
  // The sparsest pages are drained, from the last one, while their live blocks fit in the
  // free blocks of the pages before them. Since the class has a spare page, its free blocks
  // fill a page, so at least the sparsest page fits in the others.
  size_t keep = order_.size();
  uint64_t moving = 0;
  while (keep > 1 && order_.size() - keep < max_pages) {
    const Page& p = page_info_[order_[keep - 1]];
    const uint64_t free_here = c.blocks_per_page - p.live;
    if (moving + p.live > room - free_here) break;
    moving += p.live;
    room -= free_here;
    --keep;
  }
  // The pages that stay are relinked fullest first, so that the moved blocks fill them in
  // that order; the drained ones leave the list.
  c.partial = kNoPage;
  for (size_t i = keep; i-- > 0;) PushPartial(order_[i]);
  for (size_t i = keep; i < order_.size(); ++i) {
    Page& drained = page_info_[order_[i]];
    drained.prev = drained.next = kNoPage;
    drained.draining = 1;
  }
  for (size_t i = keep; i < order_.size(); ++i) MoveLiveBlocks(owner, order_[i]);
  return order_.size() - keep;
}

// Moves every live block of `page` (marked draining) into other pages of its class, which
// Compact() made sure have room; the last Free() releases the page.
void SlabArena::MoveLiveBlocks(Owner& owner, uint32_t page) {
  const Page& info = page_info_[page];
  const uint32_t units = classes_[info.size_class].units;
  char* const base = pages_[page];
  std::bitset<kUnitsPerPage> free_units;
  for (uint16_t u = info.free_head; u != kNoUnit; u = ReadLink(base + size_t{u} * kUnit)) {
    free_units.set(u);
  }
  const uint32_t end = info.bump;
  for (uint32_t u = 0; u + units <= end; u += units) {
    if (free_units[u]) continue;
    const Ref from = (page << kOffsetBits) | u;
    const size_t bytes = owner.BlockBytes(from);
    const Ref to = Allocate(bytes);
    std::memcpy(At(to), At(from), bytes);
    owner.BlockMoved(from, to);
    Free(from, bytes);
  }
}

void SlabArena::Clear() {
  for (char* chunk : chunks_) {
    HIRECACHE_UNPOISON(chunk, kChunkPages * kPageBytes);
    munmap(chunk, kChunkPages * kPageBytes);
  }
  for (char* block : large_) std::free(block);
  std::vector<char*>().swap(pages_);
  std::vector<Page>().swap(page_info_);
  std::vector<uint32_t>().swap(kept_);
  std::vector<uint32_t>().swap(unused_);
  std::vector<uint32_t>().swap(order_);
  std::vector<char*>().swap(chunks_);
  std::vector<char*>().swap(large_);
  std::vector<uint32_t>().swap(free_large_);
  for (SizeClass& c : classes_) c = SizeClass{c.units, c.blocks_per_page, kNoPage, 0, 0, 0};
  large_bytes_ = 0;
  pages_in_use_ = 0;
  spare_pages_ = 0;
  CountTable();
}

}  // namespace hirecache
