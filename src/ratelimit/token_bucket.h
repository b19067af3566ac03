// Token-bucket arithmetic in its GCRA ("theoretical arrival time") form, exact in integers.
//
// A bucket holds up to `burst` tokens and gains `points` tokens per `duration`. Instead of a
// token count and a timestamp it keeps one instant, the theoretical arrival time (TAT): the
// moment the bucket will be full again. Its "debt" at time `now` is max(TAT - now, 0); one
// token is worth `interval` of debt, and a bucket can owe at most `tolerance` = burst *
// interval. A request of `cost` tokens is admitted when debt + cost * interval <= tolerance.
//
// Time is counted in "units" of 1/scale microsecond, where scale is the smallest integer that
// makes `interval` (duration / points) a whole number of units, so refill is exact: `points`
// requests per `duration` in steady state, never one more. The same units are used by the
// Redis script (lib/ratelimit/token_bucket.lua), so the local and distributed limiters agree to
// the unit; test/ratelimit/ratelimit.agreement.test.js holds them to it.
#ifndef HIRECACHE_RATELIMIT_TOKEN_BUCKET_H_
#define HIRECACHE_RATELIMIT_TOKEN_BUCKET_H_

#include <cstdint>

namespace hirecache {

// Debt never exceeds this many units. It bounds every product below well inside int64_t and
// keeps the Redis script's doubles exact (it works modulo 2^52 and needs debts < 2^51).
constexpr int64_t kMaxDebtUnits = int64_t{1} << 50;
// The Redis script multiplies microseconds by `scale` in 26-bit halves, so scale < 2^26.
constexpr int64_t kMaxScale = (int64_t{1} << 26) - 1;

// The dimensions of every bucket of one limiter, in units.
struct BucketShape {
  int64_t scale = 1;      // units per microsecond
  int64_t interval = 1;   // units of debt per token
  int64_t tolerance = 1;  // burst * interval
  int64_t burst = 1;      // capacity in tokens
  bool exact = true;      // false when interval had to be rounded up to fit the range
};

// Computes the shape of a bucket of `burst` tokens refilled at `points` per `duration_us`.
// Chooses the smallest scale that makes the interval exact; when that scale would push
// the tolerance past kMaxDebtUnits, uses a coarser one and rounds the interval up (fewer
// admissions, never more). Returns false when the arguments are not positive or even a
// one-unit-per-microsecond bucket would not fit.
bool ComputeBucketShape(int64_t points, int64_t duration_us, int64_t burst, BucketShape* out);

// The whole state of one bucket: 32 bytes, so a table of a million buckets stays small.
// A default-constructed state is a full bucket. A block only adds refusal time: the TAT
// keeps what the key owes, so the bucket is exactly as empty after the block as the refill
// during it has made it (a block never cancels a debt).
struct BucketState {
  int64_t tat_us = 0;        // whole microseconds of the TAT
  int64_t block_end_us = 0;  // when `blocked`: the instant the block ends
  uint32_t tat_frac = 0;     // plus tat_frac / scale of a microsecond
  bool blocked = false;      // a block ending at block_end_us was set (it may have ended)
  uint8_t mark = 0;          // not used by TokenBucket: free for the container that holds it
  // Points of consumes refused since the last admitted one (up to kMaxRefused), forgotten
  // once the bucket is full again. They count in `consumed`, as rate-limiter-flexible counts
  // refused attempts, so `consumedPoints > points` says "an attempt was refused".
  uint32_t refused = 0;
};

// The most refused points a bucket remembers, as many as any one cost can be (the Redis
// script caps them the same): a refusal of any cost then reads over `points`.
constexpr int64_t kMaxRefused = (int64_t{1} << 31) - 1;

// What one operation decided, with the numbers a caller reports.
struct BucketDecision {
  bool allowed = false;
  bool blocked = false;    // refused because the key is blocked (or has just become so)
  bool first = false;      // admitted into a bucket that was full
  int64_t remaining = 0;   // whole tokens left after the operation
  int64_t consumed = 0;    // tokens in use, plus the points refused since the last
                           // admission (this refusal's included); when blocked, the whole
                           // burst plus the refused cost (at least one)
  int64_t wait_us = 0;     // admitted: until the bucket is full again;
                           // refused: until `cost` tokens are there or the block ends
  int64_t debt_after = 0;  // units owed after the operation
};

// The policy of one limiter: its shape and block duration. Stateless and cheap to copy;
// every method takes the bucket state and the current time in microseconds of a clock that
// the caller chooses (monotonic for the local limiter). Times going backwards only make a
// bucket look emptier, never fuller; huge gaps saturate instead of overflowing.
class TokenBucket {
 public:
  TokenBucket(const BucketShape& shape, int64_t block_us);

