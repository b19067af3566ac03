// ClusterRouter on the system libuv loop against a real Redis Cluster of three primaries (no
// replicas) that the suite starts once with `redis-cli --cluster create`: commands wait for
// the first slot map and go to the node of their key, MOVED and ASK made behind the router's
// back by moving slots are followed, SubmitTo reaches the node named and only it, seeds that
// cannot be reached fail commands fast, Quit and Disconnect settle every command once before
// OnClosed, a unit goes whole to one node, and every settlement happens inside
// BeginSettle/EndSettle while OnBusyChanged brackets the work.
#include "cluster/cluster_router.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/loop_runner.h"
#include "../support/test_server.h"
#include "cluster/slot.h"

namespace hirecache {
namespace {

using testing_support::ConnectLoopback;
using testing_support::FreePort;
using testing_support::ServerProcess;

constexpr int kNodeCount = 3;

// A reply as text: a string, an integer in decimal, "(nil)", or "[a,b]" for an array.
std::string Text(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      return std::to_string(r->integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string out = "[";
      for (size_t i = 0; i < r->elements; ++i) out += (i ? "," : "") + Text(r->element[i]);
      return out + "]";
    }
    default:
      return std::string(r->str, r->len);
  }
}

using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

// One command to the node on 127.0.0.1:`port` over a blocking connection of its own (the
// test's way of looking at or changing the cluster behind the router's back); null when the
// node could not be reached or did not answer within ten seconds.
ReplyPtr Command(int port, const std::vector<std::string>& args) {
  ReplyPtr out(nullptr, freeReplyObject);
  timeval connect_timeout{2, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, connect_timeout);
  if (c == nullptr) return out;
  if (c->err == 0) {
    timeval io_timeout{10, 0};
    redisSetTimeout(c, io_timeout);
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    out.reset(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data())));
  }
  redisFree(c);
  return out;
}

// Command's reply as Text, or "(no answer)".
std::string Ask(int port, const std::vector<std::string>& args) {
  ReplyPtr r = Command(port, args);
  return r == nullptr ? "(no answer)" : Text(r.get());
}

// Whether a Redis server on 127.0.0.1:`port` answers PING.
bool Answers(int port) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return false;
  const char ping[] = "PING\r\n";
  bool ok = write(fd, ping, sizeof(ping) - 1) == static_cast<ssize_t>(sizeof(ping) - 1);
  char buf[16] = {};
  ok = ok && read(fd, buf, sizeof(buf)) > 0 && std::string(buf).rfind("+PONG", 0) == 0;
  close(fd);
  return ok;
}

// A field of CLUSTER INFO's text ("cluster_state" → "ok"), empty when absent.
std::string InfoField(const std::string& info, const std::string& field) {
  size_t at = info.find(field + ":");
  if (at == std::string::npos) return "";
  at += field.size() + 1;
  size_t end = info.find_first_of("\r\n", at);
  return info.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// Runs `command` through the shell; its exit status, with its output in *output.
int RunShell(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  return pclose(pipe);
}

struct Outcome {
  bool done = false;
  bool ok = false;
  std::string value;  // bulk/status text, integer as decimal, "(nil)", or the error code
  ErrorKind kind = ErrorKind::kConnection;  // a failure's
  std::vector<std::string> elements;        // an array's elements, as Text() gives them
  size_t order = 0;                         // its place among the settlements (1-based)
};

// Records every settlement (tokens index into `outcomes`) and checks the ReplyListener
// contract as it goes: each command settled once, from inside BeginSettle/EndSettle, and
// never reported idle while a command awaits its settlement.
class RecordingListener : public ReplyListener {
 public:
  void BeginSettle() override {
    ++depth;
    ++begins;
  }
  void EndSettle() override {
    EXPECT_GT(depth, 0) << "EndSettle without its BeginSettle";
    --depth;
    ++ends;
  }
  void OnReply(void* token, uint32_t, const redisReply* r) override {
    Outcome& o = Settle(token);
    o.ok = r->type != REDIS_REPLY_ERROR;
    switch (r->type) {
      case REDIS_REPLY_INTEGER:
        o.value = std::to_string(r->integer);
        break;
      case REDIS_REPLY_NIL:
        o.value = "(nil)";
        break;
      case REDIS_REPLY_ARRAY:
        o.value = "array:" + std::to_string(r->elements);
        for (size_t i = 0; i < r->elements; ++i) o.elements.push_back(Text(r->element[i]));
        break;
      default:
        o.value.assign(r->str, r->len);
    }
  }
  void OnFailure(void* token, uint32_t, const ClientError& e) override {
    Outcome& o = Settle(token);
    o.ok = false;
    o.value = e.code;
    o.kind = e.kind;
  }
  void OnEvent(const ClientEvent& e) override {
    EXPECT_GT(depth, 0) << "event outside BeginSettle/EndSettle";
    events.push_back(e);
  }
  void OnBusyChanged(bool b) override {
    EXPECT_NE(b, busy) << "OnBusyChanged repeated the state it had";
    busy = b;
    busy_changes.push_back(b);
    if (b) return;
    for (const auto& [token, o] : outcomes) {
      EXPECT_TRUE(o.done) << "reported idle while command " << token << " awaits settlement";
    }
  }
  void OnClosed() override { ++closed; }

  std::map<uintptr_t, Outcome> outcomes;
  std::vector<ClientEvent> events;
  std::vector<bool> busy_changes;
  int depth = 0;
  int max_depth = 0;
  size_t begins = 0;
  size_t ends = 0;
  size_t settled = 0;
  bool busy = false;
  int closed = 0;

 private:
  Outcome& Settle(void* token) {
    EXPECT_NE(token, nullptr) << "a settlement of something the caller never submitted";
    Outcome& o = outcomes[reinterpret_cast<uintptr_t>(token)];
    EXPECT_FALSE(o.done) << "settled twice";
    EXPECT_GT(depth, 0) << "settled outside BeginSettle/EndSettle";
    if (depth > max_depth) max_depth = depth;
    o.done = true;
    o.order = ++settled;
    return o;
  }
};

// One cluster node of the suite's own.
struct ClusterNode {
  int port = 0;
  std::string id;  // CLUSTER MYID
  std::unique_ptr<ServerProcess> process;
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port); }
};

