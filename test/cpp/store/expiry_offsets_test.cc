// Unit tests of ExpiryOffsets: codes relative to a moving base, far expiries kept aside.
#include "store/expiry_offsets.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace hirecache {
namespace {

constexpr uint64_t kDay = 24ull * 3600 * 1000;

TEST(ExpiryOffsetsTest, NearCodesAreOffsetsFromTheBase) {
  ExpiryOffsets e;
  EXPECT_FALSE(e.started());
  e.Start(1000);
  EXPECT_EQ(e.Encode(0, 0), ExpiryOffsets::kNever);
  const uint32_t code = e.Encode(1, 1500);
  EXPECT_EQ(code, 500u);
  EXPECT_FALSE(e.IsExpired(1, code, 1499));
  EXPECT_TRUE(e.IsExpired(1, code, 1500));
  EXPECT_FALSE(e.IsExpired(0, ExpiryOffsets::kNever, UINT64_MAX));
  // A time at or before the base is due at once.
  EXPECT_TRUE(e.IsExpired(2, e.Encode(2, 10), 1001));
}

TEST(ExpiryOffsetsTest, FarExpiriesAreKeptAsideUntilTheyFit) {
  ExpiryOffsets e;
  e.Start(0);
  const uint32_t far = e.Encode(7, 100 * kDay);  // Beyond 32 bits of milliseconds.
  EXPECT_EQ(e.far_count(), 1u);
  EXPECT_FALSE(e.IsExpired(7, far, 99 * kDay));
  EXPECT_TRUE(e.IsExpired(7, far, 100 * kDay));

  // After the base moves to day 60 the expiry fits, and leaves the map.
  EXPECT_FALSE(e.RebaseDue(kDay));
  EXPECT_TRUE(e.RebaseDue(60 * kDay));
  uint32_t near = 5 * static_cast<uint32_t>(kDay / 1000) * 1000;  // Day 5.
  EXPECT_EQ(e.MoveBase(60 * kDay), 60 * kDay);
  EXPECT_FALSE(ExpiryOffsets::Shift(&near, 60 * kDay));  // Long due.
  std::vector<std::pair<uint32_t, uint32_t>> fitting;
  std::vector<uint32_t> due;
  e.SettleFar(60 * kDay, &fitting, &due);
  ASSERT_EQ(fitting.size(), 1u);
  EXPECT_EQ(fitting[0].first, 7u);
  EXPECT_EQ(fitting[0].second, 40 * kDay);
  EXPECT_TRUE(due.empty());
  EXPECT_EQ(e.far_count(), 0u);
  EXPECT_TRUE(e.IsExpired(7, fitting[0].second, 100 * kDay));

  // Forget drops a far record with its slot.
  const uint32_t again = e.Encode(8, 200 * kDay);
  EXPECT_EQ(e.far_count(), 1u);
  e.Forget(8, again);
  EXPECT_EQ(e.far_count(), 0u);
}

}  // namespace
}  // namespace hirecache
