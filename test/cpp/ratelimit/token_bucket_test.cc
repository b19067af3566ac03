// The token-bucket arithmetic: exact refill, refusals that take nothing, blocks, penalties
// and rewards, and clocks that jump.
#include "ratelimit/token_bucket.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <limits>
#include <vector>

namespace hirecache {
namespace {

constexpr int64_t kSecond = 1000000;

TokenBucket MakeBucket(int64_t points, int64_t duration_us, int64_t burst, int64_t block_us = 0) {
  BucketShape shape;
  EXPECT_TRUE(ComputeBucketShape(points, duration_us, burst, &shape));
  return TokenBucket(shape, block_us);
}

TEST(BucketShapeTest, ChoosesTheSmallestScaleThatMakesTheIntervalWhole) {
  BucketShape s;
  ASSERT_TRUE(ComputeBucketShape(20, 600 * kSecond, 20, &s));
  EXPECT_EQ(s.scale, 1);
  EXPECT_EQ(s.interval, 30 * kSecond);
  EXPECT_EQ(s.tolerance, 600 * kSecond);
  EXPECT_TRUE(s.exact);

  ASSERT_TRUE(ComputeBucketShape(3, kSecond, 3, &s));
  EXPECT_EQ(s.scale, 3);  // 1/3 s is 1,000,000 units of a third of a microsecond
  EXPECT_EQ(s.interval, kSecond);
  EXPECT_EQ(s.tolerance, 3 * kSecond);
  EXPECT_TRUE(s.exact);
}

TEST(BucketShapeTest, RoundsTheIntervalUpWhenTheExactShapeDoesNotFit) {
  // 999,983 (a prime) per day: exact units would be 1/999983 µs, far too fine.
  BucketShape s;
  const int64_t day = 86400 * kSecond;
  ASSERT_TRUE(ComputeBucketShape(999983, day, 999983, &s));
  EXPECT_FALSE(s.exact);
  EXPECT_GE(s.scale, 1);
  EXPECT_LE(s.scale, kMaxScale);
  EXPECT_LE(s.tolerance, kMaxDebtUnits);
  // Never faster than asked: interval / scale >= duration / points.
  EXPECT_GE(static_cast<long double>(s.interval) * 999983, static_cast<long double>(day) * s.scale);
}

TEST(BucketShapeTest, RefusesWhatCannotBeABucket) {
  BucketShape s;
  EXPECT_FALSE(ComputeBucketShape(0, kSecond, 1, &s));
  EXPECT_FALSE(ComputeBucketShape(1, 0, 1, &s));
  EXPECT_FALSE(ComputeBucketShape(1, kSecond, 0, &s));
  EXPECT_FALSE(ComputeBucketShape(-5, kSecond, 1, &s));
  // A tolerance above 2^50 µs even at one unit per microsecond.
  EXPECT_FALSE(ComputeBucketShape(1, int64_t{1} << 40, int64_t{1} << 20, &s));
}

TEST(TokenBucketTest, AFullBucketAdmitsExactlyItsBurstAtOnce) {
  const TokenBucket b = MakeBucket(5, 60 * kSecond, 5);
  BucketState st;
  const int64_t t = 1000 * kSecond;
  for (int i = 0; i < 5; ++i) {
    const BucketDecision d = b.Consume(&st, 1, t);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 4 - i);
    EXPECT_EQ(d.consumed, i + 1);
    EXPECT_EQ(d.first, i == 0);
  }
  const BucketDecision refused = b.Consume(&st, 1, t);
  EXPECT_FALSE(refused.allowed);
  EXPECT_FALSE(refused.blocked);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.consumed, 6);
  EXPECT_EQ(refused.wait_us, 12 * kSecond);  // one token every 12 s
}

TEST(TokenBucketTest, SteadyLoadGetsExactlyPointsPerDurationWithFractionalIntervals) {
  // 3 per second: a token every 333,333.33 µs. Over 100 s of trying every millisecond, a
  // bucket that rounds the interval to whole microseconds would lose the last token.
  const TokenBucket b = MakeBucket(3, kSecond, 3);
  BucketState st;
  int admitted = 0;
  for (int64_t t = 0; t <= 100 * kSecond; t += 1000) admitted += b.Consume(&st, 1, t).allowed;
  EXPECT_EQ(admitted, 3 + 300);
}

