// Times the local limiter's bucket table in the four situations its layout was chosen for.
// Built only with -DHIRECACHE_BENCH=ON (plain CMake, not cmake-js); prints nanoseconds per
// decision and checks nothing but the cap. Run two builds alternately to compare layouts:
//
//   hirecache_limiter_bench [--rounds N] [--keys N] [--overlap]
//   [busy-polluted|busy|flood|flood-polluted|million ...]
//
//   busy-polluted  10,000 keys in a fixed pseudo-random order, with 16 random cache lines of
//                  an 8 MiB buffer touched between decisions (as a churning JS heap does); the
//                  cost of the touching (with a clock read and fetching the key, so the
//                  polluted figures leave the clock out) is measured apart and subtracted.
//   busy           the same keys without the pollution: the table stays in cache.
//   flood          a table at its cap of 100,000 buckets, each decision a new key that is
//                  inserted and evicts another.
//   flood-polluted the flood with the pollution.
//   million        1,000,000 distinct keys through a table capped at 100,000, from empty;
//                  checks after every decision that the cap holds.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "ratelimit/local_limiter.h"
#include "ratelimit/token_bucket.h"

namespace {

using hirecache::BucketDecision;
using hirecache::BucketShape;
using hirecache::LocalLimiter;
using hirecache::TokenBucket;

size_t g_busy_keys = 10000;       // --keys
constexpr size_t kStride = 7919;  // prime to the number of keys: a pseudo-random round-robin
constexpr size_t kCap = 100000;
constexpr size_t kPollutionBytes = size_t{8} << 20;
constexpr int kLinesPerDecision = 16;

int64_t NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

double Seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

TokenBucket MakeBucket(int64_t points, int64_t duration_us) {
  BucketShape shape;
  if (!hirecache::ComputeBucketShape(points, duration_us, points, &shape)) std::abort();
  return TokenBucket(shape, 0);
}

// A fast generator for the pollution and the flood's keys (xorshift64*).
struct Random {
  uint64_t s;
  uint64_t Next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  }
};

// Touches random cache lines of a buffer larger than the L2 cache, writing to each, as the
// allocation and collection of a JS heap does between two calls into the addon.
class Pollution {
 public:
  Pollution() : bytes_(kPollutionBytes, 1) {}
  void Touch() {
    for (int i = 0; i < kLinesPerDecision; ++i) {
      bytes_[rng_.Next() & (kPollutionBytes - 64)] += 1;
    }
  }
  uint64_t checksum() const { return bytes_[rng_.s & (kPollutionBytes - 1)]; }

 private:
  std::vector<unsigned char> bytes_;
  Random rng_{0x9E3779B97F4A7C15ULL};
};

// Writes a 20-byte key "ip:" + 16 hex digits of `v` + "!" into `buf`.
std::string_view HexKey(uint64_t v, char* buf) {
  static const char kHex[] = "0123456789abcdef";
  std::memcpy(buf, "ip:", 3);
  for (int i = 0; i < 16; ++i) buf[3 + i] = kHex[(v >> (60 - 4 * i)) & 15];
  buf[19] = '!';
  return std::string_view(buf, 20);
}

// Whether the polluted cases wait for the pollution to finish before a decision and for the
// decision before the next pollution (lfence), as a call does that sits in the middle of a
// JS dependency chain; without it the core overlaps the table's misses with the
// pollution's, which hides them (--overlap).
bool g_serialize = true;

