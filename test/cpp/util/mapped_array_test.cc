// Unit tests of MappedArray: growth keeps the elements, a fresh array reads as zeros, and
// the memory goes back when the array is reset.
#include "util/mapped_array.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace hirecache {
namespace {

struct Pair {
  uint32_t a;
  uint32_t b;
};

TEST(MappedArrayTest, GrowsAndKeepsItsElements) {
  MappedArray<Pair> array;
  EXPECT_TRUE(array.empty());
  EXPECT_EQ(array.used_bytes(), 0u);
  for (uint32_t i = 0; i < 100000; ++i) array.push_back(Pair{i, ~i});
  ASSERT_EQ(array.size(), 100000u);
  EXPECT_GE(array.capacity(), array.size());
  for (uint32_t i = 0; i < 100000; ++i) {
    ASSERT_EQ(array[i].a, i);
    ASSERT_EQ(array[i].b, ~i);
  }
  // What the written elements may have touched, in whole system pages.
  EXPECT_EQ(array.used_bytes(), mapped_memory::RoundToPages(100000 * sizeof(Pair)));
}

TEST(MappedArrayTest, TheFirstElementMapsOneSystemPage) {
  MappedArray<uint32_t> array;
  array.push_back(7);
  EXPECT_EQ(array.capacity(), mapped_memory::kSystemPage / sizeof(uint32_t));
  EXPECT_EQ(array.used_bytes(), mapped_memory::kSystemPage);
}

TEST(MappedArrayTest, AssignZerosGivesAFreshZeroedArray) {
  MappedArray<uint64_t> array;
  for (uint64_t i = 1; i <= 5000; ++i) array.push_back(i);
  array.AssignZeros(3000);
  ASSERT_EQ(array.size(), 3000u);
  for (size_t i = 0; i < array.size(); ++i) ASSERT_EQ(array[i], 0u) << i;
  array.AssignZeros(0);
  EXPECT_EQ(array.size(), 0u);
  EXPECT_EQ(array.data(), nullptr);
}

TEST(MappedArrayTest, ResetAndSwap) {
  MappedArray<uint32_t> a;
  MappedArray<uint32_t> b;
  a.push_back(1);
  a.push_back(2);
  b.push_back(3);
  a.swap(b);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0], 3u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[1], 2u);
  b.Reset();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), 0u);
  b.push_back(9);  // Usable again after Reset().
  EXPECT_EQ(b[0], 9u);
}

}  // namespace
}  // namespace hirecache
