#include "store/store_state.h"

namespace hirecache::binding {

StoreState::StoreState(const MemoryStore::Options& options) : store(options) {
#ifdef CLOCK_MONOTONIC_COARSE
  // The coarse clock costs a quarter of the precise one; its resolution (one kernel
  // tick, typically 1-4 ms) is ample for cache TTLs. Used only when it is that fine.
  timespec res;
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0 &&
      res.tv_nsec <= 10 * 1000 * 1000) {
    coarse_ = true;
    slack_ms_ = static_cast<uint64_t>(res.tv_nsec + 999999) / 1000000;
  }
#endif
}

}  // namespace hirecache::binding
