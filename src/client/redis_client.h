// A Redis client on a caller-provided libuv loop (Node's own, or the system one in the unit
// tests): the state machine that ties a Connection (socket, reader, writes), a
// CommandPipeline (the FIFO and the unsent bytes), deadlines, the reply policy and the
// reconnect policy together. It decides when to connect, what to write and when, and how
// each command is settled; the parts do the rest.
//
// Rules it keeps (docs/architecture.md, "Rules that keep replies with their callers"):
//   * A written command keeps its place in the FIFO until its reply arrives or the
//     connection dies; a deadline settles the caller early but the slot swallows the reply.
//   * A deadline is measured from when the command was issued (the real clock, not the
//     loop's cached time), and a reply that has arrived wins over its timer.
//   * When a connection dies, written commands fail with ERR_OUTCOME_UNKNOWN and are never
//     resent; only commands never written go out on the next connection.
//   * What waits is bounded: commands waiting for a connection or behind a socket that takes
//     no more (maxQueue), commands written and unanswered (maxInFlight). A burst issued in
//     one turn while connected is written, up to the in-flight bound.
//   * While Redis is known to be down, calls fail fast with the last connection error.
//   * One circuit breaker decides whether Redis is usable: it opens when Redis is unreachable,
//     when commands wait and nothing has been read for breaker.stall_ms, or on failures;
//     while it is open new commands fail fast with no socket work, and waiting commands
//     that asked for it (kSettleWhenBreakerOpens) are settled at once.
//   * Every command is settled exactly once.
#ifndef HIRECACHE_CLIENT_REDIS_CLIENT_H_
#define HIRECACHE_CLIENT_REDIS_CLIENT_H_

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/circuit_breaker.h"
#include "client/client_error.h"
#include "client/client_metrics.h"
#include "client/command_pipeline.h"
#include "client/command_sink.h"
#include "client/connection.h"
#include "client/reconnect_policy.h"
#include "client/tls.h"
#include "util/uv_handle.h"

namespace hirecache {

// Defaults are the single source for the JS layer too (the addon exports them).
struct ClientOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string username;  // ACL user; empty means the default user
  std::string password;  // empty means no AUTH
  uint32_t db = 0;
  std::string client_name;  // CLIENT SETNAME; empty means none
  uint32_t connect_timeout_ms = 10000;
  uint32_t command_timeout_ms = 5000;  // 0: no per-command deadline
  uint32_t keepalive_delay_s = 30;     // 0: keep-alive off
  bool no_delay = true;
  uint32_t max_queue = 10000;       // commands accepted that cannot be written yet
  uint32_t max_in_flight = 100000;  // commands written and not yet answered
  // Bytes of commands not yet taken by the socket (queued, or handed to libuv). A command
  // is always accepted when nothing waits, whatever its size.
  uint64_t max_queue_bytes = 128ull * 1024 * 1024;
  uint32_t reconnect_base_delay_ms = 50;
  uint32_t reconnect_max_delay_ms = 2000;
  ProtocolLimits limits;
  BreakerOptions breaker;
  bool metrics = true;  // count outcomes and latencies per verb
  // A subscriber connection: messages ("message", "pmessage", "smessage" arrays) go to
  // ReplyListener::OnPush. Only SUBSCRIBE-family commands and PING may be sent on it.
  bool subscriber = false;
  // false: a lost connection ends the client (pending commands fail) instead of reconnecting.
  bool reconnect = true;
  // true: after a failed attempt the client waits for ReconnectIn() (the owner's retry
  // strategy) instead of its own backoff; the kReconnecting event says so.
  bool owner_schedules_reconnect = false;
  // Failed connection attempts a command not yet written waits through before it fails
  // (kRetryForever: until its deadline). 0: it fails with the first, and calls made while
  // Redis is down fail at once. A written command is never resent, whatever this says.
  uint32_t max_retries_per_request = 0;
  // Set: every connection speaks TLS with this context (shared by the client's connections).
  std::shared_ptr<TlsContext> tls;
  // Sends READONLY in the handshake: a cluster replica then serves reads of its slots.
  bool readonly = false;
  // Every connect attempt first asks the owner where to connect (a kResolve event) and waits,
  // within connect_timeout_ms, for SetEndpoint() or FailResolve(): Sentinel's current primary.
  bool endpoint_from_owner = false;
  // A CLUSTERDOWN reply counts as a failure for the breaker. A cluster router's node clients
  // turn it off: the whole cluster answers CLUSTERDOWN while one shard fails over, and the
  // router waits that out within each command's deadline instead.
  bool cluster_down_opens_breaker = true;
};

