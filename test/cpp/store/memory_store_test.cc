// Unit tests of the embedded store: values, TTL on a controlled clock, LRU bounds, prefix
// deletion, sweeping and the bucket table under churn.
#include "store/memory_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <string_view>

namespace hirecache {
namespace {

using namespace std::string_view_literals;

MemoryStore::Options Bounds(uint32_t max_entries, uint64_t max_bytes = uint64_t{1} << 30,
                            uint32_t sweep_per_write = 0) {
  MemoryStore::Options o;
  o.max_entries = max_entries;
  o.max_bytes = max_bytes;
  o.sweep_per_write = sweep_per_write;
  return o;
}

// Returns the value stored under `key`, or "<miss>" (distinct from every value used here).
std::string Read(MemoryStore& store, std::string_view key, uint64_t now = 1000) {
  std::string_view v;
  if (!store.Get(key, now, &v)) return "<miss>";
  return std::string(v);
}

TEST(MemoryStoreTest, SetGetOverwrite) {
  MemoryStore store(Bounds(100));
  EXPECT_EQ(Read(store, "a"), "<miss>");
  ASSERT_EQ(store.Set("a", "one", 0, 1000), MemoryStore::SetResult::kStored);
  EXPECT_EQ(Read(store, "a"), "one");

  // Overwrites with a longer, an equal-length and a shorter value.
  ASSERT_EQ(store.Set("a", "three-three", 0, 1000), MemoryStore::SetResult::kStored);
  EXPECT_EQ(Read(store, "a"), "three-three");
  ASSERT_EQ(store.Set("a", "THREE-THREE", 0, 1000), MemoryStore::SetResult::kStored);
  EXPECT_EQ(Read(store, "a"), "THREE-THREE");
  ASSERT_EQ(store.Set("a", "2", 0, 1000), MemoryStore::SetResult::kStored);
  EXPECT_EQ(Read(store, "a"), "2");
  EXPECT_EQ(store.size(), 1u);
}

TEST(MemoryStoreTest, BinaryKeysAndValuesAndEmptyValue) {
  MemoryStore store(Bounds(100));
  const std::string key1("k\0x"sv);
  const std::string key2("k\0y"sv);
  const std::string value("\0\r\n\xff\xfe bin \r\n\0"sv);
  ASSERT_EQ(store.Set(key1, value, 0, 1000), MemoryStore::SetResult::kStored);
  ASSERT_EQ(store.Set(key2, "other", 0, 1000), MemoryStore::SetResult::kStored);
  ASSERT_EQ(store.Set("k", "", 0, 1000), MemoryStore::SetResult::kStored);
  ASSERT_EQ(store.Set("", "empty key", 0, 1000), MemoryStore::SetResult::kStored);

  EXPECT_EQ(Read(store, key1), value);
  EXPECT_EQ(Read(store, key2), "other");
  EXPECT_EQ(Read(store, "k"), "");  // An empty value is a hit, not a miss.
  EXPECT_EQ(Read(store, ""), "empty key");
  EXPECT_EQ(Read(store, "k\0"sv), "<miss>");
  EXPECT_EQ(store.size(), 4u);
}

TEST(MemoryStoreTest, TtlExpiresOnTheCallersClock) {
  MemoryStore store(Bounds(100));
  ASSERT_EQ(store.Set("short", "v", 50, 1000), MemoryStore::SetResult::kStored);
  ASSERT_EQ(store.Set("forever", "v", 0, 1000), MemoryStore::SetResult::kStored);

  EXPECT_EQ(Read(store, "short", 1049), "v");
  EXPECT_EQ(Read(store, "short", 1050), "<miss>");
  EXPECT_EQ(store.size(), 1u);  // Removed by the lookup itself.
  EXPECT_EQ(store.GetStats().expired, 1u);
  EXPECT_EQ(Read(store, "forever", uint64_t{1} << 60), "v");

  // Overwriting replaces the TTL, both ways.
  ASSERT_EQ(store.Set("k", "v", 10, 2000), MemoryStore::SetResult::kStored);
  ASSERT_EQ(store.Set("k", "v", 0, 2000), MemoryStore::SetResult::kStored);
  EXPECT_EQ(Read(store, "k", 5000), "v");
  ASSERT_EQ(store.Set("k", "v", 10, 5000), MemoryStore::SetResult::kStored);
  EXPECT_EQ(Read(store, "k", 5010), "<miss>");

  // A TTL that would overflow the clock saturates instead of wrapping into the past.
  ASSERT_EQ(store.Set("huge", "v", UINT64_MAX - 5, 1000), MemoryStore::SetResult::kStored);
  EXPECT_EQ(Read(store, "huge", UINT64_MAX - 1), "v");
}

TEST(MemoryStoreTest, DeleteReportsOnlyLiveEntries) {
  MemoryStore store(Bounds(100));
  store.Set("live", "v", 0, 1000);
  store.Set("dying", "v", 10, 1000);
  EXPECT_TRUE(store.Delete("live", 1000));
  EXPECT_FALSE(store.Delete("live", 1000));
  EXPECT_FALSE(store.Delete("dying", 2000));  // Expired: already gone as far as callers know.
  EXPECT_FALSE(store.Delete("never", 1000));
  EXPECT_EQ(store.size(), 0u);
}

TEST(MemoryStoreTest, EvictsLeastRecentlyUsedByCount) {
  MemoryStore store(Bounds(3));
  store.Set("a", "1", 0, 1000);
  store.Set("b", "2", 0, 1000);
  store.Set("c", "3", 0, 1000);
  EXPECT_EQ(Read(store, "a"), "1");  // A read makes "a" the most recently used...
  store.Set("d", "4", 0, 1000);      // ...so "b" is the one to go.
  EXPECT_EQ(Read(store, "b"), "<miss>");
  EXPECT_EQ(Read(store, "a"), "1");
  EXPECT_EQ(Read(store, "c"), "3");
  EXPECT_EQ(Read(store, "d"), "4");
  EXPECT_EQ(store.GetStats().evictions, 1u);

  // Overwriting refreshes recency as well: now "a" then "c" are the oldest two.
  store.Set("d", "44", 0, 1000);
  store.Set("e", "5", 0, 1000);
  store.Set("f", "6", 0, 1000);
  EXPECT_EQ(Read(store, "a"), "<miss>");
  EXPECT_EQ(Read(store, "c"), "<miss>");
  EXPECT_EQ(Read(store, "d"), "44");
  EXPECT_EQ(store.size(), 3u);
}

// Values over 4 KiB take a block of their own size, so the bytes each entry adds are exact;
// an unbounded twin store tells how many bytes three and four such entries make. Both are
// bounded to 10 entries, so that their bucket tables are the same size.
TEST(MemoryStoreTest, EvictsLeastRecentlyUsedByBytes) {
  const std::string big(5000, 'x');
  MemoryStore twin(Bounds(10));
  twin.Set("a", big, 0, 1000);
  twin.Set("b", big, 0, 1000);
  twin.Set("c", big, 0, 1000);
  const uint64_t three = twin.bytes();
  twin.Set("d", big, 0, 1000);
  const uint64_t four = twin.bytes();
  ASSERT_GT(four, three);

  // Room for three such entries, not four.
  MemoryStore store(Bounds(10, four - 1));
  store.Set("a", std::string(5000, 'a'), 0, 1000);
  store.Set("b", std::string(5000, 'b'), 0, 1000);
  store.Set("c", std::string(5000, 'c'), 0, 1000);
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.bytes(), three);
  EXPECT_EQ(Read(store, "a"), std::string(5000, 'a'));

