// RedisClient on the system libuv loop against a real redis-server started by the test:
// replies stay with their callers through pipelining, deadlines, dead connections and
// closes, and every libuv handle is closed at the end (uv_loop_close succeeds).
#include "client/redis_client.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "../support/loop_runner.h"
#include "../support/test_server.h"

namespace hirecache {
namespace {

using testing_support::ConnectLoopback;
using testing_support::FreePort;
using testing_support::ServerProcess;

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

// A redis-server of the test's own, in a temporary folder, on a free loopback port.
class RedisServer {
 public:
  RedisServer()
      : port_(FreePort()),
        process_(
            "hirecache-cpp",
            [this](const std::string& dir) -> std::vector<std::string> {
              return {"redis-server",
                      "--port",
                      std::to_string(port_),
                      "--bind",
                      "127.0.0.1",
                      "--dir",
                      dir,
                      "--save",
                      "",
                      "--appendonly",
                      "no",
                      "--logfile",
                      dir + "/redis.log"};
            },
            [this] { return Answers(port_); }) {}
  int port() const { return port_; }
  bool running() const { return process_.alive() && Answers(port_); }

 private:
  int port_;
  ServerProcess process_;
};

struct Outcome {
  bool done = false;
  bool ok = false;
  std::string value;  // bulk/status text, integer as decimal, "(nil)", or the error code
  std::vector<std::string> elements;  // an array's elements, as Text() gives them
};

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

// Records every settlement; tokens index into `outcomes`.
class RecordingListener : public ReplyListener {
 public:
  void BeginSettle() override { ++depth; }
  void EndSettle() override {
    if (--depth == 0 && after_settle) after_settle();
  }
  void OnReply(void* token, uint32_t, const redisReply* r) override {
    Outcome& o = outcomes[reinterpret_cast<uintptr_t>(token)];
    EXPECT_FALSE(o.done) << "settled twice";
    EXPECT_GT(depth, 0) << "settled outside BeginSettle/EndSettle";
    o.done = true;
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
    Outcome& o = outcomes[reinterpret_cast<uintptr_t>(token)];
    EXPECT_FALSE(o.done) << "settled twice";
    EXPECT_GT(depth, 0) << "settled outside BeginSettle/EndSettle";
    o.done = true;
    o.ok = false;
    o.value = e.code;
  }
  void OnEvent(const ClientEvent& e) override {
    EXPECT_GT(depth, 0) << "event outside BeginSettle/EndSettle";
    events.push_back(e);
  }
  void OnPush(const redisReply* message) override {
    EXPECT_GT(depth, 0) << "message outside BeginSettle/EndSettle";
    pushes.push_back(Text(message));
  }
  void OnBusyChanged(bool b) override { busy = b; }
  void OnClosed() override { closed = true; }

  std::vector<std::string> pushes;
  std::map<uintptr_t, Outcome> outcomes;
  std::vector<ClientEvent> events;
  std::function<void()> after_settle;
  int depth = 0;
  bool busy = false;
  bool closed = false;
};

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_TRUE(server_.running()) << "redis-server did not start (is it installed?)";
  }
  void TearDown() override {
    if (client_ != nullptr) {
      client_->Disconnect();
      RunUntil([&] { return listener_.closed; });
      client_.reset();
    }
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a libuv handle was left open";
  }

  void MakeClient(ClientOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = static_cast<uint16_t>(server_.port());
    client_ = std::make_unique<RedisClient>(&loop_, options, &listener_);
  }

  uintptr_t Send(std::vector<std::string> args, uint32_t flags = 0) {
    uintptr_t token = next_token_++;
    listener_.outcomes[token];
    std::vector<std::string_view> argv(args.begin(), args.end());
    SubmitResult r =
        client_->Submit(argv.data(), argv.size(), reinterpret_cast<void*>(token), flags);
    if (r == SubmitResult::kClosed) listener_.outcomes[token] = {true, false, "closed", {}};
    return token;
  }

  // The loop until `done` holds, at most five seconds (test/cpp/support/loop_runner.h).
  void RunUntil(const std::function<bool()>& done, int line = __builtin_LINE()) {
    test_support::RunUntil(&loop_, done, line);
  }

  void Sleep(uint64_t ms) { test_support::Sleep(&loop_, ms); }

