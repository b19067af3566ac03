// ParseClusterShards and ParseClusterSlots: the replies of a real 3-primary, 3-replica cluster
// become the same map (every slot covered, the right primary and replicas per range), the
// variants a cluster may send (TLS ports, unknown endpoints, failed nodes, a shard without a
// primary) are read as documented, and malformed replies are refused with a reason, never a
// crash.
#include "cluster/slot_map.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/slot.h"

namespace hirecache {
namespace {

// CLUSTER SHARDS and CLUSTER SLOTS as redis-server 7.0.15 sent them (raw RESP2, read from the
// socket) from the node on port 31700 of a cluster made by `redis-cli --cluster create` of six
// nodes on 127.0.0.1:31700-31705 with --cluster-replicas 1, once cluster_state was ok and
// every replica had synced.
constexpr std::string_view kCapturedShards =
    "*3\r\n"
    "*4\r\n"
    "$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n"
    "$5\r\nnodes\r\n*2\r\n"
    "*14\r\n$2\r\nid\r\n$40\r\nb15393dbfda9c0c3b5aa3b520c0c03251e8fb143\r\n$4\r\nport\r\n:31702\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n"
    "$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:110\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*14\r\n$2\r\nid\r\n$40\r\n62f7d64d647788d38e3247d0f02eabba4e77ea2b\r\n$4\r\nport\r\n:31705\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n"
    "$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:96\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*4\r\n"
    "$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n"
    "$5\r\nnodes\r\n*2\r\n"
    "*14\r\n$2\r\nid\r\n$40\r\n130d51ff6091139dd552614e08baba965ced2d9e\r\n$4\r\nport\r\n:31701\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n"
    "$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:56\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*14\r\n$2\r\nid\r\n$40\r\nc7e2088e8bd723c62bf5092c1be311ed3d64ab03\r\n$4\r\nport\r\n:31704\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n"
    "$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:42\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*4\r\n"
    "$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n"
    "$5\r\nnodes\r\n*2\r\n"
    "*14\r\n$2\r\nid\r\n$40\r\nf2e433f17ac0eaba9a57350bb41c6c598fff0e9c\r\n$4\r\nport\r\n:31700\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n"
    "$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:56\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*14\r\n$2\r\nid\r\n$40\r\n65ab14bfce450ae82bb7c57c50a4014036345a00\r\n$4\r\nport\r\n:31703\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n"
    "$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:42\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";

constexpr std::string_view kCapturedSlots =
    "*3\r\n"
    "*4\r\n:0\r\n:5460\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31700\r\n$40\r\nf2e433f17ac0eaba9a57350bb41c6c598fff0e9c\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31703\r\n$40\r\n65ab14bfce450ae82bb7c57c50a4014036345a00\r\n*0\r\n"
    "*4\r\n:5461\r\n:10922\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31701\r\n$40\r\n130d51ff6091139dd552614e08baba965ced2d9e\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31704\r\n$40\r\nc7e2088e8bd723c62bf5092c1be311ed3d64ab03\r\n*0\r\n"
    "*4\r\n:10923\r\n:16383\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31702\r\n$40\r\nb15393dbfda9c0c3b5aa3b520c0c03251e8fb143\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31705\r\n$40\r\n62f7d64d647788d38e3247d0f02eabba4e77ea2b\r\n*0\r\n";

// What the same server answered to an unknown CLUSTER subcommand.
constexpr std::string_view kCapturedError = "-ERR unknown subcommand 'FOO'. Try CLUSTER HELP.\r\n";

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// The one reply `resp` holds, read by hiredis's own reader; null (and a test failure) when the
// bytes are not exactly one complete reply.
ReplyPtr Read(std::string_view resp) {
  redisReader* reader = redisReaderCreate();
  void* reply = nullptr;
  void* extra = nullptr;
  bool ok = redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK &&
            redisReaderGetReply(reader, &reply) == REDIS_OK && reply != nullptr &&
            redisReaderGetReply(reader, &extra) == REDIS_OK && extra == nullptr;
  redisReaderFree(reader);
  if (extra != nullptr) freeReplyObject(extra);
  EXPECT_TRUE(ok) << "not exactly one reply: " << resp;
  if (!ok && reply != nullptr) {
    freeReplyObject(reply);
    reply = nullptr;
  }
  return ReplyPtr(static_cast<redisReply*>(reply));
}

// RESP builders, for the variants of the captured replies.
std::string Bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}
std::string Int(long long n) { return ":" + std::to_string(n) + "\r\n"; }
std::string Array(size_t n) { return "*" + std::to_string(n) + "\r\n"; }

// One node of a CLUSTER SHARDS reply, fields in the order Redis 7 sends them.
struct ShardNode {
  std::string id;
  long long port;
  std::string role;
  long long offset;
  std::string health = "online";
  std::string ip = "127.0.0.1";
  std::string endpoint = "127.0.0.1";
  long long tls_port = 0;  // sent when not 0
  bool has_role = true;
};

struct Shard {
  std::vector<long long> slots;  // first, last, first, last…
  std::vector<ShardNode> nodes;
};

std::string Encode(const ShardNode& n) {
  std::string fields;
  size_t pairs = 0;
  auto add = [&](std::string_view name, const std::string& value) {
    fields += Bulk(name) + value;
    ++pairs;
  };
  add("id", Bulk(n.id));
  add("port", Int(n.port));
  if (n.tls_port != 0) add("tls-port", Int(n.tls_port));
  add("ip", Bulk(n.ip));
  add("endpoint", Bulk(n.endpoint));
  if (n.has_role) add("role", Bulk(n.role));
  add("replication-offset", Int(n.offset));
  add("health", Bulk(n.health));
  return Array(2 * pairs) + fields;
}

std::string Encode(const std::vector<Shard>& shards) {
  std::string out = Array(shards.size());
  for (const Shard& shard : shards) {
    out += Array(4) + Bulk("slots") + Array(shard.slots.size());
    for (long long slot : shard.slots) out += Int(slot);
    out += Bulk("nodes") + Array(shard.nodes.size());
    for (const ShardNode& node : shard.nodes) out += Encode(node);
  }
  return out;
}

// kCapturedShards as data: Encode(CapturedShards()) reproduces it byte for byte.
std::vector<Shard> CapturedShards() {
  return {
      {{10923, 16383},
       {{"b15393dbfda9c0c3b5aa3b520c0c03251e8fb143", 31702, "master", 110},
        {"62f7d64d647788d38e3247d0f02eabba4e77ea2b", 31705, "replica", 96}}},
      {{5461, 10922},
       {{"130d51ff6091139dd552614e08baba965ced2d9e", 31701, "master", 56},
        {"c7e2088e8bd723c62bf5092c1be311ed3d64ab03", 31704, "replica", 42}}},
      {{0, 5460},
       {{"f2e433f17ac0eaba9a57350bb41c6c598fff0e9c", 31700, "master", 56},
        {"65ab14bfce450ae82bb7c57c50a4014036345a00", 31703, "replica", 42}}},
  };
}

// One range of a CLUSTER SLOTS reply: first, last, then [host, port, id, metadata] per node.
struct SlotsNode {
  std::string host;
  long long port;
  std::string id;
};

struct SlotsRange {
  long long first;
  long long last;
  std::vector<SlotsNode> nodes;
};

std::string Encode(const std::vector<SlotsRange>& ranges) {
  std::string out = Array(ranges.size());
  for (const SlotsRange& range : ranges) {
    out += Array(2 + range.nodes.size()) + Int(range.first) + Int(range.last);
    for (const SlotsNode& node : range.nodes) {
      out += Array(4) + Bulk(node.host) + Int(node.port) + Bulk(node.id) + Array(0);
    }
  }
  return out;
}

// kCapturedSlots as data.
std::vector<SlotsRange> CapturedSlots() {
  return {
      {0,
       5460,
       {{"127.0.0.1", 31700, "f2e433f17ac0eaba9a57350bb41c6c598fff0e9c"},
        {"127.0.0.1", 31703, "65ab14bfce450ae82bb7c57c50a4014036345a00"}}},
      {5461,
       10922,
       {{"127.0.0.1", 31701, "130d51ff6091139dd552614e08baba965ced2d9e"},
        {"127.0.0.1", 31704, "c7e2088e8bd723c62bf5092c1be311ed3d64ab03"}}},
      {10923,
       16383,
       {{"127.0.0.1", 31702, "b15393dbfda9c0c3b5aa3b520c0c03251e8fb143"},
        {"127.0.0.1", 31705, "62f7d64d647788d38e3247d0f02eabba4e77ea2b"}}},
  };
}

const SlotMapSource kSource{"127.0.0.1", 31700, false};

bool Shards(std::string_view resp, const SlotMapSource& source, SlotMap* map, std::string* error) {
  ReplyPtr reply = Read(resp);
  return ParseClusterShards(reply.get(), source, map, error);
}

bool Slots(std::string_view resp, const SlotMapSource& source, SlotMap* map, std::string* error) {
  ReplyPtr reply = Read(resp);
  return ParseClusterSlots(reply.get(), source, map, error);
}

// The range holding `slot`, or null.
const SlotRange* RangeOf(const SlotMap& map, uint16_t slot) {
  for (const SlotRange& r : map.ranges) {
    if (r.first <= slot && slot <= r.last) return &r;
  }
  return nullptr;
}

// The port of the primary serving `slot`, or 0.
uint16_t PrimaryPort(const SlotMap& map, uint16_t slot) {
  const SlotRange* r = RangeOf(map, slot);
  return r == nullptr ? 0 : map.nodes[r->primary].port;
}

// The ports of the replicas listed for the range holding `slot`.
std::vector<uint16_t> ReplicaPorts(const SlotMap& map, uint16_t slot) {
  std::vector<uint16_t> ports;
  const SlotRange* r = RangeOf(map, slot);
  if (r != nullptr) {
    for (size_t i : r->replicas) ports.push_back(map.nodes[i].port);
  }
  return ports;
}

// The node listening on `port`, or null.
const ClusterNodeInfo* NodeOn(const SlotMap& map, uint16_t port) {
  for (const ClusterNodeInfo& n : map.nodes) {
    if (n.port == port) return &n;
  }
  return nullptr;
}

// The captured cluster, whichever command described it.
void ExpectTheCapturedCluster(const SlotMap& map) {
  ASSERT_EQ(map.nodes.size(), 6u);
  size_t primaries = 0;
  for (const ClusterNodeInfo& n : map.nodes) {
    EXPECT_EQ(n.host, "127.0.0.1");
    EXPECT_EQ(n.id.size(), 40u);
    if (n.primary) ++primaries;
  }
  EXPECT_EQ(primaries, 3u);
  ASSERT_EQ(map.ranges.size(), 3u);
  EXPECT_EQ(map.CoveredSlots(), kSlotCount);
  EXPECT_EQ(PrimaryPort(map, 0), 31700);
  EXPECT_EQ(PrimaryPort(map, 5460), 31700);
  EXPECT_EQ(PrimaryPort(map, 5461), 31701);
  EXPECT_EQ(PrimaryPort(map, 10922), 31701);
  EXPECT_EQ(PrimaryPort(map, 10923), 31702);
  EXPECT_EQ(PrimaryPort(map, 16383), 31702);
  EXPECT_EQ(ReplicaPorts(map, 0), std::vector<uint16_t>{31703});
  EXPECT_EQ(ReplicaPorts(map, 5461), std::vector<uint16_t>{31704});
  EXPECT_EQ(ReplicaPorts(map, 16383), std::vector<uint16_t>{31705});
  for (uint16_t port : {31703, 31704, 31705}) {
    const ClusterNodeInfo* n = NodeOn(map, port);
    ASSERT_NE(n, nullptr) << port;
    EXPECT_FALSE(n->primary) << port;
    EXPECT_TRUE(n->healthy) << port;
  }
  ASSERT_NE(NodeOn(map, 31700), nullptr);
  EXPECT_EQ(NodeOn(map, 31700)->id, "f2e433f17ac0eaba9a57350bb41c6c598fff0e9c");
  EXPECT_TRUE(NodeOn(map, 31700)->primary);
}

// Every index the map holds points into its nodes, and every range is within the slots.
void ExpectConsistent(const SlotMap& map) {
  for (const SlotRange& r : map.ranges) {
    EXPECT_LE(r.first, r.last);
    EXPECT_LT(r.last, kSlotCount);
    EXPECT_LT(r.primary, map.nodes.size());
    for (size_t i : r.replicas) EXPECT_LT(i, map.nodes.size());
  }
  for (const ClusterNodeInfo& n : map.nodes) EXPECT_NE(n.port, 0);
}

TEST(SlotMapTest, TheBuildersReproduceTheCapturedReplies) {
  EXPECT_EQ(Encode(CapturedShards()), kCapturedShards);
  EXPECT_EQ(Encode(CapturedSlots()), kCapturedSlots);
}

TEST(SlotMapTest, CapturedShardsGiveThreePrimariesWithOneReplicaEach) {
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Shards(kCapturedShards, kSource, &map, &error)) << error;
  ExpectTheCapturedCluster(map);
}

