#include "client/circuit_breaker.h"

#include <gtest/gtest.h>

#include "client/client_metrics.h"

namespace hirecache {
namespace {

BreakerOptions Options() {
  BreakerOptions o;
  o.failure_threshold = 3;
  o.failure_rate_percent = 50;
  o.window_ms = 1000;
  o.minimum_requests = 10;
  o.open_ms = 100;
  o.max_open_ms = 250;
  return o;
}

TEST(CircuitBreakerTest, ConsecutiveFailuresOpenItAndASuccessResetsTheCount) {
  CircuitBreaker b(Options());
  EXPECT_FALSE(b.RecordFailure(0));
  EXPECT_FALSE(b.RecordFailure(1));
  b.RecordSuccess(2);
  EXPECT_FALSE(b.RecordFailure(3));
  EXPECT_FALSE(b.RecordFailure(4));
  EXPECT_TRUE(b.closed());
  EXPECT_TRUE(b.RecordFailure(5));
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_EQ(b.reason(), BreakerReason::kFailures);
  EXPECT_EQ(b.opened(), 1u);
}

TEST(CircuitBreakerTest, TheFailureRateOverTheWindowOpensIt) {
  BreakerOptions o = Options();
  o.failure_threshold = 0;  // the rate alone
  CircuitBreaker b(o);
  // Alternating: never two failures in a row, half of them failures.
  for (int i = 0; i < 9; ++i) {
    if (i % 2 == 0) {
      EXPECT_FALSE(b.RecordFailure(static_cast<uint64_t>(i)));
    } else {
      b.RecordSuccess(static_cast<uint64_t>(i));
    }
  }
  EXPECT_TRUE(b.closed()) << "fewer than minimum_requests";
  b.RecordSuccess(9);
  EXPECT_TRUE(b.RecordFailure(10)) << "6 of 11 failed";
}

TEST(CircuitBreakerTest, FailuresOutsideTheWindowAreForgotten) {
  BreakerOptions o = Options();
  o.failure_threshold = 0;
  CircuitBreaker b(o);
  for (int i = 0; i < 9; ++i) b.RecordFailure(static_cast<uint64_t>(i));
  // A window later, the old failures no longer count: 1 of 1 is below minimum_requests.
  EXPECT_FALSE(b.RecordFailure(5000));
  EXPECT_TRUE(b.closed());
}

TEST(CircuitBreakerTest, AFailedProbeOpensItForLongerUpToTheCap) {
  CircuitBreaker b(Options());
  for (int i = 0; i < 3; ++i) b.RecordFailure(0);
  EXPECT_FALSE(b.ProbeDue(99));
  EXPECT_TRUE(b.ProbeDue(100));
  EXPECT_TRUE(b.BeginProbe());
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  EXPECT_FALSE(b.BeginProbe()) << "one probe at a time";
  EXPECT_TRUE(b.ProbeFailed(100));
  EXPECT_EQ(b.probe_at_ms(), 300u);  // 200 ms
  b.BeginProbe();
  b.ProbeFailed(300);
  EXPECT_EQ(b.probe_at_ms(), 550u);  // capped at 250 ms
  b.BeginProbe();
  EXPECT_TRUE(b.Close());
  EXPECT_TRUE(b.closed());
  EXPECT_EQ(b.closings(), 1u);
  // Closed again, the count starts over: two failures are not enough.
  EXPECT_FALSE(b.RecordFailure(600));
  EXPECT_FALSE(b.RecordFailure(601));
}

TEST(CircuitBreakerTest, StallAndUnreachableOpenAtOnceAndADisabledBreakerNeverOpens) {
  CircuitBreaker b(Options());
  EXPECT_TRUE(b.Open(BreakerReason::kStalled, 0));
  EXPECT_FALSE(b.Open(BreakerReason::kStalled, 1)) << "already open for that reason";
  EXPECT_TRUE(b.Open(BreakerReason::kUnreachable, 2)) << "a new reason is a change";
  EXPECT_EQ(b.opened(), 1u) << "one opening";
  EXPECT_FALSE(b.ProbeDue(10000)) << "only failures wait for a timed probe";
  BreakerOptions off = Options();
  off.enabled = false;
  CircuitBreaker d(off);
  EXPECT_FALSE(d.Open(BreakerReason::kStalled, 0));
  for (int i = 0; i < 10; ++i) d.RecordFailure(0);
  EXPECT_TRUE(d.closed());
}

TEST(ClientMetricsTest, VerbsAreRecognizedWhateverTheirCase) {
  EXPECT_EQ(VerbOf("get"), Verb::kGet);
  EXPECT_EQ(VerbOf("GET"), Verb::kGet);
  EXPECT_EQ(VerbOf("Unlink"), Verb::kDel);
  EXPECT_EQ(VerbOf("evalsha"), Verb::kEval);
  EXPECT_EQ(VerbOf("GETSET"), Verb::kOther);
  EXPECT_EQ(VerbOf(""), Verb::kOther);
  ClientMetrics m;
  m.Count(Verb::kSet, Outcome::kTimeout);
  EXPECT_EQ(m.outcome(Verb::kSet, Outcome::kTimeout), 1u);
  EXPECT_EQ(m.outcome(Verb::kGet, Outcome::kTimeout), 0u);
}

}  // namespace
}  // namespace hirecache