constexpr uint32_t kRetryForever = UINT32_MAX;

class RedisClient final : public CommandSink, private ConnectionEvents {
 public:
  RedisClient(uv_loop_t* loop, ClientOptions options, ReplyListener* listener);
  ~RedisClient() override;
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // CommandSink. The first command connects; nothing is written before the current loop
  // turn ends.
  SubmitResult Submit(const std::string_view* argv, size_t argc, void* token,
                      uint32_t flags) override;
  SubmitResult SubmitUnit(const CommandUnit& unit, void* token, uint32_t flags) override;
  void ReconnectIn(uint32_t delay_ms) override;
  void Quit() override;
  void Disconnect() override;
  ClientStats Stats() const override;
  const ClientMetrics& Metrics() const override { return metrics_; }
  void SetListener(ReplyListener* listener) override { listener_ = listener; }

  ClientState state() const { return state_; }
  // The next Submit's command counts as issued at `submitted_us` (MonotonicNowUs): its
  // deadline runs from then. A router sending a redirected command again keeps its deadline.
  void IssueNextAt(uint64_t submitted_us) { next_issued_us_ = submitted_us; }
  // The address to connect to from now on. An attempt waiting for it (endpoint_from_owner)
  // goes ahead; a connection to another address finishes the commands it has written, then
  // reconnects here (as after READONLY).
  void SetEndpoint(const std::string& host, uint16_t port);
  // The owner could not name an address: the waiting attempt fails with `error`.
  void FailResolve(const ClientError& error);
  const std::string& endpoint() const { return endpoint_; }

 private:
  // ConnectionEvents.
  void OnConnected() override;
  void OnConnectFailed(const ClientError& error) override;
  void OnReadBegin() override;
  bool OnReply(redisReply* reply) override;
  bool OnUnitReply(redisReply* reply);
  SubmitResult Accept(const CommandUnit& unit, bool is_unit, void* token, uint32_t flags);
  void DropUnitReplies();
  void FailUnsentPastRetries(const ClientError& error);
  bool BlockingAhead() const;
  void StartStateTimer(uint64_t ms);
  void EndNow(const ClientError& error);
  static ClientError ClosedBeforeSent();
  void YieldAfterSlice();
  void OnReadEnd() override;
  void OnWriteDrained() override;
  void OnFailed(const ClientError& error) override;

  // Connection lifecycle.
  void StartConnect();
  void OpenConnection();
  void DrainThenReconnect(const std::string& why);
  void StartHandshake();
  void OnHandshakeDone();
  void RecordError(const ClientError& error);
  void FailConnection(const ClientError& error);
  void FailConnectAttempt(const ClientError& error);
  void LoseConnection(const ClientError& error);
  void ScheduleReconnect();
  void OnStateTimer();
  void StartQuitDeadline();
  void CloseConnection();
  void CloseHandles();
  void MaybeFinishClose();

  // Accepting and writing.
  bool HasRoom() const;
  size_t PendingWriteBytes() const;
  ClientError QueueFullError() const;
  void RefuseEarly(void* token, uint32_t flags, ClientError error);
  void StartIdle();
  void OnIdle();
  void RequestFlush();
  static void OnFlushHook(uv_handle_t* handle);
  void Flush();
  void WriteOrFail(std::string& bytes);

  // The breaker and events.
  ClientError FastFailure(bool down) const;
  void Emit(ClientEvent event);
  void EmitBreaker();
  void OpenBreaker(BreakerReason reason, uint64_t now_ms);
  void OnBreakerOpened();
  void CloseBreaker();
  uint64_t StallAt() const;
  uint64_t DeadAt() const;
  uint64_t ProbeTimeoutMs() const;
  void SendProbe(uint64_t now_ms);
  void Fail(void* token, uint32_t flags, Outcome outcome, const ClientError& error);
  void DeliverEvents();

  // Deadlines.
  void ArmTimerAt(uint64_t wake_ms);
  void ArmDeadlineTimer();
  uint64_t NextWakeMs() const;
  void OnDeadlineTimer();
  void ExpireDeadlines(uint64_t now);