class ClusterRouterTest : public ::testing::Test {
 protected:
  // Three cluster-enabled redis-servers, each in a temporary folder with its own ports, made
  // one cluster (slots spread by redis-cli), waited on until every node says it is ok.
  static void SetUpTestSuite() {
    std::set<int> used;
    auto distinct_port = [&used] {
      for (;;) {
        int port = FreePort();
        if (used.insert(port).second) return port;
      }
    };
    for (int i = 0; i < kNodeCount; ++i) {
      // A port taken between FreePort and the server's bind makes it exit: try other ports.
      for (int attempt = 0; attempt < 3 && nodes_[i].process == nullptr; ++attempt) {
        int port = distinct_port();
        int bus_port = distinct_port();
        auto process = std::make_unique<ServerProcess>(
            "hirecache-cpp-cluster",
            [port, bus_port](const std::string& dir) -> std::vector<std::string> {
              return {"redis-server",
                      "--port",
                      std::to_string(port),
                      "--bind",
                      "127.0.0.1",
                      "--dir",
                      dir,
                      "--save",
                      "",
                      "--appendonly",
                      "no",
                      "--logfile",
                      dir + "/redis.log",
                      "--cluster-enabled",
                      "yes",
                      "--cluster-config-file",
                      "nodes.conf",
                      "--cluster-node-timeout",
                      "1000",
                      "--cluster-port",
                      std::to_string(bus_port)};
            },
            [port] { return Answers(port); });
        if (process->alive() && process->ready()) {
          nodes_[i].port = port;
          nodes_[i].process = std::move(process);
        }
      }
      if (nodes_[i].process == nullptr) {
        setup_error_ = "redis-server with --cluster-enabled did not start (is it installed?)";
        return;
      }
    }
    std::string create = "redis-cli --cluster create";
    for (const ClusterNode& n : nodes_) create += " " + n.endpoint();
    create += " --cluster-replicas 0 --cluster-yes";
    std::string output;
    if (RunShell(create, &output) != 0) {
      setup_error_ = "`" + create + "` failed:\n" + output;
      return;
    }
    auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::string last;
    for (;;) {
      last.clear();
      for (const ClusterNode& n : nodes_) {
        std::string info = Ask(n.port, {"CLUSTER", "INFO"});
        if (InfoField(info, "cluster_state") != "ok" ||
            InfoField(info, "cluster_slots_assigned") != "16384" ||
            InfoField(info, "cluster_known_nodes") != std::to_string(kNodeCount)) {
          last = n.endpoint() + " says:\n" + info;
          break;
        }
      }
      if (last.empty() || std::chrono::steady_clock::now() >= limit) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!last.empty()) {
      setup_error_ = "the cluster did not become ok within 10 s; " + last;
      return;
    }
    for (ClusterNode& n : nodes_) n.id = Ask(n.port, {"CLUSTER", "MYID"});
  }

