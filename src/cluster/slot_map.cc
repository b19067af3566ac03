#include "cluster/slot_map.h"

#include <hiredis/hiredis.h>

#include <charconv>

#include "cluster/slot.h"

namespace hirecache {
namespace {

std::string_view Text(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return {};
  return {r->str, r->len};
}

// An integer reply, or a string of digits (some servers send numbers as strings).
bool Number(const redisReply* r, long long* out) {
  if (r == nullptr) return false;
  if (r->type == REDIS_REPLY_INTEGER) {
    *out = r->integer;
    return true;
  }
  std::string_view t = Text(r);
  if (t.empty()) return false;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), *out);
  return ec == std::errc() && end == t.data() + t.size();
}

bool Port(const redisReply* r, uint16_t* port) {
  long long n = 0;
  if (!Number(r, &n) || n <= 0 || n > 65535) return false;
  *port = static_cast<uint16_t>(n);
  return true;
}

bool IsArray(const redisReply* r) { return r != nullptr && r->type == REDIS_REPLY_ARRAY; }

std::string Describe(const redisReply* reply) {
  if (reply != nullptr && reply->type == REDIS_REPLY_ERROR) {
    return "the node answered: " + std::string(reply->str, reply->len);
  }
  return "the reply is not in the command's form";
}

// The index of the node host:port in map->nodes, added if new.
size_t AddNode(SlotMap* map, ClusterNodeInfo node) {
  for (size_t i = 0; i < map->nodes.size(); ++i) {
    if (map->nodes[i].host == node.host && map->nodes[i].port == node.port) {
      if (node.primary) map->nodes[i].primary = true;
      return i;
    }
  }
  map->nodes.push_back(std::move(node));
  return map->nodes.size() - 1;
}

std::string HostOr(std::string_view host, const SlotMapSource& source) {
  if (host.empty() || host == "?") return std::string(source.host);
  return std::string(host);
}

}  // namespace

size_t SlotMap::CoveredSlots() const {
  std::vector<bool> seen(kSlotCount, false);
  size_t n = 0;
  for (const SlotRange& r : ranges) {
    for (uint32_t s = r.first; s <= r.last; ++s) {
      if (!seen[s]) {
        seen[s] = true;
        ++n;
      }
    }
  }
  return n;
}

