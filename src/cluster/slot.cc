#include "cluster/slot.h"

#include <array>
#include <charconv>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "util/ascii.h"

namespace hirecache {
namespace {

constexpr std::array<uint16_t, 256> MakeCrcTable() {
  std::array<uint16_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i << 8;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = static_cast<uint16_t>(crc);
  }
  return table;
}

constexpr std::array<uint16_t, 256> kCrcTable = MakeCrcTable();

// How a command names the key that routes it.
enum class KeyRule : uint8_t {
  kKeyless,     // no key: any primary serves it
  kSecond,      // argv[2] when present (OBJECT ENCODING key, XINFO STREAM key, BITOP op dest)
  kEval,        // EVAL script numkeys key…: argv[3] when numkeys > 0
  kNumkeys1,    // ZUNION numkeys key…: argv[2] when numkeys (argv[1]) > 0
  kNumkeys2,    // BLMPOP timeout numkeys key…: argv[3] when numkeys (argv[2]) > 0
  kStreams,     // XREAD … STREAMS key…: the argument after STREAMS
  kMemoryUsage  // MEMORY USAGE key: argv[2]; other MEMORY subcommands name no key
};

const std::unordered_map<std::string, KeyRule>& Rules() {
  static const auto* rules = new std::unordered_map<std::string, KeyRule>{
      {"PING", KeyRule::kKeyless},
      {"ECHO", KeyRule::kKeyless},
      {"INFO", KeyRule::kKeyless},
      {"TIME", KeyRule::kKeyless},
      {"DBSIZE", KeyRule::kKeyless},
      {"FLUSHALL", KeyRule::kKeyless},
      {"FLUSHDB", KeyRule::kKeyless},
      {"SCRIPT", KeyRule::kKeyless},
      {"FUNCTION", KeyRule::kKeyless},
      {"CLUSTER", KeyRule::kKeyless},
      {"CLIENT", KeyRule::kKeyless},
      {"CONFIG", KeyRule::kKeyless},
      {"COMMAND", KeyRule::kKeyless},
      {"SELECT", KeyRule::kKeyless},
      {"AUTH", KeyRule::kKeyless},
      {"HELLO", KeyRule::kKeyless},
      {"SCAN", KeyRule::kKeyless},
      {"RANDOMKEY", KeyRule::kKeyless},
      {"KEYS", KeyRule::kKeyless},
      {"PUBLISH", KeyRule::kKeyless},
      {"PUBSUB", KeyRule::kKeyless},
      {"SUBSCRIBE", KeyRule::kKeyless},
      {"UNSUBSCRIBE", KeyRule::kKeyless},
      {"PSUBSCRIBE", KeyRule::kKeyless},
      {"PUNSUBSCRIBE", KeyRule::kKeyless},
      {"MULTI", KeyRule::kKeyless},
      {"EXEC", KeyRule::kKeyless},
      {"DISCARD", KeyRule::kKeyless},
      {"UNWATCH", KeyRule::kKeyless},
      {"WAIT", KeyRule::kKeyless},
      {"WAITAOF", KeyRule::kKeyless},
      {"LASTSAVE", KeyRule::kKeyless},
      {"SAVE", KeyRule::kKeyless},
      {"BGSAVE", KeyRule::kKeyless},
      {"BGREWRITEAOF", KeyRule::kKeyless},
      {"DEBUG", KeyRule::kKeyless},
      {"SLOWLOG", KeyRule::kKeyless},
      {"LATENCY", KeyRule::kKeyless},
      {"ACL", KeyRule::kKeyless},
      {"ROLE", KeyRule::kKeyless},
      {"MONITOR", KeyRule::kKeyless},
      {"READONLY", KeyRule::kKeyless},
      {"READWRITE", KeyRule::kKeyless},
      {"ASKING", KeyRule::kKeyless},
      {"QUIT", KeyRule::kKeyless},
      {"RESET", KeyRule::kKeyless},
      {"SWAPDB", KeyRule::kKeyless},
      {"SHUTDOWN", KeyRule::kKeyless},
      {"FAILOVER", KeyRule::kKeyless},
      {"REPLICAOF", KeyRule::kKeyless},
      {"SLAVEOF", KeyRule::kKeyless},
      {"MODULE", KeyRule::kKeyless},
      {"LOLWUT", KeyRule::kKeyless},
      {"MIGRATE", KeyRule::kKeyless},
      {"SENTINEL", KeyRule::kKeyless},
      {"OBJECT", KeyRule::kSecond},
      {"XINFO", KeyRule::kSecond},
      {"XGROUP", KeyRule::kSecond},
      {"BITOP", KeyRule::kSecond},
      {"MEMORY", KeyRule::kMemoryUsage},
      {"EVAL", KeyRule::kEval},
      {"EVALSHA", KeyRule::kEval},
      {"EVAL_RO", KeyRule::kEval},
      {"EVALSHA_RO", KeyRule::kEval},
      {"FCALL", KeyRule::kEval},
      {"FCALL_RO", KeyRule::kEval},
      {"ZUNION", KeyRule::kNumkeys1},
      {"ZINTER", KeyRule::kNumkeys1},
      {"ZDIFF", KeyRule::kNumkeys1},
      {"ZINTERCARD", KeyRule::kNumkeys1},
      {"SINTERCARD", KeyRule::kNumkeys1},
      {"LMPOP", KeyRule::kNumkeys1},
      {"ZMPOP", KeyRule::kNumkeys1},
      {"BLMPOP", KeyRule::kNumkeys2},
      {"BZMPOP", KeyRule::kNumkeys2},
      {"XREAD", KeyRule::kStreams},
      {"XREADGROUP", KeyRule::kStreams},
  };
  return *rules;
}

// argv[at] read as a count of keys; 0 when it is not a positive number.
size_t CountAt(const std::string_view* argv, size_t argc, size_t at) {
  if (at >= argc) return 0;
  size_t n = 0;
  auto [end, ec] = std::from_chars(argv[at].data(), argv[at].data() + argv[at].size(), n);
  if (ec != std::errc() || end != argv[at].data() + argv[at].size()) return 0;
  return n;
}

int IfPresent(size_t index, size_t argc) { return index < argc ? static_cast<int>(index) : -1; }

}  // namespace

