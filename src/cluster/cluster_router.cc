#include "cluster/cluster_router.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "client/reply_policy.h"

namespace hirecache {

// One command on its way: what the router needs to send it again (a redirection) and to
// settle its caller.
struct ClusterRouter::Routed {
  void* token = nullptr;
  uint32_t flags = 0;
  std::string bytes;                   // the arguments, one after the other
  std::vector<size_t> lengths;         // of each argument
  std::vector<size_t> argcs;           // a unit: each command's argument count (empty: one command)
  uint32_t unit_replies = 0;           // a unit: the replies it asks for
  std::vector<std::string_view> argv;  // rebuilt from bytes at each send
  int slot = -1;                       // -1: no key
  uint32_t redirects = 0;
  uint64_t issued_us = 0;
  uint64_t deadline_ms = 0;  // 0: none
  uint64_t retry_at_ms = 0;
  Node* target = nullptr;  // ASK: the node this one send goes to
  bool asking = false;     // sent as [ASKING, command]: the reply is the second
  bool map_read = false;   // the router's own CLUSTER SHARDS / SLOTS
  bool shards = false;
  bool readonly = false;  // a read a replica may serve (read_from_replicas)
  bool fixed = false;     // SubmitTo: to one node as it is, never redirected
  std::string fixed_to;
  ClientError early_error;  // refused before any node had it: settled next turn with this

  void Append(const std::string_view* args, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      bytes.append(args[i]);
      lengths.push_back(args[i].size());
    }
  }
};

struct ClusterRouter::Node {
  std::string endpoint;
  std::string host;
  uint16_t port = 0;
  std::unique_ptr<NodeListener> listener;
  std::unique_ptr<RedisClient> client;
  bool primary = false;
  bool replica = false;  // a replica of the map's (its connection sends READONLY)
  bool failed = false;   // as the map says (a failed node stays listed until forgotten)
  uint32_t slots = 0;
  bool busy = false;
  bool retiring = false;  // Quit() asked: it serves nothing in the map
  BreakerState breaker = BreakerState::kClosed;
};

// Each node client reports to one of these, which tells the router which node spoke.
class ClusterRouter::NodeListener final : public ReplyListener {
 public:
  NodeListener(ClusterRouter* router, Node* node) : router_(router), node_(node) {}
  void BeginSettle() override {
    ++router_->settle_depth_;
    router_->listener_->BeginSettle();
  }
  void EndSettle() override { router_->OnNodeEndSettle(); }
  void OnReply(void* token, uint32_t flags, const redisReply* reply) override {
    router_->OnNodeReply(node_, token, flags, reply);
  }
  void OnPush(const redisReply* message) override { router_->listener_->OnPush(message); }
  void OnFailure(void* token, uint32_t flags, const ClientError& error) override {
    router_->OnNodeFailure(node_, token, flags, error, nullptr, false);
  }
  void OnUnitFailure(void* token, uint32_t flags, const ClientError& error,
                     const redisReply* so_far) override {
    router_->OnNodeFailure(node_, token, flags, error, so_far, true);
  }
  void OnEvent(const ClientEvent& event) override { router_->OnNodeEvent(node_, event); }
  void OnBreakerState(BreakerState state, uint64_t /*openings*/) override {
    node_->breaker = state;
    router_->OnNodeBreaker(node_);
  }
  void OnBusyChanged(bool busy) override { router_->OnNodeBusy(node_, busy); }
  void OnClosed() override { router_->OnNodeClosed(node_); }

 private:
  ClusterRouter* router_;
  Node* node_;
};

namespace {

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381": the slot and the node. An empty
// host ("MOVED 3999 :6381") means the host of the node that answered.
bool ParseRedirect(const redisReply* reply, std::string_view default_host, uint16_t* slot,
                   std::string* host, uint16_t* port) {
  std::string_view text(reply->str, reply->len);
  size_t a = text.find(' ');
  if (a == std::string_view::npos) return false;
  size_t b = text.find(' ', a + 1);
  if (b == std::string_view::npos) return false;
  std::string_view slot_text = text.substr(a + 1, b - a - 1);
  std::string_view address = text.substr(b + 1);
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return false;
  unsigned s = 0;
  unsigned p = 0;
  auto r1 = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), s);
  std::string_view port_text = address.substr(colon + 1);
  auto r2 = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
  if (r1.ec != std::errc() || r2.ec != std::errc() || s >= kSlotCount || p == 0 || p > 65535) {
    return false;
  }
  *slot = static_cast<uint16_t>(s);
  std::string_view h = address.substr(0, colon);
  *host = std::string(h.empty() ? default_host : h);
  *port = static_cast<uint16_t>(p);
  return true;
}

bool StartsWith(const redisReply* reply, std::string_view prefix) {
  return reply->len >= prefix.size() && std::string_view(reply->str, prefix.size()) == prefix;
}

}  // namespace

ClusterRouter::ClusterRouter(uv_loop_t* loop, ClusterOptions options, ReplyListener* listener)
    : loop_(loop),
      options_(std::move(options)),
      listener_(listener),
      handles_([](void* self) { static_cast<ClusterRouter*>(self)->MaybeFinishClose(); }, this),
      timer_(&handles_),
      soon_(&handles_) {
  uv_timer_init(loop_, timer_.get());
  uv_timer_init(loop_, soon_.get());
  for (uv_handle_t* h : {timer_.base(), soon_.base()}) {
    h->data = this;
    uv_unref(h);
  }
  if (options_.read_from_replicas) replicas_.resize(kSlotCount);
}

