// ReplyReader and ProtocolGuard: replies parse whatever the chunking, hostile headers fail
// at once without allocating by them, and the cost is linear in the bytes received.
#include "client/reply_reader.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <malloc.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace hirecache {
namespace {

// Feeds `bytes` in chunks of `chunk` and returns the replies' types (or -1 at an error).
std::vector<int> Parse(ReplyReader& r, const std::string& bytes, size_t chunk) {
  std::vector<int> types;
  for (size_t at = 0; at < bytes.size(); at += chunk) {
    if (!r.Feed(bytes.data() + at, std::min(chunk, bytes.size() - at))) {
      types.push_back(-1);
      return types;
    }
    while (redisReply* reply = r.Next()) {
      types.push_back(reply->type);
      FreeReply(reply);
    }
    if (r.failed()) {
      types.push_back(-1);
      return types;
    }
  }
  return types;
}

TEST(ReplyReaderTest, ParsesEveryTypeWhateverTheChunking) {
  const std::string bytes =
      "+OK\r\n-ERR bad\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n"
      "*3\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n$-1\r\n";
  for (size_t chunk : {1, 2, 3, 7, 64}) {
    ReplyReader r{ProtocolLimits{}};
    std::vector<int> types = Parse(r, bytes, chunk);
    EXPECT_EQ(types, std::vector<int>({REDIS_REPLY_STATUS, REDIS_REPLY_ERROR, REDIS_REPLY_INTEGER,
                                       REDIS_REPLY_STRING, REDIS_REPLY_NIL, REDIS_REPLY_NIL,
                                       REDIS_REPLY_ARRAY, REDIS_REPLY_STRING, REDIS_REPLY_ARRAY}))
        << "chunk " << chunk;
  }
}

TEST(ReplyReaderTest, ArraysAreBuiltAsTheirElementsArrive) {
  ReplyReader r{ProtocolLimits{}};
  std::string bytes = "*5\r\n";
  for (int i = 0; i < 5; ++i) bytes += "$1\r\n" + std::to_string(i) + "\r\n";
  bytes += "*1\r\n*1\r\n:7\r\n";
  ASSERT_TRUE(r.Feed(bytes.data(), bytes.size()));
  redisReply* a = r.Next();
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(a->elements, 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(std::string(a->element[i]->str), std::to_string(i));
  FreeReply(a);
  redisReply* nested = r.Next();
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->elements, 1u);
  ASSERT_EQ(nested->element[0]->elements, 1u);
  EXPECT_EQ(nested->element[0]->element[0]->integer, 7);
  FreeReply(nested);
}

TEST(ReplyReaderTest, AHugeArrayHeaderFailsAtOnce) {
  ReplyReader r{ProtocolLimits{}};
  std::string bytes = "*2147483647\r\n";
  EXPECT_FALSE(r.Feed(bytes.data(), bytes.size()));
  EXPECT_NE(r.error().find("maxAggregateElements"), std::string::npos) << r.error();
}

// Bytes the C library has handed out (heap and mmap'd blocks). Under AddressSanitizer,
// which replaces malloc, this reads zero and the check below holds trivially.
size_t AllocatedBytes() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

TEST(ReplyReaderTest, AnArrayHeaderAllocatesNothingByItsCount) {
  ProtocolLimits limits;
  limits.max_aggregate_elements = 2147483647;  // let the header through the guard
  ReplyReader r{limits};
  size_t before = AllocatedBytes();
  std::string bytes = "*2147483647\r\n:1\r\n:2\r\n";
  ASSERT_TRUE(r.Feed(bytes.data(), bytes.size()));
  EXPECT_EQ(r.Next(), nullptr);
  EXPECT_FALSE(r.failed());
  // hiredis's own object functions would have reserved 16 GiB of element slots here.
  EXPECT_LT(AllocatedBytes() - std::min(before, AllocatedBytes()), 1u << 20);
}  // Freeing the partial reply visits two elements, not 2^31 slots.

TEST(ReplyReaderTest, ABulkLargerThanTheLimitFailsAtItsHeader) {
  ProtocolLimits limits;
  limits.max_bulk_bytes = 1024;
  ReplyReader r{limits};
  std::string ok = "$1024\r\n" + std::string(1024, 'x') + "\r\n";
  ASSERT_TRUE(r.Feed(ok.data(), ok.size()));
  redisReply* reply = r.Next();
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(reply->len, 1024u);
  FreeReply(reply);
  std::string big = "$1099511627776\r\n";  // 2^40
  EXPECT_FALSE(r.Feed(big.data(), big.size()));
  EXPECT_NE(r.error().find("maxBulkBytes"), std::string::npos) << r.error();
}

TEST(ReplyReaderTest, ALineWithoutEndFailsAtTheLineLimitNotAfterEverything) {
  ProtocolLimits limits;
  limits.max_line_bytes = 4096;
  ReplyReader r{limits};
  std::string start = "+";
  ASSERT_TRUE(r.Feed(start.data(), start.size()));
  std::string chunk(1024, 'a');
  int fed = 0;
  while (r.Feed(chunk.data(), chunk.size())) {
    EXPECT_EQ(r.Next(), nullptr);
    ASSERT_LT(++fed, 10);
  }
  EXPECT_EQ(fed, 3);  // 1 + 3 * 1024 bytes fit in 4096; the fourth KiB does not
  EXPECT_NE(r.error().find("maxLineBytes"), std::string::npos) << r.error();
}

TEST(ReplyReaderTest, NestingDeeperThanTheLimitFails) {
  ProtocolLimits limits;
  limits.max_depth = 3;
  ReplyReader ok{limits};
  std::string three = "*1\r\n*1\r\n*1\r\n:1\r\n";
  EXPECT_EQ(Parse(ok, three, 64), std::vector<int>({REDIS_REPLY_ARRAY}));
  ReplyReader r{limits};
  std::string four = "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n";
  EXPECT_EQ(Parse(r, four, 64), std::vector<int>({-1}));
  EXPECT_NE(r.error().find("maxDepth"), std::string::npos) << r.error();
}

TEST(ReplyReaderTest, MalformedFramingFails) {
  for (std::string bad : {"?what\r\n", "$abc\r\n", "*-5\r\n", "$-2\r\n", "$\r\n", "$1x\r\n"}) {
    ReplyReader r{ProtocolLimits{}};
    EXPECT_EQ(Parse(r, bad, 64), std::vector<int>({-1})) << bad;
  }
}

TEST(ProtocolGuardTest, LargeBulkPayloadsAreSkippedInConstantTimePerChunk) {
  ProtocolGuard guard{ProtocolLimits{}};
  std::string header = "$100000000\r\n";
  ASSERT_TRUE(guard.Check(header.data(), header.size()));
  std::string chunk(1 << 20, 'z');
  for (int i = 0; i < 95; ++i) ASSERT_TRUE(guard.Check(chunk.data(), chunk.size()));
  std::string rest(100000000 - 95 * (1 << 20), 'z');
  rest += "\r\n:1\r\n";
  EXPECT_TRUE(guard.Check(rest.data(), rest.size()));
}

}  // namespace
}  // namespace hirecache

