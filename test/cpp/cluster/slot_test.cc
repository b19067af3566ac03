// Crc16, KeySlot and RoutingKeyIndex: the checksum is Redis Cluster's CRC16 (XMODEM), a key's
// slot is the one the server itself computes (hash tags included, binary bytes included), and
// each command is routed by the argument that really is its key (or by none).
#include "cluster/slot.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace hirecache {
namespace {

using namespace std::string_literals;

// RoutingKeyIndex over a command written as a list of arguments.
int Route(std::initializer_list<std::string_view> args) {
  std::vector<std::string_view> argv(args);
  return RoutingKeyIndex(argv.data(), argv.size());
}

// 1024 bytes covering most byte values, NUL and 0xff among them: (i * 7 + 3) % 251.
std::string KilobyteOfMixedBytes() {
  std::string key;
  for (int i = 0; i < 1024; ++i) key.push_back(static_cast<char>((i * 7 + 3) % 251));
  return key;
}

TEST(SlotTest, Crc16MatchesTheClusterSpecification) {
  // The Redis Cluster specification's check value: CRC16 of "123456789" is 0x31C3.
  EXPECT_EQ(Crc16("123456789"), 0x31C3);
  // XMODEM starts from 0, so no bytes (and any run of NULs) leaves it at 0.
  EXPECT_EQ(Crc16(""), 0);
  EXPECT_EQ(Crc16("\0\0\0"s), 0);
  // Single bytes, computed bit by bit with polynomial 0x1021.
  EXPECT_EQ(Crc16("A"), 0x58E5);
  EXPECT_EQ(Crc16("\xff"), 0x1EF0);
}

TEST(SlotTest, KeySlotAgreesWithRedisServer) {
  // Every value below was read from redis-server 7.0.15's CLUSTER KEYSLOT <key>, the key sent
  // as a binary-safe bulk string.
  struct Case {
    std::string key;
    uint16_t slot;
  };
  const std::vector<Case> cases = {
      {"", 0},
      {"foo", 12182},
      {"bar", 5061},
      {"hello", 866},
      {"123456789", 12739},
      {"user1000", 3443},
      {"{user1000}.following", 3443},
      {"{user1000}.followers", 3443},
      {"foo{}{bar}", 8363},     // "{}" is empty: the whole key is hashed
      {"foo{{bar}}zap", 4015},  // hashes "{bar"
      {"{bar", 4015},
      {"foo{bar}{zap}", 5061},  // hashes "bar": only the first tag counts
      {"{", 4092},              // an opening brace with no closing one: the whole key
      {"}", 12090},
      {"{}", 15257},
      {"a{b}c{", 3300},
      {"\0"s, 0},
      {"a\0b"s, 8383},
      {"\xff", 7920},
      {"\xff\xfe\0\x01"s, 9169},
      {"{\0\xff}tail"s, 7920},  // the tag is "\0\xff", which hashes like "\xff"
      {std::string(1024, 'x'), 5695},
      {KilobyteOfMixedBytes(), 2324},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(KeySlot(c.key), c.slot) << "key of " << c.key.size() << " bytes: " << c.key;
  }
}

TEST(SlotTest, HashTagsHashOnlyTheTaggedBytes) {
  // Keys sharing a non-empty tag share a slot, whatever surrounds the tag.
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("prefix:{user1000}:suffix"), KeySlot("user1000"));
  // An empty tag does not count: the whole key is hashed.
  EXPECT_EQ(KeySlot("foo{}{bar}"), Crc16("foo{}{bar}") % kSlotCount);
  // The tag ends at the first '}' after the first '{'.
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
  // A '}' before the first '{' is part of no tag.
  EXPECT_EQ(KeySlot("}x{bar}"), KeySlot("bar"));
  // No closing brace: the whole key.
  EXPECT_EQ(KeySlot("foo{bar"), Crc16("foo{bar") % kSlotCount);
}

TEST(SlotTest, EverySlotIsBelowTheSlotCount) {
  for (int i = 0; i < 100000; ++i) {
    ASSERT_LT(KeySlot("key:" + std::to_string(i)), kSlotCount) << i;
  }
}

