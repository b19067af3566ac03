#include "store/expiry_offsets.h"

#include <new>

namespace hirecache {

uint32_t ExpiryOffsets::Encode(uint32_t slot, uint64_t expires_at) {
  if (expires_at == 0) return kNever;
  // An expiry at or before the base is due at once; 1 is the earliest code.
  const uint64_t offset = expires_at > base_ms_ ? expires_at - base_ms_ : 1;
  if (offset < kFar) return static_cast<uint32_t>(offset);
  try {
    far_[slot] = expires_at;
    return kFar;
  } catch (const std::bad_alloc&) {
    return kFar - 1;
  }
}

void ExpiryOffsets::SettleFar(uint64_t now_ms, std::vector<std::pair<uint32_t, uint32_t>>* fitting,
                              std::vector<uint32_t>* due) {
  for (auto it = far_.begin(); it != far_.end();) {
    if (it->second <= now_ms) {
      due->push_back(it->first);
      ++it;
    } else if (it->second - now_ms < kFar) {
      fitting->emplace_back(it->first, static_cast<uint32_t>(it->second - now_ms));
      it = far_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace hirecache