ClusterRouter::~ClusterRouter() {
  // Every caller was settled before OnClosed; what is left are records of the router's own.
  for (auto* list : {&early_, &retry_, &resend_, &free_}) {
    for (Routed* r : *list) delete r;
  }
  for (Routed* r : waiting_) delete r;
}

// ---------------------------------------------------------------------------------------
// Submitting.

SubmitResult ClusterRouter::Submit(const std::string_view* argv, size_t argc, void* token,
                                   uint32_t flags) {
  if (quit_requested_ || closed_) return SubmitResult::kClosed;
  Routed* r = NewRouted(token, flags);
  r->Append(argv, argc);
  int key = RoutingKeyIndex(argv, argc);
  r->slot = key < 0 ? -1 : KeySlot(argv[key]);
  r->readonly = options_.read_from_replicas && key >= 0 && IsReadOnlyCommand(argv[0]);
  Dispatch(r);
  return SubmitResult::kAccepted;
}

// A unit (MULTI … EXEC) goes whole to the node of the first key any of its commands names.
SubmitResult ClusterRouter::SubmitUnit(const CommandUnit& unit, void* token, uint32_t flags) {
  if (quit_requested_ || closed_) return SubmitResult::kClosed;
  Routed* r = NewRouted(token, flags);
  size_t at = 0;
  for (size_t c = 0; c < unit.commands; ++c) {
    const std::string_view* argv = unit.argv + at;
    size_t argc = unit.argcs[c];
    r->Append(argv, argc);
    r->argcs.push_back(argc);
    if (r->slot < 0) {
      int key = RoutingKeyIndex(argv, argc);
      if (key >= 0) r->slot = KeySlot(argv[key]);
    }
    at += argc;
  }
  r->unit_replies = unit.replies;
  Dispatch(r);
  return SubmitResult::kAccepted;
}

SubmitResult ClusterRouter::SubmitTo(std::string_view endpoint, const std::string_view* argv,
                                     size_t argc, void* token, uint32_t flags) {
  if (quit_requested_ || closed_) return SubmitResult::kClosed;
  Routed* r = NewRouted(token, flags);
  r->Append(argv, argc);
  r->fixed = true;
  r->fixed_to = std::string(endpoint);
  Dispatch(r);
  return SubmitResult::kAccepted;
}

ClusterRouter::Routed* ClusterRouter::NewRouted(void* token, uint32_t flags) {
  Routed* r;
  if (free_.empty()) {
    r = new Routed();
  } else {
    r = free_.back();
    free_.pop_back();
  }
  r->token = token;
  r->flags = flags & kCallerFlagsMask;
  r->issued_us = MonotonicNowUs();
  uint32_t timeout = options_.node.command_timeout_ms;
  r->deadline_ms = timeout == 0 || (flags & kNoDeadline) != 0 ? 0 : r->issued_us / 1000 + timeout;
  return r;
}

void ClusterRouter::Release(Routed* r) {
  r->bytes.clear();
  r->lengths.clear();
  r->argcs.clear();
  r->argv.clear();
  r->unit_replies = 0;
  r->slot = -1;
  r->redirects = 0;
  r->retry_at_ms = 0;
  r->target = nullptr;
  r->asking = false;
  r->map_read = false;
  r->shards = false;
  r->readonly = false;
  r->fixed = false;
  r->fixed_to.clear();
  if (r->bytes.capacity() > 4096) r->bytes.shrink_to_fit();
  if (free_.size() < 1024) {
    free_.push_back(r);
  } else {
    delete r;
  }
}

void ClusterRouter::Dispatch(Routed* r) {
  if (!has_map_) {
    if (map_down_) {
      RefuseEarly(r, last_map_error_);
      RequestRefresh(false);
      return;
    }
    if (waiting_.size() >= options_.node.max_queue) {
      RefuseEarly(r, {ErrorKind::kQueueFull, "ERR_QUEUE_FULL",
                      "command refused: " + std::to_string(waiting_.size()) +
                          " commands already wait for the cluster's slot map (maxQueue " +
                          std::to_string(options_.node.max_queue) + ")"});
      return;
    }
    waiting_.push_back(r);
    UpdateBusy();
    if (!refresh_in_flight_) RequestRefresh(true);  // the read on its way serves it too
    ArmTimer();
    return;
  }
  if (r->fixed) {
    auto it = nodes_.find(r->fixed_to);
    if (it == nodes_.end()) {
      RefuseEarly(r, {ErrorKind::kConnection, "ERR_UNKNOWN_NODE",
                      "no node " + r->fixed_to + " in the cluster's slot map"});
      return;
    }
    SendTo(it->second.get(), r);
    return;
  }
  if (r->target != nullptr && r->target->retiring) r->target = nullptr;
  Node* node = r->target != nullptr ? r->target : NodeFor(*r);
  if (node == nullptr) {
    RequestRefresh(true);
    RefuseEarly(r, {ErrorKind::kConnection, "CLUSTERDOWN",
                    "no primary serves hash slot " + std::to_string(r->slot) +
                        " in the cluster's slot map"});
    return;
  }
  SendTo(node, r);
}

