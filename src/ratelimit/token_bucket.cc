// Exact GCRA arithmetic; see token_bucket.h for the model and the units.
#include "ratelimit/token_bucket.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace hirecache {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? kInt64Max : std::numeric_limits<int64_t>::min();
  return r;
}

// a * b for non-negative operands, saturated at `cap`.
int64_t MulCapped(int64_t a, int64_t b, int64_t cap) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > cap) return cap;
  return r;
}

int64_t CeilDiv(int64_t a, int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

// ceil(a / b) for 0 <= a < 2^53 and b >= 1, by a double division, several times cheaper
// than a 64-bit integer one. It is exact: an exact quotient is representable, and an
// inexact one exceeds the integer below it by at least 1/b > quotient * 2^-53, more than
// the rounding can take away.
int64_t CeilDivSmall(int64_t a, int64_t b) {
  if (a >= (int64_t{1} << 53)) return CeilDiv(a, b);
  return static_cast<int64_t>(std::ceil(static_cast<double>(a) / static_cast<double>(b)));
}

// Most limiters have whole-microsecond intervals (scale 1): spare them the divisions.
int64_t CeilDivByScale(int64_t a, int64_t scale) { return scale == 1 ? a : CeilDiv(a, scale); }

// ceil(duration_us * scale / points), or -1 when it overflows.
int64_t IntervalFor(int64_t points, int64_t duration_us, int64_t scale) {
  int64_t num;
  if (__builtin_mul_overflow(duration_us, scale, &num)) return -1;
  return CeilDiv(num, points);
}

}  // namespace

bool ComputeBucketShape(int64_t points, int64_t duration_us, int64_t burst, BucketShape* out) {
  if (points <= 0 || duration_us <= 0 || burst <= 0) return false;
  const int64_t g = std::gcd(points, duration_us);
  int64_t scale = points / g;  // the smallest scale that makes the interval whole
  bool exact = true;
  auto fits = [&](int64_t s) {
    const int64_t interval = IntervalFor(points, duration_us, s);
    int64_t tolerance;
    return interval > 0 && !__builtin_mul_overflow(interval, burst, &tolerance) &&
           tolerance <= kMaxDebtUnits;
  };
  if (scale > kMaxScale || !fits(scale)) {
    exact = false;
    // The tolerance grows linearly with the scale: start from the estimate and step down.
    const long double estimate = static_cast<long double>(kMaxDebtUnits) * points /
                                 (static_cast<long double>(burst) * duration_us);
    scale = static_cast<int64_t>(std::min<long double>(estimate, kMaxScale));
    scale = std::min(scale, points / g - 1);
    while (scale >= 1 && !fits(scale)) scale = scale > 64 ? scale - scale / 64 : scale - 1;
    if (scale < 1) return false;
  }
  out->scale = scale;
  out->interval = IntervalFor(points, duration_us, scale);
  out->tolerance = out->interval * burst;
  out->burst = burst;
  out->exact = exact;
  return true;
}

TokenBucket::TokenBucket(const BucketShape& shape, int64_t block_us)
    : shape_(shape), block_us_(std::max<int64_t>(block_us, 0)) {}

int64_t TokenBucket::Debt(const BucketState& state, int64_t now_us) const {
  if (state.tat_us < now_us) return 0;
  int64_t diff_us;
  if (__builtin_sub_overflow(state.tat_us, now_us, &diff_us) ||
      diff_us >= kMaxDebtUnits / shape_.scale) {
    return kMaxDebtUnits;  // Only a clock that jumped far back gets here: stay refusing.
  }
  return std::min(diff_us * shape_.scale + state.tat_frac, kMaxDebtUnits);
}

bool TokenBucket::IsIdle(const BucketState& state, int64_t now_us) const {
  return !InBlock(state, now_us) && Debt(state, now_us) == 0;
}

void TokenBucket::SetDebt(BucketState* state, int64_t now_us, int64_t debt) const {
  debt = std::clamp<int64_t>(debt, 0, kMaxDebtUnits);
  if (shape_.scale == 1) {
    state->tat_us = SaturatingAdd(now_us, debt);
    state->tat_frac = 0;
  } else {
    state->tat_us = SaturatingAdd(now_us, debt / shape_.scale);
    state->tat_frac = static_cast<uint32_t>(debt % shape_.scale);
  }
}

void TokenBucket::SetBlocked(BucketState* state, int64_t now_us, int64_t duration_us) const {
  state->blocked = true;
  state->block_end_us = SaturatingAdd(now_us, std::max<int64_t>(duration_us, 0));
}

int64_t TokenBucket::CostUnits(int64_t cost) const {
  // Anything above the largest possible debt is refused all the same, so saturate there.
  return MulCapped(std::max<int64_t>(cost, 0), shape_.interval, kMaxDebtUnits + 1);
}