// CLUSTER SHARDS: one entry per shard, each a flat list of field/value pairs with "slots"
// (pairs of first and last slot) and "nodes" (each a flat field/value list: id, port,
// tls-port, ip, endpoint, hostname, role, health…).
bool ParseClusterShards(const redisReply* reply, const SlotMapSource& source, SlotMap* map,
                        std::string* error) {
  *map = SlotMap();
  if (!IsArray(reply)) {
    *error = "CLUSTER SHARDS: " + Describe(reply);
    return false;
  }
  for (size_t s = 0; s < reply->elements; ++s) {
    const redisReply* shard = reply->element[s];
    if (!IsArray(shard) || shard->elements % 2 != 0) {
      *error = "CLUSTER SHARDS: a shard is not a list of fields";
      return false;
    }
    const redisReply* slots = nullptr;
    const redisReply* nodes = nullptr;
    for (size_t f = 0; f + 1 < shard->elements; f += 2) {
      std::string_view name = Text(shard->element[f]);
      if (name == "slots") slots = shard->element[f + 1];
      if (name == "nodes") nodes = shard->element[f + 1];
    }
    if (!IsArray(slots) || !IsArray(nodes) || slots->elements % 2 != 0) {
      *error = "CLUSTER SHARDS: a shard has no slots or nodes list";
      return false;
    }
    long long primary = -1;
    bool primary_healthy = false;
    std::vector<size_t> replicas;
    for (size_t n = 0; n < nodes->elements; ++n) {
      const redisReply* node = nodes->element[n];
      if (!IsArray(node) || node->elements % 2 != 0) {
        *error = "CLUSTER SHARDS: a node is not a list of fields";
        return false;
      }
      ClusterNodeInfo info;
      std::string_view ip;
      std::string_view endpoint;
      bool has_endpoint = false;
      uint16_t port = 0;
      uint16_t tls_port = 0;
      bool role_known = false;
      for (size_t f = 0; f + 1 < node->elements; f += 2) {
        std::string_view name = Text(node->element[f]);
        const redisReply* value = node->element[f + 1];
        if (name == "id") {
          info.id = std::string(Text(value));
        } else if (name == "ip") {
          ip = Text(value);
        } else if (name == "endpoint") {
          has_endpoint = true;
          endpoint = Text(value);
        } else if (name == "port") {
          if (!Port(value, &port)) {
            *error = "CLUSTER SHARDS: a node's port is not a port number";
            return false;
          }
        } else if (name == "tls-port") {
          if (!Port(value, &tls_port)) {
            *error = "CLUSTER SHARDS: a node's tls-port is not a port number";
            return false;
          }
        } else if (name == "role") {
          role_known = true;
          info.primary = Text(value) == "master";
        } else if (name == "health") {
          info.healthy = Text(value) == "online";
          info.failed = Text(value).substr(0, 4) == "fail";
        }
      }
      info.port = source.tls && tls_port != 0 ? tls_port : port;
      if (info.port == 0 || !role_known) {
        *error = "CLUSTER SHARDS: a node has no port or no role";
        return false;
      }
      // The endpoint is where clients go: "?" or "" there means "where you reached me", even
      // though the node still sends its ip (which clients may not reach: a load balancer, a
      // NAT). The ip stands in only for a server that sends no endpoint at all.
      info.host = HostOr(has_endpoint ? endpoint : ip, source);
      bool is_primary = info.primary;
      bool healthy = info.healthy;
      size_t index = AddNode(map, std::move(info));
      if (is_primary) {
        // A failed primary stays listed as one until the cluster forgets it: an online one
        // of the same shard (its promoted replica) wins whatever the order.
        if (primary < 0 || (healthy && !primary_healthy)) {
          primary = static_cast<long long>(index);
          primary_healthy = healthy;
        }
      } else if (healthy) {
        replicas.push_back(index);
      }
    }
    // A shard that serves no slot (a node being added, or a replica listed on its own until
    // the node answering has learned its shard) or whose primary failed with no successor yet:
    // its nodes are listed, it serves nothing.
    if (primary < 0 || slots->elements == 0) continue;
    for (size_t i = 0; i + 1 < slots->elements; i += 2) {
      long long first = 0;
      long long last = 0;
      if (!Number(slots->element[i], &first) || !Number(slots->element[i + 1], &last) ||
          first < 0 || last < first || last >= kSlotCount) {
        *error = "CLUSTER SHARDS: a slot range is out of bounds";
        return false;
      }
      map->ranges.push_back({static_cast<uint16_t>(first), static_cast<uint16_t>(last),
                             static_cast<size_t>(primary), replicas});
    }
  }
  return true;
}

// CLUSTER SLOTS: one entry per range: first slot, last slot, then the primary and each
// replica as [host, port, id, …].
bool ParseClusterSlots(const redisReply* reply, const SlotMapSource& source, SlotMap* map,
                       std::string* error) {
  *map = SlotMap();
  if (!IsArray(reply)) {
    *error = "CLUSTER SLOTS: " + Describe(reply);
    return false;
  }
  for (size_t r = 0; r < reply->elements; ++r) {
    const redisReply* range = reply->element[r];
    long long first = 0;
    long long last = 0;
    if (!IsArray(range) || range->elements < 3 || !Number(range->element[0], &first) ||
        !Number(range->element[1], &last) || first < 0 || last < first || last >= kSlotCount) {
      *error = "CLUSTER SLOTS: a range is not [first, last, primary, replicas…]";
      return false;
    }
    SlotRange out;
    out.first = static_cast<uint16_t>(first);
    out.last = static_cast<uint16_t>(last);
    for (size_t n = 2; n < range->elements; ++n) {
      const redisReply* node = range->element[n];
      ClusterNodeInfo info;
      if (!IsArray(node) || node->elements < 2 || !Port(node->element[1], &info.port)) {
        *error = "CLUSTER SLOTS: a node is not [host, port, id…]";
        return false;
      }
      info.host = HostOr(Text(node->element[0]), source);
      if (node->elements > 2) info.id = std::string(Text(node->element[2]));
      info.primary = n == 2;
      size_t index = AddNode(map, std::move(info));
      if (n == 2) {
        out.primary = index;
      } else {
        out.replicas.push_back(index);
      }
    }
    map->ranges.push_back(std::move(out));
  }
  return true;
}

}  // namespace hirecache