TEST(SlotMapTest, CapturedSlotsGiveThreePrimariesWithOneReplicaEach) {
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Slots(kCapturedSlots, kSource, &map, &error)) << error;
  ExpectTheCapturedCluster(map);
}

TEST(SlotMapTest, ParsingReplacesWhatTheMapHeld) {
  SlotMap map;
  map.nodes.push_back({"10.0.0.1", 7000, "old", true, true});
  map.ranges.push_back({0, 16383, 0, {}});
  std::string error;
  ASSERT_TRUE(Slots(kCapturedSlots, kSource, &map, &error)) << error;
  EXPECT_EQ(NodeOn(map, 7000), nullptr);
  ExpectTheCapturedCluster(map);
}

TEST(SlotMapTest, AnEmptyReplyIsAMapWithoutSlots) {
  // A cluster whose slots are not assigned yet answers an empty list to both commands.
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Shards("*0\r\n", kSource, &map, &error)) << error;
  EXPECT_EQ(map.CoveredSlots(), 0u);
  ASSERT_TRUE(Slots("*0\r\n", kSource, &map, &error)) << error;
  EXPECT_EQ(map.CoveredSlots(), 0u);
}

TEST(SlotMapTest, ShardsOverTlsTakeTheTlsPortWhenANodeHasOne) {
  std::vector<Shard> shards = CapturedShards();
  for (Shard& shard : shards) {
    for (ShardNode& node : shard.nodes) node.tls_port = node.port + 1000;
  }
  shards[0].nodes[1].tls_port = 0;  // the replica on 31705 has no TLS port
  const std::string resp = Encode(shards);

  SlotMap map;
  std::string error;
  ASSERT_TRUE(Shards(resp, {"127.0.0.1", 32700, true}, &map, &error)) << error;
  EXPECT_EQ(PrimaryPort(map, 0), 32700);
  EXPECT_EQ(PrimaryPort(map, 5461), 32701);
  EXPECT_EQ(PrimaryPort(map, 16383), 32702);
  EXPECT_EQ(ReplicaPorts(map, 0), std::vector<uint16_t>{32703});
  EXPECT_EQ(ReplicaPorts(map, 16383), std::vector<uint16_t>{31705});

  // Without TLS the plain ports are used, tls-port or not.
  ASSERT_TRUE(Shards(resp, kSource, &map, &error)) << error;
  ExpectTheCapturedCluster(map);
}