TEST(TokenBucketTest, NeverMoreThanBurstPlusRefillInAnyWindow) {
  const int64_t points = 7, duration = 10 * kSecond;
  const TokenBucket b = MakeBucket(points, duration, points);
  BucketState st;
  std::vector<int64_t> admitted;
  // Hammer with an irregular pattern: bursts, pauses and idle stretches.
  int64_t t = 5 * kSecond;
  for (int i = 0; i < 20000; ++i) {
    t += (i % 97 == 0) ? 30 * kSecond : (i % 13) * 977;
    if (b.Consume(&st, 1, t).allowed) admitted.push_back(t);
  }
  ASSERT_GT(admitted.size(), 100u);
  // Over any window of length W the bucket can give at most burst + W * points / duration.
  for (int64_t window : {kSecond, duration, 3 * duration}) {
    std::deque<int64_t> in_window;
    for (int64_t at : admitted) {
      in_window.push_back(at);
      while (at - in_window.front() >= window) in_window.pop_front();
      const long double bound = points + static_cast<long double>(window) * points / duration;
      EXPECT_LE(in_window.size(), bound) << "window " << window << " at " << at;
    }
  }
}

TEST(TokenBucketTest, RefillsFractionallyToTheUnit) {
  const TokenBucket b = MakeBucket(3, kSecond, 3);
  BucketState st;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(b.Consume(&st, 1, 0).allowed);
  const BucketDecision early = b.Consume(&st, 1, 333333);  // 1/3 s is 333,333.33 µs
  EXPECT_FALSE(early.allowed);
  EXPECT_EQ(early.wait_us, 1);  // a third of a microsecond, rounded up
  EXPECT_TRUE(b.Consume(&st, 1, 333334).allowed);
  // Two tokens 2/3 s after the start, not at 666,668 µs as whole-µs intervals would give.
  EXPECT_FALSE(b.Consume(&st, 1, 666666).allowed);
  EXPECT_TRUE(b.Consume(&st, 1, 666667).allowed);
}

TEST(TokenBucketTest, ACostAboveWhatIsLeftIsRefusedWithoutTakingAnything) {
  const TokenBucket b = MakeBucket(10, 10 * kSecond, 10);
  BucketState st;
  ASSERT_TRUE(b.Consume(&st, 7, 0).allowed);
  const BucketDecision refused = b.Consume(&st, 4, 0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 3);
  EXPECT_EQ(refused.consumed, 11);
  EXPECT_EQ(refused.wait_us, kSecond);  // one more token needed, one per second
  const BucketDecision fits = b.Consume(&st, 3, 0);
  EXPECT_TRUE(fits.allowed);
  EXPECT_EQ(fits.remaining, 0);
}

TEST(TokenBucketTest, RefusedAttemptsCountInConsumedUntilAnAdmissionOrAFullBucket) {
  // The login idiom: 5 points, 7 attempts; consumed must exceed the points once one was
  // refused, as rate-limiter-flexible's counter does.
  const TokenBucket b = MakeBucket(5, 600 * kSecond, 5);
  BucketState st;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(b.Consume(&st, 1, 0).allowed);
  EXPECT_EQ(b.Describe(st, 0).consumed, 5);
  EXPECT_EQ(b.Consume(&st, 1, 0).consumed, 6);
  EXPECT_EQ(b.Consume(&st, 1, 0).consumed, 7);
  EXPECT_EQ(b.Describe(st, 0).consumed, 7);
  EXPECT_EQ(b.Describe(st, 0).remaining, 0);
  EXPECT_EQ(b.Penalty(&st, 1, 0).consumed, 8);  // a penalty keeps them: 6 in use + 2
  // One point refills after 120 s (penalty: two), the next attempt is admitted and the
  // count starts again from what is in use.
  const BucketDecision admitted = b.Consume(&st, 1, 240 * kSecond);
  ASSERT_TRUE(admitted.allowed);
  EXPECT_EQ(admitted.consumed, 5);
  ASSERT_FALSE(b.Consume(&st, 1, 240 * kSecond).allowed);
  EXPECT_EQ(b.Describe(st, 240 * kSecond).consumed, 6);
  // Once full again, nothing is remembered.
  EXPECT_EQ(b.Describe(st, 900 * kSecond).consumed, 0);
  EXPECT_TRUE(b.IsIdle(st, 900 * kSecond));
  ASSERT_TRUE(b.Consume(&st, 1, 900 * kSecond).allowed);
  EXPECT_EQ(b.Describe(st, 900 * kSecond).consumed, 1);
}

