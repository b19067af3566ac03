// How long to wait before the next connection attempt: exponential backoff with jitter,
// capped, so that many app servers restarted together do not reconnect in lockstep.
#ifndef HIRECACHE_CLIENT_RECONNECT_POLICY_H_
#define HIRECACHE_CLIENT_RECONNECT_POLICY_H_

#include <cstdint>

namespace hirecache {

class ReconnectPolicy {
 public:
  ReconnectPolicy(uint32_t base_delay_ms, uint32_t max_delay_ms)
      : base_delay_ms_(base_delay_ms), max_delay_ms_(max_delay_ms) {}

  // The delay before attempt number `attempt` (1 for the first retry). `unit_random` is a
  // number in [0, 1): the delay is drawn from [ceiling / 2, ceiling], where ceiling is
  // base * 2^(attempt - 1) capped at the maximum.
  uint32_t DelayMs(uint32_t attempt, double unit_random) const;

 private:
  uint32_t base_delay_ms_;
  uint32_t max_delay_ms_;
};

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_RECONNECT_POLICY_H_