namespace hirecache {
namespace {

// A random valid RESP2 value (arrays nested at most `depth` more levels), written to `out`;
// returns a signature of its shape to compare with what the reader builds.
std::string RandomValue(std::mt19937& rng, int depth, std::string& out) {
  switch (rng() % (depth > 0 ? 6 : 5)) {
    case 0:
      out += "+OK\r\n";
      return "s";
    case 1:
      out += "-ERR no\r\n";
      return "e";
    case 2:
      out += ":" + std::to_string(static_cast<int>(rng() % 2001) - 1000) + "\r\n";
      return "i";
    case 3: {
      // Payloads hold CR, LF and '*', '$' bytes: the guard must not read them as framing.
      size_t len = rng() % 40;
      std::string payload;
      for (size_t i = 0; i < len; ++i) payload += "\r\n*$:+-ab"[rng() % 9];
      out += "$" + std::to_string(len) + "\r\n" + payload + "\r\n";
      return "b" + std::to_string(len);
    }
    case 4:
      out += "$-1\r\n";
      return "n";
    default: {
      size_t n = rng() % 5;
      out += "*" + std::to_string(n) + "\r\n";
      std::string sig = "[";
      for (size_t i = 0; i < n; ++i) sig += RandomValue(rng, depth - 1, out) + ",";
      return sig + "]";
    }
  }
}

std::string Signature(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      return "s";
    case REDIS_REPLY_ERROR:
      return "e";
    case REDIS_REPLY_INTEGER:
      return "i";
    case REDIS_REPLY_STRING:
      return "b" + std::to_string(r->len);
    case REDIS_REPLY_NIL:
      return "n";
    default: {
      std::string sig = "[";
      for (size_t i = 0; i < r->elements; ++i) sig += Signature(r->element[i]) + ",";
      return sig + "]";
    }
  }
}

TEST(ReplyReaderTest, RandomValidStreamsParseToTheSameShapesWhateverTheChunking) {
  std::mt19937 rng(20261201);
  for (int round = 0; round < 300; ++round) {
    std::string bytes;
    std::vector<std::string> expected;
    int values = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < values; ++i) expected.push_back(RandomValue(rng, 4, bytes));
    ReplyReader r{ProtocolLimits{}};
    std::vector<std::string> got;
    for (size_t at = 0; at < bytes.size();) {
      size_t chunk = 1 + rng() % 17;
      chunk = std::min(chunk, bytes.size() - at);
      ASSERT_TRUE(r.Feed(bytes.data() + at, chunk)) << r.error();
      at += chunk;
      while (redisReply* reply = r.Next()) {
        got.push_back(Signature(reply));
        FreeReply(reply);
      }
      ASSERT_FALSE(r.failed()) << r.error();
    }
    ASSERT_EQ(got, expected) << "round " << round;
  }
}