TEST(SlotMapTest, ShardsEndpointUnknownFallsBackToTheSourceHost) {
  // "?" (no hostname known) and "" (cluster-preferred-endpoint-type unknown-endpoint) both
  // mean "the address you reached me at", even though Redis still sends the node's ip.
  std::vector<Shard> shards = CapturedShards();
  shards[2].nodes[0].endpoint = "?";
  shards[2].nodes[1].endpoint = "";
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Shards(Encode(shards), {"cache.example", 31700, false}, &map, &error)) << error;
  ASSERT_NE(NodeOn(map, 31700), nullptr);
  EXPECT_EQ(NodeOn(map, 31700)->host, "cache.example");
  ASSERT_NE(NodeOn(map, 31703), nullptr);
  EXPECT_EQ(NodeOn(map, 31703)->host, "cache.example");
  // Nodes with an endpoint keep it.
  ASSERT_NE(NodeOn(map, 31701), nullptr);
  EXPECT_EQ(NodeOn(map, 31701)->host, "127.0.0.1");
}

TEST(SlotMapTest, ShardsUnknownEndpointAndIpFallBackToTheSourceHost) {
  std::vector<Shard> shards = CapturedShards();
  shards[2].nodes[0].endpoint = "?";
  shards[2].nodes[0].ip = "?";
  shards[2].nodes[1].endpoint = "";
  shards[2].nodes[1].ip = "";
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Shards(Encode(shards), {"cache.example", 31700, false}, &map, &error)) << error;
  ASSERT_NE(NodeOn(map, 31700), nullptr);
  EXPECT_EQ(NodeOn(map, 31700)->host, "cache.example");
  ASSERT_NE(NodeOn(map, 31703), nullptr);
  EXPECT_EQ(NodeOn(map, 31703)->host, "cache.example");
}