  // A fourth pushes out the least recently used ("b"), then one twice the size also "c".
  store.Set("d", std::string(5000, 'd'), 0, 1000);
  EXPECT_EQ(Read(store, "b"), "<miss>");
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.GetStats().evictions, 1u);
  store.Set("e", std::string(9000, 'e'), 0, 1000);
  EXPECT_EQ(Read(store, "c"), "<miss>");
  EXPECT_EQ(Read(store, "a"), std::string(5000, 'a'));
  EXPECT_EQ(Read(store, "e"), std::string(9000, 'e'));
  EXPECT_LE(store.bytes(), four - 1);
  EXPECT_EQ(store.GetStats().evictions, 2u);

  // Growing an existing value also evicts others, never the entry being written.
  store.Set("a", std::string(10000, 'A'), 0, 1000);
  EXPECT_EQ(Read(store, "a"), std::string(10000, 'A'));
  EXPECT_EQ(Read(store, "d"), "<miss>");
  EXPECT_LE(store.bytes(), four - 1);
}

TEST(MemoryStoreTest, EvictionCountsExpiredEntriesAsExpired) {
  MemoryStore store(Bounds(2));
  store.Set("old", "v", 10, 1000);
  store.Set("mid", "v", 0, 1000);
  store.Set("new", "v", 0, 2000);  // "old" is both the oldest and expired.
  const MemoryStore::Stats stats = store.GetStats();
  EXPECT_EQ(stats.evictions, 0u);
  EXPECT_EQ(stats.expired, 1u);
}