  static void TearDownTestSuite() {
    for (ClusterNode& n : nodes_) n.process.reset();  // kills the server, removes its folder
  }

  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    for (const ClusterNode& n : nodes_) ASSERT_EQ(Ask(n.port, {"FLUSHALL"}), "OK");
  }

  void TearDown() override {
    if (router_ != nullptr && listener_.closed == 0) {
      router_->Disconnect();
      RunUntil([&] { return listener_.closed > 0; });
    }
    router_.reset();
    EXPECT_EQ(listener_.depth, 0) << "a BeginSettle was left without its EndSettle";
    EXPECT_EQ(listener_.begins, listener_.ends);
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a libuv handle was left open";
  }

  // A router over the suite's cluster (every node a seed unless `options` names seeds), with
  // no periodic refresh: the map is read only when the router has a reason to.
  void MakeRouter(ClusterOptions options = {}) {
    if (options.seeds.empty()) {
      for (const ClusterNode& n : nodes_) {
        options.seeds.emplace_back("127.0.0.1", static_cast<uint16_t>(n.port));
      }
    }
    options.refresh_interval_ms = 0;
    router_ = std::make_unique<ClusterRouter>(&loop_, options, &listener_);
  }

  uintptr_t NewToken() {
    uintptr_t token = next_token_++;
    listener_.outcomes[token];
    return token;
  }

  void MarkClosed(uintptr_t token) {
    Outcome& o = listener_.outcomes[token];
    o.done = true;
    o.value = "closed";
  }

  uintptr_t Send(std::vector<std::string> args, uint32_t flags = 0) {
    uintptr_t token = NewToken();
    std::vector<std::string_view> argv(args.begin(), args.end());
    SubmitResult r =
        router_->Submit(argv.data(), argv.size(), reinterpret_cast<void*>(token), flags);
    if (r == SubmitResult::kClosed) MarkClosed(token);
    return token;
  }

  uintptr_t SendTo(const std::string& endpoint, std::vector<std::string> args) {
    uintptr_t token = NewToken();
    std::vector<std::string_view> argv(args.begin(), args.end());
    SubmitResult r =
        router_->SubmitTo(endpoint, argv.data(), argv.size(), reinterpret_cast<void*>(token), 0);
    if (r == SubmitResult::kClosed) MarkClosed(token);
    return token;
  }

  // Submits several commands as one unit, one reply per command.
  uintptr_t SendUnit(std::vector<std::vector<std::string>> commands) {
    uintptr_t token = NewToken();
    std::vector<std::string_view> argv;
    std::vector<size_t> argcs;
    for (const auto& c : commands) {
      argv.insert(argv.end(), c.begin(), c.end());
      argcs.push_back(c.size());
    }
    CommandUnit unit{argv.data(), argcs.data(), argcs.size(), static_cast<uint32_t>(argcs.size())};
    if (router_->SubmitUnit(unit, reinterpret_cast<void*>(token), 0) == SubmitResult::kClosed) {
      MarkClosed(token);
    }
    return token;
  }

  // The loop until `done` holds, at most five seconds (test/cpp/support/loop_runner.h).
  void RunUntil(const std::function<bool()>& done, int line = __builtin_LINE()) {
    test_support::RunUntil(&loop_, done, line);
  }

  void Sleep(uint64_t ms) { test_support::Sleep(&loop_, ms); }

  const Outcome& Get(uintptr_t token) { return listener_.outcomes[token]; }
  bool AllDone() {
    for (auto& [token, o] : listener_.outcomes) {
      if (!o.done) return false;
    }
    return true;
  }

  // The index in nodes_ of the primary serving each slot, as node 0 sees the cluster (-1:
  // none).
  static std::vector<int> Owners() {
    std::vector<int> owners(kSlotCount, -1);
    ReplyPtr slots = Command(nodes_[0].port, {"CLUSTER", "SLOTS"});
    if (slots == nullptr || slots->type != REDIS_REPLY_ARRAY) return owners;
    for (size_t i = 0; i < slots->elements; ++i) {
      const redisReply* range = slots->element[i];
      if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
      for (int n = 0; n < kNodeCount; ++n) {
        if (range->element[2]->element[1]->integer != nodes_[n].port) continue;
        for (long long s = range->element[0]->integer; s <= range->element[1]->integer; ++s) {
          owners[static_cast<size_t>(s)] = n;
        }
      }
    }
    return owners;
  }
  static int OwnerOf(uint16_t slot) { return Owners()[slot]; }

  // The keys held by node `n` whose names match `pattern` (KEYS sees the node's own data).
  static std::set<std::string> KeysOn(int n, const std::string& pattern) {
    std::set<std::string> out;
    ReplyPtr keys = Command(nodes_[n].port, {"KEYS", pattern});
    if (keys == nullptr || keys->type != REDIS_REPLY_ARRAY) return out;
    for (size_t i = 0; i < keys->elements; ++i) out.insert(Text(keys->element[i]));
    return out;
  }

  // First half of a slot move, behind the router's back: IMPORTING on the target, then
  // MIGRATING on the source.
  static void StartMove(uint16_t slot, int from, int to) {
    std::string s = std::to_string(slot);
    ASSERT_EQ(Ask(nodes_[to].port, {"CLUSTER", "SETSLOT", s, "IMPORTING", nodes_[from].id}), "OK");
    ASSERT_EQ(Ask(nodes_[from].port, {"CLUSTER", "SETSLOT", s, "MIGRATING", nodes_[to].id}), "OK");
  }

  // MIGRATE of `keys` (all of the slot's when empty) from one node to another.
  static void MigrateKeys(uint16_t slot, int from, int to, std::vector<std::string> keys = {}) {
    if (keys.empty()) {
      ReplyPtr held =
          Command(nodes_[from].port, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "1000"});
      ASSERT_NE(held, nullptr);
      for (size_t i = 0; i < held->elements; ++i) keys.push_back(Text(held->element[i]));
      if (keys.empty()) return;
    }
    std::vector<std::string> migrate = {
        "MIGRATE", "127.0.0.1", std::to_string(nodes_[to].port), "", "0", "5000", "KEYS"};
    migrate.insert(migrate.end(), keys.begin(), keys.end());
    ASSERT_EQ(Ask(nodes_[from].port, migrate), "OK");
  }

  // Last step of a slot move: SETSLOT … NODE <target> on the target, the source and the
  // third node, so that every node's view (and so any map the router reads) names the target.
  static void FinishMove(uint16_t slot, int from, int to) {
    std::string s = std::to_string(slot);
    ASSERT_EQ(Ask(nodes_[to].port, {"CLUSTER", "SETSLOT", s, "NODE", nodes_[to].id}), "OK");
    ASSERT_EQ(Ask(nodes_[from].port, {"CLUSTER", "SETSLOT", s, "NODE", nodes_[to].id}), "OK");
    int third = kNodeCount - from - to;
    ASSERT_EQ(Ask(nodes_[third].port, {"CLUSTER", "SETSLOT", s, "NODE", nodes_[to].id}), "OK");
  }

  // The whole move of a slot, with its keys.
  static void MoveSlot(uint16_t slot, int from, int to) {
    StartMove(slot, from, to);
    MigrateKeys(slot, from, to);
    FinishMove(slot, from, to);
  }

  // Slots per endpoint as NodeStats reports them.
  std::map<std::string, uint32_t> SlotsByNode() {
    std::map<std::string, uint32_t> out;
    for (const ClusterNodeStats& n : router_->NodeStats()) out[n.endpoint] = n.slots;
    return out;
  }

  static inline ClusterNode nodes_[kNodeCount];
  static inline std::string setup_error_;

  uv_loop_t loop_;
  RecordingListener listener_;
  std::unique_ptr<ClusterRouter> router_;
  uintptr_t next_token_ = 1;
};

