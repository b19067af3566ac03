// The JS class `LocalLimiter` over the core's bounded token-bucket table. lib/ratelimit.js
// uses one as the in-process limiter, as the fallback of a Redis limiter, and as the
// shadow that answers keys known to be over their limit without asking Redis.
//
// The hot path is one call in and one small integer out. The numbers of a decision
// (remaining, msBeforeNext, consumed, flags, debt) are written into five doubles of the shared
// state, which JS sees as the instance's `out` Float64Array (an external ArrayBuffer over
// that memory, which keeps the state alive: whatever JS does with the buffer, C++ never
// writes to memory it does not own), and JS builds the result object itself. The per-key methods
// are plain N-API functions created for each instance, carrying the instance's state as their
// callback data: measured here, napi_unwrap of `this` costs about three times the rest of
// a call, so no per-key method goes through it.
#ifndef HIRECACHE_BINDING_RATELIMIT_RATE_LIMITER_WRAP_H_
#define HIRECACHE_BINDING_RATELIMIT_RATE_LIMITER_WRAP_H_

#include <napi.h>

#include <memory>
#include <string_view>
#include <vector>

#include "ratelimit/local_limiter.h"

namespace hirecache::binding {

// Returns the constructor of the JS class `LocalLimiter`, for the addon's exports.
Napi::Function DefineLocalLimiter(Napi::Env env);

// Flags returned by the per-key methods; exported as LocalLimiter.FLAGS, which
// lib/ratelimit/shared.js reads.
constexpr int32_t kLimiterAllowed = 1;
constexpr int32_t kLimiterFirst = 2;
constexpr int32_t kLimiterBlocked = 4;
constexpr int32_t kLimiterFound = 8;  // get(): a bucket in use; check(): a remembered state
constexpr int32_t kLimiterKeyTooLong = -1;

// The state one JS LocalLimiter and its method functions share. Each of them holds a
// reference; the last one to be garbage-collected frees it, so a method kept apart from
// its object never sees freed memory.
struct LimiterShared {
  LimiterShared(const TokenBucket& bucket, size_t max_entries, size_t max_key_units);

  LocalLimiter limiter;
  size_t max_key_units;             // the cap on a key, in UTF-16 code units
  std::vector<char16_t> key_units;  // the key being served, as UTF-16 code units
  // The numbers of the last decision, JS's `out`: remaining, msBeforeNext, consumed, the
  // flags of consumeOne(), and the units owed after the decision (what the Redis script
  // stores; JS reads it only to check that both agree).
  double out[5] = {0, 0, 0, 0, 0};
  // Negative: decisions read the kernel's monotonic clock. Otherwise the instant, in
  // microseconds, that JS last set with setClockUs(): a limiter made with the clockUs
  // option lives on a clock of the caller's, so a test can replay exact times and compare
  // the decisions with the Redis script's.
  int64_t manual_now_us = -1;
};

class LocalLimiterWrap : public Napi::ObjectWrap<LocalLimiterWrap> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new LocalLimiter({ points, durationUs, burst, blockUs, maxEntries, maxKeyLength,
  // clockUs }). lib/ratelimit validates the options; here only what memory safety needs is
  // enforced (OptionReader: a missing or mistyped option reads as 0, which is refused). With
  // clockUs the limiter runs on a clock the caller sets (setClockUs), for tests. Sets `out`
  // (a Float64Array of 5) and installs the per-key methods on the new object:
  //   consume(key, cost) / penalty(key, cost) / reward(key, cost) / check(key, cost),
  //   get(key), block(key, durationMs) -> flags (numbers in `out`), or -1 for a key longer
  //   than maxKeyLength;
  //   observe(key, debtUnits, trustMs) -> 0 or -1; delete(key) -> boolean or -1.
  // With clockUs (a number of microseconds, for tests), the limiter's clock stands at clockUs
  // instead of following the kernel's, and moves only when JS calls setClockUs(us), which
  // only such a limiter has.
  explicit LocalLimiterWrap(const Napi::CallbackInfo& info);

 private:
  // LocalLimiter.shape(points, durationUs, burst) -> [scale, interval, tolerance, exact] or
  // null: the units the Redis script must use to agree with the local arithmetic. The
  // static LocalLimiter.MAX_DEBT_UNITS is the cap on a bucket's debt (kMaxDebtUnits) that
  // the script and lib/ratelimit/redis.js must apply too.
  static Napi::Value Shape(const Napi::CallbackInfo& info);

  Napi::Value Clear(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);

  std::shared_ptr<LimiterShared> shared_;
};

}  // namespace hirecache::binding

#endif  // HIRECACHE_BINDING_RATELIMIT_RATE_LIMITER_WRAP_H_