TEST(TokenBucketTest, ARefusalOfAnyCostReadsOverThePoints) {
  const TokenBucket b = MakeBucket(200000, 600 * kSecond, 200000);
  BucketState st;
  ASSERT_TRUE(b.Consume(&st, 100000, 0).allowed);
  const BucketDecision refused = b.Consume(&st, 150000, 0);
  ASSERT_FALSE(refused.allowed);
  EXPECT_EQ(refused.consumed, 250000);
  EXPECT_EQ(b.Describe(st, 0).consumed, 250000);
}

TEST(TokenBucketTest, ARewardForgivesRefusedAttemptsAndABlockedKeyCountsOverItsBurst) {
  const TokenBucket b = MakeBucket(5, 600 * kSecond, 5);
  BucketState st;
  for (int i = 0; i < 7; ++i) b.Consume(&st, 1, 0);
  const BucketDecision rewarded = b.Reward(&st, 1, 0);
  EXPECT_EQ(rewarded.consumed, 4);  // the two refusals forgiven, one point given back
  // block(key, 60) on a key: consumed reads burst + 1 for a zero-cost look, as
  // rate-limiter-flexible reports points + 1 for a blocked key.
  EXPECT_EQ(b.Block(&st, 60 * kSecond, 0).consumed, 6);
  EXPECT_EQ(b.Describe(st, kSecond).consumed, 6);
  EXPECT_EQ(b.Check(st, 2, kSecond).consumed, 7);
}

TEST(TokenBucketTest, ACostAboveTheCapacityIsAlwaysRefused) {
  const TokenBucket b = MakeBucket(10, 10 * kSecond, 10);
  BucketState st;
  EXPECT_FALSE(b.Consume(&st, 11, 0).allowed);
  EXPECT_FALSE(b.Consume(&st, int64_t{1} << 62, 0).allowed);
  EXPECT_TRUE(b.Consume(&st, 10, 0).allowed);  // and nothing was taken meanwhile
}

TEST(TokenBucketTest, BurstLargerThanPointsRefillsAtPointsPerDuration) {
  const TokenBucket b = MakeBucket(2, kSecond, 6);
  BucketState st;
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(b.Consume(&st, 1, 0).allowed);
  EXPECT_FALSE(b.Consume(&st, 1, 0).allowed);
  EXPECT_TRUE(b.Consume(&st, 1, kSecond / 2).allowed);
  EXPECT_FALSE(b.Consume(&st, 1, kSecond / 2).allowed);
  const BucketDecision d = b.Describe(st, kSecond / 2);
  EXPECT_EQ(d.wait_us, 3 * kSecond);  // six tokens owed at two per second
}

TEST(TokenBucketTest, BlockDurationRefusesEverythingAndTheDebtSurvivesIt) {
  const TokenBucket b = MakeBucket(2, 10 * kSecond, 2, /*block_us=*/60 * kSecond);
  BucketState st;
  ASSERT_TRUE(b.Consume(&st, 1, 0).allowed);
  ASSERT_TRUE(b.Consume(&st, 1, 0).allowed);
  const BucketDecision over = b.Consume(&st, 1, 0);
  EXPECT_FALSE(over.allowed);
  EXPECT_TRUE(over.blocked);
  EXPECT_EQ(over.wait_us, 60 * kSecond);
  // Tokens would have refilled after 10 s, but the block holds.
  const BucketDecision still = b.Consume(&st, 1, 30 * kSecond);
  EXPECT_TRUE(still.blocked);
  EXPECT_EQ(still.wait_us, 30 * kSecond);
  EXPECT_FALSE(b.IsIdle(st, 59 * kSecond));
  EXPECT_TRUE(b.IsIdle(st, 60 * kSecond));
  // The block outlasted the refill: the bucket is full after it.
  const BucketDecision after = b.Consume(&st, 1, 60 * kSecond);
  EXPECT_TRUE(after.allowed);
  EXPECT_TRUE(after.first);
  EXPECT_EQ(after.remaining, 1);
}