TEST_F(ClusterRouterTest, CommandsBeforeTheFirstMapWaitForItAndAreAnsweredInOrder) {
  MakeRouter();
  std::vector<uintptr_t> sets, gets;
  for (int i = 0; i < 200; ++i) {
    sets.push_back(Send({"SET", "order:" + std::to_string(i), "v" + std::to_string(i)}));
  }
  for (int i = 0; i < 200; ++i) gets.push_back(Send({"GET", "order:" + std::to_string(i)}));
  EXPECT_FALSE(router_->has_map());
  EXPECT_TRUE(router_->Primaries().empty());
  EXPECT_EQ(router_->map_reads(), 1u) << "the first command asked for the map, the rest wait";
  EXPECT_FALSE(Get(sets[0]).done) << "nothing is settled inside Submit";
  RunUntil([&] { return AllDone(); });
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(Get(sets[i]).value, "OK");
    EXPECT_EQ(Get(gets[i]).value, "v" + std::to_string(i));
    EXPECT_LT(Get(sets[i]).order, Get(gets[i]).order) << "a key's SET settles before its GET";
  }
  // Within one node the replies come in the order the commands were issued.
  std::vector<int> owners = Owners();
  std::map<int, std::vector<size_t>> orders;  // by owner: settlement orders of the SETs
  for (int i = 0; i < 200; ++i) {
    orders[owners[KeySlot("order:" + std::to_string(i))]].push_back(Get(sets[i]).order);
  }
  EXPECT_EQ(orders.size(), 3u) << "the keys cover every primary";
  for (const auto& [owner, seq] : orders) {
    EXPECT_TRUE(std::is_sorted(seq.begin(), seq.end())) << "node " << owner;
  }
  // The commands that waited were served by the read on its way: none of them asks for
  // another once it has arrived (that one would start kMinRefreshGapMs after the first).
  Sleep(300);
  EXPECT_EQ(router_->map_reads(), 1u) << "the map was read once";
  EXPECT_EQ(router_->redirections(), 0u);
  EXPECT_TRUE(router_->has_map());
  std::vector<ClusterNodeStats> stats = router_->NodeStats();
  ASSERT_EQ(stats.size(), 3u);
  uint32_t slots = 0;
  std::set<std::string> endpoints;
  for (const ClusterNodeStats& n : stats) {
    EXPECT_TRUE(n.primary) << n.endpoint;
    EXPECT_GT(n.slots, 0u) << n.endpoint;
    EXPECT_EQ(n.stats.state, ClientState::kReady) << n.endpoint;
    slots += n.slots;
    endpoints.insert(n.endpoint);
  }
  EXPECT_EQ(slots, 16384u);
  EXPECT_EQ(endpoints, std::set<std::string>(
                           {nodes_[0].endpoint(), nodes_[1].endpoint(), nodes_[2].endpoint()}));
  std::vector<std::string> primaries = router_->Primaries();
  EXPECT_EQ(std::set<std::string>(primaries.begin(), primaries.end()), endpoints);
  EXPECT_EQ(router_->Stats().state, ClientState::kReady);
}