  // Submits several commands as one unit asking for `replies` replies (0: one per command).
  uintptr_t SendUnit(std::vector<std::vector<std::string>> commands, uint32_t replies = 0) {
    uintptr_t token = next_token_++;
    listener_.outcomes[token];
    std::vector<std::string_view> argv;
    std::vector<size_t> argcs;
    for (const auto& c : commands) {
      argv.insert(argv.end(), c.begin(), c.end());
      argcs.push_back(c.size());
    }
    CommandUnit unit{argv.data(), argcs.data(), argcs.size(),
                     replies == 0 ? static_cast<uint32_t>(argcs.size()) : replies};
    if (client_->SubmitUnit(unit, reinterpret_cast<void*>(token), 0) == SubmitResult::kClosed) {
      listener_.outcomes[token] = {true, false, "closed", {}};
    }
    return token;
  }

  // Sends one command from a second client on the same server, waits for its answer, and
  // closes that client again. Returns the answer (as Outcome::value).
  std::string FromAnotherClient(std::vector<std::string> args) {
    ClientOptions o;
    o.host = "127.0.0.1";
    o.port = static_cast<uint16_t>(server_.port());
    RedisClient other(&loop_, o, &listener_);
    uintptr_t token = next_token_++;
    listener_.outcomes[token];
    std::vector<std::string_view> argv(args.begin(), args.end());
    other.Submit(argv.data(), argv.size(), reinterpret_cast<void*>(token), 0);
    RunUntil([&] { return Get(token).done; });
    bool was_closed = listener_.closed;
    listener_.closed = false;
    other.Disconnect();
    EXPECT_EQ(other.Stats().state, ClientState::kClosed);
    RunUntil([&] { return listener_.closed; });  // fails the test if it never closes
    listener_.closed = was_closed;
    return Get(token).value;
  }

  const Outcome& Get(uintptr_t token) { return listener_.outcomes[token]; }
  // The breaker states reported so far, in order.
  std::vector<BreakerState> BreakerEvents() {
    std::vector<BreakerState> out;
    for (const ClientEvent& e : listener_.events) {
      if (e.type == ClientEventType::kBreaker) out.push_back(e.breaker);
    }
    return out;
  }
  bool AllDone() {
    for (auto& [token, o] : listener_.outcomes) {
      if (!o.done) return false;
    }
    return true;
  }

  RedisServer server_;
  uv_loop_t loop_;
  RecordingListener listener_;
  std::unique_ptr<RedisClient> client_;
  uintptr_t next_token_ = 1;
};

TEST_F(RedisClientTest, PipelinedRepliesReachTheirOwnCallers) {
  MakeClient();
  std::vector<uintptr_t> sets, gets;
  for (int i = 0; i < 2000; ++i) {
    sets.push_back(Send({"SET", "k" + std::to_string(i), "v" + std::to_string(i)}));
  }
  for (int i = 0; i < 2000; ++i) gets.push_back(Send({"GET", "k" + std::to_string(i)}));
  uintptr_t incr = Send({"INCRBY", "counter", "5"});
  uintptr_t missing = Send({"GET", "missing"});
  uintptr_t wrong = Send({"LPUSH", "k1", "x"});
  EXPECT_EQ(client_->Stats().connections_opened, 0u) << "nothing is written before the loop runs";
  RunUntil([&] { return AllDone(); });
  for (int i = 0; i < 2000; ++i) {
    EXPECT_EQ(Get(sets[i]).value, "OK");
    EXPECT_EQ(Get(gets[i]).value, "v" + std::to_string(i));
  }
  EXPECT_EQ(Get(incr).value, "5");
  EXPECT_EQ(Get(missing).value, "(nil)");
  EXPECT_FALSE(Get(wrong).ok);
  EXPECT_EQ(Get(wrong).value.rfind("WRONGTYPE", 0), 0u);
  EXPECT_EQ(client_->Stats().connections_opened, 1u);
  EXPECT_FALSE(listener_.busy);
}