BucketDecision TokenBucket::Admitted(int64_t debt_before, int64_t debt_after,
                                     int64_t refused) const {
  BucketDecision d;
  d.allowed = true;
  d.first = debt_before == 0;
  d.debt_after = debt_after;
  const int64_t in_use = CeilDivSmall(debt_after, shape_.interval);
  d.consumed = in_use + refused;
  d.remaining = std::max<int64_t>(shape_.burst - in_use, 0);
  d.wait_us = CeilDivByScale(debt_after, shape_.scale);
  return d;
}

BucketDecision TokenBucket::Refused(int64_t debt, int64_t cost_units, int64_t refused_after) const {
  BucketDecision d;
  d.debt_after = debt;
  const int64_t in_use = CeilDivSmall(debt, shape_.interval);
  d.remaining = std::max<int64_t>(shape_.burst - in_use, 0);
  d.consumed = SaturatingAdd(in_use, refused_after);
  d.wait_us = CeilDivByScale(debt + cost_units - shape_.tolerance, shape_.scale);
  return d;
}

BucketDecision TokenBucket::BlockedFor(const BucketState& state, int64_t cost,
                                       int64_t now_us) const {
  BucketDecision d;
  d.blocked = true;
  const int64_t debt = Debt(state, now_us);
  d.debt_after = std::max(debt, shape_.tolerance);
  // The whole bucket in use, plus the request: what the Redis limiter reports too, since its
  // script answers a blocked key with the wait alone (so a key's numbers do not depend on
  // which store holds it, e.g. while a Redis limiter decides on its fallback).
  d.consumed = SaturatingAdd(shape_.burst, std::max<int64_t>(cost, 1));
  d.wait_us = state.block_end_us - now_us;
  const int64_t over = debt + CostUnits(cost) - shape_.tolerance;
  if (over > 0) d.wait_us = std::max(d.wait_us, CeilDivByScale(over, shape_.scale));
  return d;
}

BucketDecision TokenBucket::Check(const BucketState& state, int64_t cost, int64_t now_us) const {
  if (InBlock(state, now_us)) return BlockedFor(state, cost, now_us);
  const int64_t debt = Debt(state, now_us);
  const int64_t units = CostUnits(cost);
  if (debt + units <= shape_.tolerance) return Admitted(debt, debt + units);
  return Refused(debt, units, std::min(RefusedAt(state, now_us) + cost, kMaxRefused));
}

BucketDecision TokenBucket::Consume(BucketState* state, int64_t cost, int64_t now_us) const {
  BucketDecision d = Check(*state, cost, now_us);
  if (d.allowed) {
    SetDebt(state, now_us, d.debt_after);
    state->blocked = false;  // any block has ended
    state->refused = 0;
  } else if (!d.blocked && block_us_ > 0) {
    SetBlocked(state, now_us, block_us_);  // refused: nothing taken, the debt stays
    state->refused = 0;
    d = BlockedFor(*state, cost, now_us);
  } else if (!d.blocked) {
    // Refused: nothing taken; the refusal is remembered until the bucket is full again.
    state->refused = static_cast<uint32_t>(std::min(RefusedAt(*state, now_us) + cost, kMaxRefused));
  }
  return d;
}

BucketDecision TokenBucket::Penalty(BucketState* state, int64_t cost, int64_t now_us) const {
  const int64_t before = Debt(*state, now_us);
  const int64_t refused = RefusedAt(*state, now_us);
  const int64_t after = std::min(before + CostUnits(cost), kMaxDebtUnits);
  SetDebt(state, now_us, after);
  // Taken while blocked: the block goes on, and the debt outlives it.
  if (InBlock(*state, now_us)) return BlockedFor(*state, 0, now_us);
  state->refused = static_cast<uint32_t>(refused);
  return Admitted(before, after, refused);
}

BucketDecision TokenBucket::Reward(BucketState* state, int64_t cost, int64_t now_us) const {
  if (InBlock(*state, now_us)) return BlockedFor(*state, 0, now_us);
  const int64_t before = Debt(*state, now_us);
  const int64_t after = std::max<int64_t>(before - CostUnits(cost), 0);
  SetDebt(state, now_us, after);
  state->refused = 0;  // a reward forgives the refused attempts too
  return Admitted(before, after);
}

BucketDecision TokenBucket::Block(BucketState* state, int64_t duration_us, int64_t now_us) const {
  SetBlocked(state, now_us, duration_us);
  state->refused = 0;
  return BlockedFor(*state, 0, now_us);
}

BucketDecision TokenBucket::Describe(const BucketState& state, int64_t now_us) const {
  if (InBlock(state, now_us)) return BlockedFor(state, 0, now_us);
  const int64_t debt = Debt(state, now_us);
  return Admitted(debt, debt, RefusedAt(state, now_us));
}

}  // namespace hirecache
