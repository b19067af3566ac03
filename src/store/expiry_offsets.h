// Expiry times in 32 bits per entry: milliseconds from a base that is moved forward every
// 12 days, long before 32 bits of milliseconds (49 days) run out. The rare expiry too far
// ahead for 32 bits is kept in a map by slot number. The embedded store keeps one code per
// slot; this class owns the base and the map, and says what each code means.
#ifndef HIRECACHE_STORE_EXPIRY_OFFSETS_H_
#define HIRECACHE_STORE_EXPIRY_OFFSETS_H_

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hirecache {

class ExpiryOffsets {
 public:
  // The code of an entry that never expires.
  static constexpr uint32_t kNever = 0;
  // The base moves this often (about 12.4 days).
  static constexpr uint64_t kRebaseAfterMs = uint64_t{1} << 30;
  // What bytes() counts for each far expiry: a node of the map.
  static constexpr size_t kFarEntryBytes = 32;

  bool started() const { return started_; }
  // Sets the base to the first time the store sees.
  void Start(uint64_t now_ms) {
    base_ms_ = now_ms;
    started_ = true;
  }
  // Whether the base is due to move to `now_ms` (then the store calls Rebase below).
  bool RebaseDue(uint64_t now_ms) const {
    return started_ && now_ms > base_ms_ && now_ms - base_ms_ >= kRebaseAfterMs;
  }

  // The code of `slot` for `expires_at` (0: never). A time too far ahead is recorded in the
  // map; if the map cannot grow, the entry gets the farthest code that fits (it then expires
  // early, in ~49 days, which is harmless for a cache entry).
  uint32_t Encode(uint32_t slot, uint64_t expires_at);
  // Whether the entry in `slot`, whose code is `code`, has expired at `now_ms`.
  bool IsExpired(uint32_t slot, uint32_t code, uint64_t now_ms) const {
    if (code == kNever) return false;
    if (code == kFar) return far_.find(slot)->second <= now_ms;
    return base_ms_ + code <= now_ms;
  }
  // Drops what is recorded for `slot` (before its code changes or the slot is freed).
  void Forget(uint32_t slot, uint32_t code) {
    if (code == kFar) far_.erase(slot);
  }

  // Moves the base to `now_ms`. Then every near code must be passed through Shift (a false
  // return means the entry has expired), and SettleFar must run.
  uint64_t MoveBase(uint64_t now_ms) {
    const uint64_t delta = now_ms - base_ms_;
    base_ms_ = now_ms;
    return delta;
  }
  // Shifts `*code` by the `delta` the base moved; false when the entry is due.
  static bool Shift(uint32_t* code, uint64_t delta) {
    if (*code == kNever || *code == kFar) return true;
    if (*code <= delta) return false;
    *code = static_cast<uint32_t>(*code - delta);
    return true;
  }
  // Far expiries that now fit in 32 bits leave the map, as (slot, code) pairs in `fitting`;
  // the slots of those whose time has come go to `due` (their record stays until Forget).
  void SettleFar(uint64_t now_ms, std::vector<std::pair<uint32_t, uint32_t>>* fitting,
                 std::vector<uint32_t>* due);

  size_t far_count() const { return far_.size(); }
  void Clear() {
    far_.clear();
    started_ = false;
    base_ms_ = 0;
  }

 private:
  static constexpr uint32_t kFar = UINT32_MAX;

  bool started_ = false;
  uint64_t base_ms_ = 0;
  std::unordered_map<uint32_t, uint64_t> far_;
};

}  // namespace hirecache

#endif  // HIRECACHE_STORE_EXPIRY_OFFSETS_H_