TEST(ReplyReaderTest, RandomGarbageNeverCrashesAndFailsForGood) {
  std::mt19937 rng(7);
  for (int round = 0; round < 500; ++round) {
    ReplyReader r{ProtocolLimits{}};
    for (int feed = 0; feed < 20; ++feed) {
      std::string junk;
      size_t len = 1 + rng() % 64;
      for (size_t i = 0; i < len; ++i) junk += static_cast<char>(rng() % 256);
      bool ok = r.Feed(junk.data(), junk.size());
      while (redisReply* reply = r.Next()) FreeReply(reply);
      if (!ok || r.failed()) {
        EXPECT_FALSE(r.Feed("+OK\r\n", 5));  // a failed reader stays failed
        break;
      }
    }
  }
}

}  // namespace
}  // namespace hirecache

namespace hirecache {
namespace {

// The guard must end every value exactly where hiredis does: otherwise a limit could be
// checked against bytes hiredis reads as something else. Valid streams are mutated with
// framing bytes (CR, LF, digits, signs, type bytes) and fed, in random chunks, to the guard
// and to a plain hiredis reader; while both accept the stream, they must have completed the
// same number of values.
TEST(ProtocolGuardTest, EndsEveryValueWhereHiredisDoes) {
  std::mt19937 rng(424242);
  const char kNoise[] = "\r\n\r\n0123456789-+$*:x";
  int compared = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bytes;
    int values = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < values; ++i) RandomValue(rng, 3, bytes);
    int mutations = static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations && !bytes.empty(); ++m) {
      size_t at = rng() % bytes.size();
      if (rng() % 3 == 0) {
        bytes.erase(at, 1);
      } else {
        bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                     kNoise[rng() % (sizeof(kNoise) - 1)]);
      }
    }
    ProtocolGuard guard{ProtocolLimits{}};
    redisReader* plain = redisReaderCreate();
    uint64_t plain_count = 0;
    bool plain_ok = true;
    for (size_t at = 0; at < bytes.size();) {
      size_t chunk = std::min<size_t>(1 + rng() % 9, bytes.size() - at);
      bool guard_ok = guard.Check(bytes.data() + at, chunk);
      if (plain_ok) plain_ok = redisReaderFeed(plain, bytes.data() + at, chunk) == REDIS_OK;
      at += chunk;
      void* reply = nullptr;
      while (plain_ok && (plain_ok = redisReaderGetReply(plain, &reply) == REDIS_OK) &&
             reply != nullptr) {
        freeReplyObject(reply);
        ++plain_count;
        reply = nullptr;
      }
      if (!guard_ok || !plain_ok) break;
      ASSERT_EQ(guard.values_completed(), plain_count)
          << "round " << round << " after " << at << " bytes";
      ++compared;
    }
    redisReaderFree(plain);
  }
  EXPECT_GT(compared, 3000);
}

TEST(ProtocolGuardTest, ALoneLineFeedDoesNotEndALine) {
  ProtocolLimits limits;
  limits.max_line_bytes = 64;
  ProtocolGuard guard{limits};
  std::string lf_lines;
  for (int i = 0; i < 20; ++i) lf_lines += "+aaaa\n";  // one line to hiredis, never ended
  EXPECT_FALSE(guard.Check(lf_lines.data(), lf_lines.size()));
  EXPECT_NE(guard.error().find("maxLineBytes"), std::string::npos) << guard.error();
  ProtocolGuard header{ProtocolLimits{}};
  std::string cr_digit = "$1\r2\r\n";
  EXPECT_FALSE(header.Check(cr_digit.data(), cr_digit.size()));
  ProtocolGuard bare{ProtocolLimits{}};
  std::string bare_lf = "$5\nabcde\r\n";
  EXPECT_FALSE(bare.Check(bare_lf.data(), bare_lf.size()));
}

}  // namespace
}  // namespace hirecache