ClusterRouter::Node* ClusterRouter::NodeFor(const Routed& r) {
  if (r.slot < 0) {
    // A command without a key goes where the last one went while that node is a primary:
    // MULTI and EXEC on a connection of the caller's own follow its WATCHed key, and a
    // subscriber's SUBSCRIBE and UNSUBSCRIBE reach the same node.
    if (sticky_ != nullptr && sticky_->primary && !sticky_->retiring) return sticky_;
    return AnyPrimary();
  }
  if (r.readonly && r.redirects == 0) {
    // A read goes to a replica of its slot whose breaker is closed, in turn; else to the
    // primary. A replica that cannot serve it answers MOVED, which sends it to the primary.
    const std::vector<Node*>& reps = replicas_[static_cast<size_t>(r.slot)];
    for (size_t i = 0; i < reps.size(); ++i) {
      Node* rep = reps[(next_replica_ + i) % reps.size()];
      if (rep->breaker == BreakerState::kClosed) {
        ++next_replica_;
        return rep;
      }
    }
  }
  return slots_[static_cast<size_t>(r.slot)];
}

ClusterRouter::Node* ClusterRouter::AnyPrimary() {
  if (primaries_.empty()) return nullptr;
  Node* node = primaries_[next_primary_ % primaries_.size()];
  ++next_primary_;
  return node;
}

void ClusterRouter::SendTo(Node* node, Routed* r) {
  if (node->client == nullptr) {
    if (node->retiring || quit_requested_) {
      RefuseEarly(r, {ErrorKind::kConnection, "ERR_NODE_CLOSED",
                      node->retiring ? node->endpoint + " left the cluster's slot map"
                                     : "the client was closed before the command was sent"});
      return;
    }
    StartNode(node);
  }
  r->argv.clear();
  if (r->asking) r->argv.emplace_back("ASKING");
  size_t at = 0;
  for (size_t len : r->lengths) {
    r->argv.emplace_back(r->bytes.data() + at, len);
    at += len;
  }
  if (!r->fixed && !r->readonly) sticky_ = node;
  node->client->IssueNextAt(r->issued_us);
  SubmitResult result;
  if (r->asking) {
    size_t argcs[2] = {1, r->lengths.size()};
    CommandUnit unit{r->argv.data(), argcs, 2, 2};
    result = node->client->SubmitUnit(unit, r, r->flags);
  } else if (!r->argcs.empty()) {
    CommandUnit unit{r->argv.data(), r->argcs.data(), r->argcs.size(), r->unit_replies};
    result = node->client->SubmitUnit(unit, r, r->flags);
  } else {
    result = node->client->Submit(r->argv.data(), r->argv.size(), r, r->flags);
  }
  if (result == SubmitResult::kClosed) {
    // The node is being retired: the map moved away from it after this command was routed.
    RefuseEarly(r, {ErrorKind::kConnection, "ERR_NODE_CLOSED",
                    "the connection to " + node->endpoint + " was closing"});
  }
}

ClusterRouter::Node* ClusterRouter::EnsureNode(const std::string& host, uint16_t port) {
  std::string endpoint = EndpointOf(host, port);
  auto it = nodes_.find(endpoint);
  if (it != nodes_.end()) return it->second.get();
  // New, or back after being retired: a new record (the old one's connection closes alone).
  auto node = std::make_unique<Node>();
  node->endpoint = endpoint;
  node->host = host;
  node->port = port;
  Node* raw = node.get();
  nodes_.emplace(endpoint, std::move(node));
  return raw;
}

void ClusterRouter::StartNode(Node* node) {
  ClientOptions o = options_.node;
  o.host = node->host;
  o.port = node->port;
  // The router decides when a node is tried again; the node's client its own backoff.
  o.owner_schedules_reconnect = false;
  o.readonly = node->replica && options_.read_from_replicas;
  o.cluster_down_opens_breaker = false;
  node->listener = std::make_unique<NodeListener>(this, node);
  node->client = std::make_unique<RedisClient>(loop_, std::move(o), node->listener.get());
}

void ClusterRouter::RefuseEarly(Routed* r, ClientError error) {
  r->early_error = std::move(error);
  early_.push_back(r);
  UpdateBusy();
  ArmSoon();
}

// ---------------------------------------------------------------------------------------
// Replies from the nodes.

void ClusterRouter::OnNodeEndSettle() {
  if (!resend_.empty() && !closed_) {
    std::vector<Routed*> batch;
    batch.swap(resend_);
    for (Routed* r : batch) Dispatch(r);
  }
  --settle_depth_;
  listener_->EndSettle();
}

void ClusterRouter::OnNodeReply(Node* node, void* token, uint32_t /*flags*/,
                                const redisReply* reply) {
  Routed* r = static_cast<Routed*>(token);
  if (r->map_read) {
    OnMapReply(node, reply, r->shards);
    Release(r);
    return;
  }
  if (r->asking) {
    // [ASKING's +OK, the command's reply]: the caller gets the second.
    r->asking = false;
    r->target = nullptr;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) reply = reply->element[1];
  }
  if (reply->type == REDIS_REPLY_ERROR && !r->fixed && Redirect(node, r, reply)) return;
  Finish(r, reply);
}