TEST(MemoryStoreTest, OversizedEntryIsRefusedAndDropsTheOldValue) {
  const uint64_t max_bytes = MemoryStore::kMinBytes;
  MemoryStore store(Bounds(100, max_bytes));
  store.Set("other", "x", 0, 1000);
  store.Set("k", "small", 0, 1000);
  EXPECT_EQ(store.Set("k", std::string(max_bytes, 'x'), 0, 1000),
            MemoryStore::SetResult::kTooLarge);
  EXPECT_EQ(Read(store, "k"), "<miss>");  // No stale value survives a refused write.
  EXPECT_EQ(Read(store, "other"), "x");   // Nothing else was evicted for it.
  EXPECT_EQ(store.GetStats().evictions, 0u);

  // The largest value that fits: what the bound leaves once every other entry is gone.
  // Each refused attempt leaves the other entry in place.
  size_t fits = max_bytes;
  while (store.Set("k", std::string(fits, 'x'), 0, 1000) != MemoryStore::SetResult::kStored) {
    ASSERT_EQ(Read(store, "other"), "x");
    fits -= 8;
  }
  EXPECT_GT(fits, max_bytes / 2);
  EXPECT_LE(store.bytes(), max_bytes);
  EXPECT_EQ(Read(store, "other"), "<miss>");  // This one did need the room.
  EXPECT_EQ(Read(store, "k"), std::string(fits, 'x'));
}

TEST(MemoryStoreTest, DeletePrefixIsLiteral) {
  MemoryStore store(Bounds(100));
  const std::string_view doomed[] = {"a*", "a*b", "a*\0x"sv};
  const std::string_view kept[] = {"a", "ab", "a?", "a[", "b*", "A*", "", "xa*", "a\\*", "\0a*"sv};
  for (std::string_view k : doomed) store.Set(k, "v", 0, 1000);
  for (std::string_view k : kept) store.Set(k, "v", 0, 1000);
  store.Set("a*expired", "v", 5, 1000);

  EXPECT_EQ(store.DeletePrefix("a*", 2000), 3u);
  for (std::string_view k : doomed) EXPECT_EQ(Read(store, k, 2000), "<miss>") << k;
  for (std::string_view k : kept) EXPECT_EQ(Read(store, k, 2000), "v") << k;
  EXPECT_EQ(store.GetStats().expired, 1u);
  EXPECT_EQ(store.size(), std::size(kept));

  EXPECT_EQ(store.DeletePrefix("nothing-matches", 2000), 0u);
  EXPECT_EQ(store.DeletePrefix("", 2000), std::size(kept));  // The store lets JS decide.
  EXPECT_EQ(store.size(), 0u);
}

