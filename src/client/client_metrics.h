// What the client counts per command, in the core, so that the hot path does no JS work for
// it: outcomes by verb, and a latency histogram per verb. Plain counters; the owner reads
// them when metrics are asked for.
#ifndef HIRECACHE_CLIENT_CLIENT_METRICS_H_
#define HIRECACHE_CLIENT_CLIENT_METRICS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

struct redisReply;

namespace hirecache {

// The verbs counted apart; every other command counts as kOther.
enum class Verb : uint8_t { kGet, kSet, kMget, kDel, kScan, kEval, kPing, kOther };
constexpr size_t kVerbCount = 8;
const char* VerbName(Verb verb);
// Case-insensitive: GET, SET, MGET, DEL/UNLINK, SCAN, EVAL/EVALSHA, PING.
Verb VerbOf(std::string_view command);

enum class Outcome : uint8_t {
  kHit,      // GET with a value (MGET: per key)
  kMiss,     // GET without one (MGET: per key)
  kOk,       // any other reply that is not an error
  kError,    // an error reply, or a connection failure before the command was written
  kTimeout,  // the command's deadline passed
  kUnknown,  // written, then the connection was lost or the breaker gave up on it
  kRefused,  // failed fast without socket work (breaker open, queue full)
};
constexpr size_t kOutcomeCount = 7;
const char* OutcomeName(Outcome outcome);

// Upper bounds of the latency buckets, in microseconds (0.1 ms … 1 s); one more bucket
// counts everything slower.
constexpr std::array<uint32_t, 13> kLatencyBoundsUs = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};
constexpr size_t kLatencyBuckets = kLatencyBoundsUs.size() + 1;

struct LatencyHistogram {
  std::array<uint64_t, kLatencyBuckets> counts{};  // not cumulative
  uint64_t sum_us = 0;
  uint64_t count = 0;
};

class ClientMetrics {
 public:
  void Count(Verb verb, Outcome outcome, uint64_t n = 1) {
    outcomes_[static_cast<size_t>(verb)][static_cast<size_t>(outcome)] += n;
  }
  // Counts a reply's outcome (hit/miss/ok/error) and its latency.
  void CountReply(Verb verb, const redisReply* reply, uint64_t latency_us);

  uint64_t outcome(Verb verb, Outcome outcome) const {
    return outcomes_[static_cast<size_t>(verb)][static_cast<size_t>(outcome)];
  }
  const LatencyHistogram& latency(Verb verb) const { return latency_[static_cast<size_t>(verb)]; }
  // Adds another client's counts to these (a cluster's total over its nodes).
  void Add(const ClientMetrics& other);

 private:
  std::array<std::array<uint64_t, kOutcomeCount>, kVerbCount> outcomes_{};
  std::array<LatencyHistogram, kVerbCount> latency_{};
};

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_CLIENT_METRICS_H_
