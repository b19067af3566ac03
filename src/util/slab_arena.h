// A slab arena: blocks of 8-byte units carved from 16 KiB pages, one size class per page,
// addressed by 32-bit references instead of pointers and without a header per block.
// Blocks over 4 KiB come from malloc, whose 16 bytes of header no longer matter there.
//
// Size classes: every multiple of 8 bytes up to 1 KiB (a block wastes at most 7 bytes),
// then steps of 128 bytes up to 4 KiB (at most 11%).
//
// What it holds, and why it compacts. A page serves one size class, and it can go back to
// the system only once every block in it is free: one live block keeps its 16 KiB. So when
// the sizes that are written change over time, old classes are left with pages that hold a
// few live blocks each, and counting blocks would say nothing about the memory held. The
// arena therefore reports held_bytes(), the memory it really holds (whole pages, kept empty
// pages included), and can compact: Compact() moves the live blocks of a class's sparsest
// pages into its fullest ones and frees the emptied pages. It asks the blocks' owner (an
// Owner) to follow each block it moves, since only the owner knows who refers to a block.
// The arena counts, per class, how many pages compaction could free, so whether compaction
// would help is known in O(1).
//
// Not thread-safe. Under AddressSanitizer free and unused bytes are poisoned, so a read or
// write past the end of a block is caught even though blocks share pages.
#ifndef HIRECACHE_UTIL_SLAB_ARENA_H_
#define HIRECACHE_UTIL_SLAB_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hirecache {

class SlabArena {
 public:
  using Ref = uint32_t;
  static constexpr Ref kNoRef = UINT32_MAX;
  static constexpr size_t kPageBytes = 16 * 1024;
  // The largest block served from pages; larger ones come from malloc.
  static constexpr size_t kLargestSmallBlock = 4096;
  // What held_bytes() adds to each large block for malloc's own header.
  static constexpr size_t kLargeBlockOverhead = 16;
  // Empty pages kept resident for reuse (counted in held_bytes()) before pages go back to
  // the system: a store that churns around a steady size never pays for a page fault.
  static constexpr size_t kKeptPages = 64;

  // The owner of the blocks, which Compact() tells where a block went.
  class Owner {
   public:
    // The bytes in use at the start of block `ref`: what it was allocated (or resized) to.
    virtual size_t BlockBytes(Ref ref) const = 0;
    // The block at `from` has been copied to `to`; every reference to `from` must now say
    // `to`. `from` is freed after this returns. Must not call back into the arena.
    virtual void BlockMoved(Ref from, Ref to) = 0;

   protected:
    ~Owner() = default;
  };

  SlabArena();
  ~SlabArena();
  SlabArena(const SlabArena&) = delete;
  SlabArena& operator=(const SlabArena&) = delete;

  // Returns a block of at least `bytes` bytes, or kNoRef when the system has no memory left
  // (or the 32-bit reference space is exhausted).
  Ref Allocate(size_t bytes);
  // Frees a block. `bytes` is the size it was allocated or last resized to.
  void Free(Ref ref, size_t bytes);
  // The block's address; valid until the block is freed or moved by Compact().
  char* At(Ref ref) const {
    if (ref & kLargeFlag) return large_[ref & ~kLargeFlag];
    return pages_[ref >> kOffsetBits] + size_t{ref & (kUnitsPerPage - 1)} * kUnit;
  }
  // Whether a block allocated for `a` bytes can hold `b` bytes in place.
  static bool SameClass(size_t a, size_t b);
  // Records that a block allocated for `old_bytes` now uses `new_bytes` (SameClass of the
  // two). Only AddressSanitizer's view of the block changes.
  void Resize(Ref ref, size_t old_bytes, size_t new_bytes);

  // The memory the arena holds from the system: every page in use or kept for reuse, whole;
  // every large block with kLargeBlockOverhead; and the page table.
  size_t held_bytes() const {
    return (pages_in_use_ + kept_.size()) * kPageBytes + large_bytes_ + table_bytes_;
  }
  // The part of held_bytes() that is the page table, which no freeing gives back.
  size_t table_bytes() const { return table_bytes_; }
  // How much held_bytes() would grow if a block of `bytes` were allocated now: 0 when its
  // class has a free block or a kept page can serve it, else a page or the large block,
  // with whatever the page table would grow by.
  size_t GrowthFor(size_t bytes) const {
    if (bytes <= kLargestSmallBlock && (HasFreeBlockFor(bytes) || !kept_.empty())) return 0;
    return GrowthForNewMemory(bytes);
  }
  // Whether a block of `bytes` (at most kLargestSmallBlock) would go into a page in use.
  bool HasFreeBlockFor(size_t bytes) const { return classes_[ClassOf(bytes)].partial != kNoPage; }
  // How much held_bytes() would grow for a block of `bytes` once every other block is freed
  // and the kept pages are given back: what the bound must leave room for.
  size_t CostAlone(size_t bytes) const {
    if (bytes <= kLargestSmallBlock && !pages_.empty()) return kPageBytes;
    return CostAloneOfNewMemory(bytes);
  }
  // Gives kept pages back to the system until at most `keep` remain. Returns whether any
  // went. Never allocates.
  bool ReleaseKeptPages(size_t keep);
  // Whether some size class holds a page more than its live blocks need.
  bool CanCompact() const { return spare_pages_ > 0; }
  // Compacts the size class with the most spare pages: moves the live blocks of its
  // sparsest pages into the free blocks of its fullest ones, telling `owner` about each
  // move, until up to `max_pages` pages are empty; they are then kept or given back like
  // any page that empties. Returns how many pages it emptied (at least one when
  // CanCompact()). Never allocates memory and never fails.
  size_t Compact(Owner& owner, size_t max_pages);