TEST_F(RedisClientTest, ADeadlineSettlesEarlyButNeverShiftsLaterReplies) {
  ClientOptions options;
  options.command_timeout_ms = 1000;
  MakeClient(options);
  uintptr_t first = Send({"SET", "k", "mine"});
  RunUntil([&] { return Get(first).done; });
  // BLPOP holds the connection for 1.2 s (Redis checks blocking timeouts every 100 ms, so
  // up to 1.3): everything behind it passes its deadline, but the connection answers well
  // before twice the deadline (2 s), so it is not declared dead.
  uintptr_t blocked = Send({"BLPOP", "empty-list", "1.2"});
  uintptr_t set = Send({"SET", "k", "v2"});
  uintptr_t get = Send({"GET", "k"});
  RunUntil([&] { return Get(blocked).done && Get(set).done && Get(get).done; });
  EXPECT_EQ(Get(blocked).value, "ETIMEDOUT");
  EXPECT_EQ(Get(set).value, "ETIMEDOUT");
  EXPECT_EQ(Get(get).value, "ETIMEDOUT");
  Sleep(600);  // The late replies (nil, OK, v2) arrive and are swallowed by their slots.
  uintptr_t after = Send({"GET", "k"});
  uintptr_t echo = Send({"ECHO", "later"});
  RunUntil([&] { return Get(after).done && Get(echo).done; });
  EXPECT_EQ(Get(after).value, "v2") << "the written SET ran even though its caller timed out";
  EXPECT_EQ(Get(echo).value, "later");
  // All of it on the one connection: the late replies were swallowed there, not dropped
  // with a connection declared dead.
  EXPECT_EQ(client_->Stats().connections_opened, 1u);
}

TEST_F(RedisClientTest, AConnectionSilentForTwiceTheDeadlineIsDeclaredDead) {
  ClientOptions options;
  options.command_timeout_ms = 100;
  MakeClient(options);
  uintptr_t first = Send({"PING"});
  RunUntil([&] { return Get(first).done; });
  uintptr_t blocked = Send({"BLPOP", "empty-list", "3"});
  uintptr_t behind = Send({"INCR", "behind"});
  RunUntil([&] { return Get(blocked).done && Get(behind).done; });
  EXPECT_EQ(Get(blocked).value, "ETIMEDOUT");
  Sleep(400);  // Nothing awaits now, so only a timer of the test's keeps the loop running.
  EXPECT_EQ(client_->Stats().connections_opened, 2u);
  EXPECT_EQ(client_->Stats().last_error.code, "ETIMEDOUT");
  uintptr_t check = Send({"GET", "behind"});
  RunUntil([&] { return Get(check).done; });
  EXPECT_EQ(Get(check).value, "(nil)") << "the INCR behind the dead connection's BLPOP never ran";
}

TEST_F(RedisClientTest, RefusedConnectionFailsFastAndLaterCallsFailAtOnce) {
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = static_cast<uint16_t>(FreePort());  // nothing listens there
  client_ = std::make_unique<RedisClient>(&loop_, options, &listener_);
  uintptr_t first = Send({"GET", "a"});
  RunUntil([&] { return Get(first).done; });
  EXPECT_EQ(Get(first).value, "ECONNREFUSED");
  EXPECT_EQ(client_->state(), ClientState::kDown);
  uintptr_t second = Send({"GET", "b"});
  EXPECT_FALSE(Get(second).done) << "an early failure is settled at the end of the loop turn";
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(Get(second).value, "ECONNREFUSED");
  EXPECT_EQ(client_->Stats().last_error.code, "ECONNREFUSED");
}

TEST_F(RedisClientTest, AKilledConnectionFailsWrittenCommandsAsOutcomeUnknownAndReconnects) {
  MakeClient();
  uintptr_t named = Send({"CLIENT", "SETNAME", "victim"});
  RunUntil([&] { return Get(named).done; });
  uintptr_t blocked = Send({"BLPOP", "empty-list", "5"});
  Sleep(50);  // BLPOP is written and blocking on the server.
  FromAnotherClient({"CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"});
  RunUntil([&] { return Get(blocked).done; });
  EXPECT_EQ(Get(blocked).value, "ERR_OUTCOME_UNKNOWN");
  uintptr_t after = Send({"PING"});
  RunUntil([&] { return Get(after).done; });
  EXPECT_EQ(Get(after).value, "PONG");
  EXPECT_EQ(client_->Stats().connections_opened, 2u);
  // The killed client's replacement connection is unaffected by the killer going away.
  uintptr_t last = Send({"PING"});
  RunUntil([&] { return Get(last).done; });
  EXPECT_EQ(Get(last).value, "PONG");
}