inline void Fence() {
#if defined(__x86_64__) || defined(__i386__)
  if (g_serialize) __builtin_ia32_lfence();
#else
  if (g_serialize) __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

uint64_t g_sink = 0;       // keeps results alive
double g_baseline_ns = 0;  // the pollution alone, per decision, in the last round

double BusyRound(bool polluted, size_t decisions) {
  static std::vector<std::string>* keys = [] {
    if (g_busy_keys % kStride == 0) std::abort();
    auto* k = new std::vector<std::string>();
    char buf[32];
    for (size_t i = 0; i < g_busy_keys; ++i) {
      std::snprintf(buf, sizeof buf, "user:%012zu", i);
      k->emplace_back(buf);
    }
    return k;
  }();
  static Pollution* pollution = new Pollution();
  LocalLimiter l(MakeBucket(1000000, 60000000), 1000000, 1024, 1, 2);
  BucketDecision d;
  for (size_t i = 0; i < g_busy_keys; ++i) l.ConsumeNow((*keys)[i], 1, &NowUs, &d);
  size_t s = 0;
  // The pollution alone, with the same loop around it, is the baseline; it alternates with
  // the measured loop in short chunks so that drift hits both alike.
  double base = 0, total = 0;
  const size_t chunk = polluted ? 50000 : decisions;
  for (size_t done = 0; done < decisions; done += chunk) {
    if (polluted) {
      size_t t = s;
      const double t0 = Seconds();
      for (size_t i = 0; i < chunk; ++i) {
        pollution->Touch();
        Fence();
        g_sink += static_cast<uint64_t>(NowUs());
        t = (t + kStride) % g_busy_keys;
        g_sink += (*keys)[t].size();
        Fence();
      }
      base += Seconds() - t0;
    }
    const double t0 = Seconds();
    for (size_t i = 0; i < chunk; ++i) {
      if (polluted) {
        pollution->Touch();
        Fence();
      }
      s = (s + kStride) % g_busy_keys;
      l.ConsumeNow((*keys)[s], 1, &NowUs, &d);
      g_sink += static_cast<uint64_t>(d.remaining);
      if (polluted) Fence();
    }
    total += Seconds() - t0;
  }
  g_sink += pollution->checksum();
  if (l.size() != g_busy_keys) std::abort();
  g_baseline_ns = base * 1e9 / static_cast<double>(decisions);
  return (total - base) * 1e9 / static_cast<double>(decisions);
}

double FloodRound(bool polluted, size_t decisions) {
  static Pollution* pollution = new Pollution();
  // 5 tokens per 10 minutes: no bucket becomes idle during the run, so every new key
  // evicts one that still owes tokens.
  LocalLimiter l(MakeBucket(5, 600000000), kCap, 1024, 3, 4);
  Random rng{0x0123456789ABCDEFULL ^ static_cast<uint64_t>(NowUs())};
  char buf[32];
  BucketDecision d;
  for (size_t i = 0; i < 3 * kCap; ++i) l.ConsumeNow(HexKey(rng.Next(), buf), 1, &NowUs, &d);
  const uint64_t evicted_before = l.stats().evicted;
  double base = 0, total = 0;
  const size_t chunk = polluted ? 50000 : decisions;
  for (size_t done = 0; done < decisions; done += chunk) {
    if (polluted) {
      Random other{rng.s ^ 0x5555};
      const double t0 = Seconds();
      for (size_t i = 0; i < chunk; ++i) {
        pollution->Touch();
        Fence();
        g_sink += static_cast<uint64_t>(NowUs());
        g_sink += static_cast<unsigned char>(HexKey(other.Next(), buf)[5]);
        Fence();
      }
      base += Seconds() - t0;
    }
    const double t0 = Seconds();
    for (size_t i = 0; i < chunk; ++i) {
      if (polluted) {
        pollution->Touch();
        Fence();
      }
      l.ConsumeNow(HexKey(rng.Next(), buf), 1, &NowUs, &d);
      g_sink += static_cast<uint64_t>(d.remaining);
      if (polluted) Fence();
    }
    total += Seconds() - t0;
  }
  g_sink += pollution->checksum();
  if (l.size() != kCap || l.stats().evicted - evicted_before != decisions) {
    std::fprintf(stderr, "flood: %zu entries, %llu evicted\n", l.size(),
                 static_cast<unsigned long long>(l.stats().evicted - evicted_before));
    std::abort();
  }
  g_baseline_ns = base * 1e9 / static_cast<double>(decisions);
  return (total - base) * 1e9 / static_cast<double>(decisions);
}

double MillionRound(size_t /*decisions*/) {
  LocalLimiter l(MakeBucket(5, 600000000), kCap, 1024, 5, 6);
  std::string key;
  BucketDecision d;
  size_t largest = 0;
  const double t0 = Seconds();
  for (int i = 0; i < 1000000; ++i) {
    key = "203.0.113.";
    key += std::to_string(i);
    l.Consume(key, 1, i, &d);
    largest = std::max(largest, l.size());
    if (!d.allowed) std::abort();
  }
  const double total = Seconds() - t0;
  if (largest > kCap || l.size() != kCap || l.stats().evicted != 1000000 - kCap) {
    std::fprintf(stderr, "million: largest %zu, evicted %llu\n", largest,
                 static_cast<unsigned long long>(l.stats().evicted));
    std::abort();
  }
  return total * 1e9 / 1e6;
}

struct Case {
  const char* name;
  double (*round)(size_t decisions);
  size_t decisions;
};

const Case kCases[] = {
    {"busy-polluted", [](size_t n) { return BusyRound(true, n); }, 2000000},
    {"busy", [](size_t n) { return BusyRound(false, n); }, 5000000},
    {"flood", [](size_t n) { return FloodRound(false, n); }, 1000000},
    {"flood-polluted", [](size_t n) { return FloodRound(true, n); }, 1000000},
    {"million", MillionRound, 1000000},
};

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  std::vector<const Case*> chosen;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--keys") == 0 && i + 1 < argc) {
      g_busy_keys = static_cast<size_t>(std::max(1, std::atoi(argv[++i])));
      continue;
    }
    if (std::strcmp(argv[i], "--overlap") == 0) {
      g_serialize = false;
      continue;
    }
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
      continue;
    }
    const Case* found = nullptr;
    for (const Case& c : kCases) {
      if (std::strcmp(argv[i], c.name) == 0) found = &c;
    }
    if (found == nullptr) {
      std::fprintf(stderr, "unknown case %s\n", argv[i]);
      return 2;
    }
    chosen.push_back(found);
  }
  if (chosen.empty()) {
    for (const Case& c : kCases) chosen.push_back(&c);
  }
  for (const Case* c : chosen) {
    std::vector<double> ns, baseline;
    for (int r = 0; r < rounds; ++r) {
      g_baseline_ns = 0;
      ns.push_back(c->round(c->decisions));
      baseline.push_back(g_baseline_ns);
    }
    std::sort(baseline.begin(), baseline.end());
    std::vector<double> sorted = ns;
    std::sort(sorted.begin(), sorted.end());
    std::printf("%-15s median %7.1f ns  (min %.1f, max %.1f; pollution alone %.1f ns)\n", c->name,
                sorted[sorted.size() / 2], sorted.front(), sorted.back(),
                baseline[baseline.size() / 2]);
    std::fflush(stdout);
  }
  return g_sink == 42 ? 1 : 0;
}