TEST_F(ClusterRouterTest, EachCommandGoesToTheNodeThatOwnsItsKey) {
  MakeRouter();
  std::vector<uintptr_t> sets;
  for (int i = 0; i < 300; ++i) sets.push_back(Send({"SET", "route:" + std::to_string(i), "x"}));
  RunUntil([&] { return AllDone(); });
  for (uintptr_t t : sets) EXPECT_EQ(Get(t).value, "OK");
  EXPECT_EQ(router_->redirections(), 0u) << "every command went straight to its node";
  // Each node's own keyspace: a key is there exactly when the node serves its slot.
  std::set<std::string> on[kNodeCount];
  for (int n = 0; n < kNodeCount; ++n) {
    on[n] = KeysOn(n, "route:*");
    EXPECT_FALSE(on[n].empty()) << nodes_[n].endpoint();
  }
  std::vector<int> owners = Owners();
  for (int i = 0; i < 300; ++i) {
    std::string key = "route:" + std::to_string(i);
    int owner = owners[KeySlot(key)];
    ASSERT_GE(owner, 0) << key;
    for (int n = 0; n < kNodeCount; ++n) {
      EXPECT_EQ(on[n].count(key), n == owner ? 1u : 0u) << key << " on " << nodes_[n].endpoint();
    }
  }
  EXPECT_EQ(on[0].size() + on[1].size() + on[2].size(), 300u);
}

TEST_F(ClusterRouterTest, AMovedSlotIsFollowedAndLaterCommandsGoStraightToTheNewOwner) {
  MakeRouter();
  std::vector<std::string> keys;
  for (int i = 0; i < 10; ++i) keys.push_back("{moved}" + std::to_string(i));
  for (const std::string& k : keys) Send({"SET", k, "was-" + k});
  RunUntil([&] { return AllDone(); });
  uint16_t slot = KeySlot("{moved}");
  int from = OwnerOf(slot);
  ASSERT_GE(from, 0);
  int to = (from + 1) % kNodeCount;
  std::map<std::string, uint32_t> slots_before = SlotsByNode();
  MoveSlot(slot, from, to);
  uint64_t reads_before = router_->map_reads();
  // The router still sends the slot's commands to the old owner, which answers MOVED.
  std::vector<uintptr_t> gets;
  for (const std::string& k : keys) gets.push_back(Send({"GET", k}));
  RunUntil([&] { return AllDone(); });
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(Get(gets[i]).value, "was-" + keys[i]);
  EXPECT_GE(router_->redirections(), 1u);
  EXPECT_LE(router_->redirections(), keys.size());
  // MOVED asks for the map; however many commands were redirected, at most one more read
  // follows the one they started.
  RunUntil([&] { return router_->map_reads() > reads_before; });
  Sleep(250);
  EXPECT_LE(router_->map_reads() - reads_before, 2u);
  std::map<std::string, uint32_t> slots_after = SlotsByNode();
  EXPECT_EQ(slots_after[nodes_[from].endpoint()], slots_before[nodes_[from].endpoint()] - 1);
  EXPECT_EQ(slots_after[nodes_[to].endpoint()], slots_before[nodes_[to].endpoint()] + 1);
  // From now on the slot's commands go to the new owner directly.
  uint64_t redirections = router_->redirections();
  std::vector<uintptr_t> again;
  for (const std::string& k : keys) again.push_back(Send({"GET", k}));
  uintptr_t fresh = Send({"SET", "{moved}fresh", "new"});
  RunUntil([&] { return AllDone(); });
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(Get(again[i]).value, "was-" + keys[i]);
  EXPECT_EQ(Get(fresh).value, "OK");
  EXPECT_EQ(router_->redirections(), redirections) << "no MOVED once the map was read again";
  EXPECT_EQ(KeysOn(to, "{moved}*").size(), keys.size() + 1);
  EXPECT_TRUE(KeysOn(from, "{moved}*").empty());
}