TEST_F(RedisClientTest, DisconnectSettlesEverythingAndQuitWaitsForReplies) {
  MakeClient();
  std::vector<uintptr_t> tokens;
  for (int i = 0; i < 100; ++i) tokens.push_back(Send({"INCR", "n"}));
  client_->Quit();
  EXPECT_EQ(Get(Send({"GET", "n"})).value, "closed") << "no command is accepted after quit";
  RunUntil([&] { return listener_.closed; });
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Get(tokens[i]).value, std::to_string(i + 1));
  client_.reset();

  listener_.closed = false;
  MakeClient();
  uintptr_t queued = Send({"GET", "n"});
  client_->Disconnect();  // Before the loop ever ran: the command was never written.
  EXPECT_EQ(Get(queued).value, "ERR_CLIENT_CLOSED");
  RunUntil([&] { return listener_.closed; });
}

TEST_F(RedisClientTest, UnsentCommandsPastTheQueueBoundAreRefused) {
  ClientOptions options;
  options.max_queue = 3;
  MakeClient(options);
  Send({"PING"});
  Send({"PING"});
  Send({"PING"});
  uintptr_t over = Send({"PING"});
  RunUntil([&] { return AllDone(); });
  EXPECT_EQ(Get(over).value, "ERR_QUEUE_FULL");
}

TEST_F(RedisClientTest, HandshakeSelectsTheDatabaseAndNamesTheConnection) {
  ClientOptions options;
  options.db = 3;
  options.client_name = "hirecache-test";
  MakeClient(options);
  uintptr_t set = Send({"SET", "only-in-3", "x"});
  uintptr_t name = Send({"CLIENT", "GETNAME"});
  uintptr_t db = Send({"EVAL", "return redis.call('DBSIZE')", "0"});
  RunUntil([&] { return AllDone(); });
  EXPECT_EQ(Get(set).value, "OK");
  EXPECT_EQ(Get(name).value, "hirecache-test");
  EXPECT_EQ(Get(db).value, "1");
}

TEST_F(RedisClientTest, AStallOpensTheBreakerAndTheFirstReplyClosesIt) {
  ClientOptions options;
  options.command_timeout_ms = 5000;
  options.breaker.stall_ms = 50;
  MakeClient(options);
  uintptr_t first = Send({"PING"});
  RunUntil([&] { return Get(first).done; });
  // A BLPOP holds the connection for 400 ms: the breaker opens after 50.
  uintptr_t sleep = Send({"BLPOP", "empty-list", "0.4"});
  uintptr_t early = Send({"GET", "k"}, kSettleWhenBreakerOpens);
  uintptr_t waits = Send({"GET", "k"});
  RunUntil([&] { return client_->Stats().breaker == BreakerState::kOpen; });
  RunUntil([&] { return Get(early).done; });
  EXPECT_EQ(Get(early).value, "ERR_OUTCOME_UNKNOWN") << "written, then given up on";
  EXPECT_FALSE(Get(waits).done) << "without the flag a command waits for its reply";
  EXPECT_EQ(client_->Stats().breaker_reason, BreakerReason::kStalled);
  uintptr_t refused = Send({"GET", "k"}, kSettleWhenBreakerOpens);
  RunUntil([&] { return Get(refused).done; });
  EXPECT_EQ(Get(refused).value, "ERR_BREAKER_OPEN") << "a flagged call fails fast while open";
  uintptr_t plain = Send({"GET", "k"});
  EXPECT_FALSE(Get(plain).done) << "a plain call is sent and waits";
  RunUntil([&] { return Get(sleep).done && Get(waits).done && Get(plain).done; });
  EXPECT_EQ(Get(waits).value, "(nil)");
  EXPECT_EQ(Get(plain).value, "(nil)");
  RunUntil([&] { return client_->Stats().breaker == BreakerState::kClosed; });
  uintptr_t after = Send({"GET", "k"});
  RunUntil([&] { return Get(after).done; });
  EXPECT_TRUE(Get(after).ok);
  RunUntil([&] { return BreakerEvents().size() >= 2; });
  EXPECT_EQ(BreakerEvents(),
            std::vector<BreakerState>({BreakerState::kOpen, BreakerState::kClosed}));
  EXPECT_EQ(client_->Metrics().outcome(Verb::kGet, hirecache::Outcome::kUnknown), 1u);
  EXPECT_EQ(client_->Metrics().outcome(Verb::kGet, hirecache::Outcome::kRefused), 1u);
  EXPECT_EQ(client_->Metrics().outcome(Verb::kGet, hirecache::Outcome::kMiss), 3u);
}

