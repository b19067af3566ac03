// Unit tests of SlabArena: blocks of every size class keep their bytes, the memory it
// reports is the memory it holds (whole pages, kept pages, large blocks), and compaction
// empties sparse pages while its owner follows every block that moves.
#include "util/slab_arena.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace hirecache {
namespace {

using Ref = SlabArena::Ref;
constexpr size_t kPage = SlabArena::kPageBytes;

// The owner of the blocks in these tests: remembers each block's contents by reference,
// and follows the moves.
class BlockBook final : public SlabArena::Owner {
 public:
  explicit BlockBook(SlabArena& arena) : arena_(arena) {}

  Ref Add(const std::string& bytes) {
    const Ref ref = arena_.Allocate(bytes.size());
    EXPECT_NE(ref, SlabArena::kNoRef);
    std::memcpy(arena_.At(ref), bytes.data(), bytes.size());
    blocks_[ref] = Block{bytes, refs_.size()};
    refs_.push_back(ref);
    return ref;
  }
  void Remove(Ref ref) {
    const Block& block = blocks_.at(ref);
    arena_.Free(ref, block.bytes.size());
    // The last reference fills the hole, so that a random pick stays O(1).
    const Ref last = refs_.back();
    refs_[block.position] = last;
    blocks_.at(last).position = block.position;
    refs_.pop_back();
    blocks_.erase(ref);
  }
  // Checks that every block still holds its bytes.
  void Verify() const {
    for (const auto& [ref, block] : blocks_) {
      ASSERT_EQ(std::string(arena_.At(ref), block.bytes.size()), block.bytes) << ref;
    }
  }
  const std::vector<Ref>& refs() const { return refs_; }
  size_t moves() const { return moves_; }

  size_t BlockBytes(Ref ref) const override { return blocks_.at(ref).bytes.size(); }
  void BlockMoved(Ref from, Ref to) override {
    auto node = blocks_.extract(from);
    ASSERT_FALSE(node.empty());
    EXPECT_EQ(blocks_.count(to), 0u);
    refs_[node.mapped().position] = to;
    node.key() = to;
    blocks_.insert(std::move(node));
    ++moves_;
  }

 private:
  struct Block {
    std::string bytes;
    size_t position;  // In refs_.
  };
  SlabArena& arena_;
  std::unordered_map<Ref, Block> blocks_;
  std::vector<Ref> refs_;
  size_t moves_ = 0;
};

std::string Bytes(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (seed + i) % 26);
  return s;
}

TEST(SlabArenaTest, BlocksOfEverySizeKeepTheirBytes) {
  SlabArena arena;
  BlockBook book(arena);
  const size_t sizes[] = {1, 7, 8, 9, 100, 1016, 1024, 1025, 1100, 4095, 4096, 4097, 70000};
  for (size_t i = 0; i < std::size(sizes); ++i) book.Add(Bytes(sizes[i], static_cast<int>(i)));
  book.Verify();
  EXPECT_TRUE(SlabArena::SameClass(9, 16));
  EXPECT_FALSE(SlabArena::SameClass(16, 17));
  EXPECT_TRUE(SlabArena::SameClass(1025, 1152));
  EXPECT_FALSE(SlabArena::SameClass(4096, 4097));
  EXPECT_TRUE(SlabArena::SameClass(5000, 5000));
}

TEST(SlabArenaTest, HeldBytesCountWholePagesKeptPagesAndLargeBlocks) {
  SlabArena arena;
  BlockBook book(arena);
  const size_t table = arena.table_bytes();
  EXPECT_EQ(arena.held_bytes(), table);

  // One small block holds a whole page (and the first chunk's page table); GrowthFor says
  // so beforehand.
  const size_t predicted = arena.GrowthFor(100);
  EXPECT_GE(predicted, kPage);
  const Ref small = book.Add(Bytes(100, 1));
  EXPECT_EQ(arena.pages_in_use(), 1u);
  EXPECT_EQ(arena.held_bytes(), table + predicted);
  EXPECT_EQ(arena.held_bytes(), kPage + arena.table_bytes());
  EXPECT_EQ(arena.GrowthFor(100), 0u);     // Its class has free blocks.
  EXPECT_EQ(arena.GrowthFor(200), kPage);  // Another class needs a page of its own.

  // A large block holds its bytes and malloc's header.
  const size_t before_large = arena.held_bytes();
  const size_t predicted_large = arena.GrowthFor(10000);
  const Ref large = book.Add(Bytes(10000, 2));
  EXPECT_EQ(arena.held_bytes(), before_large + predicted_large);
  EXPECT_EQ(arena.held_bytes() - arena.table_bytes(),
            kPage + 10000 + SlabArena::kLargeBlockOverhead);

  // An emptied page is kept, and still held, until it is given back.
  book.Remove(small);
  EXPECT_EQ(arena.pages_in_use(), 0u);
  EXPECT_EQ(arena.kept_pages(), 1u);
  EXPECT_EQ(arena.GrowthFor(200), 0u);  // A kept page serves any class.
  EXPECT_EQ(arena.held_bytes() - arena.table_bytes(),
            kPage + 10000 + SlabArena::kLargeBlockOverhead);
  EXPECT_TRUE(arena.ReleaseKeptPages(0));
  EXPECT_FALSE(arena.ReleaseKeptPages(0));
  EXPECT_EQ(arena.held_bytes() - arena.table_bytes(), 10000 + SlabArena::kLargeBlockOverhead);
  book.Remove(large);
  EXPECT_EQ(arena.held_bytes(), arena.table_bytes());
}