TEST(SlotMapTest, ShardsPreferTheEndpointToTheIp) {
  // With cluster-preferred-endpoint-type hostname the endpoint is the hostname.
  std::vector<Shard> shards = CapturedShards();
  shards[2].nodes[0].endpoint = "node-a.example";
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Shards(Encode(shards), kSource, &map, &error)) << error;
  ASSERT_NE(NodeOn(map, 31700), nullptr);
  EXPECT_EQ(NodeOn(map, 31700)->host, "node-a.example");
}

TEST(SlotMapTest, SlotsUnknownHostFallsBackToTheSourceHost) {
  // CLUSTER SLOTS sends "?" for a hostname not known, and a null for an unknown endpoint.
  std::vector<SlotsRange> ranges = CapturedSlots();
  ranges[0].nodes[0].host = "?";
  ranges[0].nodes[1].host = "";
  std::string resp = Encode(ranges);
  const std::string host_31701 = Bulk("127.0.0.1") + Int(31701);
  resp.replace(resp.find(host_31701), host_31701.size(), "$-1\r\n" + Int(31701));

  SlotMap map;
  std::string error;
  ASSERT_TRUE(Slots(resp, {"cache.example", 31700, false}, &map, &error)) << error;
  for (uint16_t port : {31700, 31703, 31701}) {
    ASSERT_NE(NodeOn(map, port), nullptr) << port;
    EXPECT_EQ(NodeOn(map, port)->host, "cache.example") << port;
  }
  ASSERT_NE(NodeOn(map, 31702), nullptr);
  EXPECT_EQ(NodeOn(map, 31702)->host, "127.0.0.1");
}