TEST(MemoryStoreTest, DeletePrefixInStepsMatchesOnePass) {
  MemoryStore stepped(Bounds(10000));
  MemoryStore whole(Bounds(10000));
  for (int i = 0; i < 1000; ++i) {
    const std::string key = (i % 3 == 0 ? "p:" : "q:") + std::to_string(i);
    stepped.Set(key, "v", 0, 1000);
    whole.Set(key, "v", 0, 1000);
  }
  size_t cursor = 0;
  size_t removed = 0;
  int steps = 0;
  do {
    const size_t before = cursor;
    removed += stepped.DeletePrefixStep("p:", 1000, &cursor, 64);
    EXPECT_TRUE(cursor == 0 || cursor == before + 64);
    ++steps;
  } while (cursor != 0);
  EXPECT_EQ(steps, 16);  // 1000 slots, 64 at a time.
  EXPECT_EQ(removed, whole.DeletePrefix("p:", 1000));
  EXPECT_EQ(removed, 334u);
  EXPECT_EQ(stepped.size(), whole.size());
  EXPECT_EQ(Read(stepped, "q:1"), "v");
  EXPECT_EQ(Read(stepped, "p:3"), "<miss>");
}

TEST(MemoryStoreTest, SweepHonoursItsBudgetAndReclaimsExpiredEntries) {
  MemoryStore store(Bounds(1000));
  for (int i = 0; i < 100; ++i) {
    store.Set("k" + std::to_string(i), "v", i % 2 == 0 ? 10 : 0, 1000);
  }
  // Before anything expires a sweep finds nothing.
  EXPECT_EQ(store.Sweep(1005, 100), 0u);

  // Each call examines at most `budget` slots: 10 slots hold 5 expired entries.
  EXPECT_EQ(store.Sweep(2000, 10), 5u);
  EXPECT_EQ(store.size(), 95u);
  EXPECT_EQ(store.Sweep(2000, 0), 0u);
  size_t total = 5;
  for (int call = 0; call < 9; ++call) {
    const size_t removed = store.Sweep(2000, 10);
    EXPECT_LE(removed, 10u);
    total += removed;
  }
  EXPECT_EQ(total, 50u);
  EXPECT_EQ(store.size(), 50u);
  EXPECT_EQ(store.GetStats().expired, 50u);
  // The cursor wraps around; a full pass finds nothing more to do.
  EXPECT_EQ(store.Sweep(2000, 1000), 0u);
  for (int i = 1; i < 100; i += 2) EXPECT_EQ(Read(store, "k" + std::to_string(i), 2000), "v");

  // The store keeps working over the freed slots.
  for (int i = 0; i < 50; ++i) store.Set("n" + std::to_string(i), "v", 0, 2000);
  EXPECT_EQ(store.size(), 100u);
}

TEST(MemoryStoreTest, WritesSweepALittle) {
  MemoryStore store(Bounds(1000, uint64_t{1} << 30, /*sweep_per_write=*/4));
  for (int i = 0; i < 20; ++i) store.Set("k" + std::to_string(i), "v", 10, 1000);
  EXPECT_EQ(store.size(), 20u);
  EXPECT_EQ(store.GetStats().expired, 0u);

  // One write examines 4 slots, one of which may hold the entry just written.
  store.Set("w0", "v", 0, 5000);
  const uint64_t after_one = store.GetStats().expired;
  EXPECT_GE(after_one, 3u);
  EXPECT_LE(after_one, 4u);

  // Ten more writes examine 40 consecutive slots, more than the array holds.
  for (int i = 1; i <= 10; ++i) store.Set("w" + std::to_string(i), "v", 0, 5000);
  EXPECT_EQ(store.size(), 11u);
  EXPECT_EQ(store.GetStats().expired, 20u);
}

TEST(MemoryStoreTest, StatsCountHitsMissesAndBounds) {
  MemoryStore store(Bounds(2, MemoryStore::kMinBytes));
  store.Set("a", "1", 0, 1000);
  Read(store, "a");
  Read(store, "a");
  Read(store, "zz");
  store.Set("b", "2", 0, 1000);
  store.Set("c", "3", 0, 1000);
  const MemoryStore::Stats s = store.GetStats();
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.bytes, store.bytes());
  EXPECT_LE(s.bytes, MemoryStore::kMinBytes);
  EXPECT_EQ(s.max_entries, 2u);
  EXPECT_EQ(s.max_bytes, MemoryStore::kMinBytes);
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.expired, 0u);

  const uint64_t held = store.bytes();
  store.Clear();
  EXPECT_EQ(store.size(), 0u);
  EXPECT_LT(store.bytes(), held);  // The arena and the slots are gone.
  EXPECT_EQ(Read(store, "b"), "<miss>");
  store.Set("again", "v", 0, 1000);  // Usable after Clear().
  EXPECT_EQ(Read(store, "again"), "v");
}