TEST(TokenBucketTest, AShortBlockOnlyAddsRefusalTimeAndCancelsNoDebt) {
  // Five tokens per 600 s, blocked for 1 s when over: the block must not refill the bucket.
  const TokenBucket b = MakeBucket(5, 600 * kSecond, 5, /*block_us=*/kSecond);
  BucketState st;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(b.Consume(&st, 1, 0).allowed);
  const BucketDecision over = b.Consume(&st, 1, 0);
  EXPECT_TRUE(over.blocked);
  EXPECT_EQ(over.wait_us, 120 * kSecond);  // the later of the block's end and the next token
  const BucketDecision after = b.Consume(&st, 1, kSecond);  // the block has ended
  EXPECT_FALSE(after.allowed);
  EXPECT_EQ(after.remaining, 0);
  EXPECT_FALSE(b.IsIdle(st, kSecond));
  // Blocked again (each refusal starts a block), yet the debt is the same: no token early.
  EXPECT_FALSE(b.Consume(&st, 1, 120 * kSecond - 1).allowed);
  const BucketDecision next = b.Consume(&st, 1, 121 * kSecond);
  EXPECT_TRUE(next.allowed);
  EXPECT_EQ(next.remaining, 0);
  // In 5 s of retries after each block, the key got nothing beyond its 5 points.
  BucketState flood;
  int admitted = 0;
  for (int64_t t = 0; t < 5 * kSecond; t += kSecond / 100)
    admitted += b.Consume(&flood, 1, t).allowed;
  EXPECT_EQ(admitted, 5);
}

TEST(TokenBucketTest, PenaltyWhileBlockedIsKeptAfterTheBlock) {
  const TokenBucket b = MakeBucket(4, 4 * kSecond, 4);  // a token per second
  BucketState st;
  b.Block(&st, kSecond, 0);
  const BucketDecision p = b.Penalty(&st, 10, 0);
  EXPECT_TRUE(p.blocked);
  EXPECT_EQ(p.wait_us, 6 * kSecond);  // owes 10 tokens, holds 4
  const BucketDecision after = b.Consume(&st, 1, kSecond);
  EXPECT_FALSE(after.allowed);
  EXPECT_FALSE(after.blocked);
  EXPECT_EQ(after.wait_us, 6 * kSecond);  // 9 owed at 1 s: the 10th token to spend needs 6 s
  EXPECT_TRUE(b.Consume(&st, 1, 7 * kSecond).allowed);
}

TEST(TokenBucketTest, ExplicitBlockAndItsEnd) {
  const TokenBucket b = MakeBucket(5, kSecond, 5);
  BucketState st;
  const BucketDecision d = b.Block(&st, 5 * kSecond, 100);
  EXPECT_TRUE(d.blocked);
  EXPECT_EQ(d.wait_us, 5 * kSecond);
  EXPECT_TRUE(b.Consume(&st, 1, 100 + 5 * kSecond - 1).blocked);
  EXPECT_TRUE(b.Consume(&st, 1, 100 + 5 * kSecond).allowed);
}

TEST(TokenBucketTest, AnExplicitBlockKeepsTheDebt) {
  const TokenBucket b = MakeBucket(2, 20 * kSecond, 2);  // a token per 10 s
  BucketState st;
  ASSERT_TRUE(b.Consume(&st, 2, 0).allowed);
  EXPECT_EQ(b.Block(&st, kSecond, 0).wait_us, kSecond);
  EXPECT_TRUE(b.Consume(&st, 1, kSecond / 2).blocked);
  const BucketDecision after = b.Consume(&st, 1, kSecond);
  EXPECT_FALSE(after.allowed);
  EXPECT_EQ(after.wait_us, 9 * kSecond);
  EXPECT_TRUE(b.Consume(&st, 1, 10 * kSecond).allowed);
}