TEST(SlotMapTest, AReplicaThatIsNotOnlineIsNotListed) {
  // Redis 7.0.15 reported the replica on 31705 as health "fail" once it had been killed (the
  // documentation says "failed"); a replica still syncing is "loading". None of them serves.
  for (const char* health : {"fail", "failed", "loading"}) {
    std::vector<Shard> shards = CapturedShards();
    shards[0].nodes[1].health = health;
    SlotMap map;
    std::string error;
    ASSERT_TRUE(Shards(Encode(shards), kSource, &map, &error)) << health << ": " << error;
    EXPECT_TRUE(ReplicaPorts(map, 16383).empty()) << health;
    EXPECT_EQ(ReplicaPorts(map, 0), std::vector<uint16_t>{31703}) << health;
    EXPECT_EQ(PrimaryPort(map, 16383), 31702) << health;
    EXPECT_EQ(map.CoveredSlots(), kSlotCount) << health;
    const ClusterNodeInfo* node = NodeOn(map, 31705);
    if (node != nullptr) {
      EXPECT_FALSE(node->healthy) << health;
    }
  }
}

TEST(SlotMapTest, SlotsWithoutAReplicaListNone) {
  // The captured CLUSTER SLOTS after the replica on 31705 was killed: its range is [10923,
  // 16383, primary] only.
  std::vector<SlotsRange> ranges = CapturedSlots();
  ranges[2].nodes.pop_back();
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Slots(Encode(ranges), kSource, &map, &error)) << error;
  EXPECT_EQ(map.nodes.size(), 5u);
  EXPECT_TRUE(ReplicaPorts(map, 16383).empty());
  EXPECT_EQ(PrimaryPort(map, 16383), 31702);
  EXPECT_EQ(map.CoveredSlots(), kSlotCount);
}

TEST(SlotMapTest, AShardWithoutAPrimaryIsSkipped) {
  // Its slots are then served by no one until a replica is promoted.
  std::vector<Shard> shards = CapturedShards();
  shards[1].nodes[0].role = "replica";
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Shards(Encode(shards), kSource, &map, &error)) << error;
  ASSERT_EQ(map.ranges.size(), 2u);
  EXPECT_EQ(RangeOf(map, 5461), nullptr);
  EXPECT_EQ(RangeOf(map, 10922), nullptr);
  EXPECT_EQ(map.CoveredSlots(), size_t{kSlotCount} - (10922 - 5461 + 1));
  EXPECT_EQ(PrimaryPort(map, 0), 31700);
  EXPECT_EQ(PrimaryPort(map, 16383), 31702);
  ExpectConsistent(map);
}