  const BucketShape& shape() const { return shape_; }
  int64_t block_us() const { return block_us_; }

  // Units owed at `now_us`, in [0, kMaxDebtUnits]; 0 for a full bucket. A block does not
  // change it.
  int64_t Debt(const BucketState& state, int64_t now_us) const;
  // Whether the state carries no information at `now_us` (a full, unblocked bucket), so a
  // container may drop it.
  bool IsIdle(const BucketState& state, int64_t now_us) const;

  // Admits `cost` tokens if they are there; otherwise refuses without taking any, and
  // starts a block of block_us when the limiter has one.
  BucketDecision Consume(BucketState* state, int64_t cost, int64_t now_us) const;
  // What Consume would decide, without changing the state.
  BucketDecision Check(const BucketState& state, int64_t cost, int64_t now_us) const;
  // Takes `cost` tokens even if they are not there (the debt may exceed the tolerance),
  // also while the key is blocked (the block then goes on and the debt outlives it).
  BucketDecision Penalty(BucketState* state, int64_t cost, int64_t now_us) const;
  // Gives back `cost` tokens, never more than a full bucket.
  BucketDecision Reward(BucketState* state, int64_t cost, int64_t now_us) const;
  // Refuses everything for `duration_us` from now; afterwards the bucket still owes what it
  // owed, less the refill during the block.
  BucketDecision Block(BucketState* state, int64_t duration_us, int64_t now_us) const;
  // The current numbers of a bucket, as an admitted zero-cost request would see them.
  BucketDecision Describe(const BucketState& state, int64_t now_us) const;

  // Sets the state so that it owes `debt` units at `now_us` (clamped to kMaxDebtUnits).
  // Leaves a block alone.
  void SetDebt(BucketState* state, int64_t now_us, int64_t debt) const;
  // Sets the state to "blocked for `duration_us` from now", keeping its debt.
  void SetBlocked(BucketState* state, int64_t now_us, int64_t duration_us) const;

 private:
  BucketDecision Admitted(int64_t debt_before, int64_t debt_after, int64_t refused = 0) const;
  BucketDecision Refused(int64_t debt, int64_t cost_units, int64_t refused_after) const;
  // The refused points the state still holds at `now_us` (none once the bucket is full).
  int64_t RefusedAt(const BucketState& state, int64_t now_us) const {
    return state.refused == 0 || Debt(state, now_us) == 0 ? 0 : state.refused;
  }
  // Whether the state is in a block at `now_us`.
  static bool InBlock(const BucketState& state, int64_t now_us) {
    return state.blocked && now_us < state.block_end_us;
  }
  // The decision for a key in a block: it waits until the block ends and `cost` tokens are
  // there, whichever is later.
  BucketDecision BlockedFor(const BucketState& state, int64_t cost, int64_t now_us) const;
  int64_t CostUnits(int64_t cost) const;

  BucketShape shape_;
  int64_t block_us_;
};

}  // namespace hirecache

#endif  // HIRECACHE_RATELIMIT_TOKEN_BUCKET_H_
