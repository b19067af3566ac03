#include "client/circuit_breaker.h"

#include <algorithm>

namespace hirecache {

const char* BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half-open";
  }
  return "closed";
}

const char* BreakerReasonName(BreakerReason reason) {
  switch (reason) {
    case BreakerReason::kNone:
      return nullptr;
    case BreakerReason::kStalled:
      return "stalled";
    case BreakerReason::kUnreachable:
      return "unreachable";
    case BreakerReason::kFailures:
      return "failures";
  }
  return nullptr;
}

CircuitBreaker::CircuitBreaker(const BreakerOptions& options)
    : options_(options),
      open_ms_(std::max<uint32_t>(options.open_ms, 1)),
      bucket_ms_(std::max<uint64_t>(options.window_ms / kBuckets, 1)) {}

CircuitBreaker::Bucket& CircuitBreaker::BucketFor(uint64_t now_ms) {
  // Every reply lands here: within the current bucket's time, no division.
  if (current_ < kBuckets && now_ms >= current_start_ && now_ms - current_start_ < bucket_ms_) {
    return buckets_[current_];
  }
  uint64_t epoch = now_ms / bucket_ms_;
  current_ = epoch % kBuckets;
  current_start_ = epoch * bucket_ms_;
  Bucket& b = buckets_[current_];
  if (b.epoch != epoch) b = Bucket{epoch, 0, 0};
  return b;
}

bool CircuitBreaker::RateExceeded(uint64_t now_ms) const {
  uint64_t epoch = now_ms / bucket_ms_;
  uint64_t total = 0;
  uint64_t failed = 0;
  for (const Bucket& b : buckets_) {
    if (b.epoch + kBuckets > epoch) {
      total += b.total;
      failed += b.failed;
    }
  }
  return total >= options_.minimum_requests && total > 0 &&
         failed * 100 >= static_cast<uint64_t>(options_.failure_rate_percent) * total;
}

void CircuitBreaker::RecordSuccess(uint64_t now_ms) {
  consecutive_failures_ = 0;
  ++BucketFor(now_ms).total;
}

bool CircuitBreaker::RecordFailure(uint64_t now_ms) {
  Bucket& b = BucketFor(now_ms);
  ++b.total;
  ++b.failed;
  ++consecutive_failures_;
  if (state_ != BreakerState::kClosed) return false;
  bool trip =
      (options_.failure_threshold > 0 && consecutive_failures_ >= options_.failure_threshold) ||
      (options_.failure_rate_percent > 0 && RateExceeded(now_ms));
  return trip && Open(BreakerReason::kFailures, now_ms);
}

bool CircuitBreaker::Open(BreakerReason reason, uint64_t now_ms) {
  if (!options_.enabled) return false;
  if (state_ == BreakerState::kOpen && reason_ == reason) return false;
  if (state_ == BreakerState::kClosed) {
    ++opened_;
    open_ms_ = std::max<uint32_t>(options_.open_ms, 1);
  }
  state_ = BreakerState::kOpen;
  reason_ = reason;
  probe_at_ms_ = now_ms + open_ms_;
  return true;
}

bool CircuitBreaker::Close() {
  if (state_ == BreakerState::kClosed) return false;
  state_ = BreakerState::kClosed;
  reason_ = BreakerReason::kNone;
  consecutive_failures_ = 0;
  buckets_.fill(Bucket{});  // the failures that opened it are history
  current_ = kBuckets;
  ++closings_;
  return true;
}

bool CircuitBreaker::BeginProbe() {
  if (state_ != BreakerState::kOpen) return false;
  state_ = BreakerState::kHalfOpen;
  return true;
}

bool CircuitBreaker::ProbeFailed(uint64_t now_ms) {
  if (state_ != BreakerState::kHalfOpen) return false;
  open_ms_ = static_cast<uint32_t>(
      std::min<uint64_t>(static_cast<uint64_t>(open_ms_) * 2, std::max(options_.max_open_ms, 1u)));
  state_ = BreakerState::kOpen;
  probe_at_ms_ = now_ms + open_ms_;
  return true;
}

}  // namespace hirecache