TEST(SlotMapTest, AShardWithoutSlotsIsSkipped) {
  // A primary just added to the cluster serves no slot yet.
  std::vector<Shard> shards = CapturedShards();
  shards.push_back({{}, {{"0123456789012345678901234567890123456789", 31706, "master", 0}}});
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Shards(Encode(shards), kSource, &map, &error)) << error;
  EXPECT_EQ(map.ranges.size(), 3u);
  EXPECT_EQ(map.CoveredSlots(), kSlotCount);
  // Its node is still listed (the health report shows every node the cluster names).
  EXPECT_EQ(map.nodes.size(), 7u);
}

TEST(SlotMapTest, AShardWithSeveralRangesListsEach) {
  // After a resharding a primary may serve several ranges: each gets the shard's replicas.
  std::vector<Shard> shards = CapturedShards();
  shards[2].slots = {0, 99, 200, 5460};
  shards[1].slots = {100, 199, 5461, 10922};
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Shards(Encode(shards), kSource, &map, &error)) << error;
  EXPECT_EQ(map.ranges.size(), 5u);
  EXPECT_EQ(map.nodes.size(), 6u);
  EXPECT_EQ(map.CoveredSlots(), kSlotCount);
  EXPECT_EQ(PrimaryPort(map, 99), 31700);
  EXPECT_EQ(PrimaryPort(map, 100), 31701);
  EXPECT_EQ(ReplicaPorts(map, 150), std::vector<uint16_t>{31704});
  EXPECT_EQ(PrimaryPort(map, 200), 31700);
  EXPECT_EQ(ReplicaPorts(map, 300), std::vector<uint16_t>{31703});
}

TEST(SlotMapTest, SlotsListANodeServingSeveralRangesOnce) {
  std::vector<SlotsRange> ranges = CapturedSlots();
  ranges[0].last = 99;
  ranges.push_back({100, 5460, ranges[0].nodes});
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Slots(Encode(ranges), kSource, &map, &error)) << error;
  EXPECT_EQ(map.ranges.size(), 4u);
  EXPECT_EQ(map.nodes.size(), 6u);
  EXPECT_EQ(map.CoveredSlots(), kSlotCount);
  EXPECT_EQ(PrimaryPort(map, 5000), 31700);
  EXPECT_EQ(ReplicaPorts(map, 5000), std::vector<uint16_t>{31703});
}

TEST(SlotMapTest, OverlappingRangesAreCountedOnce) {
  SlotMap map;
  map.nodes.push_back({"127.0.0.1", 7000, "", true, true});
  map.ranges.push_back({0, 99, 0, {}});
  map.ranges.push_back({50, 149, 0, {}});
  map.ranges.push_back({16383, 16383, 0, {}});
  EXPECT_EQ(map.CoveredSlots(), 151u);
}

// The parse is refused with a reason; nothing is left to crash on.
void ExpectShardsRefused(std::string_view resp, std::string_view why) {
  SlotMap map;
  std::string error;
  EXPECT_FALSE(Shards(resp, kSource, &map, &error)) << why;
  EXPECT_FALSE(error.empty()) << why;
  EXPECT_NE(error.find("CLUSTER SHARDS"), std::string::npos) << why << ": " << error;
}

void ExpectSlotsRefused(std::string_view resp, std::string_view why) {
  SlotMap map;
  std::string error;
  EXPECT_FALSE(Slots(resp, kSource, &map, &error)) << why;
  EXPECT_FALSE(error.empty()) << why;
  EXPECT_NE(error.find("CLUSTER SLOTS"), std::string::npos) << why << ": " << error;
}

TEST(SlotMapTest, AnErrorReplyIsRefusedWithTheServersMessage) {
  // A server older than 7.0 answers CLUSTER SHARDS with this error.
  const std::string_view older = "-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n";
  for (std::string_view resp : {older, kCapturedError}) {
    SlotMap map;
    std::string error;
    EXPECT_FALSE(Shards(resp, kSource, &map, &error));
    EXPECT_NE(error.find("ERR unknown subcommand"), std::string::npos) << error;
    EXPECT_FALSE(Slots(resp, kSource, &map, &error));
    EXPECT_NE(error.find("ERR unknown subcommand"), std::string::npos) << error;
  }
}