// Acts on MOVED, ASK, TRYAGAIN, CLUSTERDOWN and LOADING: true when the command will be sent
// again (the caller waits on), false when this reply is its answer.
bool ClusterRouter::Redirect(Node* node, Routed* r, const redisReply* reply) {
  ReplyClass kind = ClassifyReply(reply);
  bool busy_cluster = StartsWith(reply, "CLUSTERDOWN") || kind == ReplyClass::kTryAgain ||
                      kind == ReplyClass::kLoading;
  if (kind != ReplyClass::kMoved && kind != ReplyClass::kAsk && !busy_cluster) return false;
  if (quit_requested_) return false;  // closing: the reply is the caller's answer
  // A caller with somewhere else to go (the cache, the limiter) hears at once that the
  // cluster cannot serve; a plain one waits it out within its deadline.
  if (busy_cluster && (r->flags & kHasFallback) != 0) return false;
  if (kind == ReplyClass::kMoved || StartsWith(reply, "CLUSTERDOWN")) RequestRefresh(false);
  uint64_t now_ms = MonotonicNowMs();
  if (r->redirects >= options_.max_redirections || PastDeadline(*r, now_ms)) return false;
  if (!r->argcs.empty()) return false;  // a unit's replies are its caller's (see the header)
  if (busy_cluster) {
    // The slot is moving, the cluster is electing a primary or the node is loading: wait a
    // little (10, 20, 40… ms, at most 200), then route the command afresh. A wait that would
    // end past the deadline is not begun: this reply is the answer.
    uint64_t wait = std::min<uint64_t>(200, 10ull << std::min<uint32_t>(r->redirects, 5));
    if (r->deadline_ms != 0 && now_ms + wait >= r->deadline_ms) return false;
    ++r->redirects;
    ++redirections_;
    r->retry_at_ms = now_ms + wait;
    retry_.push_back(r);
    UpdateBusy();
    ArmTimer();
    return true;
  }
  uint16_t slot = 0;
  std::string host;
  uint16_t port = 0;
  if (!ParseRedirect(reply, node->host, &slot, &host, &port)) return false;
  ++r->redirects;
  ++redirections_;
  Node* to = EnsureNode(host, port);
  if (kind == ReplyClass::kMoved) {
    Node*& owner = slots_[slot];
    if (owner != to) {
      if (owner != nullptr && owner->slots > 0) --owner->slots;
      owner = to;
      ++to->slots;
      if (!to->primary) {
        to->primary = true;
        primaries_.push_back(to);
      }
    }
    r->target = nullptr;
  } else {
    r->target = to;
    r->asking = true;
  }
  resend_.push_back(r);
  if (settle_depth_ == 0) ArmSoon();
  return true;
}

void ClusterRouter::Finish(Routed* r, const redisReply* reply) {
  listener_->OnReply(r->token, r->flags, reply);
  Release(r);
}

void ClusterRouter::FinishFailed(Routed* r, const ClientError& error) {
  if (r->map_read) {
    // The router's own read, refused before a node had it (the client is closing, or the
    // node left the map): no caller to tell; the round ends here.
    refresh_in_flight_ = false;
    refresh_tried_.clear();
    Release(r);
    return;
  }
  listener_->OnFailure(r->token, r->flags, error);
  Release(r);
}

void ClusterRouter::OnNodeFailure(Node* node, void* token, uint32_t /*flags*/,
                                  const ClientError& error, const redisReply* so_far, bool unit) {
  Routed* r = static_cast<Routed*>(token);
  if (r->map_read) {
    OnMapFailed(node, error);
    Release(r);
    return;
  }
  // A node that cannot be reached may have failed over: the map says where its slots went.
  if (error.kind == ErrorKind::kConnection || error.kind == ErrorKind::kOutcomeUnknown ||
      error.kind == ErrorKind::kTls) {
    RequestRefresh(false);
  }
  if (unit && !r->asking) {
    listener_->OnUnitFailure(r->token, r->flags, error, so_far);
    Release(r);
    return;
  }
  FinishFailed(r, error);
}

bool ClusterRouter::PastDeadline(const Routed& r, uint64_t now_ms) const {
  return r.deadline_ms != 0 && now_ms >= r.deadline_ms;
}

void ClusterRouter::OnNodeEvent(Node* node, const ClientEvent& event) {
  switch (event.type) {
    case ClientEventType::kError:
      RequestRefresh(false);
      degraded_ = true;
      listener_->OnEvent(event);
      break;
    case ClientEventType::kConnect:
    case ClientEventType::kClose:
      // A subscriber's subscriptions live on its connections: one that closed lost its own,
      // and the owner renews every subscription on the next 'connect' (renewing one held
      // elsewhere is harmless).
      if (options_.node.subscriber && has_map_) listener_->OnEvent(event);
      break;
    case ClientEventType::kReady:
      // A node back after errors: once every primary serves again, the cluster is 'ready'
      // again (the owner's log says the outage is over).
      MaybeRecovered();
      break;
    case ClientEventType::kReconnecting:
    case ClientEventType::kResolve:
    case ClientEventType::kBreaker:
      // The cluster's own: 'ready' when the first map arrives, 'breaker' when every primary
      // is unusable (UpdateBreaker). A node's own comings and goings show in NodeStats.
      (void)node;
      break;
  }
}

void ClusterRouter::OnNodeBusy(Node* node, bool busy) {
  if (node->busy == busy) return;
  node->busy = busy;
  busy_nodes_ += busy ? 1 : -1;
  UpdateBusy();
}

void ClusterRouter::OnNodeBreaker(Node* /*node*/) { UpdateBreaker(); }

void ClusterRouter::OnNodeClosed(Node* node) {
  retired_metrics_.Add(node->client->Metrics());
  // Deleting the client here is allowed (nothing of it runs after OnClosed).
  node->client.reset();
  node->listener.reset();
  if (node->busy) OnNodeBusy(node, false);
  // A retired node's record stays until the router goes (commands on their way may still
  // name it); it never opens a connection again.
  MaybeFinishClose();
}

