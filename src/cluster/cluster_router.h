// A CommandSink over a Redis Cluster: one RedisClient per node (each with everything a single
// connection has: pipelining, deadlines, the outcome-unknown rule, its own breaker, TLS),
// opened lazily, and a slot map that says which primary serves each of the 16384 slots.
//
// Rules it keeps, besides each node client's own:
//   * A command goes to the primary of its key's slot (RoutingKeyIndex, KeySlot); a command
//     without a key to any primary, in turn.
//   * MOVED updates the slot and sends the command again to the node named; ASK sends
//     ASKING and the command, once, to the node named; TRYAGAIN, CLUSTERDOWN and LOADING
//     send it again after a short wait. Each is bounded (max_redirections) and within the
//     command's own deadline, measured from when it was first issued. A redirected command
//     did not run, so sending it again is right; a command whose connection died after it
//     was written is failed (ERR_OUTCOME_UNKNOWN) and never sent again.
//   * The map is read (CLUSTER SHARDS, or CLUSTER SLOTS where SHARDS is refused) at the
//     first command, after a redirection, after a node's connection failed, and every
//     refresh_interval_ms; one read at a time and at most one every kMinRefreshGapMs, so
//     many redirected commands never cause a stampede of map reads.
//   * Until the first map has arrived, commands wait (bounded by max_queue, for at most
//     their deadline).
//   * A node that serves no slot any more is closed once the map has moved away from it.
#ifndef HIRECACHE_CLUSTER_CLUSTER_ROUTER_H_
#define HIRECACHE_CLUSTER_CLUSTER_ROUTER_H_

#include <uv.h>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client/command_sink.h"
#include "client/redis_client.h"
#include "cluster/slot.h"
#include "cluster/slot_map.h"
#include "util/uv_handle.h"

namespace hirecache {

struct ClusterOptions {
  // The nodes to read the first map from (any of them; more than one for when some are down).
  std::vector<std::pair<std::string, uint16_t>> seeds;
  // Every node connection's options; host and port are set per node.
  ClientOptions node;
  uint32_t max_redirections = 16;
  uint32_t refresh_interval_ms = 5000;  // 0: only on redirections and failures
  // Read-only commands may go to a replica of the key's slot (READONLY is sent on replica
  // connections); off: every command goes to a primary.
  bool read_from_replicas = false;
};

// One node as the router reports it (health and metrics per node).
struct ClusterNodeStats {
  std::string endpoint;  // "host:port"
  bool primary = false;
  uint32_t slots = 0;  // slots it serves as primary in the current map
  ClientStats stats;   // its connection's (state kIdle: never opened)
};

class ClusterRouter final : public CommandSink {
 public:
  // The least time between two reads of the map (each redirection asks for one).
  static constexpr uint64_t kMinRefreshGapMs = 100;

  ClusterRouter(uv_loop_t* loop, ClusterOptions options, ReplyListener* listener);
  ~ClusterRouter() override;
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;

  SubmitResult Submit(const std::string_view* argv, size_t argc, void* token,
                      uint32_t flags) override;
  SubmitResult SubmitUnit(const CommandUnit& unit, void* token, uint32_t flags) override;
  // Sends one command to the node "host:port" as it is (no routing, no redirection): SCAN
  // on each primary. A node the map does not know is refused with ERR_UNKNOWN_NODE.
  SubmitResult SubmitTo(std::string_view endpoint, const std::string_view* argv, size_t argc,
                        void* token, uint32_t flags);
  void ReconnectIn(uint32_t /*delay_ms*/) override {}
  void Quit() override;
  void Disconnect() override;
  ClientStats Stats() const override;
  const ClientMetrics& Metrics() const override;
  void SetListener(ReplyListener* listener) override { listener_ = listener; }

  // Every node the router has a connection object for, primaries first.
  std::vector<ClusterNodeStats> NodeStats() const;
  // The primaries of the current map, as "host:port" (empty before the first map).
  std::vector<std::string> Primaries() const;
  bool has_map() const { return has_map_; }
  uint64_t map_reads() const { return map_reads_; }
  uint64_t redirections() const { return redirections_; }

 private:
  struct Node;
  class NodeListener;
  struct Routed;

  Routed* NewRouted(void* token, uint32_t flags);
  void Release(Routed* r);