TEST(SlotMapTest, RepliesOfTheWrongTypeAreRefused) {
  for (std::string_view resp : {":42\r\n", "+OK\r\n", "$5\r\nslots\r\n", "$-1\r\n", "*-1\r\n"}) {
    ExpectShardsRefused(resp, resp);
    ExpectSlotsRefused(resp, resp);
  }
  SlotMap map;
  std::string error;
  EXPECT_FALSE(ParseClusterShards(nullptr, kSource, &map, &error));
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_FALSE(ParseClusterSlots(nullptr, kSource, &map, &error));
  EXPECT_FALSE(error.empty());
}

TEST(SlotMapTest, EachParserRefusesTheOtherCommandsReply) {
  ExpectShardsRefused(kCapturedSlots, "a CLUSTER SLOTS reply");
  ExpectSlotsRefused(kCapturedShards, "a CLUSTER SHARDS reply");
}

TEST(SlotMapTest, ShardsWithBadSlotRangesAreRefused) {
  struct Case {
    std::vector<long long> slots;
    const char* why;
  };
  const std::vector<Case> cases = {
      {{5460, 0}, "last < first"},
      {{0, 16384}, "last slot 16384"},
      {{16384, 16384}, "slot 16384"},
      {{-1, 5460}, "negative first slot"},
      {{0, 5460, 5461}, "an odd number of bounds"},
      {{0, 99999999999999999}, "a huge slot"},
  };
  for (const Case& c : cases) {
    std::vector<Shard> shards = CapturedShards();
    shards[2].slots = c.slots;
    ExpectShardsRefused(Encode(shards), c.why);
  }
  // Bounds that are not numbers.
  std::string resp = std::string(kCapturedShards);
  resp.replace(resp.find(":5460\r\n"), 7, "$4\r\nlast\r\n");
  ExpectShardsRefused(resp, "a bound that is not a number");
}

TEST(SlotMapTest, ShardsWithBadPortsAreRefused) {
  for (long long port : {0LL, -1LL, 65536LL, 70000LL}) {
    std::vector<Shard> shards = CapturedShards();
    shards[1].nodes[1].port = port;
    ExpectShardsRefused(Encode(shards), "port " + std::to_string(port));
    shards = CapturedShards();
    shards[1].nodes[1].tls_port = port == 0 ? -1 : port;
    ExpectShardsRefused(Encode(shards), "tls-port " + std::to_string(port));
  }
  // The highest port is a port.
  std::vector<Shard> shards = CapturedShards();
  shards[1].nodes[1].port = 65535;
  SlotMap map;
  std::string error;
  ASSERT_TRUE(Shards(Encode(shards), kSource, &map, &error)) << error;
  EXPECT_EQ(ReplicaPorts(map, 5461), std::vector<uint16_t>{65535});
}

TEST(SlotMapTest, ShardsWithANodeWithoutRoleOrPortAreRefused) {
  std::vector<Shard> shards = CapturedShards();
  shards[0].nodes[1].has_role = false;
  ExpectShardsRefused(Encode(shards), "a node without role");

  // A node without a port field at all.
  std::string resp = std::string(kCapturedShards);
  const std::string port = Bulk("port") + Int(31704);
  size_t at = resp.find(port);
  resp.erase(at, port.size());
  size_t header = resp.rfind("*14\r\n", at);
  resp.replace(header, 5, "*12\r\n");
  ExpectShardsRefused(resp, "a node without port");
}

TEST(SlotMapTest, ShardsThatAreNotFieldListsAreRefused) {
  ExpectShardsRefused("*1\r\n:1\r\n", "a shard that is an integer");
  ExpectShardsRefused("*1\r\n*1\r\n$5\r\nslots\r\n", "a shard with an odd number of fields");
  ExpectShardsRefused("*1\r\n*2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:1\r\n", "a shard without nodes");
  ExpectShardsRefused("*1\r\n*4\r\n$5\r\nslots\r\n$1\r\n0\r\n$5\r\nnodes\r\n*0\r\n",
                      "slots that are not a list");
  ExpectShardsRefused(
      "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:1\r\n$5\r\nnodes\r\n*1\r\n$4\r\nnode\r\n",
      "a node that is not a list");
  ExpectShardsRefused(
      "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:1\r\n$5\r\nnodes\r\n*1\r\n*1\r\n$2\r\nid\r\n",
      "a node with an odd number of fields");
}