// ---------------------------------------------------------------------------------------
// The slot map.

void ClusterRouter::RequestRefresh(bool urgent) {
  if (quit_requested_ || closed_) return;
  refresh_wanted_ = true;
  if (refresh_in_flight_) return;
  uint64_t now = MonotonicNowMs();
  if (now < retry_refresh_at_ms_ ||
      (!urgent && last_refresh_ms_ != 0 && now < last_refresh_ms_ + kMinRefreshGapMs)) {
    ArmTimer();
    return;
  }
  StartRefresh();
}

// Asks one node for the map: a primary of the current map in turn, else a seed in turn.
// A node that cannot answer makes the round go on to the next one.
void ClusterRouter::StartRefresh() {
  if (quit_requested_ || closed_) {
    refresh_in_flight_ = false;
    return;
  }
  refresh_wanted_ = false;
  refresh_in_flight_ = true;
  last_refresh_ms_ = MonotonicNowMs();
  ++map_reads_;
  std::vector<std::pair<std::string, uint16_t>> candidates;
  for (Node* p : primaries_) {
    if (p->breaker == BreakerState::kClosed) candidates.emplace_back(p->host, p->port);
  }
  for (const auto& seed : options_.seeds) candidates.push_back(seed);
  for (Node* p : primaries_) {
    if (p->breaker != BreakerState::kClosed) candidates.emplace_back(p->host, p->port);
  }
  Node* node = nullptr;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& c = candidates[(next_seed_ + i) % candidates.size()];
    std::string endpoint = EndpointOf(c.first, c.second);
    if (std::find(refresh_tried_.begin(), refresh_tried_.end(), endpoint) != refresh_tried_.end()) {
      continue;
    }
    refresh_tried_.push_back(endpoint);
    node = EnsureNode(c.first, c.second);
    break;
  }
  if (node == nullptr) {
    // Every candidate failed this round: the map cannot be read now.
    refresh_in_flight_ = false;
    refresh_tried_.clear();
    ++next_seed_;
    MapRoundFailed();
    return;
  }
  Routed* r = NewRouted(nullptr, 0);
  r->map_read = true;
  r->shards = !shards_refused_;
  std::string_view argv[2] = {"CLUSTER", r->shards ? "SHARDS" : "SLOTS"};
  for (std::string_view a : argv) {
    r->bytes.append(a);
    r->lengths.push_back(a.size());
  }
  r->fixed = true;
  SendTo(node, r);
}

void ClusterRouter::OnMapReply(Node* node, const redisReply* reply, bool shards) {
  SlotMap map;
  std::string error;
  SlotMapSource source{node->host, node->port, options_.node.tls != nullptr};
  bool ok = shards ? ParseClusterShards(reply, source, &map, &error)
                   : ParseClusterSlots(reply, source, &map, &error);
  if (!ok && shards && reply->type == REDIS_REPLY_ERROR) {
    // A server before Redis 7 (or one that hides SHARDS): ask it for CLUSTER SLOTS.
    shards_refused_ = true;
    refresh_in_flight_ = false;
    refresh_tried_.pop_back();
    StartRefresh();
    return;
  }
  if (ok && map.ranges.empty()) {
    ok = false;
    error = node->endpoint + " serves no slot (is cluster-enabled on, and the cluster created?)";
  }
  refresh_in_flight_ = false;
  if (!ok) {
    last_map_error_ = {
        ErrorKind::kConnection, "ERR_CLUSTER_MAP",
        "could not read the cluster's slot map from " + node->endpoint + ": " + error};
    StartRefresh();  // the next candidate of this round
    return;
  }
  refresh_tried_.clear();
  ApplyMap(map);
  if (refresh_wanted_) ArmTimer();
}

void ClusterRouter::OnMapFailed(Node* node, const ClientError& error) {
  refresh_in_flight_ = false;
  last_map_error_ = error;
  if (last_map_error_.message.find(node->endpoint) == std::string::npos) {
    last_map_error_.message = node->endpoint + ": " + last_map_error_.message;
  }
  StartRefresh();
}

// No node could give the map. Before the first map, waiting commands fail with the reason
// and new ones fail fast until a later round succeeds (as a single client does while Redis
// is down); with a map, the old map stays in use.
void ClusterRouter::MapRoundFailed() {
  if (last_map_error_.code.empty()) {
    last_map_error_ = {ErrorKind::kConnection, "ERR_CLUSTER_MAP",
                       "no node of the cluster could be asked for its slot map"};
  }
  if (!has_map_) {
    if (!map_down_) {
      map_down_ = true;
      pending_events_.emplace_back(ClientEventType::kError, last_map_error_);
    }
    FailWaiting(last_map_error_);
  }
  // Try again later: at the reconnect backoff's ceiling, never in a tight loop.
  refresh_wanted_ = true;
  retry_refresh_at_ms_ =
      MonotonicNowMs() + std::max<uint32_t>(options_.node.reconnect_max_delay_ms, 100);
  ArmTimer();
  ArmSoon();
}

