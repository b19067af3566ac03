#include "client/reconnect_policy.h"

#include <algorithm>

namespace hirecache {

uint32_t ReconnectPolicy::DelayMs(uint32_t attempt, double unit_random) const {
  if (attempt == 0) return 0;
  uint64_t ceiling = base_delay_ms_;
  for (uint32_t i = 1; i < attempt && ceiling < max_delay_ms_; ++i) ceiling *= 2;
  ceiling = std::min<uint64_t>(ceiling, max_delay_ms_);
  double r = std::clamp(unit_random, 0.0, 1.0);
  return static_cast<uint32_t>(static_cast<double>(ceiling) * (0.5 + 0.5 * r));
}

}  // namespace hirecache
