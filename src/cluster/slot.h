// Where a command goes in a Redis Cluster: the hash slot of a key (CRC16 of the key, or of
// its {hash tag}, modulo 16384) and which argument of a command is the key that decides it.
#ifndef HIRECACHE_CLUSTER_SLOT_H_
#define HIRECACHE_CLUSTER_SLOT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hirecache {

constexpr uint16_t kSlotCount = 16384;

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum Redis Cluster uses.
uint16_t Crc16(std::string_view bytes);

// The slot of a key. When the key holds a '{' followed later by a '}' with at least one
// byte between them, only the bytes between the first '{' and the first '}' after it are
// hashed, so "{user:1}:name" and "{user:1}:mail" share a slot.
uint16_t KeySlot(std::string_view key);

// The argument that decides a command's node: an index into argv, or -1 for a command that
// names no key (PING, INFO, SCRIPT LOAD, an EVAL with no keys…), which any primary may serve.
// Shard channels (SSUBSCRIBE, SPUBLISH) hash like keys. A command naming several keys is
// routed by its first; Redis refuses it (CROSSSLOT) when the others live in other slots.
int RoutingKeyIndex(const std::string_view* argv, size_t argc);

// Whether a command only reads (GET, MGET, HGETALL, ZRANGE…), so that a replica may serve it
// when the cluster client reads from replicas. Commands not known to be reads are false.
bool IsReadOnlyCommand(std::string_view name);

}  // namespace hirecache

#endif  // HIRECACHE_CLUSTER_SLOT_H_
