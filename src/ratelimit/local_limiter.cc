// The bounded bucket table of the local rate limiter; see local_limiter.h for the layout.
#include "ratelimit/local_limiter.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace hirecache {
namespace {

// Sweep steps taken by every operation: enough to visit the whole table every n/2
// operations, few enough to stay invisible next to the cost of the call itself.
constexpr size_t kStepsPerOperation = 2;
constexpr uint32_t kMinSlotBits = 4;
// Positions are stored as uint32_t + 1 in the index.
constexpr size_t kMaxEntriesLimit = std::numeric_limits<uint32_t>::max() / 2;

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline void SipRound(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = Rotl(v1, 13);
  v1 ^= v0;
  v0 = Rotl(v0, 32);
  v2 += v3;
  v3 = Rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = Rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = Rotl(v1, 17);
  v1 ^= v2;
  v2 = Rotl(v2, 32);
}

inline uint64_t LoadLittleEndian64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

// SipHash-1-3 (one compression round, three finalization rounds) of `data` under the
// 128-bit key (k0, k1): a keyed hash whose outputs an attacker cannot predict or collide
// without the key, at a few nanoseconds per short key.
uint64_t SipHash13(uint64_t k0, uint64_t k1, std::string_view data) {
  uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
  uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
  uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
  uint64_t v3 = k1 ^ 0x7465646279746573ULL;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t whole = n & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) {
    const uint64_t m = LoadLittleEndian64(p + i);
    v3 ^= m;
    SipRound(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(n) << 56;
  for (size_t i = whole; i < n; ++i) last |= static_cast<uint64_t>(p[i]) << (8 * (i - whole));
  v3 ^= last;
  SipRound(v0, v1, v2, v3);
  v0 ^= last;
  v2 ^= 0xff;
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace

LocalLimiter::LocalLimiter(const TokenBucket& bucket, size_t max_entries, size_t max_key_bytes,
                           uint64_t seed0, uint64_t seed1)
    : bucket_(bucket),
      max_entries_(std::clamp<size_t>(max_entries, 1, kMaxEntriesLimit)),
      max_key_bytes_(std::max<size_t>(max_key_bytes, 1)),
      k0_(seed0),
      k1_(seed1) {
  index_.Reset(kMinSlotBits);
}

uint64_t LocalLimiter::Hash(std::string_view key) const { return SipHash13(k0_, k1_, key); }

// Inlined into the hot paths, as the loop it replaced was.
inline LocalLimiter::Entry* LocalLimiter::Find(uint64_t hash) {
  const uint32_t tag = static_cast<uint32_t>(hash);
  Entry* found = nullptr;
  index_.Find(hash, [&](Slot s) {
    if (s.tag != tag) return false;
    Entry& e = entries_[s.position_plus_one - 1];
    if (e.hash != hash) return false;
    found = &e;
    return true;
  });
  return found;
}

size_t LocalLimiter::SlotOf(uint64_t hash, uint32_t position) const {
  return index_.Find(hash, [&](Slot s) { return s.position_plus_one == position + 1; }).index;
}

void LocalLimiter::Grow() {
  // Built aside and swapped in: if memory runs out, the old index is left whole.
  ProbeIndex<SlotCodec> bigger;
  bigger.Reset(index_.bits() + 1);
  for (size_t p = 0; p < entries_.size(); ++p) {
    const uint64_t h = entries_[p].hash;
    bigger.Put(bigger.FindEmpty(h), Slot{static_cast<uint32_t>(p + 1), static_cast<uint32_t>(h)});
  }
  index_.swap(bigger);
}

void LocalLimiter::RemoveAt(size_t position) {
  index_.Erase(SlotOf(entries_[position].hash, static_cast<uint32_t>(position)));
  // The last entry fills the hole, so the entries stay dense; its slot follows it.
  const size_t last = entries_.size() - 1;
  if (position != last) {
    entries_[position] = entries_[last];
    const uint64_t h = entries_[position].hash;
    index_.Put(SlotOf(h, static_cast<uint32_t>(last)),
               Slot{static_cast<uint32_t>(position + 1), static_cast<uint32_t>(h)});
  }
  entries_.pop_back();
}

void LocalLimiter::EvictOne(int64_t now_us) {
  // CLOCK: an idle bucket goes at once (that loses nothing); a bucket used since the hand
  // last passed gets its mark cleared and a second chance; the first unmarked one goes.
  // Two passes at most, since the first clears every mark.
  for (size_t steps = 0; steps <= 2 * entries_.size(); ++steps) {
    if (hand_ >= entries_.size()) hand_ = 0;
    Entry& e = entries_[hand_];
    if (bucket_.IsIdle(e.state, now_us)) {
      RemoveAt(hand_);
      ++swept_;
      return;
    }
    if (e.state.mark == 0) {
      RemoveAt(hand_);
      ++evicted_;
      // The newest entry just moved into this position: step past it so that it waits a
      // whole turn of the hand, like every entry inserted after the hand went by.
      ++hand_;
      return;
    }
    e.state.mark = 0;
    ++hand_;
  }
}

void LocalLimiter::Step(int64_t now_us) {
  // Below half the cap an idle bucket costs only its 24 bytes, and dropping one that its
  // key will use again soon costs a removal now and an insertion then: measured, that
  // churn took a third of the time of a consume on 10,000 busy keys. So the sweep only
  // runs once the table is half full; the CLOCK drops idle buckets first at the cap anyway.
  if (entries_.size() * 2 > max_entries_) Sweep(kStepsPerOperation, now_us);
}

void LocalLimiter::Sweep(size_t steps, int64_t now_us) {
  // The sweep shares the hand's position but not its marks: it only drops idle buckets.
  for (size_t k = 0; k < steps && !entries_.empty(); ++k) {
    if (hand_ >= entries_.size()) hand_ = 0;
    if (bucket_.IsIdle(entries_[hand_].state, now_us)) {
      RemoveAt(hand_);
      ++swept_;
    } else {
      ++hand_;
    }
  }
}

LocalLimiter::Entry* LocalLimiter::Insert(uint64_t hash, const BucketState& state, int64_t now_us) {
  if (entries_.size() >= max_entries_) EvictOne(now_us);
  if ((entries_.size() + 1) * 2 > index_.capacity()) Grow();
  const uint32_t position = static_cast<uint32_t>(entries_.size());
  // A new bucket starts unmarked: it is as old as its insertion until it is used again.
  BucketState fresh = state;
  fresh.mark = 0;
  // The entry first: if memory runs out here, the index still matches the entries.
  entries_.push_back(Entry{hash, fresh});
  index_.Put(index_.FindEmpty(hash), Slot{position + 1, static_cast<uint32_t>(hash)});
  return &entries_.back();
}

LocalLimiter::Entry* LocalLimiter::FindOrInsert(uint64_t hash, int64_t now_us) {
  if (Entry* e = Find(hash)) {
    e->state.mark = 1;  // used again since the hand last passed
    return e;
  }
  return Insert(hash, BucketState{}, now_us);
}

LocalLimiter::Status LocalLimiter::Consume(std::string_view key, int64_t cost, int64_t now_us,
                                           BucketDecision* out) {
  if (key.size() > max_key_bytes_) return Status::kKeyTooLong;
  ConsumeHashed(Hash(key), cost, now_us, out);
  return Status::kOk;
}

LocalLimiter::Status LocalLimiter::ConsumeNow(std::string_view key, int64_t cost, Clock clock,
                                              BucketDecision* out) {
  if (key.size() > max_key_bytes_) return Status::kKeyTooLong;
  const uint64_t hash = Hash(key);
  // The key's index slot may not be in cache (a busy process evicts it between decisions):
  // ask for it before reading the clock, so that the two waits overlap when it is not.
  // Measured, the table's misses are a small part of a decision (see local_limiter.h).
  __builtin_prefetch(index_.HomeOf(hash));
  ConsumeHashed(hash, cost, clock(), out);
  return Status::kOk;
}

void LocalLimiter::ConsumeHashed(uint64_t hash, int64_t cost, int64_t now_us, BucketDecision* out) {
  Step(now_us);
  if (Entry* e = Find(hash)) {
    e->state.mark = 1;
    *out = bucket_.Consume(&e->state, cost, now_us);
    return;
  }
  // An absent key is a full bucket; it takes a place in the table only if it is left
  // owing something (a zero-cost call leaves nothing to remember).
  BucketState state;
  *out = bucket_.Consume(&state, cost, now_us);
  if (!bucket_.IsIdle(state, now_us)) Insert(hash, state, now_us);
}

LocalLimiter::Status LocalLimiter::Get(std::string_view key, int64_t now_us, BucketDecision* out,
                                       bool* found) {
  if (key.size() > max_key_bytes_) return Status::kKeyTooLong;
  Entry* e = Find(Hash(key));
  *found = e != nullptr && !bucket_.IsIdle(e->state, now_us);
  if (*found) {
    e->state.mark = 1;
    *out = bucket_.Describe(e->state, now_us);
  }
  return Status::kOk;
}

LocalLimiter::Status LocalLimiter::Penalty(std::string_view key, int64_t cost, int64_t now_us,
                                           BucketDecision* out) {
  if (key.size() > max_key_bytes_) return Status::kKeyTooLong;
  Step(now_us);
  Entry* e = FindOrInsert(Hash(key), now_us);
  *out = bucket_.Penalty(&e->state, cost, now_us);
  return Status::kOk;
}

LocalLimiter::Status LocalLimiter::Reward(std::string_view key, int64_t cost, int64_t now_us,
                                          BucketDecision* out) {
  if (key.size() > max_key_bytes_) return Status::kKeyTooLong;
  Entry* e = Find(Hash(key));
  if (e == nullptr) {
    // No bucket is a full bucket: nothing to give back, and nothing worth inserting.
    *out = bucket_.Describe(BucketState{}, now_us);
    return Status::kOk;
  }
  *out = bucket_.Reward(&e->state, cost, now_us);
  return Status::kOk;
}

LocalLimiter::Status LocalLimiter::Block(std::string_view key, int64_t duration_us, int64_t now_us,
                                         BucketDecision* out) {
  if (key.size() > max_key_bytes_) return Status::kKeyTooLong;
  Step(now_us);
  Entry* e = FindOrInsert(Hash(key), now_us);
  *out = bucket_.Block(&e->state, duration_us, now_us);
  return Status::kOk;
}

LocalLimiter::Status LocalLimiter::Erase(std::string_view key, bool* erased) {
  if (key.size() > max_key_bytes_) return Status::kKeyTooLong;
  Entry* e = Find(Hash(key));
  *erased = e != nullptr;
  if (e != nullptr) RemoveAt(static_cast<size_t>(e - entries_.data()));
  return Status::kOk;
}

LocalLimiter::Status LocalLimiter::Observe(std::string_view key, int64_t debt, int64_t trust_us,
                                           int64_t now_us) {
  if (key.size() > max_key_bytes_) return Status::kKeyTooLong;
  Step(now_us);
  const uint64_t hash = Hash(key);
  Entry* e = Find(hash);
  if (trust_us <= 0 || debt <= 0) {  // nothing (more) to remember
    if (e != nullptr) RemoveAt(static_cast<size_t>(e - entries_.data()));
    return Status::kOk;
  }
  if (e == nullptr) {
    e = Insert(hash, BucketState{}, now_us);
  } else {
    e->state.mark = 1;
  }
  // The block is the observation's trust: the entry is dropped by Check, and is idle for the
  // sweep, no later than the debt says (it may go sooner, to be asked again).
  bucket_.SetDebt(&e->state, now_us, debt);
  bucket_.SetBlocked(&e->state, now_us, trust_us);
  return Status::kOk;
}

LocalLimiter::Status LocalLimiter::Check(std::string_view key, int64_t cost, int64_t now_us,
                                         BucketDecision* out, bool* known) {
  if (key.size() > max_key_bytes_) return Status::kKeyTooLong;
  Step(now_us);
  Entry* e = Find(Hash(key));
  if (e != nullptr && !(e->state.blocked && now_us < e->state.block_end_us)) {
    RemoveAt(static_cast<size_t>(e - entries_.data()));  // no longer trusted: ask again
    e = nullptr;
  }
  *known = e != nullptr;
  if (e != nullptr) {
    e->state.mark = 1;
    BucketState debt_only = e->state;
    debt_only.blocked = false;
    *out = bucket_.Check(debt_only, cost, now_us);
  }
  return Status::kOk;
}

void LocalLimiter::Clear() {
  index_.Reset(kMinSlotBits);  // First: if memory runs out, nothing has changed.
  entries_.clear();
  hand_ = 0;
}

LocalLimiterStats LocalLimiter::stats() const {
  LocalLimiterStats s;
  s.entries = entries_.size();
  s.max_entries = max_entries_;
  s.swept = swept_;
  s.evicted = evicted_;
  return s;
}

}  // namespace hirecache