void ClusterRouter::ApplyMap(const SlotMap& map) {
  std::array<Node*, kSlotCount> slots{};
  std::vector<Node*> primaries;
  std::vector<Node*> nodes(map.nodes.size(), nullptr);
  for (size_t i = 0; i < map.nodes.size(); ++i) {
    nodes[i] = EnsureNode(map.nodes[i].host, map.nodes[i].port);
  }
  for (auto& entry : nodes_) {
    entry.second->slots = 0;
    entry.second->primary = false;
    entry.second->replica = false;
  }
  for (const SlotRange& range : map.ranges) {
    for (size_t rep : range.replicas) nodes[rep]->replica = true;
  }
  if (options_.read_from_replicas) {
    for (auto& list : replicas_) list.clear();
  }
  for (const SlotRange& range : map.ranges) {
    Node* primary = nodes[range.primary];
    if (!primary->primary) {
      primary->primary = true;
      primaries.push_back(primary);
    }
    primary->slots += range.last - range.first + 1u;
    for (uint32_t s = range.first; s <= range.last; ++s) slots[s] = primary;
    if (options_.read_from_replicas) {
      for (size_t rep : range.replicas) {
        for (uint32_t s = range.first; s <= range.last; ++s) replicas_[s].push_back(nodes[rep]);
      }
    }
  }
  bool moved = has_map_ && slots != slots_;
  slots_ = slots;
  primaries_ = std::move(primaries);
  bool first = !has_map_;
  if (moved && options_.node.subscriber) {
    // Slots changed hands (a failover, a resharding): shard channels subscribed on the old
    // owner are gone with it. A close and a connect make the owner renew them.
    pending_events_.emplace_back(ClientEventType::kClose);
    pending_events_.emplace_back(ClientEventType::kConnect);
  }
  has_map_ = true;
  map_down_ = false;
  next_periodic_ms_ =
      options_.refresh_interval_ms == 0 ? 0 : MonotonicNowMs() + options_.refresh_interval_ms;
  RetireUnused(map);
  if (first) {
    pending_events_.emplace_back(ClientEventType::kConnect);
    pending_events_.emplace_back(ClientEventType::kReady);
  }
  // Commands that waited for the map go now, in the order they came.
  while (!waiting_.empty()) {
    resend_.push_back(waiting_.front());
    waiting_.pop_front();
  }
  UpdateBreaker();
  UpdateBusy();
  MaybeRecovered();
  ArmSoon();
  ArmTimer();
}

void ClusterRouter::MaybeRecovered() {
  if (!degraded_ || !has_map_) return;
  for (Node* p : primaries_) {
    if (p->breaker != BreakerState::kClosed) return;
    if (p->client != nullptr && p->client->state() != ClientState::kReady &&
        p->client->state() != ClientState::kIdle) {
      return;
    }
  }
  degraded_ = false;
  pending_events_.emplace_back(ClientEventType::kReady);
  ArmSoon();
}

// Closes the connections to nodes the map no longer names (a node removed, or an address
// that changed). Replicas named by the map stay even when unused.
void ClusterRouter::RetireUnused(const SlotMap& map) {
  std::vector<std::string> gone;
  for (auto& entry : nodes_) {
    Node* node = entry.second.get();
    bool named = false;
    for (const ClusterNodeInfo& info : map.nodes) {
      if (info.port == node->port && info.host == node->host) named = true;
    }
    bool seed = false;
    for (const auto& s : options_.seeds) {
      if (s.second == node->port && s.first == node->host) seed = true;
    }
    // A node the map names but that serves nothing of ours now (a failed primary whose
    // replica took over, or a replica while reads go to primaries) keeps its record, for
    // the health report, but its connection closes: it would only retry in the background.
    bool serves = node->primary || (options_.read_from_replicas && node->replica);
    if ((!named && !seed) || (node->client != nullptr && !serves)) gone.push_back(entry.first);
  }
  for (const std::string& endpoint : gone) {
    auto it = nodes_.find(endpoint);
    std::unique_ptr<Node> node = std::move(it->second);
    nodes_.erase(it);
    node->retiring = true;
    if (sticky_ == node.get()) sticky_ = nullptr;
    // Answers what it was given, then closes (OnNodeClosed).
    if (node->client != nullptr) node->client->Quit();
    retired_.push_back(std::move(node));
  }
  // The records of named nodes that were retired only for their connection come back,
  // without one, so that the health report still lists every node of the map.
  for (const ClusterNodeInfo& info : map.nodes) {
    Node* node = EnsureNode(info.host, info.port);
    node->failed = info.failed;
    if (!node->primary) node->replica = true;
  }
}

// ---------------------------------------------------------------------------------------
// Timers: retries, the first map's deadline, the periodic refresh; early settlements.

void ClusterRouter::ArmSoon() {
  if (soon_armed_ || closed_handles_) return;
  soon_armed_ = true;
  uv_ref(soon_.base());  // a caller may be waiting on what it settles
  uv_timer_start(
      soon_.get(), [](uv_timer_t* t) { static_cast<ClusterRouter*>(t->data)->OnSoon(); }, 0, 0);
}

void ClusterRouter::OnSoon() {
  soon_armed_ = false;
  uv_unref(soon_.base());
  listener_->BeginSettle();
  ++settle_depth_;
  std::vector<ClientEvent> events;
  events.swap(pending_events_);
  for (const ClientEvent& e : events) listener_->OnEvent(e);
  std::vector<Routed*> early;
  early.swap(early_);
  for (Routed* r : early) FinishFailed(r, r->early_error);
  if (!resend_.empty() && !closed_) {
    std::vector<Routed*> batch;
    batch.swap(resend_);
    for (Routed* r : batch) Dispatch(r);
  }
  --settle_depth_;
  UpdateBusy();
  CloseIfDone();
  listener_->EndSettle();
}