TEST_F(RedisClientTest, AnUnreachableServerOpensTheBreakerAndReportsEvents) {
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = 1;  // nothing listens there
  client_ = std::make_unique<RedisClient>(&loop_, options, &listener_);
  uintptr_t first = Send({"GET", "k"});
  RunUntil([&] { return Get(first).done; });
  EXPECT_EQ(Get(first).value, "ECONNREFUSED");
  Sleep(100);  // the events are delivered on a later turn, with a reconnect attempt or two
  ASSERT_FALSE(BreakerEvents().empty());
  EXPECT_EQ(client_->Stats().breaker_reason, BreakerReason::kUnreachable);
  bool error = false, reconnecting = false;
  for (const ClientEvent& e : listener_.events) {
    if (e.type == ClientEventType::kError) error = e.error.code == "ECONNREFUSED";
    if (e.type == ClientEventType::kReconnecting) reconnecting = e.delay_ms > 0;
  }
  EXPECT_TRUE(error);
  EXPECT_TRUE(reconnecting);
}

TEST_F(RedisClientTest, ServerErrorsThatMeanUnavailableOpenTheBreakerAndAProbeClosesIt) {
  ClientOptions options;
  options.breaker.failure_threshold = 3;
  options.breaker.open_ms = 100;
  MakeClient(options);
  // A script that keeps the server busy past busy-reply-threshold (lua-time-limit): the
  // commands behind it are answered BUSY.
  uintptr_t ping = Send({"PING"});
  RunUntil([&] { return Get(ping).done; });
  for (int i = 0; i < 3; ++i) {
    uintptr_t t = Send({"EVAL", "return redis.error_reply('BUSY Redis is busy')", "0"});
    RunUntil([&] { return Get(t).done; });
  }
  RunUntil([&] { return client_->Stats().breaker == BreakerState::kOpen; });
  EXPECT_EQ(client_->Stats().breaker_reason, BreakerReason::kFailures);
  uintptr_t refused = Send({"PING"});
  RunUntil([&] { return Get(refused).done; });
  EXPECT_EQ(Get(refused).value, "ERR_BREAKER_OPEN");
  // The probe (PING) answers after open_ms, and the breaker closes. (The client's timers
  // do not keep a loop alive by themselves: Sleep does.)
  Sleep(300);
  EXPECT_EQ(client_->Stats().breaker, BreakerState::kClosed);
  EXPECT_EQ(BreakerEvents(),
            std::vector<BreakerState>(
                {BreakerState::kOpen, BreakerState::kHalfOpen, BreakerState::kClosed}));
}

TEST_F(RedisClientTest, AUnitsRepliesSettleItsCallerAsOneArrayAndNothingComesBetween) {
  MakeClient();
  std::vector<uintptr_t> before, after, units;
  for (int i = 0; i < 300; ++i) {
    std::string k = "k" + std::to_string(i);
    before.push_back(Send({"SET", k, "plain"}));
    units.push_back(SendUnit({{"MULTI"}, {"SET", k, "tx"}, {"GET", k}, {"EXEC"}}));
    after.push_back(Send({"GET", k}));
  }
  RunUntil([&] { return AllDone(); });
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(Get(before[i]).value, "OK");
    const Outcome& u = Get(units[i]);
    ASSERT_EQ(u.elements.size(), 4u);
    EXPECT_EQ(u.elements[0], "OK");
    EXPECT_EQ(u.elements[1], "QUEUED");
    EXPECT_EQ(u.elements[2], "QUEUED");
    EXPECT_EQ(u.elements[3], "[OK,tx]");
    EXPECT_EQ(Get(after[i]).value, "tx") << "the GET after the unit sees what it wrote";
  }
}

