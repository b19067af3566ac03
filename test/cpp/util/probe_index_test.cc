// Unit tests of ProbeIndex: lookups, insertions and backward-shift deletions against a
// model, with a deliberately poor hash so that probe runs are long and wrap around the end
// of the table.
#include "util/probe_index.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>

namespace hirecache {
namespace {

// A bucket holds the key itself (never 0); its home is the key's hash.
uint64_t PoorHash(uint32_t key) { return (key % 7) * 5; }

struct KeyCodec {
  using Bucket = uint32_t;
  static bool IsEmpty(uint32_t b) { return b == 0; }
  size_t Home(uint32_t b, size_t mask) const { return PoorHash(b) & mask; }
};

using Index = ProbeIndex<KeyCodec>;

bool Contains(const Index& index, uint32_t key) {
  return index.Find(PoorHash(key), [&](uint32_t b) { return b == key; }).found;
}

void Insert(Index& index, uint32_t key) {
  const auto probe = index.Find(PoorHash(key), [&](uint32_t b) { return b == key; });
  ASSERT_FALSE(probe.found);
  index.Put(probe.index, key);
}

TEST(ProbeIndexTest, FindPutErase) {
  Index index;
  index.Reset(4);
  EXPECT_EQ(index.capacity(), 16u);
  EXPECT_EQ(index.mask(), 15u);
  EXPECT_EQ(index.bytes(), 16 * sizeof(uint32_t));
  for (uint32_t key : {1u, 8u, 15u, 2u}) Insert(index, key);  // 1, 8 and 15 share a home.
  for (uint32_t key : {1u, 8u, 15u, 2u}) EXPECT_TRUE(Contains(index, key)) << key;
  EXPECT_FALSE(Contains(index, 22u));

  // Erasing the head of a run moves the rest back: all stay reachable.
  const auto probe = index.Find(PoorHash(1), [](uint32_t b) { return b == 1; });
  ASSERT_TRUE(probe.found);
  index.Erase(probe.index);
  EXPECT_FALSE(Contains(index, 1u));
  for (uint32_t key : {8u, 15u, 2u}) EXPECT_TRUE(Contains(index, key)) << key;
  // The home bucket of 8 and 15 is taken again, by one of them.
  EXPECT_FALSE(KeyCodec::IsEmpty(index[PoorHash(8) & index.mask()]));
}

TEST(ProbeIndexTest, MatchesAModelUnderChurnWithWrappingRuns) {
  Index index;
  index.Reset(6);  // 64 buckets; kept at most 3/4 full.
  std::set<uint32_t> model;
  std::mt19937 rng(7);
  for (int op = 0; op < 200000; ++op) {
    const uint32_t key = 1 + rng() % 200;
    const auto probe = index.Find(PoorHash(key), [&](uint32_t b) { return b == key; });
    ASSERT_EQ(probe.found, model.count(key) == 1) << key;
    if (probe.found) {
      index.Erase(probe.index);
      model.erase(key);
    } else if (model.size() < 48) {
      index.Put(probe.index, key);
      model.insert(key);
    }
    if (op % 1000 == 0) {
      for (uint32_t k = 1; k <= 200; ++k) ASSERT_EQ(Contains(index, k), model.count(k) == 1) << k;
    }
  }
}

TEST(ProbeIndexTest, RebuiltAsideAndSwapped) {
  Index small;
  small.Reset(4);
  for (uint32_t key = 1; key <= 10; ++key) Insert(small, key);
  Index big;
  big.Reset(8);
  for (size_t i = 0; i < small.capacity(); ++i) {
    if (!KeyCodec::IsEmpty(small[i])) big.Put(big.FindEmpty(PoorHash(small[i])), small[i]);
  }
  small.swap(big);
  EXPECT_EQ(small.bits(), 8u);
  EXPECT_EQ(big.bits(), 4u);
  for (uint32_t key = 1; key <= 10; ++key) EXPECT_TRUE(Contains(small, key)) << key;
  EXPECT_EQ(small.HomeOf(PoorHash(3)), &small[PoorHash(3) & small.mask()]);
  small.Release();
  EXPECT_EQ(small.capacity(), 0u);
}

}  // namespace
}  // namespace hirecache