void ClusterRouter::ArmTimer() {
  if (closed_handles_) return;
  uint64_t now = MonotonicNowMs();
  uint64_t wake = 0;
  auto consider = [&wake](uint64_t at) {
    if (at != 0 && (wake == 0 || at < wake)) wake = at;
  };
  for (Routed* r : retry_) consider(r->retry_at_ms);
  for (Routed* r : waiting_) consider(r->deadline_ms);
  if (refresh_wanted_ && !refresh_in_flight_) {
    consider(std::max(last_refresh_ms_ + kMinRefreshGapMs, retry_refresh_at_ms_));
  }
  if (has_map_) consider(next_periodic_ms_);
  if (wake == 0) {
    uv_timer_stop(timer_.get());
    return;
  }
  uv_timer_start(
      timer_.get(), [](uv_timer_t* t) { static_cast<ClusterRouter*>(t->data)->OnTimer(); },
      wake > now ? wake - now : 0, 0);
  // Only commands waiting on the router hold the process open; a periodic refresh does not.
  if (!retry_.empty() || !waiting_.empty()) {
    uv_ref(timer_.base());
  } else {
    uv_unref(timer_.base());
  }
}

void ClusterRouter::OnTimer() {
  uint64_t now = MonotonicNowMs();
  listener_->BeginSettle();
  ++settle_depth_;
  // Commands waiting for the first map past their deadline.
  while (!waiting_.empty() && PastDeadline(*waiting_.front(), now)) {
    Routed* r = waiting_.front();
    waiting_.pop_front();
    FinishFailed(r, DeadlineError(*r));
  }
  if (!waiting_.empty()) {
    // Deadlines are not in order when some commands have none: check each.
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (PastDeadline(**it, now)) {
        Routed* r = *it;
        it = waiting_.erase(it);
        FinishFailed(r, DeadlineError(*r));
      } else {
        ++it;
      }
    }
  }
  std::vector<Routed*> due;
  for (auto it = retry_.begin(); it != retry_.end();) {
    if ((*it)->retry_at_ms <= now) {
      due.push_back(*it);
      it = retry_.erase(it);
    } else {
      ++it;
    }
  }
  for (Routed* r : due) Dispatch(r);
  if (has_map_ && next_periodic_ms_ != 0 && now >= next_periodic_ms_) {
    next_periodic_ms_ = now + options_.refresh_interval_ms;
    refresh_wanted_ = true;
  }
  if (refresh_wanted_ && !refresh_in_flight_ && now >= retry_refresh_at_ms_ &&
      now >= last_refresh_ms_ + kMinRefreshGapMs) {
    retry_refresh_at_ms_ = 0;
    StartRefresh();
  }
  --settle_depth_;
  UpdateBusy();
  ArmTimer();
  listener_->EndSettle();
}

ClientError ClusterRouter::DeadlineError(const Routed& r) const {
  std::string why = last_map_error_.message.empty() ? "the cluster's slot map had not arrived"
                                                    : "the cluster's slot map had not arrived (" +
                                                          last_map_error_.message + ")";
  (void)r;
  return {ErrorKind::kTimeout, "ETIMEDOUT",
          "command timed out after " + std::to_string(options_.node.command_timeout_ms) +
              " ms: " + why};
}

void ClusterRouter::FailWaiting(const ClientError& error) {
  while (!waiting_.empty()) {
    RefuseEarly(waiting_.front(), error);
    waiting_.pop_front();
  }
}

// ---------------------------------------------------------------------------------------
// State for the owner.

void ClusterRouter::UpdateBusy() {
  bool busy = busy_nodes_ > 0 || !waiting_.empty() || !retry_.empty() || !early_.empty() ||
              !resend_.empty();
  if (busy == busy_) return;
  busy_ = busy;
  listener_->OnBusyChanged(busy);
}

// The cluster counts as unusable (its breaker open) only when every primary's breaker is:
// with one shard down the others still serve, and that shard's commands fail fast on their
// own node's breaker.
void ClusterRouter::UpdateBreaker() {
  BreakerState state = BreakerState::kClosed;
  if (!primaries_.empty()) {
    bool all_open = true;
    bool any_half = false;
    for (Node* p : primaries_) {
      if (p->breaker == BreakerState::kClosed) all_open = false;
      if (p->breaker == BreakerState::kHalfOpen) any_half = true;
    }
    if (all_open) state = any_half ? BreakerState::kHalfOpen : BreakerState::kOpen;
  }
  if (state == breaker_) return;
  if (state == BreakerState::kOpen && breaker_ == BreakerState::kClosed) ++breaker_openings_;
  breaker_ = state;
  listener_->OnBreakerState(state, breaker_openings_);
  ClientEvent e(ClientEventType::kBreaker);
  e.breaker = state;
  e.reason = state == BreakerState::kClosed ? BreakerReason::kNone : BreakerReason::kUnreachable;
  pending_events_.push_back(e);
  ArmSoon();
}