TEST(SlabArenaTest, KeepsAtMostItsReserveOfEmptyPages) {
  SlabArena arena;
  BlockBook book(arena);
  // 16 blocks of 1 KiB fill a page: 100 pages' worth, then all freed.
  std::vector<Ref> refs;
  for (int i = 0; i < 1600; ++i) refs.push_back(book.Add(Bytes(1024, i)));
  EXPECT_EQ(arena.pages_in_use(), 100u);
  for (Ref ref : refs) book.Remove(ref);
  EXPECT_EQ(arena.pages_in_use(), 0u);
  EXPECT_EQ(arena.kept_pages(), SlabArena::kKeptPages);
  EXPECT_EQ(arena.held_bytes(), SlabArena::kKeptPages * kPage + arena.table_bytes());
  EXPECT_TRUE(arena.ReleaseKeptPages(3));
  EXPECT_EQ(arena.kept_pages(), 3u);
  // Pages given back are used again, and read as zeros or as anything: only the blocks'
  // bytes matter.
  for (int i = 0; i < 1600; ++i) book.Add(Bytes(1024, i + 7));
  book.Verify();
  EXPECT_EQ(arena.pages_in_use(), 100u);
}

TEST(SlabArenaTest, CountsTheSparePagesAClassCouldGiveBack) {
  SlabArena arena;
  BlockBook book(arena);
  std::vector<Ref> refs;
  for (int i = 0; i < 16 * 10; ++i) refs.push_back(book.Add(Bytes(1024, i)));  // 10 full pages.
  EXPECT_EQ(arena.spare_pages(), 0u);
  EXPECT_FALSE(arena.CanCompact());
  // One block left per page: 10 live blocks fit in one page, so 9 are spare.
  for (size_t i = 0; i < refs.size(); ++i) {
    if (i % 16 != 0) book.Remove(refs[i]);
  }
  EXPECT_EQ(arena.pages_in_use(), 10u);
  EXPECT_EQ(arena.spare_pages(), 9u);
  EXPECT_TRUE(arena.CanCompact());
}

TEST(SlabArenaTest, CompactionEmptiesSparsePagesAndTheOwnerFollows) {
  SlabArena arena;
  BlockBook book(arena);
  std::vector<Ref> refs;
  // 1001 to 1008 bytes: one size class of 16 blocks a page.
  for (int i = 0; i < 16 * 40; ++i) refs.push_back(book.Add(Bytes(1001 + i % 8, i)));
  for (size_t i = 0; i < refs.size(); ++i) {
    if (i % 16 != 3) book.Remove(refs[i]);
  }
  ASSERT_EQ(arena.pages_in_use(), 40u);
  ASSERT_EQ(arena.spare_pages(), 37u);  // 40 live blocks need 3 pages.

  // Steps of at most 8 pages, none of which takes a new page.
  size_t steps = 0;
  while (arena.CanCompact()) {
    const size_t in_use = arena.pages_in_use();
    const size_t emptied = arena.Compact(book, 8);
    ASSERT_GE(emptied, 1u);
    ASSERT_LE(emptied, 8u);
    EXPECT_EQ(arena.pages_in_use(), in_use - emptied);
    ++steps;
  }
  EXPECT_EQ(steps, 5u);
  EXPECT_EQ(arena.pages_in_use(), 3u);
  EXPECT_EQ(book.refs().size(), 40u);
  EXPECT_GE(book.moves(), 37u);
  book.Verify();
  // What compaction emptied is kept, then given back.
  EXPECT_TRUE(arena.ReleaseKeptPages(0));
  EXPECT_EQ(arena.held_bytes(), 3 * kPage + arena.table_bytes());
  // The arena goes on serving and freeing the moved blocks.
  for (int i = 0; i < 100; ++i) book.Add(Bytes(1003, i));
  while (!book.refs().empty()) book.Remove(book.refs().back());
  EXPECT_EQ(arena.pages_in_use(), 0u);
}

// Random allocations, frees and compactions of many sizes, the owner's book as the model.
TEST(SlabArenaTest, MatchesItsOwnersBookUnderChurn) {
  SlabArena arena;
  BlockBook book(arena);
  std::mt19937 rng(99);
  for (int op = 0; op < 60000; ++op) {
    const unsigned pick = rng() % 10;
    if (pick < 6 || book.refs().empty()) {
      const size_t size = rng() % 4 == 0 ? 1 + rng() % 6000 : 8 + rng() % 300;
      book.Add(Bytes(size, op));
    } else if (pick < 9) {
      book.Remove(book.refs()[rng() % book.refs().size()]);
    } else {
      arena.Compact(book, 1 + rng() % 16);
    }
    if (op % 5000 == 0) book.Verify();
  }
  book.Verify();
  while (arena.CanCompact()) ASSERT_GE(arena.Compact(book, 64), 1u);
  book.Verify();
}

}  // namespace
}  // namespace hirecache