  // Settling.
  void SettleReply(const PendingCommand& cmd, redisReply* reply);
  void FailWritten(const ClientError& error);
  void FailUnsent(const ClientError& error);
  void TrackSettled(size_t count);
  void SettleEarlyFailures();
  void EnsureRef();

  uv_loop_t* loop_;
  ClientOptions options_;
  ReplyListener* listener_;
  ReconnectPolicy reconnect_policy_;
  std::string endpoint_;  // "host:port", for messages

  // Declared before the handles: they release their counts into it as they close.
  HandleGroup handles_;
  UvHandle<uv_idle_t> idle_;  // settles early failures; keeps poll from blocking meanwhile
  UvHandle<uv_prepare_t> prepare_;
  UvHandle<uv_check_t> check_;
  UvHandle<uv_timer_t> deadline_timer_;
  UvHandle<uv_timer_t> state_timer_;  // the connect deadline, the backoff, or quit's limit

  ClientState state_ = ClientState::kIdle;
  Connection* conn_ = nullptr;  // closes and frees itself; cleared when closed
  CommandPipeline pipeline_;
  std::string write_buffer_;
  // The replies so far of the oldest written entry when it is a unit that asked for more.
  std::vector<redisReply*> unit_replies_;
  uint32_t unit_reply_count_ = 0;  // replies of that unit read so far (kept or not)
  size_t handshake_pending_ = 0;
  size_t awaiting_ = 0;  // user commands not yet settled
  struct EarlyFailure {
    void* token;
    uint32_t flags;
    ClientError error;
  };
  std::vector<EarlyFailure> early_failures_;  // settled by the idle handle
  size_t settled_in_read_ = 0;                // replies settled since the read's last slice
  size_t replies_in_read_ = 0;                // replies of any kind completed in this read
  bool submitting_ = false;                   // inside Submit: nothing may be settled synchronously
  bool has_deferred_connect_failure_ = false;
  ClientError deferred_connect_failure_;
  bool drain_then_reconnect_ = false;  // after READONLY: finish written commands, reconnect
  bool awaiting_endpoint_ = false;     // a connect attempt waits for SetEndpoint()
  std::string connected_endpoint_;     // the address of the current connection
  bool quit_requested_ = false;
  bool flush_scheduled_ = false;
  bool deadline_armed_ = false;
  bool closing_handles_ = false;
  bool closed_notified_ = false;
  bool refd_ = false;

  uint32_t owner_retries_ = 0;       // the owner's retry strategy asked since the last handshake
  uint32_t failed_attempts_ = 0;     // every failed attempt, ever (commands' epochs)
  uint32_t reconnect_attempts_ = 0;  // failed attempts since the last handshake (for status)
  uint32_t backoff_level_ = 0;       // paces reconnection; reset by a connection that lasted
  uint64_t connected_at_ms_ = 0;     // when the current connection finished its handshake
  uint64_t progress_at_ms_ = 0;      // the last read, or the write that began the current wait
  uint64_t connections_opened_ = 0;
  ClientError last_error_;
  bool has_last_error_ = false;
  uint64_t last_error_at_ms_ = 0;
  uint64_t jitter_state_;

  CircuitBreaker breaker_;
  uint64_t breaker_opened_at_ms_ = 0;  // wall clock
  bool handshake_had_steps_ = false;   // AUTH/SELECT/SETNAME answered: the server is there
  bool handshake_ping_only_ = false;   // the handshake is the PING of a TLS connection
  bool ready_announced_ = false;       // 'ready' was emitted for the current connection
  bool refusing_ = false;  // the last reply said the server cannot serve (LOADING, NOAUTH…)
  bool probe_pending_ = false;
  uint64_t probe_sent_ms_ = 0;
  uint64_t read_at_ms_ = 0;             // the last read of any bytes
  uint64_t read_now_us_ = 0;            // the clock for the replies of the current read slice
  uint64_t connect_started_ms_ = 0;     // the current connect attempt
  uint64_t timer_wake_ms_ = 0;          // when the armed deadline timer fires
  uint64_t stall_judged_after_ms_ = 0;  // after a held loop: no stall before one more poll
  uint64_t next_issued_us_ = 0;         // IssueNextAt, for the next Accept only
  ClientMetrics metrics_;
  std::vector<ClientEvent> events_;  // delivered by the idle handle
};

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_REDIS_CLIENT_H_