ClientStats ClusterRouter::Stats() const {
  ClientStats s;
  if (closed_) {
    s = final_stats_;
    s.state = ClientState::kClosed;
    return s;
  }
  s.state = quit_requested_  ? ClientState::kClosing
            : has_map_       ? ClientState::kReady
            : map_down_      ? ClientState::kDown
            : nodes_.empty() ? ClientState::kIdle
                             : ClientState::kConnecting;
  auto add = [&s](const Node& node) {
    if (node.client == nullptr) return;
    ClientStats n = node.client->Stats();
    s.reconnect_attempts = std::max(s.reconnect_attempts, n.reconnect_attempts);
    s.connections_opened += n.connections_opened;
    s.in_flight += n.in_flight;
    s.queued += n.queued;
    if (n.has_last_error && (!s.has_last_error || n.last_error_at_ms >= s.last_error_at_ms)) {
      s.has_last_error = true;
      s.last_error = n.last_error;
      s.last_error_at_ms = n.last_error_at_ms;
    }
    s.breaker_opened += n.breaker_opened;
    s.breaker_closed += n.breaker_closed;
    s.breaker_opened_at_ms = std::max(s.breaker_opened_at_ms, n.breaker_opened_at_ms);
  };
  for (const auto& entry : nodes_) add(*entry.second);
  for (const auto& node : retired_) add(*node);
  s.queued += waiting_.size() + retry_.size() + resend_.size();
  if (!has_map_ && map_down_ && !s.has_last_error) {
    s.has_last_error = true;
    s.last_error = last_map_error_;
  }
  s.breaker = breaker_;
  s.breaker_reason =
      breaker_ == BreakerState::kClosed ? BreakerReason::kNone : BreakerReason::kUnreachable;
  return s;
}

const ClientMetrics& ClusterRouter::Metrics() const {
  metrics_ = retired_metrics_;
  for (const auto& entry : nodes_) {
    if (entry.second->client != nullptr) metrics_.Add(entry.second->client->Metrics());
  }
  for (const auto& node : retired_) {
    if (node->client != nullptr) metrics_.Add(node->client->Metrics());
  }
  return metrics_;
}

std::vector<ClusterNodeStats> ClusterRouter::NodeStats() const {
  std::vector<ClusterNodeStats> out;
  for (const auto& entry : nodes_) {
    const Node& node = *entry.second;
    ClusterNodeStats n;
    n.endpoint = node.endpoint;
    n.primary = node.primary;
    n.slots = node.slots;
    if (node.client != nullptr) {
      n.stats = node.client->Stats();
    } else {
      // Never needed, or closed because it serves nothing now: down if the map says it failed.
      n.stats.state = node.failed ? ClientState::kDown : ClientState::kIdle;
    }
    out.push_back(std::move(n));
  }
  std::sort(out.begin(), out.end(), [](const ClusterNodeStats& a, const ClusterNodeStats& b) {
    if (a.primary != b.primary) return a.primary;
    return a.endpoint < b.endpoint;
  });
  return out;
}

std::vector<std::string> ClusterRouter::Primaries() const {
  std::vector<std::string> out;
  for (Node* p : primaries_) out.push_back(p->endpoint);
  return out;
}

// ---------------------------------------------------------------------------------------
// Closing.

void ClusterRouter::Quit() {
  if (quit_requested_ || closed_) return;
  quit_requested_ = true;
  ClientError closed{ErrorKind::kClosed, "ERR_CLIENT_CLOSED",
                     "the client was closed before the command was sent"};
  FailWaiting(closed);
  for (Routed* r : retry_) RefuseEarly(r, closed);
  retry_.clear();
  for (auto& entry : nodes_) {
    if (entry.second->client != nullptr) entry.second->client->Quit();
  }
  for (auto& node : retired_) {
    if (node->client != nullptr) node->client->Quit();
  }
  CloseIfDone();
}

void ClusterRouter::Disconnect() {
  if (closed_) return;
  quit_requested_ = true;
  listener_->BeginSettle();
  ++settle_depth_;
  ClientError closed{ErrorKind::kClosed, "ERR_CLIENT_CLOSED",
                     "the client was disconnected before the command was sent"};
  while (!waiting_.empty()) {
    FinishFailed(waiting_.front(), closed);
    waiting_.pop_front();
  }
  for (Routed* r : retry_) FinishFailed(r, closed);
  retry_.clear();
  for (Routed* r : resend_) FinishFailed(r, closed);
  resend_.clear();
  std::vector<Routed*> early;
  early.swap(early_);
  for (Routed* r : early) FinishFailed(r, r->early_error);
  std::vector<Node*> open;
  for (auto& entry : nodes_) open.push_back(entry.second.get());
  for (auto& node : retired_) open.push_back(node.get());
  for (Node* node : open) {
    if (node->client != nullptr) node->client->Disconnect();
  }
  --settle_depth_;
  UpdateBusy();
  listener_->EndSettle();
  CloseIfDone();
}

// Once quit() or disconnect() was asked and nothing of the router's own waits, its timers
// close; OnClosed follows when every node's client has closed too.
void ClusterRouter::CloseIfDone() {
  if (!quit_requested_ || closed_handles_) return;
  if (!waiting_.empty() || !retry_.empty() || !early_.empty() || !resend_.empty()) return;
  if (soon_armed_) return;
  closed_handles_ = true;
  final_stats_ = Stats();
  timer_.Close();
  soon_.Close();
}

void ClusterRouter::MaybeFinishClose() {
  if (closed_notified_ || !closed_handles_ || handles_.open() != 0) return;
  for (const auto& entry : nodes_) {
    if (entry.second->client != nullptr) return;
  }
  for (const auto& node : retired_) {
    if (node->client != nullptr) return;
  }
  closed_notified_ = true;
  closed_ = true;
  listener_->OnClosed();  // The owner may delete the router here: nothing follows.
}

}  // namespace hirecache
