// The one place that decides whether Redis is usable: the cache, the rate limiter and the
// health report all read its state, through the client that owns it. Pure logic; the time
// is passed in, so it is unit-tested without a loop.
//
//   closed ──(stall, unreachable, N consecutive failures, failure rate)──▶ open
//   open ──(openMs passed; failures only)──▶ half-open ──(probe answered)──▶ closed
//                                                      └─(probe failed)──▶ open, longer
//
// A breaker opened by a stall or by an unreachable server does not wait for a timer: the
// owner closes it as soon as Redis answers again (a reply arrives, a handshake succeeds),
// because that answer is the probe.
#ifndef HIRECACHE_CLIENT_CIRCUIT_BREAKER_H_
#define HIRECACHE_CLIENT_CIRCUIT_BREAKER_H_

#include <array>
#include <cstddef>
#include <cstdint>

namespace hirecache {

struct BreakerOptions {
  bool enabled = true;
  // Commands wait and nothing has been read for this long: Redis is stalled.
  uint32_t stall_ms = 25;
  // This many failures in a row (timeouts, LOADING, BUSY…) open the breaker.
  uint32_t failure_threshold = 5;
  // Or this share of failures among at least minimum_requests over the last window_ms.
  uint32_t failure_rate_percent = 50;
  uint32_t window_ms = 10000;
  uint32_t minimum_requests = 20;
  // How long an open breaker (opened by failures) waits before a probe; doubles after each
  // failed probe, up to max_open_ms.
  uint32_t open_ms = 1000;
  uint32_t max_open_ms = 30000;
};

enum class BreakerState { kClosed, kOpen, kHalfOpen };
constexpr size_t kBreakerStateCount = 3;
enum class BreakerReason { kNone, kStalled, kUnreachable, kFailures };

const char* BreakerStateName(BreakerState state);
const char* BreakerReasonName(BreakerReason reason);  // nullptr for kNone

class CircuitBreaker {
 public:
  explicit CircuitBreaker(const BreakerOptions& options);

  // The outcome of one command. Returns true when this failure opened the breaker.
  void RecordSuccess(uint64_t now_ms);
  bool RecordFailure(uint64_t now_ms);

  // Opens the breaker (no-op when disabled or already open for the same reason). Returns
  // whether the state changed.
  bool Open(BreakerReason reason, uint64_t now_ms);
  // Closes it; returns whether the state changed.
  bool Close();
  // open → half-open, when a probe goes out.
  bool BeginProbe();
  // A failed probe: open again for twice as long.
  bool ProbeFailed(uint64_t now_ms);

  // Whether an open breaker (by failures) is due for its probe.
  bool ProbeDue(uint64_t now_ms) const {
    return state_ == BreakerState::kOpen && reason_ == BreakerReason::kFailures &&
           now_ms >= probe_at_ms_;
  }
  uint64_t probe_at_ms() const { return probe_at_ms_; }

  bool enabled() const { return options_.enabled; }
  bool closed() const { return state_ == BreakerState::kClosed; }
  BreakerState state() const { return state_; }
  BreakerReason reason() const { return reason_; }
  uint32_t stall_ms() const { return options_.stall_ms; }
  uint64_t opened() const { return opened_; }
  uint64_t closings() const { return closings_; }

 private:
  static constexpr size_t kBuckets = 10;
  struct Bucket {
    uint64_t epoch = 0;  // which window_ms / kBuckets slice of time it counts
    uint32_t total = 0;
    uint32_t failed = 0;
  };
  Bucket& BucketFor(uint64_t now_ms);
  bool RateExceeded(uint64_t now_ms) const;

  BreakerOptions options_;
  BreakerState state_ = BreakerState::kClosed;
  BreakerReason reason_ = BreakerReason::kNone;
  uint32_t consecutive_failures_ = 0;
  uint32_t open_ms_;
  uint64_t probe_at_ms_ = 0;
  uint64_t bucket_ms_;
  std::array<Bucket, kBuckets> buckets_{};
  size_t current_ = kBuckets;   // the bucket of the last count (kBuckets: none), and when
  uint64_t current_start_ = 0;  // its time began
  uint64_t opened_ = 0;
  uint64_t closings_ = 0;
};

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_CIRCUIT_BREAKER_H_