TEST_F(ClusterRouterTest, AHalfMovedSlotIsServedThroughAskUntilTheMoveEnds) {
  MakeRouter();
  uintptr_t a = Send({"SET", "{ask}moved", "there"});
  uintptr_t b = Send({"SET", "{ask}stays", "here"});
  RunUntil([&] { return AllDone(); });
  ASSERT_EQ(Get(a).value, "OK");
  ASSERT_EQ(Get(b).value, "OK");
  uint16_t slot = KeySlot("{ask}");
  int from = OwnerOf(slot);
  ASSERT_GE(from, 0);
  int to = (from + 1) % kNodeCount;
  StartMove(slot, from, to);
  MigrateKeys(slot, from, to, {"{ask}moved"});
  uint64_t redirections = router_->redirections();
  // The source no longer has the migrated key: it answers ASK, and the router sends ASKING
  // and the GET to the target. The key still on the source is answered by the source.
  uintptr_t moved = Send({"GET", "{ask}moved"});
  uintptr_t stays = Send({"GET", "{ask}stays"});
  RunUntil([&] { return AllDone(); });
  EXPECT_EQ(Get(moved).value, "there");
  EXPECT_EQ(Get(stays).value, "here");
  EXPECT_EQ(router_->redirections(), redirections + 1) << "only the migrated key was redirected";
  // ASK changes nothing in the map: the next GET of the key is asked again.
  uintptr_t moved_again = Send({"GET", "{ask}moved"});
  // A new key of the half-moved slot is written on the target (ASK as well).
  uintptr_t created = Send({"SET", "{ask}new", "made"});
  RunUntil([&] { return AllDone(); });
  EXPECT_EQ(Get(moved_again).value, "there");
  EXPECT_EQ(Get(created).value, "OK");
  EXPECT_EQ(router_->redirections(), redirections + 3);
  EXPECT_EQ(KeysOn(to, "{ask}*"), std::set<std::string>({"{ask}moved", "{ask}new"}));
  EXPECT_EQ(KeysOn(from, "{ask}*"), std::set<std::string>({"{ask}stays"}));
  // The move ends: every key is answered by the target (after one MOVED).
  MigrateKeys(slot, from, to);
  FinishMove(slot, from, to);
  std::vector<uintptr_t> after = {Send({"GET", "{ask}moved"}), Send({"GET", "{ask}stays"}),
                                  Send({"GET", "{ask}new"})};
  RunUntil([&] { return AllDone(); });
  EXPECT_EQ(Get(after[0]).value, "there");
  EXPECT_EQ(Get(after[1]).value, "here");
  EXPECT_EQ(Get(after[2]).value, "made");
  EXPECT_EQ(KeysOn(to, "{ask}*").size(), 3u);
}

TEST_F(ClusterRouterTest, SubmitToReachesTheNodeNamedAndRefusesAnUnknownOneOnALaterTurn) {
  MakeRouter();
  for (int i = 0; i < 60; ++i) Send({"SET", "to:" + std::to_string(i), "x"});
  RunUntil([&] { return AllDone(); });
  std::vector<uintptr_t> ids, sizes;
  for (const ClusterNode& n : nodes_) {
    ids.push_back(SendTo(n.endpoint(), {"CLUSTER", "MYID"}));
    sizes.push_back(SendTo(n.endpoint(), {"DBSIZE"}));
  }
  RunUntil([&] { return AllDone(); });
  for (int n = 0; n < kNodeCount; ++n) {
    EXPECT_EQ(Get(ids[n]).value, nodes_[n].id) << nodes_[n].endpoint();
    EXPECT_EQ(Get(sizes[n]).value, Ask(nodes_[n].port, {"DBSIZE"})) << nodes_[n].endpoint();
    EXPECT_NE(Get(sizes[n]).value, "0") << nodes_[n].endpoint();
  }
  // As it is: a key another node serves comes back as that node's MOVED, not followed.
  std::string key = "to:0";
  int owner = OwnerOf(KeySlot(key));
  ASSERT_GE(owner, 0);
  uint64_t redirections = router_->redirections();
  uintptr_t elsewhere = SendTo(nodes_[(owner + 1) % kNodeCount].endpoint(), {"GET", key});
  RunUntil([&] { return Get(elsewhere).done; });
  EXPECT_FALSE(Get(elsewhere).ok);
  EXPECT_EQ(Get(elsewhere).value.rfind("MOVED ", 0), 0u) << Get(elsewhere).value;
  EXPECT_EQ(router_->redirections(), redirections);
  // A node the map does not name: refused, and never from inside SubmitTo.
  uintptr_t unknown = SendTo("127.0.0.1:1", {"DBSIZE"});
  EXPECT_FALSE(Get(unknown).done) << "an early failure is settled on a later turn";
  RunUntil([&] { return Get(unknown).done; });
  EXPECT_EQ(Get(unknown).value, "ERR_UNKNOWN_NODE");
}

