// What one JS MemoryStore and its detached fast functions share: the core store, the clock
// its TTLs are read on, and the buffers keys and values are converted in. Each of them
// holds a std::shared_ptr to it, so it lives until the last of them is collected.
#ifndef HIRECACHE_BINDING_STORE_STORE_STATE_H_
#define HIRECACHE_BINDING_STORE_STORE_STATE_H_

#include <time.h>

#include <chrono>
#include <cstdint>

#include "store/memory_store.h"
#include "store/store_values.h"

namespace hirecache::binding {

class StoreState {
 public:
  explicit StoreState(const MemoryStore::Options& options);

  // Monotonic milliseconds.
  uint64_t Now() const {
#ifdef CLOCK_MONOTONIC_COARSE
    if (coarse_) {
      timespec ts;
      clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
      return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
    }
#endif
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }

  // The TTL to store for `ttl_ms`. The coarse clock may lag real time by up to its
  // resolution when the entry is written, so that much is added: an entry never expires
  // before its TTL has passed, and at most two clock ticks after.
  uint64_t StoredTtl(uint64_t ttl_ms) const { return ttl_ms == 0 ? 0 : ttl_ms + slack_ms_; }

  MemoryStore store;
  Scratch key_scratch;
  Scratch value_scratch;

 private:
  bool coarse_ = false;
  uint64_t slack_ms_ = 0;
};

}  // namespace hirecache::binding

#endif  // HIRECACHE_BINDING_STORE_STORE_STATE_H_