TEST(TokenBucketTest, PenaltyCanOverdrawAndRewardNeverOverfills) {
  const TokenBucket b = MakeBucket(4, 4 * kSecond, 4);  // a token per second
  BucketState st;
  BucketDecision d = b.Penalty(&st, 6, 0);
  EXPECT_EQ(d.remaining, 0);
  EXPECT_EQ(d.consumed, 6);
  EXPECT_EQ(d.wait_us, 6 * kSecond);
  EXPECT_FALSE(b.Consume(&st, 1, kSecond).allowed);  // still owes more than the capacity
  EXPECT_TRUE(b.Consume(&st, 1, 3 * kSecond).allowed);

  d = b.Reward(&st, 2, 3 * kSecond);  // it owed 4 tokens, now 2
  EXPECT_EQ(d.remaining, 2);
  d = b.Reward(&st, 100, 3 * kSecond);
  EXPECT_EQ(d.remaining, 4);
  EXPECT_EQ(d.consumed, 0);
  EXPECT_TRUE(b.IsIdle(st, 3 * kSecond));
}

TEST(TokenBucketTest, CheckAndDescribeChangeNothing) {
  const TokenBucket b = MakeBucket(2, kSecond, 2);
  BucketState st;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(b.Check(st, 2, 0).allowed);
  ASSERT_TRUE(b.Consume(&st, 2, 0).allowed);
  const BucketState before = st;
  EXPECT_FALSE(b.Check(st, 1, 0).allowed);
  EXPECT_EQ(b.Describe(st, 0).remaining, 0);
  EXPECT_EQ(st.tat_us, before.tat_us);
  EXPECT_EQ(st.tat_frac, before.tat_frac);
}

TEST(TokenBucketTest, TimeGoingBackwardsNeverGivesTokens) {
  const TokenBucket b = MakeBucket(10, 10 * kSecond, 10);
  BucketState st;
  const int64_t t = 1000 * kSecond;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(b.Consume(&st, 1, t).allowed);
  for (int64_t back : {int64_t{1}, kSecond, 500 * kSecond, t}) {
    const BucketDecision d = b.Consume(&st, 1, t - back);
    EXPECT_FALSE(d.allowed) << back;
    EXPECT_GE(d.wait_us, kSecond) << back;
  }
  // Far back, the debt saturates instead of overflowing.
  EXPECT_EQ(b.Debt(st, -(int64_t{1} << 62)), kMaxDebtUnits);
  EXPECT_FALSE(b.Consume(&st, 1, 0).allowed);
  // And time coming forward again finds the bucket as it was left.
  EXPECT_TRUE(b.Consume(&st, 1, t + kSecond).allowed);
  EXPECT_FALSE(b.Consume(&st, 1, t + kSecond).allowed);
}

TEST(TokenBucketTest, HugeGapsFindTheBucketFull) {
  const TokenBucket b = MakeBucket(10, 10 * kSecond, 10, 5 * kSecond);
  BucketState st;
  for (int i = 0; i < 11; ++i) b.Consume(&st, 1, 0);  // the last one blocks
  ASSERT_FALSE(b.IsIdle(st, 0));
  for (int64_t later : {int64_t{1} << 40, int64_t{1} << 62, std::numeric_limits<int64_t>::max()}) {
    BucketState copy = st;
    EXPECT_TRUE(b.IsIdle(copy, later));
    const BucketDecision d = b.Consume(&copy, 10, later);
    EXPECT_TRUE(d.allowed) << later;
    EXPECT_TRUE(d.first);
  }
}

TEST(TokenBucketTest, SetDebtRoundTripsAndClamps) {
  const TokenBucket b = MakeBucket(3, kSecond, 3);
  BucketState st;
  b.SetDebt(&st, 42, 1234567);
  EXPECT_EQ(b.Debt(st, 42), 1234567);
  EXPECT_EQ(b.Debt(st, 43), 1234567 - 3);
  b.SetDebt(&st, 42, -5);
  EXPECT_EQ(b.Debt(st, 42), 0);
  b.SetDebt(&st, 42, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(b.Debt(st, 42), kMaxDebtUnits);
}

}  // namespace
}  // namespace hirecache