TEST_F(ClusterRouterTest, UnreachableSeedsFailCommandsFastAndKeepFailingFast) {
  ClusterOptions options;
  options.seeds = {{"127.0.0.1", static_cast<uint16_t>(FreePort())},
                   {"127.0.0.1", static_cast<uint16_t>(FreePort())}};  // nothing listens
  options.node.connect_timeout_ms = 1000;
  MakeRouter(options);
  auto start = std::chrono::steady_clock::now();
  uintptr_t first = Send({"GET", "k"});
  RunUntil([&] { return Get(first).done; });
  auto ms = [&start] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
  };
  EXPECT_LT(ms(), 2000) << "within connect_timeout + 1 s";
  EXPECT_EQ(Get(first).value, "ECONNREFUSED");
  EXPECT_EQ(Get(first).kind, ErrorKind::kConnection);
  EXPECT_FALSE(router_->has_map());
  EXPECT_EQ(router_->Stats().state, ClientState::kDown);
  EXPECT_TRUE(router_->Stats().has_last_error);
  // Known to be unreachable now: the next command fails without waiting for anything.
  start = std::chrono::steady_clock::now();
  uintptr_t second = Send({"GET", "k"});
  EXPECT_FALSE(Get(second).done) << "an early failure is settled on a later turn";
  RunUntil([&] { return Get(second).done; });
  EXPECT_LT(ms(), 500);
  EXPECT_EQ(Get(second).value, "ECONNREFUSED");
  bool error_event = false;
  for (const ClientEvent& e : listener_.events) {
    if (e.type == ClientEventType::kError) error_event = e.error.code == "ECONNREFUSED";
  }
  EXPECT_TRUE(error_event) << "the failed round is reported as an error event";
}

TEST_F(ClusterRouterTest, QuitAnswersCommandsInFlightThenClosesOnce) {
  MakeRouter();
  uintptr_t warm = Send({"PING"});
  RunUntil([&] { return Get(warm).done; });
  std::vector<uintptr_t> incrs, counter;
  for (int i = 0; i < 100; ++i) incrs.push_back(Send({"INCR", "quit:" + std::to_string(i)}));
  for (int i = 0; i < 20; ++i) counter.push_back(Send({"INCR", "quit:counter"}));
  router_->Quit();
  EXPECT_EQ(router_->Stats().state, ClientState::kClosing);
  EXPECT_EQ(Get(Send({"PING"})).value, "closed") << "no command is accepted after Quit";
  EXPECT_EQ(Get(SendTo(nodes_[0].endpoint(), {"PING"})).value, "closed");
  EXPECT_EQ(Get(SendUnit({{"MULTI"}, {"EXEC"}})).value, "closed");
  RunUntil([&] { return listener_.closed > 0; });
  for (uintptr_t t : incrs) EXPECT_EQ(Get(t).value, "1");
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Get(counter[i]).value, std::to_string(i + 1));
  EXPECT_FALSE(listener_.busy);
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(listener_.closed, 1) << "OnClosed exactly once";
  EXPECT_EQ(router_->Stats().state, ClientState::kClosed);
  router_->Quit();  // Already closed: nothing happens.
  router_->Disconnect();
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(listener_.closed, 1);
}

TEST_F(ClusterRouterTest, QuitBeforeTheFirstMapFailsTheWaitingCommandsAndCloses) {
  MakeRouter();
  uintptr_t waiting = Send({"GET", "k"});
  router_->Quit();
  EXPECT_FALSE(Get(waiting).done) << "settled on a later turn, not inside Quit";
  RunUntil([&] { return listener_.closed > 0; });
  EXPECT_EQ(Get(waiting).value, "ERR_CLIENT_CLOSED");
  EXPECT_EQ(Get(waiting).kind, ErrorKind::kClosed);
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(listener_.closed, 1);
}

TEST_F(ClusterRouterTest, DisconnectFailsCommandsInFlightOnceThenCloses) {
  MakeRouter();
  uintptr_t warm = Send({"PING"});
  RunUntil([&] { return Get(warm).done; });
  // Written and blocking on its node, with commands pipelined behind it there.
  uintptr_t blocked = Send({"BLPOP", "{dc}list", "2"});
  std::vector<uintptr_t> behind;
  for (int i = 0; i < 5; ++i) behind.push_back(Send({"INCR", "{dc}n"}));
  RunUntil([&] { return router_->Stats().in_flight == 6; });
  Sleep(20);
  ASSERT_FALSE(Get(blocked).done);
  // Accepted and not yet written (the loop has not turned since).
  std::vector<uintptr_t> unsent;
  for (int i = 0; i < 30; ++i) unsent.push_back(Send({"GET", "dc:" + std::to_string(i)}));
  router_->Disconnect();
  EXPECT_TRUE(AllDone()) << "Disconnect settles every command before it returns";
  EXPECT_EQ(Get(blocked).value, "ERR_OUTCOME_UNKNOWN");
  for (uintptr_t t : behind) EXPECT_EQ(Get(t).value, "ERR_OUTCOME_UNKNOWN");
  for (uintptr_t t : unsent) {
    EXPECT_EQ(Get(t).value, "ERR_CLIENT_CLOSED");
    EXPECT_EQ(Get(t).kind, ErrorKind::kClosed);
  }
  EXPECT_FALSE(listener_.busy);
  EXPECT_EQ(Get(Send({"PING"})).value, "closed") << "no command is accepted after Disconnect";
  RunUntil([&] { return listener_.closed > 0; });
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(listener_.closed, 1) << "OnClosed exactly once";
  int owner = OwnerOf(KeySlot("{dc}"));
  ASSERT_GE(owner, 0);
  EXPECT_EQ(Ask(nodes_[owner].port, {"GET", "{dc}n"}), "(nil)")
      << "the commands behind the BLPOP were written but never ran";
  router_.reset();

  // Commands still waiting for the first map fail at once as well.
  listener_.closed = 0;
  MakeRouter();
  uintptr_t waiting = Send({"GET", "k"});
  router_->Disconnect();
  EXPECT_EQ(Get(waiting).value, "ERR_CLIENT_CLOSED");
  RunUntil([&] { return listener_.closed > 0; });
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(listener_.closed, 1);
}