TEST(SlotRoutingTest, GetAndSetAreRoutedByTheirFirstArgumentWhateverTheCase) {
  EXPECT_EQ(Route({"GET", "k"}), 1);
  EXPECT_EQ(Route({"get", "k"}), 1);
  EXPECT_EQ(Route({"set", "k", "v"}), 1);
  EXPECT_EQ(Route({"SeT", "k", "v", "EX", "10"}), 1);
  EXPECT_EQ(Route({"hset", "h", "f", "v"}), 1);
}

TEST(SlotRoutingTest, CommandsWithoutKeysGoToAnyPrimary) {
  EXPECT_EQ(Route({"PING", "hello"}), -1);
  EXPECT_EQ(Route({"info", "server"}), -1);
  EXPECT_EQ(Route({"SCAN", "0"}), -1);
  EXPECT_EQ(Route({"KEYS", "*"}), -1);
  EXPECT_EQ(Route({"SCRIPT", "LOAD", "return 1"}), -1);
  EXPECT_EQ(Route({"PUBLISH", "channel", "message"}), -1);
  EXPECT_EQ(Route({"cluster", "slots"}), -1);
}

TEST(SlotRoutingTest, ShardChannelsAreRoutedLikeKeys) {
  EXPECT_EQ(Route({"SPUBLISH", "channel", "message"}), 1);
  EXPECT_EQ(Route({"SSUBSCRIBE", "channel"}), 1);
}

TEST(SlotRoutingTest, ACommandWithoutArgumentsHasNoKey) {
  EXPECT_EQ(Route({"GET"}), -1);
  EXPECT_EQ(Route({"PING"}), -1);
  EXPECT_EQ(Route({"SOMETHINGNEW"}), -1);
  EXPECT_EQ(RoutingKeyIndex(nullptr, 0), -1);
}

