// The bounded bucket table: per-key buckets, the cap on entries and key length, the idle
// sweep, CLOCK eviction, and the index staying consistent under churn.
#include "ratelimit/local_limiter.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>

namespace hirecache {
namespace {

constexpr int64_t kSecond = 1000000;

TokenBucket MakeBucket(int64_t points, int64_t duration_us, int64_t block_us = 0) {
  BucketShape shape;
  EXPECT_TRUE(ComputeBucketShape(points, duration_us, points, &shape));
  return TokenBucket(shape, block_us);
}

LocalLimiter MakeLimiter(int64_t points, int64_t duration_us, size_t max_entries,
                         size_t max_key_bytes = 64) {
  return LocalLimiter(MakeBucket(points, duration_us), max_entries, max_key_bytes,
                      0x0123456789abcdef, 0xfedcba9876543210);
}

bool Allowed(LocalLimiter& l, const std::string& key, int64_t now, int64_t cost = 1) {
  BucketDecision d;
  EXPECT_EQ(l.Consume(key, cost, now, &d), LocalLimiter::Status::kOk);
  return d.allowed;
}

bool Has(LocalLimiter& l, const std::string& key, int64_t now) {
  BucketDecision d;
  bool found = false;
  l.Get(key, now, &d, &found);
  return found;
}

TEST(LocalLimiterTest, TheSweepRunsOnlyWhileTheTableIsMoreThanHalfFull) {
  LocalLimiter l = MakeLimiter(10, 10 * kSecond, 100);
  for (int i = 0; i < 40; ++i) Allowed(l, "k" + std::to_string(i), 0);
  for (int i = 0; i < 100; ++i) Allowed(l, "k0", 10 * kSecond + i);
  EXPECT_EQ(l.size(), 40u);  // 39 idle buckets, but the table is not half full
  for (int i = 40; i < 80; ++i) Allowed(l, "k" + std::to_string(i), 10 * kSecond);
  for (int i = 0; i < 100; ++i) Allowed(l, "k0", 10 * kSecond + 100 + i);
  EXPECT_EQ(l.size(), 50u);  // the idle ones went until the table was half full again
  EXPECT_EQ(l.stats().evicted, 0u);
}

TEST(LocalLimiterTest, KeysHaveIndependentBuckets) {
  LocalLimiter l = MakeLimiter(2, 60 * kSecond, 100);
  EXPECT_TRUE(Allowed(l, "a", 0));
  EXPECT_TRUE(Allowed(l, "a", 0));
  EXPECT_FALSE(Allowed(l, "a", 0));
  EXPECT_TRUE(Allowed(l, "b", 0));
  EXPECT_TRUE(Allowed(l, "", 0));  // the empty key is a key like any other
  EXPECT_EQ(l.size(), 3u);
}

// A clock for the Consume overload that reads the time itself; tests set it.
int64_t g_test_now = 0;
int64_t TestClock() { return g_test_now; }

TEST(LocalLimiterTest, ConsumeNowDecidesAsConsumeAtTheSameTime) {
  LocalLimiter with_time = MakeLimiter(3, 3 * kSecond, 100);
  LocalLimiter with_clock = MakeLimiter(3, 3 * kSecond, 100);
  for (int64_t t = 0; t < 4 * kSecond; t += kSecond / 7) {
    for (const char* key : {"a", "b", "a"}) {
      BucketDecision expected, got;
      g_test_now = t;
      ASSERT_EQ(with_time.Consume(key, 1, t, &expected), LocalLimiter::Status::kOk);
      ASSERT_EQ(with_clock.ConsumeNow(key, 1, &TestClock, &got), LocalLimiter::Status::kOk);
      EXPECT_EQ(got.allowed, expected.allowed);
      EXPECT_EQ(got.remaining, expected.remaining);
      EXPECT_EQ(got.wait_us, expected.wait_us);
    }
  }
  EXPECT_EQ(with_clock.size(), with_time.size());
  BucketDecision unused;
  EXPECT_EQ(with_clock.ConsumeNow(std::string(65, 'x'), 1, &TestClock, &unused),
            LocalLimiter::Status::kKeyTooLong);
}

TEST(LocalLimiterTest, AFullBucketIsNeverStored) {
  LocalLimiter l = MakeLimiter(2, 60 * kSecond, 100);
  BucketDecision d;
  l.Consume("zero", 0, 0, &d);  // a zero-cost call leaves the bucket full
  EXPECT_TRUE(d.allowed);
  EXPECT_TRUE(d.first);
  l.Observe("seen-full", 0, 0, 0);
  EXPECT_EQ(l.size(), 0u);
  l.Consume("one", 1, 0, &d);
  EXPECT_EQ(l.size(), 1u);
}

TEST(LocalLimiterTest, RefusesKeysLongerThanTheCap) {
  LocalLimiter l = MakeLimiter(2, kSecond, 100, /*max_key_bytes=*/8);
  BucketDecision d;
  EXPECT_EQ(l.Consume("12345678", 1, 0, &d), LocalLimiter::Status::kOk);
  EXPECT_EQ(l.Consume("123456789", 1, 0, &d), LocalLimiter::Status::kKeyTooLong);
  bool flag = false;
  EXPECT_EQ(l.Get("123456789", 0, &d, &flag), LocalLimiter::Status::kKeyTooLong);
  EXPECT_EQ(l.Erase("123456789", &flag), LocalLimiter::Status::kKeyTooLong);
  EXPECT_EQ(l.Observe("123456789", 1, 0, 0), LocalLimiter::Status::kKeyTooLong);
  EXPECT_EQ(l.size(), 1u);
}

TEST(LocalLimiterTest, AMillionDistinctKeysStayUnderTheCap) {
  const size_t cap = 10000;
  LocalLimiter l = MakeLimiter(5, 600 * kSecond, cap);
  for (int i = 0; i < 1000000; ++i) {
    ASSERT_TRUE(Allowed(l, "203.0.113." + std::to_string(i), i));
    ASSERT_LE(l.size(), cap);
  }
  const LocalLimiterStats s = l.stats();
  EXPECT_EQ(s.entries, cap);
  EXPECT_EQ(s.evicted, 1000000u - cap);  // none of them had become idle yet
}

TEST(LocalLimiterTest, TheSweepDropsIdleBucketsAndOnlyThem) {
  LocalLimiter l = MakeLimiter(10, 10 * kSecond, 1000);  // a token per second
  for (int i = 0; i < 500; ++i) Allowed(l, "k" + std::to_string(i), 0);
  for (int i = 0; i < 10; ++i) Allowed(l, "busy", 0);  // owes 10 s of tokens
  EXPECT_EQ(l.size(), 501u);
  l.Sweep(10000, kSecond - 1);  // a token is not back yet anywhere
  EXPECT_EQ(l.size(), 501u);
  l.Sweep(10000, kSecond);  // the 500 single-token buckets are full again
  EXPECT_EQ(l.size(), 1u);
  EXPECT_TRUE(Has(l, "busy", kSecond));
  EXPECT_EQ(l.stats().swept, 500u);
  EXPECT_EQ(l.stats().evicted, 0u);
}

TEST(LocalLimiterTest, OperationsSweepIncrementallyWithoutATimer) {
  LocalLimiter l = MakeLimiter(10, 10 * kSecond, 1500);
  for (int i = 0; i < 1000; ++i) Allowed(l, "old" + std::to_string(i), 0);
  // Later traffic on one key moves the hand on; idle buckets go as it passes them, until
  // the table is no more than half full.
  for (int i = 0; i < 1000; ++i) Allowed(l, "hot", 10 * kSecond + i * kSecond);
  EXPECT_EQ(l.size(), 750u);
}

TEST(LocalLimiterTest, AtTheCapAnIdleBucketGoesBeforeABusyOne) {
  LocalLimiter l = MakeLimiter(10, 10 * kSecond, 3);
  Allowed(l, "a", 0);
  for (int i = 0; i < 5; ++i) Allowed(l, "b", 0);
  for (int i = 0; i < 5; ++i) Allowed(l, "c", 0);
  // At 1 s "a" is full again (idle); "b" and "c" still owe tokens.
  EXPECT_TRUE(Allowed(l, "d", kSecond));
  EXPECT_EQ(l.stats().evicted, 0u);
  EXPECT_FALSE(Has(l, "a", kSecond));
  EXPECT_TRUE(Has(l, "b", kSecond));
  EXPECT_TRUE(Has(l, "c", kSecond));
}

TEST(LocalLimiterTest, AtTheCapTheBucketUnusedLongestGoesFirst) {
  const int n = 100;
  LocalLimiter l = MakeLimiter(10, 1000 * kSecond, n);
  for (int i = 0; i < n; ++i) Allowed(l, "k" + std::to_string(i), 0);
  // Everything but k37 is used again; k37 is the one nobody touched since.
  for (int i = 0; i < n; ++i) {
    if (i != 37) Allowed(l, "k" + std::to_string(i), 1);
  }
  Allowed(l, "newcomer", 2);
  EXPECT_FALSE(Has(l, "k37", 2));
  for (int i = 0; i < n; ++i) {
    if (i != 37) {
      EXPECT_TRUE(Has(l, "k" + std::to_string(i), 2)) << i;
    }
  }
  EXPECT_TRUE(Has(l, "newcomer", 2));
}

TEST(LocalLimiterTest, ANewcomerSurvivesAFloodOfOtherNewcomers) {
  // Under a flood of one-off keys the entries evicted are the older ones, not the key that
  // arrived last: a real client's bucket keeps its state for a while.
  const size_t cap = 1000;
  LocalLimiter l = MakeLimiter(1, 1000 * kSecond, cap);
  for (size_t i = 0; i < 5 * cap; ++i) Allowed(l, "flood" + std::to_string(i), 0);
  EXPECT_TRUE(Allowed(l, "client", 0));
  for (size_t i = 0; i < cap / 2; ++i) Allowed(l, "more" + std::to_string(i), 0);
  EXPECT_FALSE(Allowed(l, "client", 0));  // its bucket is still there, and empty
}

TEST(LocalLimiterTest, PenaltyRewardBlockAndErase) {
  LocalLimiter l(MakeBucket(5, 5 * kSecond, /*block_us=*/0), 100, 64, 1, 2);
  BucketDecision d;
  l.Penalty("u", 3, 0, &d);
  EXPECT_EQ(d.remaining, 2);
  l.Reward("u", 1, 0, &d);
  EXPECT_EQ(d.remaining, 3);
  l.Reward("nobody", 1, 0, &d);  // a full bucket stays full and is not inserted
  EXPECT_EQ(d.remaining, 5);
  EXPECT_EQ(l.size(), 1u);
  l.Block("u", 10 * kSecond, 0, &d);
  EXPECT_TRUE(d.blocked);
  l.Consume("u", 1, 9 * kSecond, &d);
  EXPECT_TRUE(d.blocked);
  EXPECT_EQ(d.wait_us, kSecond);
  bool erased = false;
  l.Erase("u", &erased);
  EXPECT_TRUE(erased);
  l.Erase("u", &erased);
  EXPECT_FALSE(erased);
  EXPECT_TRUE(Allowed(l, "u", 9 * kSecond));
}

TEST(LocalLimiterTest, GetDoesNotInsertAndReportsOnlyBucketsInUse) {
  LocalLimiter l = MakeLimiter(2, 2 * kSecond, 100);
  EXPECT_FALSE(Has(l, "x", 0));
  EXPECT_EQ(l.size(), 0u);
  Allowed(l, "x", 0);
  BucketDecision d;
  bool found = false;
  l.Get("x", 0, &d, &found);
  EXPECT_TRUE(found);
  EXPECT_EQ(d.remaining, 1);
  EXPECT_EQ(d.consumed, 1);
  EXPECT_EQ(d.wait_us, kSecond);
  EXPECT_FALSE(Has(l, "x", kSecond));  // full again
}

TEST(LocalLimiterTest, ObserveAndCheckShadowARemoteBucket) {
  // A shadow of a Redis bucket: 4 tokens per 4 s; Redis said the key owes 4 tokens, and the
  // observation is trusted for 2 s.
  LocalLimiter l = MakeLimiter(4, 4 * kSecond, 100);
  BucketDecision d;
  bool known = true;
  l.Check("k", 1, 0, &d, &known);
  EXPECT_FALSE(known);
  l.Observe("k", 4 * kSecond, 2 * kSecond, 0);
  l.Check("k", 1, kSecond / 2, &d, &known);
  EXPECT_TRUE(known);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.wait_us, kSecond / 2);
  l.Check("k", 1, kSecond, &d, &known);
  EXPECT_TRUE(d.allowed);  // Redis may admit it now: ask Redis
  l.Check("k", 2, kSecond, &d, &known);
  EXPECT_FALSE(d.allowed);
  // Check never changes the state.
  l.Check("k", 1, kSecond, &d, &known);
  EXPECT_TRUE(d.allowed);
  // A zero debt or trust forgets the key.
  l.Observe("k", 0, 3 * kSecond, kSecond);
  l.Check("k", 1, kSecond, &d, &known);
  EXPECT_FALSE(known);
  EXPECT_EQ(l.size(), 0u);
}

TEST(LocalLimiterTest, AnObservationIsTrustedOnlyForItsTrustTime) {
  // Redis said the key owes 100 tokens (another process may delete or reward it): refused
  // locally, with the true wait, only until the trust runs out; then Redis is asked again.
  LocalLimiter l = MakeLimiter(4, 4 * kSecond, 100);
  BucketDecision d;
  bool known = false;
  l.Observe("long", 100 * kSecond, kSecond, 0);
  l.Check("long", 1, kSecond - 1, &d, &known);
  EXPECT_TRUE(known);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.wait_us, 96 * kSecond + 1);
  l.Check("long", 1, kSecond, &d, &known);
  EXPECT_FALSE(known);
  EXPECT_EQ(l.size(), 0u);
}