  // Frees every block and gives all the memory back.
  void Clear();

  size_t pages_in_use() const { return pages_in_use_; }
  size_t kept_pages() const { return kept_.size(); }
  size_t spare_pages() const { return spare_pages_; }

 private:
  // A reference is (page << kOffsetBits) | unit for a block in a page, or kLargeFlag | index
  // for a block from malloc. Units are 8 bytes, so blocks are 8-byte aligned.
  static constexpr size_t kUnit = 8;
  static constexpr uint32_t kUnitsPerPage = kPageBytes / kUnit;
  static constexpr uint32_t kOffsetBits = 11;
  static_assert((uint32_t{1} << kOffsetBits) == kUnitsPerPage, "offset bits must cover a page");
  static constexpr uint32_t kLargeFlag = uint32_t{1} << 31;
  static constexpr uint32_t kMaxPages = kLargeFlag >> kOffsetBits;  // 16 GiB of pages.
  static constexpr uint32_t kNoPage = UINT32_MAX;

  struct Page {
    uint32_t prev;  // Neighbours in its class's list of pages with free blocks.
    uint32_t next;
    uint8_t size_class;
    uint8_t draining;    // Being emptied by Compact(): never in the list, never allocated from.
    uint16_t live;       // Blocks in use.
    uint16_t free_head;  // First freed block (unit offset), or kNoUnit.
    uint16_t bump;       // First never-used unit.
  };

  // Per size class: its geometry, its list of pages with free blocks and what it holds.
  // The class's free blocks (blocks_per_page * pages - live) are counted as
  // spare_pages * blocks_per_page + spare_blocks, so spare_pages is how many pages a
  // perfect compaction would free, kept up to date without a division.
  struct SizeClass {
    uint32_t units;
    uint32_t blocks_per_page;
    uint32_t partial;  // First page with a free block, or kNoPage.
    uint32_t pages;
    uint32_t spare_pages;
    uint32_t spare_blocks;
  };

  // Size classes: every multiple of kUnit up to kFineMax, then steps of kCoarseStep.
  static constexpr size_t kFineMax = 1024;
  static constexpr size_t kCoarseStep = 128;
  static constexpr uint32_t kFineClasses = kFineMax / kUnit;
  static constexpr uint32_t kClasses = kFineClasses + (kLargestSmallBlock - kFineMax) / kCoarseStep;
  static_assert(kClasses <= 256, "a page records its class in 8 bits");
  static uint32_t ClassOf(size_t bytes) {
    if (bytes <= kFineMax) {
      return bytes == 0 ? 0 : static_cast<uint32_t>((bytes + kUnit - 1) / kUnit - 1);
    }
    return kFineClasses - 1 +
           static_cast<uint32_t>((bytes - kFineMax + kCoarseStep - 1) / kCoarseStep);
  }
  static uint32_t ClassUnits(uint32_t size_class);
  // GrowthFor() and CostAlone() when the block needs new memory: a large block, a page
  // while none is free, the first chunk of pages.
  size_t GrowthForNewMemory(size_t bytes) const;
  size_t CostAloneOfNewMemory(size_t bytes) const;

  // What the page table grows by when a chunk of pages is mapped, and when a large block
  // takes a new number.
  size_t ChunkTableGrowth() const;
  size_t LargeTableGrowth() const;
  // Recomputes table_bytes_ from the capacities, after any of them changed.
  void CountTable();
  uint32_t NewPage();
  void ReleasePage(uint32_t page);
  void Unlink(uint32_t page);
  void PushPartial(uint32_t page);
  bool IsFull(const Page& info, uint32_t units) const;
  void OneBlockTaken(SizeClass& c);
  void OneBlockFreed(SizeClass& c);
  uint32_t MostSpareClass() const;
  void MoveLiveBlocks(Owner& owner, uint32_t page);

  std::vector<char*> pages_;      // Page number -> address.
  std::vector<Page> page_info_;   // Page number -> state.
  std::vector<uint32_t> kept_;    // Empty pages still resident, reused first.
  std::vector<uint32_t> unused_;  // Pages given back to the system (or never touched).
  // Room for every page number, so that Compact() can sort a class's pages without
  // allocating.
  std::vector<uint32_t> order_;
  std::vector<SizeClass> classes_;
  std::vector<char*> chunks_;  // The mappings pages are carved from.
  std::vector<char*> large_;   // Large-block number -> malloc'd block.
  std::vector<uint32_t> free_large_;
  size_t large_bytes_ = 0;  // Including kLargeBlockOverhead each.
  size_t pages_in_use_ = 0;
  size_t spare_pages_ = 0;  // The sum of the classes' spare_pages.
  size_t table_bytes_ = 0;  // The capacities of the vectors above, in bytes.
};

}  // namespace hirecache

#endif  // HIRECACHE_UTIL_SLAB_ARENA_H_