TEST(SlotRoutingTest, ScriptsAreRoutedByTheirFirstKey) {
  EXPECT_EQ(Route({"EVAL", "return 1", "0"}), -1);
  EXPECT_EQ(Route({"EVAL", "return 1", "0", "arg"}), -1);
  EXPECT_EQ(Route({"EVAL", "return 1", "2", "k1", "k2"}), 3);
  EXPECT_EQ(Route({"eval", "return 1", "1", "k1", "arg"}), 3);
  EXPECT_EQ(Route({"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "1", "k"}), 3);
  EXPECT_EQ(Route({"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"}), -1);
  EXPECT_EQ(Route({"EVAL_RO", "return 1", "1", "k"}), 3);
  EXPECT_EQ(Route({"FCALL", "myfunc", "1", "k", "arg"}), 3);
  EXPECT_EQ(Route({"FCALL", "myfunc", "0", "arg"}), -1);
  EXPECT_EQ(Route({"FCALL_RO", "myfunc", "1", "k"}), 3);
  // numkeys announces keys that are not there: no key to route by.
  EXPECT_EQ(Route({"EVAL", "return 1", "2"}), -1);
  // No numkeys at all.
  EXPECT_EQ(Route({"EVAL", "return 1"}), -1);
}

TEST(SlotRoutingTest, NumkeysCommandsAreRoutedByTheirFirstKey) {
  EXPECT_EQ(Route({"ZUNION", "2", "a", "b"}), 2);
  EXPECT_EQ(Route({"ZINTER", "1", "a", "WITHSCORES"}), 2);
  EXPECT_EQ(Route({"SINTERCARD", "2", "a", "b", "LIMIT", "5"}), 2);
  EXPECT_EQ(Route({"LMPOP", "1", "k", "LEFT"}), 2);
  EXPECT_EQ(Route({"ZUNION", "0"}), -1);
  EXPECT_EQ(Route({"BLMPOP", "0", "1", "k", "LEFT"}), 3);
  EXPECT_EQ(Route({"BZMPOP", "1.5", "2", "a", "b", "MIN"}), 3);
  EXPECT_EQ(Route({"BLMPOP", "0", "0", "LEFT"}), -1);
}

TEST(SlotRoutingTest, MalformedNumkeysNamesNoKey) {
  EXPECT_EQ(Route({"EVAL", "return 1", "x", "k"}), -1);
  EXPECT_EQ(Route({"EVAL", "return 1", "-1", "k"}), -1);
  EXPECT_EQ(Route({"EVAL", "return 1", "1x", "k"}), -1);
  EXPECT_EQ(Route({"EVAL", "return 1", "", "k"}), -1);
  EXPECT_EQ(Route({"EVAL", "return 1", "99999999999999999999999", "k"}), -1);
  EXPECT_EQ(Route({"ZUNION", "x", "a"}), -1);
  EXPECT_EQ(Route({"ZUNION", "-1", "a"}), -1);
  EXPECT_EQ(Route({"BLMPOP", "0", "x", "k", "LEFT"}), -1);
  EXPECT_EQ(Route({"BLMPOP", "0", "-1", "k", "LEFT"}), -1);
}

TEST(SlotRoutingTest, StreamReadsAreRoutedByTheFirstStream) {
  EXPECT_EQ(Route({"XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"}), 4);
  EXPECT_EQ(Route({"XREAD", "streams", "s1", "0"}), 2);
  EXPECT_EQ(Route({"XREAD", "BLOCK", "0", "COUNT", "1", "STREAMS", "s", "$"}), 6);
  EXPECT_EQ(Route({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"}), 5);
  EXPECT_EQ(Route({"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "NOACK", "STREAMS", "s", ">"}),
            8);
  // No STREAMS, or nothing after it: no key.
  EXPECT_EQ(Route({"XREAD", "COUNT", "2"}), -1);
  EXPECT_EQ(Route({"XREAD", "COUNT", "2", "STREAMS"}), -1);
}

TEST(SlotRoutingTest, AGroupOrConsumerNamedStreamsIsNotTakenForTheKeyword) {
  // GROUP takes two arbitrary names; Redis (xreadGetKeys) skips them, and so must routing.
  EXPECT_EQ(Route({"XREADGROUP", "GROUP", "streams", "c", "STREAMS", "s", ">"}), 5);
  EXPECT_EQ(Route({"XREADGROUP", "GROUP", "g", "STREAMS", "STREAMS", "s", ">"}), 5);
}

TEST(SlotRoutingTest, SubcommandsAreRoutedByTheKeyAfterThem) {
  EXPECT_EQ(Route({"OBJECT", "ENCODING", "k"}), 2);
  EXPECT_EQ(Route({"object", "freq", "k"}), 2);
  EXPECT_EQ(Route({"OBJECT", "HELP"}), -1);
  EXPECT_EQ(Route({"MEMORY", "USAGE", "k"}), 2);
  EXPECT_EQ(Route({"memory", "usage", "k", "SAMPLES", "5"}), 2);
  EXPECT_EQ(Route({"MEMORY", "STATS"}), -1);
  EXPECT_EQ(Route({"MEMORY", "USAGE"}), -1);
  EXPECT_EQ(Route({"MEMORY", "DOCTOR", "k"}), -1);
  EXPECT_EQ(Route({"XINFO", "STREAM", "s"}), 2);
  EXPECT_EQ(Route({"XGROUP", "CREATE", "s", "g", "$"}), 2);
  EXPECT_EQ(Route({"BITOP", "AND", "dest", "a", "b"}), 2);
}

TEST(SlotRoutingTest, UnknownCommandsAreRoutedByTheirFirstArgument) {
  EXPECT_EQ(Route({"SOMEMODULE.CMD", "k", "v"}), 1);
  EXPECT_EQ(Route({"zunionstore", "dest", "2", "a", "b"}), 1);
  EXPECT_EQ(Route({"", "k"}), 1);
  // Names longer than the longest known command (24 bytes) are unknown, not truncated.
  EXPECT_EQ(Route({std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "k"}), 1);
  EXPECT_EQ(Route({std::string_view("PINGPINGPINGPINGPINGPINGPING"), "k"}), 1);
  EXPECT_EQ(Route({std::string_view("X2345678901234567890123X"), "k"}), 1);  // exactly 24
}

}  // namespace
}  // namespace hirecache
