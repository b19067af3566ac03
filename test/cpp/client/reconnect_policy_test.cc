#include "client/reconnect_policy.h"

#include <gtest/gtest.h>

namespace hirecache {
namespace {

TEST(ReconnectPolicy, GrowsExponentiallyWithinJitterBounds) {
  ReconnectPolicy p(50, 2000);
  EXPECT_EQ(p.DelayMs(1, 0.0), 25u);
  EXPECT_EQ(p.DelayMs(1, 0.999999), 49u);
  EXPECT_EQ(p.DelayMs(2, 0.0), 50u);
  EXPECT_EQ(p.DelayMs(3, 0.0), 100u);
  EXPECT_EQ(p.DelayMs(4, 0.5), 300u);  // ceiling 400, drawn from [200, 400]
}

TEST(ReconnectPolicy, CappedAtTheMaximumEvenAfterManyAttempts) {
  ReconnectPolicy p(50, 2000);
  for (uint32_t attempt : {7u, 8u, 20u, 64u, 1000u, 4000000000u}) {
    EXPECT_LE(p.DelayMs(attempt, 0.999999), 2000u) << attempt;
    EXPECT_GE(p.DelayMs(attempt, 0.0), 1000u) << attempt;
  }
}

TEST(ReconnectPolicy, FirstAttemptAfterSuccessIsImmediateAndRandomIsClamped) {
  ReconnectPolicy p(100, 1000);
  EXPECT_EQ(p.DelayMs(0, 0.7), 0u);
  EXPECT_EQ(p.DelayMs(1, -5.0), 50u);
  EXPECT_EQ(p.DelayMs(1, 5.0), 100u);
}

}  // namespace
}  // namespace hirecache