TEST(SlotMapTest, SlotsWithBadRangesAreRefused) {
  struct Case {
    long long first;
    long long last;
    const char* why;
  };
  const std::vector<Case> cases = {
      {5460, 0, "last < first"},
      {0, 16384, "last slot 16384"},
      {16384, 16384, "slot 16384"},
      {-1, 5460, "negative first slot"},
  };
  for (const Case& c : cases) {
    std::vector<SlotsRange> ranges = CapturedSlots();
    ranges[0].first = c.first;
    ranges[0].last = c.last;
    ExpectSlotsRefused(Encode(ranges), c.why);
  }
  std::vector<SlotsRange> ranges = CapturedSlots();
  ranges[1].nodes.clear();
  ExpectSlotsRefused(Encode(ranges), "a range without a primary");
  ExpectSlotsRefused("*1\r\n:0\r\n", "a range that is an integer");
  ExpectSlotsRefused("*1\r\n*3\r\n$1\r\na\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n",
                     "a bound not a number");
}

TEST(SlotMapTest, SlotsWithBadNodesAreRefused) {
  for (long long port : {0LL, -1LL, 65536LL, 70000LL}) {
    std::vector<SlotsRange> ranges = CapturedSlots();
    ranges[2].nodes[1].port = port;
    ExpectSlotsRefused(Encode(ranges), "port " + std::to_string(port));
  }
  ExpectSlotsRefused("*1\r\n*3\r\n:0\r\n:5\r\n$9\r\n127.0.0.1\r\n", "a node that is not a list");
  ExpectSlotsRefused("*1\r\n*3\r\n:0\r\n:5\r\n*1\r\n$9\r\n127.0.0.1\r\n", "a node without port");
  ExpectSlotsRefused("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$9\r\n127.0.0.1\r\n$-1\r\n",
                     "a node with a null port");
}

// Each scalar of `resp` (a line, or a bulk string's header and payload) replaced by
// `replacement`, which keeps the framing valid: what hiredis reads is still one reply.
std::vector<std::string> EachScalarReplaced(std::string_view resp, std::string_view replacement) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < resp.size()) {
    size_t end = resp.find("\r\n", at) + 2;
    if (resp[at] == '$' && resp.substr(at, 5) != "$-1\r\n") end = resp.find("\r\n", end) + 2;
    if (resp[at] != '*') {
      std::string variant(resp.substr(0, at));
      variant += replacement;
      variant += resp.substr(end);
      out.push_back(std::move(variant));
    }
    at = end;
  }
  return out;
}

TEST(SlotMapTest, NoScalarOfTheCapturedRepliesCanCrashTheParsers) {
  // Under the sanitizers: whatever single field is null, an integer, an error or an odd
  // string, the parse either fails with a reason or gives a map whose indexes hold.
  for (std::string_view replacement :
       {"$-1\r\n", ":-1\r\n", ":70000\r\n", "-ERR x\r\n", "$0\r\n\r\n", "$1\r\n?\r\n"}) {
    for (const std::string& resp : EachScalarReplaced(kCapturedShards, replacement)) {
      ReplyPtr reply = Read(resp);
      ASSERT_NE(reply, nullptr);
      SlotMap map;
      std::string error;
      bool shards_ok = ParseClusterShards(reply.get(), kSource, &map, &error);
      if (shards_ok) ExpectConsistent(map);
      EXPECT_TRUE(shards_ok || !error.empty());
      error.clear();
      bool slots_ok = ParseClusterSlots(reply.get(), kSource, &map, &error);
      EXPECT_FALSE(slots_ok);
      EXPECT_FALSE(error.empty());
    }
    for (const std::string& resp : EachScalarReplaced(kCapturedSlots, replacement)) {
      ReplyPtr reply = Read(resp);
      ASSERT_NE(reply, nullptr);
      SlotMap map;
      std::string error;
      bool slots_ok = ParseClusterSlots(reply.get(), kSource, &map, &error);
      if (slots_ok) ExpectConsistent(map);
      EXPECT_TRUE(slots_ok || !error.empty());
      error.clear();
      bool shards_ok = ParseClusterShards(reply.get(), kSource, &map, &error);
      EXPECT_FALSE(shards_ok);
      EXPECT_FALSE(error.empty());
    }
  }
}

}  // namespace
}  // namespace hirecache