TEST(MemoryStoreTest, ExpiryOffsetsSurviveMonthsOfUptime) {
  MemoryStore store(Bounds(1000));
  const uint64_t day = 24ull * 3600 * 1000;
  uint64_t now = 1000;
  store.Set("far", "v", 400 * day, now);   // Beyond 32 bits of milliseconds.
  store.Set("month", "v", 30 * day, now);  // Fits, but outlives the first rebase.
  store.Set("never", "v", 0, now);
  // Writes over 60 days move the base forward several times.
  for (int d = 1; d <= 60; ++d) {
    now = 1000 + d * day;
    store.Set("tick", std::to_string(d), 2 * day, now);
    store.Sweep(now, 10);
    EXPECT_EQ(Read(store, "never", now), "v");
    EXPECT_EQ(Read(store, "far", now), "v");
    if (d < 30) {
      EXPECT_EQ(Read(store, "month", now), "v") << d;
    }
  }
  EXPECT_EQ(Read(store, "month", now), "<miss>");
  EXPECT_EQ(Read(store, "tick", now), "60");
  // Just before and at the far entry's expiry, after many more rebases.
  for (uint64_t t = now; t < 1000 + 400 * day; t += 10 * day) store.Sweep(t, 10);
  EXPECT_EQ(Read(store, "far", 1000 + 400 * day - 1), "v");
  EXPECT_EQ(Read(store, "far", 1000 + 400 * day), "<miss>");
  EXPECT_EQ(Read(store, "never", 1000 + 500 * day), "v");
}

TEST(MemoryStoreTest, FarExpiryIsDroppedWithItsEntry) {
  MemoryStore store(Bounds(2));
  const uint64_t year = 365ull * 24 * 3600 * 1000;
  store.Set("a", "v", 5 * year, 1000);
  store.Set("a", "v", 10, 1000);  // Overwritten with a near expiry.
  EXPECT_EQ(Read(store, "a", 1010), "<miss>");
  store.Set("b", "v", 5 * year, 1000);
  store.Set("c", "v", 5 * year, 1000);
  store.Set("d", "v", 5 * year, 1000);  // Evicts "b"; its slot is reused by "d".
  EXPECT_EQ(Read(store, "b", 2000), "<miss>");
  EXPECT_EQ(Read(store, "d", 5 * year), "v");
  EXPECT_EQ(Read(store, "d", 5 * year + 1000), "<miss>");
}

TEST(MemoryStoreTest, ValuesOfEverySizeClass) {
  MemoryStore store(Bounds(1000));
  // Sizes around the arena's class boundaries, and past its largest class (malloc'd).
  const size_t sizes[] = {0,    1,    7,    8,    9,    100,   1015, 1016, 1017,
                          1100, 4087, 4088, 4089, 5000, 70000, 3,    2000, 0};
  std::string previous;
  for (size_t i = 0; i < std::size(sizes); ++i) {
    const std::string value(sizes[i], static_cast<char>('a' + i));
    ASSERT_EQ(store.Set("moving", value, 0, 1000), MemoryStore::SetResult::kStored);
    ASSERT_EQ(store.Set("k" + std::to_string(i), value, 0, 1000), MemoryStore::SetResult::kStored);
    EXPECT_EQ(Read(store, "moving"), value) << sizes[i];
  }
  for (size_t i = 0; i < std::size(sizes); ++i) {
    EXPECT_EQ(Read(store, "k" + std::to_string(i)),
              std::string(sizes[i], static_cast<char>('a' + i)));
  }
  // The large blocks go back to the system with their entries, the pages are kept empty.
  const uint64_t held = store.bytes();
  for (size_t i = 0; i < std::size(sizes); ++i) store.Delete("k" + std::to_string(i), 1000);
  store.Delete("moving", 1000);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_LE(store.bytes(), held - 70000 - 5000 - 2 * 4089);
}