uint16_t Crc16(std::string_view bytes) {
  uint16_t crc = 0;
  for (unsigned char c : bytes) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xff]);
  }
  return crc;
}

uint16_t KeySlot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kSlotCount - 1);
}

bool IsReadOnlyCommand(std::string_view name) {
  static const auto* reads = new std::unordered_set<std::string>{
      "GET",
      "MGET",
      "STRLEN",
      "GETRANGE",
      "EXISTS",
      "TTL",
      "PTTL",
      "TYPE",
      "EXPIRETIME",
      "PEXPIRETIME",
      "HGET",
      "HMGET",
      "HGETALL",
      "HLEN",
      "HEXISTS",
      "HKEYS",
      "HVALS",
      "HSTRLEN",
      "HRANDFIELD",
      "HSCAN",
      "LRANGE",
      "LLEN",
      "LINDEX",
      "LPOS",
      "SMEMBERS",
      "SISMEMBER",
      "SMISMEMBER",
      "SCARD",
      "SRANDMEMBER",
      "SSCAN",
      "SINTER",
      "SUNION",
      "SDIFF",
      "ZRANGE",
      "ZRANGEBYSCORE",
      "ZREVRANGE",
      "ZREVRANGEBYSCORE",
      "ZSCORE",
      "ZMSCORE",
      "ZCARD",
      "ZCOUNT",
      "ZRANK",
      "ZREVRANK",
      "ZSCAN",
      "ZRANGEBYLEX",
      "ZLEXCOUNT",
      "XRANGE",
      "XREVRANGE",
      "XLEN",
      "BITCOUNT",
      "GETBIT",
      "BITPOS",
      "PFCOUNT",
      "GEOPOS",
      "GEODIST",
      "GEOSEARCH",
      "GEOHASH",
      "DUMP",
      "OBJECT",
      "MEMORY",
      "EVAL_RO",
      "EVALSHA_RO",
      "FCALL_RO",
      "SORT_RO",
      "TOUCH",
      "SUBSTR",
      "LCS",
      "ZINTER",
      "ZUNION",
      "ZDIFF",
      "ZINTERCARD",
      "SINTERCARD",
      "ZRANDMEMBER",
      "JSON.GET",
  };
  char buf[24];
  std::string_view upper = ToUpper(name, buf);
  return !upper.empty() && reads->count(std::string(upper)) != 0;
}

int RoutingKeyIndex(const std::string_view* argv, size_t argc) {
  if (argc < 2) return -1;
  std::string_view name = argv[0];
  // The commands of the hot path first, without a lookup.
  if (EqualsUpper(name, "GET") || EqualsUpper(name, "SET")) return 1;
  char buf[24];
  std::string_view upper = ToUpper(name, buf);
  if (upper.empty()) return 1;
  const auto& rules = Rules();
  auto it = rules.find(std::string(upper));
  if (it == rules.end()) return 1;
  switch (it->second) {
    case KeyRule::kKeyless:
      return -1;
    case KeyRule::kSecond:
      return IfPresent(2, argc);
    case KeyRule::kMemoryUsage:
      return EqualsUpper(argv[1], "USAGE") ? IfPresent(2, argc) : -1;
    case KeyRule::kEval:
      return CountAt(argv, argc, 2) > 0 ? IfPresent(3, argc) : -1;
    case KeyRule::kNumkeys1:
      return CountAt(argv, argc, 1) > 0 ? IfPresent(2, argc) : -1;
    case KeyRule::kNumkeys2:
      return CountAt(argv, argc, 2) > 0 ? IfPresent(3, argc) : -1;
    case KeyRule::kStreams:
      // The options' values are stepped over (GROUP takes two names of the caller's, which
      // may well be "streams"); the first stream follows STREAMS.
      for (size_t i = 1; i < argc; ++i) {
        if (EqualsUpper(argv[i], "STREAMS")) return IfPresent(i + 1, argc);
        if (EqualsUpper(argv[i], "GROUP")) {
          i += 2;
        } else if (EqualsUpper(argv[i], "COUNT") || EqualsUpper(argv[i], "BLOCK")) {
          i += 1;
        }
      }
      return -1;
  }
  return 1;
}

}  // namespace hirecache