TEST(LocalLimiterTest, ClearForgetsEverything) {
  LocalLimiter l = MakeLimiter(1, kSecond, 100);
  for (int i = 0; i < 50; ++i) Allowed(l, std::to_string(i), 0);
  l.Clear();
  EXPECT_EQ(l.size(), 0u);
  EXPECT_TRUE(Allowed(l, "1", 0));
}

TEST(LocalLimiterTest, MatchesAReferenceModelUnderRandomChurn) {
  // Random consumes, erases and sweeps against a plain map of token buckets: every answer
  // must agree, which exercises growth, backward-shift deletion and swap-removal.
  const TokenBucket bucket = MakeBucket(3, 3 * kSecond);
  LocalLimiter l(bucket, 1 << 20, 64, 7, 11);
  std::unordered_map<std::string, BucketState> model;
  std::mt19937_64 rng(12345);
  int64_t now = 0;
  for (int i = 0; i < 200000; ++i) {
    now += static_cast<int64_t>(rng() % 20000);
    const std::string key = "key" + std::to_string(rng() % 3000);
    const int op = static_cast<int>(rng() % 10);
    if (op == 0) {
      bool erased = false;
      l.Erase(key, &erased);
      auto it = model.find(key);
      const bool in_model = it != model.end() && !bucket.IsIdle(it->second, now);
      if (in_model) {
        EXPECT_TRUE(erased) << i;  // an idle one may have been swept already
      }
      if (it != model.end()) model.erase(it);
    } else if (op == 1) {
      l.Sweep(rng() % 64, now);
    } else {
      const int64_t cost = 1 + static_cast<int64_t>(rng() % 2);
      BucketDecision got;
      l.Consume(key, cost, now, &got);
      const BucketDecision want = bucket.Consume(&model[key], cost, now);
      ASSERT_EQ(got.allowed, want.allowed) << i;
      ASSERT_EQ(got.remaining, want.remaining) << i;
      ASSERT_EQ(got.wait_us, want.wait_us) << i;
    }
    ASSERT_LE(l.size(), model.size()) << i;
  }
}

