// The byte bound of the embedded store covers the memory the store holds (its arena pages,
// large blocks, slots and buckets), not only the bytes of its keys and values: a workload
// that leaves a few entries alive on many pages must not make the store hold more than
// max_bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <string_view>

#include <unistd.h>

#include "store/memory_store.h"

namespace hirecache {
namespace {

MemoryStore::Options Bounds(uint32_t max_entries, uint64_t max_bytes) {
  MemoryStore::Options o;
  o.max_entries = max_entries;
  o.max_bytes = max_bytes;
  o.sweep_per_write = 0;
  return o;
}

// The process's resident memory, read from the kernel: a measure of what the store holds
// that does not come from the store's own accounting.
uint64_t ResidentBytes() {
  unsigned long long size = 0;
  unsigned long long resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// AddressSanitizer keeps freed memory in quarantine and maps shadow memory: resident memory
// says nothing about the store there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kResidentIsMeaningful = false;
#else
constexpr bool kResidentIsMeaningful = true;
#endif

std::string_view KeyOf(char (&buf)[32], uint64_t id) {
  const int n = std::snprintf(buf, sizeof buf, "key:%llu", static_cast<unsigned long long>(id));
  return std::string_view(buf, static_cast<size_t>(n));
}

// Rounds of inserts at a new value size each round (so a new size class of the arena),
// deleting 15 of every 16: each round leaves one live entry on most of the pages it filled.
TEST(MemoryStoreBoundTest, SparsePagesOfOldSizesStayWithinTheBound) {
  const uint64_t max_bytes = uint64_t{8} << 20;
  const uint64_t resident_before = ResidentBytes();
  MemoryStore store(Bounds(1000000, max_bytes));
  char key[32];
  uint64_t id = 0;
  size_t most = 0;
  for (int round = 0; round < 40; ++round) {
    const std::string value(600 + 8 * round, 'v');
    const uint64_t first = id;
    for (int i = 0; i < 5000; ++i) {
      ASSERT_EQ(store.Set(KeyOf(key, id++), value, 0, 1000), MemoryStore::SetResult::kStored);
      most = std::max(most, store.footprint());
    }
    for (uint64_t i = first; i < id; ++i) {
      if (i % 16 != 0) store.Delete(KeyOf(key, i), 1000);
    }
    EXPECT_LE(store.footprint(), max_bytes) << "round " << round;
  }
  EXPECT_LE(most, max_bytes);
  EXPECT_LE(store.GetStats().bytes, max_bytes);
  // The survivors of the latest round are still there, and readable.
  std::string_view v;
  for (uint64_t i = (id - 5000 + 15) / 16 * 16; i < id; i += 16) {
    ASSERT_TRUE(store.Get(KeyOf(key, i), 1000, &v)) << i;
    EXPECT_EQ(v, std::string(600 + 8 * 39, 'v'));
  }
  // Emptying pages by compaction, not only by evicting, is what kept the bound.
  EXPECT_GT(store.GetStats().compactions, 0u);
  // And the kernel agrees: the process holds about the bound more than before, not the
  // ~40 MB that one live entry per page of every round would pin (2 MiB of slack for the
  // allocator and the test's own strings).
  if (kResidentIsMeaningful) {
    EXPECT_LE(ResidentBytes() - std::min(resident_before, ResidentBytes()),
              max_bytes + (uint64_t{2} << 20));
  }
}

// Many distinct keys through a store bounded by bytes: what it holds settles within the
// bound, values of 1 KiB included (their blocks take a coarser size class than the bytes).
TEST(MemoryStoreBoundTest, ADistinctKeyFloodSettlesWithinTheBound) {
  const uint64_t max_bytes = uint64_t{4} << 20;
  MemoryStore store(Bounds(100000, max_bytes));
  char key[32];
  const std::string value(1024, 'x');
  size_t most = 0;
  for (uint64_t i = 0; i < 40000; ++i) {
    ASSERT_EQ(store.Set(KeyOf(key, i), value, 3600000, 1000), MemoryStore::SetResult::kStored);
    most = std::max(most, store.footprint());
  }
  EXPECT_LE(most, max_bytes);
  // Most of the bound still holds entries: a 1 KiB value takes a block of 1152 bytes, a
  // slot 16, and the bucket table (sized for 4 MiB / 128 entries) 256 KiB of the 4 MiB.
  EXPECT_GT(store.size() * (1152 + 16), (max_bytes - (uint64_t{256} << 10)) * 9 / 10);
}

// Deleting most entries leaves their pages sparse; the periodic sweep compacts them, so the
// memory goes back without any write.
TEST(MemoryStoreBoundTest, SweepsGiveBackTheMemoryOfDeletedEntries) {
  MemoryStore store(Bounds(1000000, uint64_t{64} << 20));
  char key[32];
  const std::string value(500, 'v');
  for (uint64_t i = 0; i < 50000; ++i) store.Set(KeyOf(key, i), value, 0, 1000);
  const size_t full = store.bytes();
  for (uint64_t i = 0; i < 50000; ++i) {
    if (i % 16 != 0) store.Delete(KeyOf(key, i), 1000);
  }
  EXPECT_GT(store.bytes(), full * 9 / 10);  // Every page still has a live entry.
  for (int tick = 0; tick < 200; ++tick) store.Sweep(1000, 1024);
  // The 3125 survivors fill about 101 pages of the 1613 there were. What stays is those, up
  // to an eighth more, the 64 kept pages, the slots and the 4 MiB bucket table.
  EXPECT_GT(store.GetStats().compactions, 1300u);
  EXPECT_LT(store.bytes(), full / 3);
  std::string_view v;
  for (uint64_t i = 0; i < 50000; i += 16) ASSERT_TRUE(store.Get(KeyOf(key, i), 1000, &v)) << i;
}

// Random writes of changing sizes and deletions in a small store: every entry the store
// still has holds its latest value, whatever compaction moved, and the bound holds after
// every call.
TEST(MemoryStoreBoundTest, CompactionKeepsEveryEntryIntact) {
  const uint64_t max_bytes = uint64_t{512} << 10;
  MemoryStore store(Bounds(100000, max_bytes));
  std::map<std::string, std::string> model;
  std::mt19937 rng(2024);
  for (int op = 0; op < 100000; ++op) {
    const std::string key = "k" + std::to_string(rng() % 3000);
    // Sizes drift over time, so old size classes are left sparse.
    const size_t size = (op / 10000) * 90 + rng() % 200;
    if (rng() % 3 != 0) {
      const std::string value(size, static_cast<char>('a' + rng() % 26));
      ASSERT_EQ(store.Set(key, value, 0, 1000), MemoryStore::SetResult::kStored);
      model[key] = value;
    } else {
      store.Delete(key, 1000);
      model.erase(key);
    }
    ASSERT_LE(store.bytes(), max_bytes) << op;
    if (op % 10000 == 9999) {
      size_t present = 0;
      for (auto it = model.begin(); it != model.end();) {
        std::string_view v;
        if (store.Get(it->first, 1000, &v)) {
          ASSERT_EQ(v, it->second) << it->first;
          ++present;
          ++it;
        } else {
          it = model.erase(it);  // Evicted.
        }
      }
      ASSERT_EQ(present, store.size());
    }
  }
  EXPECT_GT(store.GetStats().compactions, 0u);
}

}  // namespace
}  // namespace hirecache
