// The cluster's slot map as a node reports it: which primary serves each range of hash
// slots, and its replicas. Read from CLUSTER SHARDS (Redis 7) or CLUSTER SLOTS (older
// servers, and servers that refuse SHARDS).
#ifndef HIRECACHE_CLUSTER_SLOT_MAP_H_
#define HIRECACHE_CLUSTER_SLOT_MAP_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace hirecache {

struct ClusterNodeInfo {
  std::string host;
  uint16_t port = 0;
  std::string id;
  bool primary = false;
  bool healthy = true;  // CLUSTER SHARDS says "online" (SLOTS lists only nodes it deems up)
  bool failed = false;  // CLUSTER SHARDS says "fail" (not merely "loading")
};

struct SlotRange {
  uint16_t first = 0;
  uint16_t last = 0;
  size_t primary = 0;            // index into SlotMap::nodes
  std::vector<size_t> replicas;  // indexes into SlotMap::nodes
};

struct SlotMap {
  std::vector<ClusterNodeInfo> nodes;  // each node once
  std::vector<SlotRange> ranges;
  // How many of the 16384 slots have a primary.
  size_t CoveredSlots() const;
};

// Where the map came from, to fill in what a reply leaves out: a node that does not know its
// own address answers "?" or "" for it, meaning "the address you reached me at".
struct SlotMapSource {
  std::string_view host;
  uint16_t port = 0;
  bool tls = false;  // take a node's tls-port (SHARDS) when it has one
};

// Parse one reply into `map`. False, with `error` saying what was wrong, when the reply is
// not in the command's form (an error reply, a missing field, a port out of range).
bool ParseClusterShards(const redisReply* reply, const SlotMapSource& source, SlotMap* map,
                        std::string* error);
bool ParseClusterSlots(const redisReply* reply, const SlotMapSource& source, SlotMap* map,
                       std::string* error);

}  // namespace hirecache

#endif  // HIRECACHE_CLUSTER_SLOT_MAP_H_
