#include "client/client_metrics.h"

#include <hiredis/hiredis.h>

#include "util/ascii.h"

namespace hirecache {

const char* VerbName(Verb verb) {
  static constexpr const char* kNames[kVerbCount] = {"get",  "set",  "mget", "del",
                                                     "scan", "eval", "ping", "other"};
  return kNames[static_cast<size_t>(verb)];
}

const char* OutcomeName(Outcome outcome) {
  static constexpr const char* kNames[kOutcomeCount] = {"hit",     "miss",    "ok",     "error",
                                                        "timeout", "unknown", "refused"};
  return kNames[static_cast<size_t>(outcome)];
}

Verb VerbOf(std::string_view command) {
  switch (command.size()) {
    case 3:
      if (EqualsUpper(command, "GET")) return Verb::kGet;
      if (EqualsUpper(command, "SET")) return Verb::kSet;
      if (EqualsUpper(command, "DEL")) return Verb::kDel;
      break;
    case 4:
      if (EqualsUpper(command, "MGET")) return Verb::kMget;
      if (EqualsUpper(command, "SCAN")) return Verb::kScan;
      if (EqualsUpper(command, "EVAL")) return Verb::kEval;
      if (EqualsUpper(command, "PING")) return Verb::kPing;
      break;
    case 6:
      if (EqualsUpper(command, "UNLINK")) return Verb::kDel;
      break;
    case 7:
      if (EqualsUpper(command, "EVALSHA")) return Verb::kEval;
      break;
    default:
      break;
  }
  return Verb::kOther;
}

void ClientMetrics::CountReply(Verb verb, const redisReply* reply, uint64_t latency_us) {
  auto& row = outcomes_[static_cast<size_t>(verb)];
  if (reply->type == REDIS_REPLY_ERROR) {
    ++row[static_cast<size_t>(Outcome::kError)];
  } else if (verb == Verb::kGet) {
    ++row[static_cast<size_t>(reply->type == REDIS_REPLY_NIL ? Outcome::kMiss : Outcome::kHit)];
  } else if (verb == Verb::kMget && reply->type == REDIS_REPLY_ARRAY) {
    uint64_t misses = 0;
    for (size_t i = 0; i < reply->elements; ++i) {
      if (reply->element[i]->type == REDIS_REPLY_NIL) ++misses;
    }
    row[static_cast<size_t>(Outcome::kMiss)] += misses;
    row[static_cast<size_t>(Outcome::kHit)] += reply->elements - misses;
  } else {
    ++row[static_cast<size_t>(Outcome::kOk)];
  }
  LatencyHistogram& h = latency_[static_cast<size_t>(verb)];
  size_t bucket = 0;
  while (bucket < kLatencyBoundsUs.size() && latency_us > kLatencyBoundsUs[bucket]) ++bucket;
  ++h.counts[bucket];
  h.sum_us += latency_us;
  ++h.count;
}

void ClientMetrics::Add(const ClientMetrics& other) {
  for (size_t v = 0; v < kVerbCount; ++v) {
    for (size_t o = 0; o < kOutcomeCount; ++o) outcomes_[v][o] += other.outcomes_[v][o];
    LatencyHistogram& mine = latency_[v];
    const LatencyHistogram& theirs = other.latency_[v];
    for (size_t b = 0; b < kLatencyBuckets; ++b) mine.counts[b] += theirs.counts[b];
    mine.sum_us += theirs.sum_us;
    mine.count += theirs.count;
  }
}

}  // namespace hirecache