TEST_F(RedisClientTest, AConnectionLostInsideAUnitFailsItOnceAsOutcomeUnknown) {
  MakeClient();
  uintptr_t named = Send({"CLIENT", "SETNAME", "unit-victim"});
  RunUntil([&] { return Get(named).done; });
  // The unit's first reply arrives; its last (BLPOP) waits until the connection is killed.
  uintptr_t unit = SendUnit({{"INCR", "unit-counter"}, {"BLPOP", "empty-list", "5"}});
  Sleep(50);
  FromAnotherClient({"CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"});
  RunUntil([&] { return Get(unit).done; });
  EXPECT_EQ(Get(unit).value, "ERR_OUTCOME_UNKNOWN");
  uintptr_t count = Send({"GET", "unit-counter"});
  RunUntil([&] { return Get(count).done; });
  EXPECT_EQ(Get(count).value, "1") << "a written unit is never resent";
}

TEST_F(RedisClientTest, ASubscriberConnectionHandsMessagesToOnPush) {
  ClientOptions options;
  options.subscriber = true;
  MakeClient(options);
  uintptr_t sub = SendUnit({{"SUBSCRIBE", "a", "b"}}, 2);
  RunUntil([&] { return Get(sub).done; });
  EXPECT_EQ(Get(sub).elements, std::vector<std::string>({"[subscribe,a,1]", "[subscribe,b,2]"}));
  EXPECT_EQ(FromAnotherClient({"PUBLISH", "b", "hello"}), "1");
  RunUntil([&] { return !listener_.pushes.empty(); });
  EXPECT_EQ(listener_.pushes, std::vector<std::string>({"[message,b,hello]"}));
  uintptr_t unsub = SendUnit({{"UNSUBSCRIBE", "a"}}, 1);
  RunUntil([&] { return Get(unsub).done; });
  EXPECT_EQ(Get(unsub).elements, std::vector<std::string>({"[unsubscribe,a,1]"}));
}

TEST_F(RedisClientTest, AnErrorEndsAOneCommandUnitThatAskedForSeveralReplies) {
  MakeClient();
  // Redis refuses a SUBSCRIBE as a whole with one error, however many replies it would have
  // sent: the unit ends there, and the next reply goes to the next caller.
  uintptr_t refused = SendUnit({{"SUBSCRIBE"}}, 3);
  uintptr_t after = Send({"PING"});
  RunUntil([&] { return AllDone(); });
  ASSERT_EQ(Get(refused).elements.size(), 1u);
  EXPECT_EQ(Get(refused).elements[0].rfind("ERR", 0), 0u);
  EXPECT_EQ(Get(after).value, "PONG");
}

TEST_F(RedisClientTest, MaxRetriesPerRequestLetsAnUnsentCommandWaitThroughFailedAttempts) {
  ClientOptions options;
  options.port = 1;  // nothing listens
  options.max_retries_per_request = 2;
  options.reconnect_base_delay_ms = 5;
  options.reconnect_max_delay_ms = 5;
  options.host = "127.0.0.1";
  client_ = std::make_unique<RedisClient>(&loop_, options, &listener_);
  uintptr_t waits = Send({"PING"});
  // The attempts made when the command failed (the client goes on retrying afterwards, and
  // a slow run may fit another attempt in before the loop is looked at again).
  uint64_t attempts_when_failed = 0;
  listener_.after_settle = [&] {
    if (Get(waits).done && attempts_when_failed == 0) {
      attempts_when_failed = client_->Stats().reconnect_attempts;
    }
  };
  RunUntil([&] { return Get(waits).done; });
  listener_.after_settle = nullptr;
  EXPECT_EQ(Get(waits).value, "ECONNREFUSED");
  EXPECT_EQ(attempts_when_failed, 3u) << "the first attempt and two retries";
}

TEST_F(RedisClientTest, AClientThatDoesNotReconnectEndsWithItsConnection) {
  ClientOptions options;
  options.reconnect = false;
  MakeClient(options);
  uintptr_t named = Send({"CLIENT", "SETNAME", "no-reconnect"});
  RunUntil([&] { return Get(named).done; });
  FromAnotherClient({"CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"});
  RunUntil([&] { return listener_.closed; });
  EXPECT_EQ(client_->Stats().state, ClientState::kClosed);
  uintptr_t later = Send({"PING"});
  EXPECT_EQ(Get(later).value, "closed");
}

}  // namespace
}  // namespace hirecache