TEST_F(ClusterRouterTest, AUnitGoesWholeToTheNodeOfItsFirstKeyAndSettlesAsOneArray) {
  MakeRouter();
  uintptr_t unit = SendUnit({{"MULTI"}, {"SET", "{t}a", "1"}, {"SET", "{t}b", "2"}, {"EXEC"}});
  RunUntil([&] { return AllDone(); });
  EXPECT_EQ(Get(unit).value, "array:4");
  EXPECT_EQ(Get(unit).elements, std::vector<std::string>({"OK", "QUEUED", "QUEUED", "[OK,OK]"}));
  int owner = OwnerOf(KeySlot("{t}"));
  ASSERT_GE(owner, 0);
  EXPECT_EQ(Ask(nodes_[owner].port, {"MGET", "{t}a", "{t}b"}), "[1,2]");
  EXPECT_EQ(router_->redirections(), 0u);
}

TEST_F(ClusterRouterTest, EverySettlementIsInsideBeginAndEndSettleAndBusyBracketsTheWork) {
  // busy_changes goes true, false, true, false…, and ends idle. (The listener checks each
  // settlement's bracket and that no idle is reported while a command awaits settlement.)
  auto bracketed = [this] {
    const std::vector<bool>& c = listener_.busy_changes;
    for (size_t i = 0; i < c.size(); ++i) {
      if (c[i] != (i % 2 == 0)) return false;
    }
    return !c.empty() && !c.back();
  };
  MakeRouter();
  // Waiting for the map, then answered; refused early; a unit.
  for (int i = 0; i < 50; ++i) Send({"SET", "{busy}" + std::to_string(i), "x"});
  EXPECT_TRUE(listener_.busy) << "busy from the first command on, inside Submit";
  EXPECT_EQ(listener_.busy_changes, std::vector<bool>({true}));
  for (int i = 0; i < 50; ++i) Send({"SET", "busy:" + std::to_string(i), "y"});
  uintptr_t unknown = SendTo("127.0.0.1:1", {"PING"});
  uintptr_t unit = SendUnit({{"MULTI"}, {"INCR", "busy:n"}, {"EXEC"}});
  RunUntil([&] { return AllDone() && !listener_.busy; });
  EXPECT_EQ(Get(unknown).value, "ERR_UNKNOWN_NODE");
  EXPECT_EQ(Get(unit).elements, std::vector<std::string>({"OK", "QUEUED", "[1]"}));
  EXPECT_TRUE(bracketed());
  // Redirected (MOVED) and sent again from inside the read that brought the MOVED.
  uint16_t slot = KeySlot("{busy}");
  int from = OwnerOf(slot);
  ASSERT_GE(from, 0);
  MoveSlot(slot, from, (from + 1) % kNodeCount);
  size_t changes = listener_.busy_changes.size();
  std::vector<uintptr_t> gets;
  for (int i = 0; i < 50; ++i) gets.push_back(Send({"GET", "{busy}" + std::to_string(i)}));
  EXPECT_TRUE(listener_.busy);
  EXPECT_EQ(listener_.busy_changes.size(), changes + 1);
  RunUntil([&] { return AllDone() && !listener_.busy; });
  for (uintptr_t t : gets) EXPECT_EQ(Get(t).value, "x");
  EXPECT_GE(router_->redirections(), 1u);
  Sleep(200);  // the map reads the MOVEDs asked for
  EXPECT_TRUE(bracketed());
  EXPECT_FALSE(listener_.busy);
  EXPECT_GT(listener_.max_depth, 0);
  EXPECT_EQ(listener_.depth, 0);
  EXPECT_EQ(listener_.begins, listener_.ends);
}

TEST_F(ClusterRouterTest, QuitWhileTheFirstMapReadFailsClosesWithoutSettlingAnythingElse) {
  ClusterOptions options;
  options.seeds = {{"127.0.0.1", static_cast<uint16_t>(FreePort())},
                   {"127.0.0.1", static_cast<uint16_t>(FreePort())}};  // nothing listens
  MakeRouter(options);
  uintptr_t waiting = Send({"GET", "k"});
  router_->Quit();  // The map read to the first seed is still connecting.
  RunUntil([&] { return listener_.closed > 0; });
  EXPECT_EQ(Get(waiting).value, "ERR_CLIENT_CLOSED");
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(listener_.closed, 1);
  EXPECT_EQ(listener_.outcomes.size(), 1u) << "only the caller's command was settled";
}

}  // namespace
}  // namespace hirecache