  // Routing.
  void Dispatch(Routed* r);
  Node* NodeFor(const Routed& r);
  Node* AnyPrimary();
  Node* EnsureNode(const std::string& host, uint16_t port);
  void StartNode(Node* node);
  void SendTo(Node* node, Routed* r);
  void RefuseEarly(Routed* r, ClientError error);
  bool Redirect(Node* node, Routed* r, const redisReply* reply);
  void Finish(Routed* r, const redisReply* reply);
  void FinishFailed(Routed* r, const ClientError& error);
  bool PastDeadline(const Routed& r, uint64_t now_ms) const;
  ClientError DeadlineError(const Routed& r) const;

  // From the node clients.
  void OnNodeReply(Node* node, void* token, uint32_t flags, const redisReply* reply);
  void OnNodeFailure(Node* node, void* token, uint32_t flags, const ClientError& error,
                     const redisReply* so_far, bool unit);
  void OnNodeEvent(Node* node, const ClientEvent& event);
  void OnNodeBusy(Node* node, bool busy);
  void OnNodeBreaker(Node* node);
  void OnNodeClosed(Node* node);
  void OnNodeEndSettle();

  // The slot map.
  void RequestRefresh(bool urgent);
  void StartRefresh();
  void OnMapReply(Node* node, const redisReply* reply, bool shards);
  void OnMapFailed(Node* node, const ClientError& error);
  void MapRoundFailed();
  void ApplyMap(const SlotMap& map);
  void RetireUnused(const SlotMap& map);
  void MaybeRecovered();

  // Timers, state for the owner, closing.
  void ArmSoon();
  void OnSoon();
  void ArmTimer();
  void OnTimer();
  void FailWaiting(const ClientError& error);
  void UpdateBusy();
  void UpdateBreaker();
  void CloseIfDone();
  void MaybeFinishClose();

  uv_loop_t* loop_;
  ClusterOptions options_;
  ReplyListener* listener_;
  HandleGroup handles_;
  UvHandle<uv_timer_t> timer_;  // retries, waiting commands' deadlines, periodic refresh
  UvHandle<uv_timer_t> soon_;   // the next turn: early failures, events, deferred sends

  std::unordered_map<std::string, std::unique_ptr<Node>> nodes_;  // by "host:port"
  std::vector<std::unique_ptr<Node>> retired_;                    // closing: no longer in the map
  std::array<Node*, kSlotCount> slots_{};                         // primaries
  std::vector<std::vector<Node*>> replicas_;  // per slot, when read_from_replicas
  std::vector<Node*> primaries_;              // of the current map
  size_t next_primary_ = 0;                   // keyless commands go round the primaries
  size_t next_replica_ = 0;                   // reads go round a slot's replicas
  Node* sticky_ = nullptr;                    // where the last routed command went
  size_t next_seed_ = 0;
  bool has_map_ = false;
  bool refresh_in_flight_ = false;
  bool refresh_wanted_ = false;
  bool shards_refused_ = false;       // the cluster refused CLUSTER SHARDS: use CLUSTER SLOTS
  bool map_down_ = false;             // no map yet and the last round asked every node in vain
  bool degraded_ = false;             // a node reported an error since every primary last served
  uint64_t retry_refresh_at_ms_ = 0;  // after a failed round: no new one before this
  uint64_t last_refresh_ms_ = 0;
  uint64_t next_periodic_ms_ = 0;
  uint64_t map_reads_ = 0;
  uint64_t redirections_ = 0;
  std::vector<std::string> refresh_tried_;  // endpoints asked in the current round
  ClientError last_map_error_;

  std::deque<Routed*> waiting_;              // for the first map
  std::vector<Routed*> retry_;               // TRYAGAIN / CLUSTERDOWN, sent again at retry_at_ms
  std::vector<Routed*> resend_;              // redirected in a read; sent at its end
  std::vector<Routed*> early_;               // refused before any node had them: settled next turn
  std::vector<Routed*> free_;                // reused records
  std::vector<ClientEvent> pending_events_;  // delivered next turn
  bool soon_armed_ = false;
  bool closed_handles_ = false;

  size_t busy_nodes_ = 0;
  bool busy_ = false;
  BreakerState breaker_ = BreakerState::kClosed;
  uint64_t breaker_openings_ = 0;
  bool quit_requested_ = false;
  bool closed_ = false;
  bool closed_notified_ = false;
  size_t settle_depth_ = 0;
  mutable ClientMetrics metrics_;
  ClientMetrics retired_metrics_;  // of node clients already closed
  ClientStats final_stats_;
};

}  // namespace hirecache

#endif  // HIRECACHE_CLUSTER_CLUSTER_ROUTER_H_