TEST(MemoryStoreTest, RecordsWhetherAValueIsAscii) {
  MemoryStore store(Bounds(10));
  store.Set("a", "plain text, all ASCII", 0, 1000);
  store.Set("u", "caf\xc3\xa9", 0, 1000);
  store.Set("e", "", 0, 1000);
  std::string_view v;
  bool ascii = false;
  ASSERT_TRUE(store.Get("a", 1000, &v, &ascii));
  EXPECT_TRUE(ascii);
  ASSERT_TRUE(store.Get("u", 1000, &v, &ascii));
  EXPECT_FALSE(ascii);
  store.Set("u", "now ascii", 0, 1000);
  ASSERT_TRUE(store.Get("u", 1000, &v, &ascii));
  EXPECT_TRUE(ascii);
  ASSERT_TRUE(store.Get("e", 1000, &v, &ascii));
  EXPECT_TRUE(ascii);
}

// The layout promises about 152 bytes per entry for 20-byte keys and 100-byte values
// (120 of them payload); the bound here leaves room for the slot array's growth step.
TEST(MemoryStoreTest, FootprintStaysCompact) {
  const size_t n = 100000;
  MemoryStore store(Bounds(n, uint64_t{1} << 40));
  char key[21];
  const std::string value(100, 'v');
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(key, sizeof key, "key:%016zu", i);
    ASSERT_EQ(store.Set(std::string_view(key, 20), value, 60000, 1000),
              MemoryStore::SetResult::kStored);
  }
  EXPECT_LE(store.footprint(), n * 165);
  // Clear() gives back everything but the bucket table sized for the bounds.
  const size_t full = store.footprint();
  store.Clear();
  EXPECT_LT(store.footprint(), full / 10);
}

// Random operations against std::map as the model, enough of them to grow the bucket
// table several times and shift long probe runs on deletion.
TEST(MemoryStoreTest, MatchesAModelUnderChurn) {
  MemoryStore store(Bounds(100000));
  std::map<std::string, std::string> model;
  std::mt19937 rng(12345);
  for (int op = 0; op < 200000; ++op) {
    const std::string key = "key:" + std::to_string(rng() % 5000);
    switch (rng() % 4) {
      case 0:
      case 1: {
        const std::string value(rng() % 40, static_cast<char>('a' + rng() % 26));
        ASSERT_EQ(store.Set(key, value, 0, 1000), MemoryStore::SetResult::kStored);
        model[key] = value;
        break;
      }
      case 2: {
        const auto it = model.find(key);
        ASSERT_EQ(Read(store, key), it == model.end() ? "<miss>" : it->second) << key;
        break;
      }
      case 3:
        ASSERT_EQ(store.Delete(key, 1000), model.erase(key) == 1) << key;
        break;
    }
  }
  ASSERT_EQ(store.size(), model.size());
  for (const auto& [key, value] : model) ASSERT_EQ(Read(store, key), value) << key;
  EXPECT_EQ(store.DeletePrefix("key:1", 1000),
            static_cast<size_t>(std::count_if(model.begin(), model.end(), [](const auto& kv) {
              return kv.first.rfind("key:1", 0) == 0;
            })));
}

TEST(MemoryStoreTest, ManyEntriesAtTheCountBound) {
  MemoryStore store(Bounds(10000));
  for (int i = 0; i < 50000; ++i) {
    ASSERT_EQ(store.Set("k" + std::to_string(i), std::to_string(i), 0, 1000),
              MemoryStore::SetResult::kStored);
  }
  EXPECT_EQ(store.size(), 10000u);
  EXPECT_EQ(store.GetStats().evictions, 40000u);
  EXPECT_EQ(Read(store, "k39999"), "<miss>");
  EXPECT_EQ(Read(store, "k40000"), "40000");
  EXPECT_EQ(Read(store, "k49999"), "49999");
}

}  // namespace
}  // namespace hirecache