TEST(LocalLimiterTest, AtTheCapEveryBucketIsFoundWholeOrCountedAsDropped) {
  // Random churn through a small cap: after every operation, each key the model still
  // holds is found with exactly the model's numbers, or is idle and may have been swept, or
  // was evicted, which the stats count. This exercises growth, eviction and backward-shift
  // deletion under the hand.
  const TokenBucket bucket = MakeBucket(3, 3 * kSecond);
  const size_t cap = 64;
  LocalLimiter l(bucket, cap, 64, 13, 17);
  std::unordered_map<std::string, BucketState> model;
  std::mt19937_64 rng(777);
  int64_t now = 0;
  uint64_t lost = 0;
  for (int i = 0; i < 20000; ++i) {
    now += static_cast<int64_t>(rng() % 4000);
    const std::string key = "key" + std::to_string(rng() % 200);
    const int op = static_cast<int>(rng() % 10);
    if (op == 0) {
      bool erased = false;
      l.Erase(key, &erased);
      model.erase(key);
    } else if (op == 1) {
      l.Sweep(rng() % 8, now);
    } else {
      BucketDecision got;
      l.Consume(key, 1, now, &got);
      const BucketDecision want = bucket.Consume(&model[key], 1, now);
      ASSERT_EQ(got.allowed, want.allowed) << i;
      ASSERT_EQ(got.remaining, want.remaining) << i;
    }
    ASSERT_LE(l.size(), cap) << i;
    for (auto it = model.begin(); it != model.end();) {
      BucketDecision d;
      bool found = false;
      l.Get(it->first, now, &d, &found);
      if (bucket.IsIdle(it->second, now)) {
        ASSERT_FALSE(found) << i;
        it = model.erase(it);
      } else if (!found) {
        ++lost;
        it = model.erase(it);
      } else {
        ASSERT_EQ(d.remaining, bucket.Describe(it->second, now).remaining) << i;
        ASSERT_EQ(d.wait_us, bucket.Describe(it->second, now).wait_us) << i;
        ++it;
      }
    }
  }
  EXPECT_GT(lost, 0u);
  EXPECT_EQ(lost, l.stats().evicted);
}

}  // namespace
}  // namespace hirecache
