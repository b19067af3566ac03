// RedisClient's transitions, in one file on purpose (~650 lines): connecting, accepting,
// writing, reading, deadlines and closing all move the same state machine, and reading
// them side by side is how its invariants are checked. Every job that does not need the
// state machine lives in its own part (connection, pipeline, reader, policies).
#include "client/redis_client.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <utility>

#include "client/command_encoder.h"
#include "client/reply_policy.h"

namespace hirecache {

namespace {

// A large read settles its replies in slices of this many: between slices the continuations
// run and the commands they issued are written, so Redis works on them while the rest of
// the read is settled, instead of Node and Redis taking turns.
constexpr size_t kSettleSlice = 128;
// One write takes at most this many bytes (a single larger command goes alone): libuv
// measures a buffer in 32 bits and uv_try_write answers in an int.
constexpr size_t kMaxWriteBytes = 256 * 1024 * 1024;
// A connection that lasted at least this long resets the reconnect backoff when it is lost.
constexpr uint64_t kStableConnectionMs = 2000;
// A deadline timer that fires this much after it was due means the loop was held.
constexpr uint64_t kLateTimerMs = 5;

uint64_t WallClockMs() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

// Brackets a run of settlements so the listener can open one scope for all of them; nests.
class SettleScope {
 public:
  explicit SettleScope(ReplyListener* listener) : listener_(listener) { listener_->BeginSettle(); }
  ~SettleScope() { listener_->EndSettle(); }
  SettleScope(const SettleScope&) = delete;
  SettleScope& operator=(const SettleScope&) = delete;

 private:
  ReplyListener* listener_;
};

}  // namespace

const char* ClientStateName(ClientState state) {
  switch (state) {
    case ClientState::kIdle:
      return "idle";
    case ClientState::kConnecting:
      return "connecting";
    case ClientState::kReady:
      return "ready";
    case ClientState::kDown:
      return "down";
    case ClientState::kClosing:
      return "closing";
    case ClientState::kClosed:
      return "closed";
  }
  return "closed";
}

RedisClient::RedisClient(uv_loop_t* loop, ClientOptions options, ReplyListener* listener)
    : loop_(loop),
      options_(std::move(options)),
      listener_(listener),
      reconnect_policy_(options_.reconnect_base_delay_ms, options_.reconnect_max_delay_ms),
      endpoint_(EndpointOf(options_.host, options_.port)),
      handles_([](void* self) { static_cast<RedisClient*>(self)->MaybeFinishClose(); }, this),
      idle_(&handles_),
      prepare_(&handles_),
      check_(&handles_),
      deadline_timer_(&handles_),
      state_timer_(&handles_),
      jitter_state_(uv_hrtime() | 1),
      breaker_(options_.breaker) {
  uv_idle_init(loop_, idle_.get());
  uv_prepare_init(loop_, prepare_.get());
  uv_check_init(loop_, check_.get());
  uv_timer_init(loop_, deadline_timer_.get());
  uv_timer_init(loop_, state_timer_.get());
  for (uv_handle_t* h : {idle_.base(), prepare_.base(), check_.base(), deadline_timer_.base(),
                         state_timer_.base()}) {
    h->data = this;
    uv_unref(h);
  }
}

RedisClient::~RedisClient() {
  // The owner deletes the client only after OnClosed: every handle is closed by then.
  assert(handles_.open() == 0);
  DropUnitReplies();
}

// ---------------------------------------------------------------------------------------
// Accepting commands

SubmitResult RedisClient::Submit(const std::string_view* argv, size_t argc, void* token,
                                 uint32_t flags) {
  return Accept(CommandUnit{argv, &argc, 1, 1}, false, token, flags);
}

SubmitResult RedisClient::SubmitUnit(const CommandUnit& unit, void* token, uint32_t flags) {
  return Accept(unit, true, token, flags);
}

// Queues one command, or (is_unit) a unit, as one entry.
SubmitResult RedisClient::Accept(const CommandUnit& unit, bool is_unit, void* token,
                                 uint32_t flags) {
  uint64_t issued_us = std::exchange(next_issued_us_, 0);
  if (quit_requested_ || state_ == ClientState::kClosing || state_ == ClientState::kClosed) {
    return SubmitResult::kClosed;
  }
  // Once an attempt has failed, Redis counts as down until one succeeds: calls made during
  // the retries fail at once instead of waiting on an attempt that will likely fail too.
  // The verb rides in the sink's own bits of the flags, for the metrics.
  Verb verb =
      options_.metrics && !is_unit && unit.argcs[0] > 0 ? VerbOf(unit.argv[0]) : Verb::kOther;
  flags = (flags & kCallerFlagsMask) | (static_cast<uint32_t>(verb) << kSinkFlagsShift);
  // An attempt that has connected and is in its handshake is not down: commands queue
  // behind the handshake (a subscriber renewing its subscriptions on 'connect').
  bool down = state_ == ClientState::kDown || (state_ == ClientState::kConnecting &&
                                               reconnect_attempts_ > 0 && handshake_pending_ == 0);
  // An open breaker refuses every call, except that a stall (often a blip: a busy host, a
  // slow command) refuses only the calls that have somewhere else to go (the cache's and
  // the limiter's, flagged): a plain call keeps its place and waits for its reply or its
  // deadline, as with any client.
  bool has_fallback = (flags & kHasFallback) != 0;
  bool refuse =
      !breaker_.closed() && (breaker_.reason() != BreakerReason::kStalled || has_fallback);
  // maxRetriesPerRequest > 0: a plain call waits for the connection through that many
  // failed attempts (within its deadline) instead of failing at once.
  if (options_.max_retries_per_request > 0 && !has_fallback &&
      (breaker_.closed() || breaker_.reason() == BreakerReason::kUnreachable)) {
    down = false;
    refuse = false;
  }
  if (down || refuse) {
    RefuseEarly(token, flags, FastFailure(down));
    return SubmitResult::kAccepted;
  }
  if (!HasRoom()) {
    RefuseEarly(token, flags, QueueFullError());
    return SubmitResult::kAccepted;
  }

  uint64_t now_us = issued_us != 0 ? issued_us : MonotonicNowUs();
  uint64_t deadline = options_.command_timeout_ms == 0 || (flags & kNoDeadline) != 0
                          ? 0
                          : now_us / 1000 + options_.command_timeout_ms;
  size_t pending = PendingWriteBytes();
  size_t waiting_before = pipeline_.unsent_bytes() + pending;
  pipeline_.PushEntry(unit, is_unit, token, flags, deadline, CommandKind::kUser,
                      options_.metrics ? now_us : 0);
  if (waiting_before > 0 && pipeline_.unsent_bytes() + pending > options_.max_queue_bytes) {
    pipeline_.DropLast();
    RefuseEarly(token, flags,
                ClientError{ErrorKind::kQueueFull, "ERR_QUEUE_FULL",
                            "command refused: " + std::to_string(waiting_before) +
                                " bytes of commands are already waiting to be written to Redis "
                                "(maxQueueBytes " +
                                std::to_string(options_.max_queue_bytes) + ")"});
    return SubmitResult::kAccepted;
  }
  if (++awaiting_ == 1) {
    listener_->OnBusyChanged(true);
    EnsureRef();
  }
  if (deadline != 0) ArmTimerAt(deadline);
  if (state_ == ClientState::kIdle) {
    // A connect that fails at once (no such address family, an unreachable network) must
    // not settle callers inside Submit: OnConnectFailed defers it to the next turn.
    submitting_ = true;
    StartConnect();
    submitting_ = false;
  } else if (state_ == ClientState::kReady) {
    RequestFlush();
  } else if (state_ == ClientState::kConnecting) {
    ArmTimerAt(StallAt());  // a connect attempt that hangs is a stall for this command
  }
  return SubmitResult::kAccepted;
}

// Whether one more command may be accepted. While the connection is ready and the socket
// takes bytes, a command accepted now is written at the end of this loop turn, so it waits
// for nothing: those are limited only by the in-flight bound. Beyond that, maxQueue more may
// wait (for a connection, for the socket, or for replies to make room).
bool RedisClient::HasRoom() const {
  size_t writable = 0;
  if (state_ == ClientState::kReady && conn_ != nullptr && !conn_->write_pending() &&
      !drain_then_reconnect_ && pipeline_.written() < options_.max_in_flight) {
    writable = options_.max_in_flight - pipeline_.written();
  }
  return pipeline_.unsent() < writable + options_.max_queue;
}

ClientError RedisClient::QueueFullError() const {
  std::string why;
  const std::string queue = " (maxQueue " + std::to_string(options_.max_queue) + ")";
  if (state_ != ClientState::kReady || conn_ == nullptr) {
    why = std::to_string(pipeline_.unsent()) +
          " commands are already waiting for the connection to Redis" + queue;
  } else if (conn_->write_pending() || drain_then_reconnect_) {
    why = "Redis is not taking bytes as fast as they come: " + std::to_string(pipeline_.unsent()) +
          " commands are queued behind the socket" + queue;
  } else {
    size_t total = pipeline_.written() + pipeline_.unsent();
    size_t waiting = total > options_.max_in_flight ? total - options_.max_in_flight : 0;
    why = std::to_string(total - waiting) +
          " commands are awaiting replies from Redis or about to be written (maxInFlight " +
          std::to_string(options_.max_in_flight) + ") and " + std::to_string(waiting) +
          " more are queued" + queue;
  }
  return ClientError{ErrorKind::kQueueFull, "ERR_QUEUE_FULL", "command refused: " + why};
}

size_t RedisClient::PendingWriteBytes() const {
  return conn_ != nullptr ? conn_->pending_write_bytes() : 0;
}

// The error for a call refused while Redis is unusable: the connection's own error while
// it is down, otherwise the breaker's.
ClientError RedisClient::FastFailure(bool down) const {
  if (down || breaker_.reason() == BreakerReason::kUnreachable) {
    ClientError error = last_error_;
    error.message =
        "Redis is unreachable (" + last_error_.message + "); retrying in the background";
    return error;
  }
  std::string why = breaker_.reason() == BreakerReason::kStalled
                        ? "Redis at " + endpoint_ + " has not answered for " +
                              std::to_string(breaker_.stall_ms()) + " ms or more"
                        : "too many commands to Redis at " + endpoint_ + " failed";
  return ClientError{ErrorKind::kConnection, "ERR_BREAKER_OPEN",
                     "the circuit breaker is " + std::string(BreakerStateName(breaker_.state())) +
                         ": " + why + "; the command was not sent"};
}

// Settles a refused command at the end of this loop turn (never synchronously).
void RedisClient::RefuseEarly(void* token, uint32_t flags, ClientError error) {
  early_failures_.push_back(EarlyFailure{token, flags, std::move(error)});
  if (++awaiting_ == 1) {
    listener_->OnBusyChanged(true);
    EnsureRef();
  }
  StartIdle();
}

void RedisClient::StartIdle() {
  uv_idle_start(idle_.get(), [](uv_idle_t* h) {
    uv_idle_stop(h);
    static_cast<RedisClient*>(h->data)->OnIdle();
  });
}

// The next turn after a refusal or a connect that failed inside Submit: settle them now.
void RedisClient::OnIdle() {
  if (has_deferred_connect_failure_) {
    has_deferred_connect_failure_ = false;
    if (state_ == ClientState::kConnecting && conn_ == nullptr) {
      FailConnectAttempt(deferred_connect_failure_);
    }
  }
  if (!early_failures_.empty()) SettleEarlyFailures();
  if (!events_.empty()) DeliverEvents();
}

// ---------------------------------------------------------------------------------------
// Connecting

void RedisClient::StartConnect() {
  state_ = ClientState::kConnecting;
  connect_started_ms_ = MonotonicNowMs();
  StartStateTimer(options_.connect_timeout_ms);
  if (options_.endpoint_from_owner) {
    awaiting_endpoint_ = true;
    Emit({ClientEventType::kResolve});
    return;
  }
  OpenConnection();
}

void RedisClient::SetEndpoint(const std::string& host, uint16_t port) {
  if (closing_handles_) return;
  std::string endpoint = EndpointOf(host, port);
  bool changed = endpoint != endpoint_;
  options_.host = host;
  options_.port = port;
  endpoint_ = std::move(endpoint);
  if (state_ == ClientState::kDown && changed && !quit_requested_) {
    // Waiting out the backoff after failing on the old address: the new one is tried now.
    uv_timer_stop(state_timer_.get());
    StartConnect();
    return;
  }
  if (awaiting_endpoint_) {
    awaiting_endpoint_ = false;
    if (state_ == ClientState::kConnecting) OpenConnection();
    return;
  }
  if (conn_ != nullptr && connected_endpoint_ != endpoint_ && !drain_then_reconnect_) {
    // Finish what was written on the old address, then reconnect to the new one. With
    // nothing written, the drain is over now.
    drain_then_reconnect_ = true;
    if (pipeline_.written() == 0) {
      SettleScope scope(listener_);
      DrainThenReconnect("the primary moved to " + endpoint_ + "; reconnecting");
    }
  }
}

void RedisClient::FailResolve(const ClientError& error) {
  if (!awaiting_endpoint_ || state_ != ClientState::kConnecting) return;
  awaiting_endpoint_ = false;
  FailConnectAttempt(error);
}

void RedisClient::OpenConnection() {
  connected_endpoint_ = endpoint_;
  ConnectionOptions co;
  co.host = options_.host;
  co.port = options_.port;
  co.keepalive_delay_s = options_.keepalive_delay_s;
  co.no_delay = options_.no_delay;
  co.limits = options_.limits;
  co.tls = options_.tls;
  conn_ = new Connection(loop_, co, this, &handles_);
  conn_->SetRef(refd_);
  conn_->Start();                            // May report OnConnectFailed before it returns.
  if (conn_ != nullptr) ArmDeadlineTimer();  // a connect that hangs is a stall too
}

void RedisClient::OnConnected() {
  ++connections_opened_;
  connect_started_ms_ = MonotonicNowMs();  // the handshake's wait starts now
  Emit({ClientEventType::kConnect});
  StartHandshake();
}

void RedisClient::OnConnectFailed(const ClientError& error) {
  conn_ = nullptr;  // It closed itself.
  if (submitting_) {
    deferred_connect_failure_ = error;
    has_deferred_connect_failure_ = true;
    StartIdle();
    return;
  }
  FailConnectAttempt(error);
}

void RedisClient::StartHandshake() {
  std::string bytes;
  size_t steps = 0;
  auto add = [&](std::initializer_list<std::string_view> args) {
    std::vector<std::string_view> argv(args);
    AppendCommand(bytes, argv.data(), argv.size());
    ++steps;
  };
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      add({"AUTH", options_.password});
    } else {
      add({"AUTH", options_.username, options_.password});
    }
  }
  std::string db = std::to_string(options_.db);
  if (options_.db != 0) add({"SELECT", db});
  if (!options_.client_name.empty()) add({"CLIENT", "SETNAME", options_.client_name});
  if (options_.readonly) add({"READONLY"});
  // Over TLS 1.3 the server judges the client's certificate after the client has finished
  // its side of the handshake, so a refusal arrives with the first read. A PING makes that
  // read part of connecting: a refused certificate fails the attempt, not a caller's command.
  // Any answer to it, an error included (NOAUTH, BUSY), completes the handshake: what the
  // server thinks of commands is for the commands to find out, as over TCP.
  handshake_ping_only_ = steps == 0 && options_.tls != nullptr;
  if (handshake_ping_only_) add({"PING"});
  handshake_had_steps_ = steps > 0;
  if (steps == 0) {
    OnHandshakeDone();
    return;
  }
  // The handshake goes ahead of every queued command; those wait for it to succeed.
  pipeline_.PrependHandshake(steps);
  handshake_pending_ = steps;
  WriteOrFail(bytes);
}

void RedisClient::OnHandshakeDone() {
  uv_timer_stop(state_timer_.get());
  state_ = quit_requested_ ? ClientState::kClosing : ClientState::kReady;
  reconnect_attempts_ = 0;
  owner_retries_ = 0;
  connected_at_ms_ = MonotonicNowMs();
  // 'ready' means the server answered: after the handshake's replies, or, without a
  // handshake, with the first reply (OnReadEnd).
  ready_announced_ = handshake_had_steps_;
  if (ready_announced_) Emit({ClientEventType::kReady});
  // Redis answered: a breaker opened because it could not be reached, or did not answer,
  // closes. One opened by failed commands waits for its probe (sent now if it fell due
  // while connecting).
  if (!handshake_had_steps_ && !breaker_.closed() &&
      breaker_.reason() != BreakerReason::kFailures) {
    // Without a handshake, a connection proves only that something accepted it (a proxy
    // or load balancer in front of a dead server does): a PING decides.
    if (!quit_requested_ && !probe_pending_) SendProbe(connected_at_ms_);
  } else if (breaker_.reason() == BreakerReason::kUnreachable ||
             breaker_.reason() == BreakerReason::kStalled) {
    CloseBreaker();
  } else if (!quit_requested_ && !probe_pending_ && breaker_.ProbeDue(connected_at_ms_)) {
    SendProbe(connected_at_ms_);
  }
  if (quit_requested_) StartQuitDeadline();
  EnsureRef();
  Flush();
}

void RedisClient::RecordError(const ClientError& error) {
  last_error_ = error;
  has_last_error_ = true;
  last_error_at_ms_ = WallClockMs();
}

void RedisClient::FailConnectAttempt(const ClientError& error) {
  SettleScope scope(listener_);
  awaiting_endpoint_ = false;
  RecordError(error);
  Emit({ClientEventType::kError, error});
  CloseConnection();
  uv_timer_stop(state_timer_.get());
  // Handshake commands of this attempt go with it; user commands were never written.
  pipeline_.FailWritten([](void*, uint32_t) {});
  handshake_pending_ = 0;
  ++reconnect_attempts_;
  ++backoff_level_;
  state_ = ClientState::kDown;
  pipeline_.set_epoch(++failed_attempts_);
  probe_pending_ = false;
  if (quit_requested_ || !options_.reconnect) {
    EndNow(error);
    return;
  }
  // Callers waiting for this connection learn at once that Redis is unreachable, and so
  // does every call until a retry succeeds: nothing piles up behind a dead server (unless
  // maxRetriesPerRequest lets commands wait through some attempts).
  FailUnsentPastRetries(error);
  OpenBreaker(BreakerReason::kUnreachable, MonotonicNowMs());
  ScheduleReconnect();
}

void RedisClient::FailConnection(const ClientError& error) {
  if (state_ == ClientState::kConnecting) {
    FailConnectAttempt(error);
    return;
  }
  SettleScope scope(listener_);
  RecordError(error);
  Emit({ClientEventType::kError, error});
  Emit({ClientEventType::kClose});
  CloseConnection();
  if (probe_pending_) {
    probe_pending_ = false;
    if (breaker_.ProbeFailed(MonotonicNowMs())) EmitBreaker();
  }
  FailWritten(ClientError{ErrorKind::kOutcomeUnknown, "ERR_OUTCOME_UNKNOWN",
                          "the connection to Redis was lost after the command was sent (" +
                              error.code + "); it may or may not have run"});
  drain_then_reconnect_ = false;
  if (quit_requested_) {
    EndNow(ClosedBeforeSent());
    return;
  }
  LoseConnection(error);
}

// After an established connection ended: reconnect at once if it had lasted (commands never
// written wait for the new connection, within their deadlines); otherwise back off, so that
// a server which accepts and then drops connections is not hammered.
void RedisClient::LoseConnection(const ClientError& error) {
  if (!options_.reconnect) {
    // A connection of its own (a WATCH, a blocking command): what it held is gone with it,
    // so it ends instead of reconnecting, whatever ended it (a drop, a READONLY reply).
    EndNow(ClientError{ErrorKind::kClosed, "ERR_CLIENT_CLOSED",
                       "the connection to Redis was lost (" + error.code +
                           ") before the command was sent; this connection does not reconnect"});
    return;
  }
  if (MonotonicNowMs() - connected_at_ms_ >= kStableConnectionMs) backoff_level_ = 0;
  // With a retry strategy of the owner's, even the first reconnect waits for its word (it
  // may say never).
  if (backoff_level_++ == 0 && !options_.owner_schedules_reconnect) {
    // The new attempt decides: a breaker opened by the old connection's silence closes,
    // and opens again if the attempt stalls too.
    if (breaker_.reason() == BreakerReason::kStalled) CloseBreaker();
    StartConnect();
    return;
  }
  state_ = ClientState::kDown;
  FailUnsentPastRetries(error);
  OpenBreaker(BreakerReason::kUnreachable, MonotonicNowMs());
  ScheduleReconnect();
}

void RedisClient::ScheduleReconnect() {
  // xorshift64: jitter only needs to differ between processes, not to be unpredictable.
  jitter_state_ ^= jitter_state_ << 13;
  jitter_state_ ^= jitter_state_ >> 7;
  jitter_state_ ^= jitter_state_ << 17;
  double r = static_cast<double>(jitter_state_ >> 11) / static_cast<double>(1ULL << 53);
  uint32_t delay = reconnect_policy_.DelayMs(backoff_level_, r);
  ClientEvent event{ClientEventType::kReconnecting};
  event.delay_ms = delay;
  event.attempt = reconnect_attempts_;
  // With a retry strategy of the owner's, it picks the wait and calls ReconnectIn() (or
  // closes); it is told how many times it was asked since the last connection that worked.
  bool owner = options_.owner_schedules_reconnect;
  if (owner) {
    event.owner_decides = true;
    event.attempt = ++owner_retries_;
  }
  Emit(std::move(event));
  if (!owner) StartStateTimer(delay);
}

void RedisClient::ReconnectIn(uint32_t delay_ms) {
  if (state_ != ClientState::kDown || closing_handles_ || quit_requested_) return;
  StartStateTimer(delay_ms);
}

void RedisClient::OnStateTimer() {
  if (state_ == ClientState::kConnecting) {
    std::string what = "connecting to " + endpoint_ + " took longer than " +
                       std::to_string(options_.connect_timeout_ms) + " ms";
    // A plaintext Redis on a TLS client's port waits for a line that never comes.
    if (conn_ != nullptr && conn_->tls_handshaking()) {
      what += " (the TLS handshake did not finish: does this port speak TLS?)";
    }
    FailConnectAttempt(ClientError{ErrorKind::kConnection, "ETIMEDOUT", what});
  } else if (state_ == ClientState::kDown) {
    StartConnect();
  } else if (state_ == ClientState::kClosing) {
    Disconnect();  // The server did not answer the commands ahead of QUIT in time.
  }
}

// quit() waits for replies, but not forever: after the command timeout (or the connect
// timeout when commands have none) it disconnects.
void RedisClient::StartQuitDeadline() { StartStateTimer(ProbeTimeoutMs()); }

// The connect deadline, the backoff, or quit()'s limit: one timer, one at a time.
void RedisClient::StartStateTimer(uint64_t ms) {
  uv_timer_start(
      state_timer_.get(), [](uv_timer_t* t) { static_cast<RedisClient*>(t->data)->OnStateTimer(); },
      ms, 0);
}

// No further attempt: what waits fails with `error`, and the client closes.
void RedisClient::EndNow(const ClientError& error) {
  quit_requested_ = true;
  FailUnsent(error);
  CloseHandles();
}

ClientError RedisClient::ClosedBeforeSent() {
  return ClientError{ErrorKind::kClosed, "ERR_CLIENT_CLOSED",
                     "the client was closed before the command was sent"};
}

void RedisClient::CloseConnection() {
  if (conn_ == nullptr) return;
  conn_->Close();
  conn_ = nullptr;
}

// ---------------------------------------------------------------------------------------
// Writing

void RedisClient::RequestFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Whichever of prepare (before the loop polls) and check (right after) comes first sends
  // everything queued during this turn of the loop in one write.
  uv_prepare_start(prepare_.get(),
                   [](uv_prepare_t* h) { OnFlushHook(reinterpret_cast<uv_handle_t*>(h)); });
  uv_check_start(check_.get(),
                 [](uv_check_t* h) { OnFlushHook(reinterpret_cast<uv_handle_t*>(h)); });
}

void RedisClient::OnFlushHook(uv_handle_t* handle) {
  auto* client = static_cast<RedisClient*>(handle->data);
  client->flush_scheduled_ = false;
  uv_prepare_stop(client->prepare_.get());
  uv_check_stop(client->check_.get());
  client->Flush();
}

// Writes the unsent commands, as many as the in-flight bound allows, unless a write is
// still pending (OnWriteDrained calls again) or the connection is not ready.
void RedisClient::Flush() {
  if (state_ != ClientState::kReady && state_ != ClientState::kClosing) return;
  if (conn_ == nullptr || conn_->write_pending() || drain_then_reconnect_) return;
  if (pipeline_.unsent() == 0) return;
  // A command whose deadline passed before it could be written (the loop stalled after it
  // was issued) is dropped, not sent: its caller is told ETIMEDOUT, so it must never run.
  // NextDeadline, not the first unsent one's: a command without a deadline (a blocking one)
  // may lead the unsent commands.
  uint64_t next = pipeline_.NextDeadline();
  uint64_t now = next != 0 ? MonotonicNowMs() : 0;
  if (next != 0 && next <= now) {
    ExpireDeadlines(now);  // Settles callers: JS may run and change the state.
    if (state_ != ClientState::kReady && state_ != ClientState::kClosing) return;
    if (conn_ == nullptr || conn_->write_pending() || drain_then_reconnect_) return;
    if (pipeline_.unsent() == 0) return;
  }
  size_t in_flight = pipeline_.written();
  if (in_flight >= options_.max_in_flight) return;         // Replies will make room.
  if (in_flight == 0) progress_at_ms_ = MonotonicNowMs();  // The server's wait starts now.
  pipeline_.TakeUnsent(options_.max_in_flight - in_flight, kMaxWriteBytes, write_buffer_);
  WriteOrFail(write_buffer_);
  if (in_flight == 0) ArmTimerAt(StallAt());  // the stall clock, by its one rule
}

// The bytes left the pipeline before the write: a failed write settles callers, whose JS
// continuations may queue new commands; these bytes must never go out again.
void RedisClient::WriteOrFail(std::string& bytes) {
  int rc = conn_->Write(bytes, 0);
  if (rc != 0) FailConnection(conn_->WriteFailure(rc));
}

void RedisClient::OnWriteDrained() {
  // The server's wait for these bytes starts when the socket has taken them: a large
  // write to a healthy server is not a stall.
  if (pipeline_.written() > 0) {
    progress_at_ms_ = std::max(progress_at_ms_, MonotonicNowMs());
    ArmDeadlineTimer();
  }
  Flush();
}

// ---------------------------------------------------------------------------------------
// Reading

void RedisClient::OnReadBegin() {
  read_now_us_ = MonotonicNowUs();
  read_at_ms_ = read_now_us_ / 1000;
  settled_in_read_ = 0;
  replies_in_read_ = 0;
  listener_->BeginSettle();
}

bool RedisClient::OnReply(redisReply* reply) {
  if (options_.subscriber && IsPushMessage(reply)) {
    ++replies_in_read_;
    listener_->OnPush(reply);
    return false;
  }
  if (pipeline_.written() == 0) {
    FailConnection({ErrorKind::kProtocol, "ERR_PROTOCOL",
                    "Redis sent a reply nobody asked for; the connection is out of step"});
    return false;
  }
  if (pipeline_.OldestWritten().unit) return OnUnitReply(reply);
  PendingCommand cmd = pipeline_.PopWritten();
  ++replies_in_read_;
  switch (cmd.kind) {
    case CommandKind::kHandshake:
      if (handshake_ping_only_) {
        handshake_pending_ = 0;
        OnHandshakeDone();
      } else if (reply->type == REDIS_REPLY_ERROR) {
        std::string_view text(reply->str, reply->len);
        FailConnection({ErrorKind::kConnection, std::string(ErrorCodeOf(text)),
                        "Redis refused the connection handshake: " + WithoutArguments(text)});
      } else if (!IsOkReply(reply)) {
        // AUTH, SELECT and CLIENT SETNAME all answer +OK: anything else means the server
        // sent something nobody asked for, and every later reply would go to the wrong caller.
        FailConnection({ErrorKind::kProtocol, "ERR_PROTOCOL",
                        "Redis answered the connection handshake with something other than OK; "
                        "the connection is out of step"});
      } else if (--handshake_pending_ == 0) {
        OnHandshakeDone();
      }
      return false;
    case CommandKind::kQuit:
      CloseConnection();
      CloseHandles();
      return false;
    case CommandKind::kProbe:
      if (probe_pending_) {
        probe_pending_ = false;
        if (reply->type == REDIS_REPLY_ERROR) {
          if (breaker_.ProbeFailed(read_now_us_ / 1000)) EmitBreaker();
        } else {
          CloseBreaker();
        }
      } else if (reply->type != REDIS_REPLY_ERROR && breaker_.state() == BreakerState::kOpen &&
                 breaker_.reason() != BreakerReason::kFailures) {
        // A probe that timed out, answered late: Redis is reachable and answering. Only a
        // breaker opened by failures waits for a timed probe; nothing else would come to
        // close this one while calls go elsewhere.
        CloseBreaker();
      }
      return false;
    case CommandKind::kUser:
      if (ClassifyReply(reply) == ReplyClass::kReadOnly) {
        // A failover made this server a replica: finish what was written, then reconnect.
        drain_then_reconnect_ = true;
      }
      SettleReply(cmd, reply);
      break;
  }
  YieldAfterSlice();
  return false;
}

// Every kSettleSlice settlements within one read, JS continuations run and what they queued
// is written, so a large read does not hold every caller until its end.
void RedisClient::YieldAfterSlice() {
  if (++settled_in_read_ == kSettleSlice &&
      (state_ == ClientState::kReady || state_ == ClientState::kClosing)) {
    settled_in_read_ = 0;
    listener_->EndSettle();  // Continuations run and may queue commands, or close.
    Flush();
    listener_->BeginSettle();
    read_now_us_ = MonotonicNowUs();
  }
}

// One reply of the oldest written entry, a unit: kept until the unit has all its replies,
// which then settle its caller as one array.
bool RedisClient::OnUnitReply(redisReply* reply) {
  ++replies_in_read_;
  if (ClassifyReply(reply) == ReplyClass::kReadOnly) drain_then_reconnect_ = true;
  const PendingCommand& head = pipeline_.OldestWritten();
  // A unit whose caller already has its answer (a deadline) keeps nothing: its replies are
  // counted and freed as they come.
  ++unit_reply_count_;
  bool kept = !head.settled;
  if (kept) unit_replies_.push_back(reply);
  bool refused_whole = head.one_command && reply->type == REDIS_REPLY_ERROR;
  if (unit_reply_count_ < head.replies && !refused_whole) return kept;
  PendingCommand cmd = pipeline_.PopWritten();
  redisReply all{};
  all.type = REDIS_REPLY_ARRAY;
  all.elements = unit_replies_.size();
  all.element = unit_replies_.data();
  SettleReply(cmd, &all);
  DropUnitReplies();
  YieldAfterSlice();
  return kept;
}

void RedisClient::DropUnitReplies() {
  for (redisReply* r : unit_replies_) FreeReply(r);
  unit_replies_.clear();
  unit_reply_count_ = 0;
}

void RedisClient::OnReadEnd() {
  // Progress is a completed reply, not any byte: a server trickling a reply that never ends
  // must still count as silent.
  if (replies_in_read_ > 0) {
    if (!ready_announced_ && state_ == ClientState::kReady && !refusing_) {
      ready_announced_ = true;
      Emit({ClientEventType::kReady});
    }
    progress_at_ms_ = MonotonicNowMs();
    // Replies flow again: a breaker opened by a stall closes.
    if (breaker_.reason() == BreakerReason::kStalled) CloseBreaker();
  }
  if (drain_then_reconnect_ && pipeline_.written() == 0 && conn_ != nullptr) {
    DrainThenReconnect(connected_endpoint_ != endpoint_
                           ? "the primary moved to " + endpoint_ + "; reconnecting"
                           : "Redis answered READONLY (a failover happened); reconnecting");
  }
  listener_->EndSettle();  // JS continuations run here and may call back into the client.
  // Commands held back by the in-flight bound go out now that replies made room.
  if (pipeline_.unsent() > 0 &&
      (state_ == ClientState::kReady || state_ == ClientState::kClosing)) {
    RequestFlush();
  }
}

// The written commands of a connection that must go (READONLY, a new primary) are answered:
// it closes, and the client reconnects at once.
void RedisClient::DrainThenReconnect(const std::string& why) {
  ClientError error{ErrorKind::kConnection,
                    connected_endpoint_ != endpoint_ ? "ERR_MOVED" : "READONLY", why};
  RecordError(error);
  CloseConnection();
  drain_then_reconnect_ = false;
  LoseConnection(error);
}

void RedisClient::OnFailed(const ClientError& error) {
  if (state_ == ClientState::kClosing && pipeline_.empty()) {
    // The server closed the connection after answering QUIT.
    CloseConnection();
    CloseHandles();
    return;
  }
  FailConnection(error);
}

void RedisClient::SettleReply(const PendingCommand& cmd, redisReply* reply) {
  if (cmd.settled) return;  // Its deadline passed; the caller already has its answer.
  if (options_.metrics) {
    uint64_t latency = read_now_us_ > cmd.submitted_us ? read_now_us_ - cmd.submitted_us : 0;
    metrics_.CountReply(static_cast<Verb>(cmd.flags >> kSinkFlagsShift), reply, latency);
  }
  if (breaker_.enabled()) {
    uint64_t now_ms = read_now_us_ / 1000;
    // A unit is judged by its replies: one saying the server cannot serve is its failure.
    const redisReply* judged = reply;
    if (cmd.unit) {
      for (size_t i = 0; i < reply->elements; ++i) {
        const redisReply* e = reply->element[i];
        if (e->type == REDIS_REPLY_ERROR && IsUnavailableReply(e)) {
          judged = e;
          break;
        }
      }
    }
    std::string_view judged_code =
        judged->type == REDIS_REPLY_ERROR ? ErrorCodeOf({judged->str, judged->len}) : "";
    if (judged->type == REDIS_REPLY_ERROR && IsUnavailableReply(judged) &&
        (options_.cluster_down_opens_breaker || judged_code != "CLUSTERDOWN")) {
      // The server is up but cannot serve (loading, busy with a script, no master, or it
      // wants a password that was not given): the last error, reported once per run of
      // such replies, and a failure for the breaker.
      std::string_view text(judged->str, judged->len);
      std::string_view code = judged_code;
      if (!has_last_error_ || last_error_.code != code || !refusing_) {
        ClientError error{ErrorKind::kConnection, std::string(code),
                          "Redis at " + endpoint_ + " cannot serve: " + WithoutArguments(text)};
        RecordError(error);
        Emit({ClientEventType::kError, std::move(error)});
      }
      refusing_ = true;
      if (breaker_.RecordFailure(now_ms)) OnBreakerOpened();
    } else {
      refusing_ = false;
      breaker_.RecordSuccess(now_ms);
    }
  }
  listener_->OnReply(cmd.token, cmd.flags & kCallerFlagsMask, reply);
  TrackSettled(1);
}

// ---------------------------------------------------------------------------------------
// Deadlines

void RedisClient::OnDeadlineTimer() {
  deadline_armed_ = false;
  // Woken for a wait that has since moved on (replies came in): nothing is due yet, and
  // nothing is read, settled or built. Reading the socket could only move these later.
  uint64_t wake = NextWakeMs();
  if (wake == 0 || wake > MonotonicNowMs()) {
    ArmTimerAt(wake);
    return;
  }
  uint64_t due = timer_wake_ms_;
  // libuv runs timers before it polls sockets: after a stall of the loop, replies may be
  // waiting in the socket already. They win over their deadlines.
  if (conn_ != nullptr) conn_->ReadNow();
  if (closing_handles_) return;
  uint64_t now = MonotonicNowMs();
  SettleScope scope(listener_);
  ExpireDeadlines(now);
  // A connection that has received nothing for twice the command timeout while commands
  // it was sent wait is dead in all but name (a partition without a reset): fail it, so
  // callers fail fast. The wait counts from the write or the last bytes read, not from the
  // commands' own deadlines: a stall of this process is not the server's silence.
  uint64_t dead_at = DeadAt();
  if (dead_at != 0 && dead_at <= now) {
    FailConnection({ErrorKind::kConnection, "ETIMEDOUT",
                    "Redis at " + endpoint_ + " sent nothing for " +
                        std::to_string(2 * static_cast<uint64_t>(options_.command_timeout_ms)) +
                        " ms; the connection is considered dead"});
  }
  if (closing_handles_) return;
  uint64_t stall_at = StallAt();
  if (stall_at != 0 && stall_at <= now) {
    if (state_ == ClientState::kConnecting && now > due + kLateTimerMs) {
      // This timer fires late: the loop itself was held (synchronous work). A reply in the
      // socket was read above, but a step of a connect attempt that completed meanwhile is
      // only seen when the loop polls: judge after one poll.
      stall_judged_after_ms_ = now + 1;
    } else {
      OpenBreaker(BreakerReason::kStalled, now);
    }
  }
  if (probe_pending_ && now >= probe_sent_ms_ + ProbeTimeoutMs()) {
    probe_pending_ = false;  // its reply, if it ever comes, is swallowed by its slot
    if (breaker_.ProbeFailed(now)) EmitBreaker();
  }
  if (breaker_.ProbeDue(now) && state_ == ClientState::kReady && !probe_pending_) SendProbe(now);
  ArmDeadlineTimer();
}

// Settles every command whose deadline is at or before `now` with ETIMEDOUT (written ones
// keep their slots; unsent ones are dropped and never run).
void RedisClient::ExpireDeadlines(uint64_t now) {
  uint64_t next = pipeline_.NextDeadline();
  if (next == 0 || next > now) return;  // nothing is due: no scope, no error to build
  SettleScope scope(listener_);
  ClientError timeout{
      ErrorKind::kTimeout, "ETIMEDOUT",
      "Redis did not answer within " + std::to_string(options_.command_timeout_ms) + " ms"};
  size_t expired = 0;
  bool tripped = false;
  pipeline_.ExpireDue(now, [&](void* token, uint32_t flags, bool written) {
    // Only a command Redis had and did not answer in time is Redis's failure; one never
    // written waited for this process (a held loop, a socket that takes no more).
    if (written && breaker_.enabled() && breaker_.RecordFailure(now)) tripped = true;
    Fail(token, flags, Outcome::kTimeout, timeout);
    ++expired;
  });
  if (expired > 0) TrackSettled(expired);
  if (tripped) OnBreakerOpened();  // After the loop: it settles commands of the pipeline.
}

// Arms the deadline timer for the earliest of: the next command deadline, the moment the
// oldest written command would make the connection count as dead, the moment a wait would
// count as a stall, and the breaker's probe.
void RedisClient::ArmDeadlineTimer() {
  if (closing_handles_) return;
  ArmTimerAt(NextWakeMs());
}

// The earliest of the moments above, or 0 when none applies.
uint64_t RedisClient::NextWakeMs() const {
  uint64_t wake = 0;
  auto consider = [&wake](uint64_t at) {
    if (at != 0 && (wake == 0 || at < wake)) wake = at;
  };
  if (options_.command_timeout_ms != 0) {
    consider(pipeline_.NextDeadline());
    consider(DeadAt());
  }
  consider(StallAt());
  if (probe_pending_) consider(probe_sent_ms_ + ProbeTimeoutMs());
  // The probe goes out on a ready connection (OnHandshakeDone sends one that fell due
  // while connecting).
  if (state_ == ClientState::kReady && breaker_.state() == BreakerState::kOpen &&
      breaker_.reason() == BreakerReason::kFailures) {
    consider(breaker_.probe_at_ms());
  }
  return wake;
}

// Makes the deadline timer fire no later than `wake_ms` (0: no need).
void RedisClient::ArmTimerAt(uint64_t wake_ms) {
  if (wake_ms == 0 || closing_handles_) return;
  if (deadline_armed_ && timer_wake_ms_ <= wake_ms) return;
  // Never due at once: a timer re-armed due inside its own callback would run again before
  // the loop polls, and a condition only the poll can change would spin it for ever.
  wake_ms = std::max(wake_ms, MonotonicNowMs() + 1);
  deadline_armed_ = true;
  timer_wake_ms_ = wake_ms;
  uv_timer_start(
      deadline_timer_.get(),
      [](uv_timer_t* t) { static_cast<RedisClient*>(t->data)->OnDeadlineTimer(); },
      TimerDelayUntil(loop_, wake_ms), 0);
}

// ---------------------------------------------------------------------------------------
// The breaker and events

// Whether the oldest written command blocks by design (kNoDeadline): the replies behind it
// wait for it, and nothing about the server follows from that.
bool RedisClient::BlockingAhead() const {
  return pipeline_.written() > 0 && (pipeline_.OldestWritten().flags & kNoDeadline) != 0;
}

// When the connection would count as dead (no reply for twice the command timeout while
// commands it was sent wait), or 0.
uint64_t RedisClient::DeadAt() const {
  if (conn_ == nullptr || options_.command_timeout_ms == 0 || state_ != ClientState::kReady ||
      pipeline_.written() == 0 || BlockingAhead()) {
    return 0;
  }
  return progress_at_ms_ + 2 * static_cast<uint64_t>(options_.command_timeout_ms);
}

// When a wait that began would count as a stall, or 0: commands written and nothing read
// since, or a connect attempt that commands wait for. Only a closed breaker looks.
uint64_t RedisClient::StallAt() const {
  if (!breaker_.enabled() || !breaker_.closed()) return 0;
  uint64_t at = 0;
  if (state_ == ClientState::kReady && pipeline_.written() > 0) {
    if (BlockingAhead()) return 0;  // silence is what a blocking command means
    // While the socket still takes a write, the wait has not begun (a server that stops
    // reading is caught by the deadlines and the dead-connection check instead).
    if (conn_ != nullptr && conn_->write_pending()) return 0;
    at = std::max(progress_at_ms_, read_at_ms_) + breaker_.stall_ms();
  } else if (state_ == ClientState::kConnecting && !pipeline_.empty()) {
    at = connect_started_ms_ + breaker_.stall_ms();
  }
  return at == 0 ? 0 : std::max(at, stall_judged_after_ms_);
}

uint64_t RedisClient::ProbeTimeoutMs() const {
  return options_.command_timeout_ms != 0 ? options_.command_timeout_ms
                                          : options_.connect_timeout_ms;
}

void RedisClient::SendProbe(uint64_t now_ms) {
  if (!breaker_.BeginProbe()) return;
  std::string_view ping("PING");
  pipeline_.Push(&ping, 1, nullptr, 0, 0, CommandKind::kProbe);
  probe_pending_ = true;
  probe_sent_ms_ = now_ms;
  EmitBreaker();
  RequestFlush();
}

void RedisClient::OpenBreaker(BreakerReason reason, uint64_t now_ms) {
  bool was_closed = breaker_.closed();
  if (!breaker_.Open(reason, now_ms)) return;
  if (!was_closed) {
    EmitBreaker();  // A new reason only.
    return;
  }
  OnBreakerOpened();
}

// The breaker has just opened: say so, and settle the waiting commands that asked for it.
void RedisClient::OnBreakerOpened() {
  breaker_opened_at_ms_ = WallClockMs();
  EmitBreaker();
  SettleScope scope(listener_);
  ClientError unsent = FastFailure(false);
  ClientError written{ErrorKind::kOutcomeUnknown, "ERR_OUTCOME_UNKNOWN",
                      "the command was sent, then the circuit breaker opened (" +
                          std::string(BreakerReasonName(breaker_.reason())) +
                          ") before Redis answered; it may or may not have run"};
  size_t settled = 0;
  pipeline_.SettleFlagged(
      kSettleWhenBreakerOpens, kHasFallback,
      [&](void* token, uint32_t flags) {
        Fail(token, flags, Outcome::kUnknown, written);
        ++settled;
      },
      [&](void* token, uint32_t flags) {
        Fail(token, flags, Outcome::kRefused, unsent);
        ++settled;
      });
  if (settled > 0) TrackSettled(settled);
}

void RedisClient::CloseBreaker() {
  if (breaker_.Close()) EmitBreaker();
}

void RedisClient::EmitBreaker() {
  listener_->OnBreakerState(breaker_.state(), breaker_.opened());
  ClientEvent event{ClientEventType::kBreaker};
  event.breaker = breaker_.state();
  event.reason = breaker_.reason();
  Emit(std::move(event));
  ArmDeadlineTimer();  // a timed probe, or the next stall
}

// Events wait for the idle handle (or the close), so the listener never runs inside a
// transition.
void RedisClient::Emit(ClientEvent event) {
  events_.push_back(std::move(event));
  if (closing_handles_) return;
  uv_ref(idle_.base());  // an event is delivered even if nobody awaits a reply
  StartIdle();
}

void RedisClient::DeliverEvents() {
  SettleScope scope(listener_);
  std::vector<ClientEvent> events;
  events.swap(events_);
  if (!closing_handles_) uv_unref(idle_.base());
  for (const ClientEvent& e : events) listener_->OnEvent(e);
}

// Settles one command with an error: counted, and handed back with the caller's own flags.
void RedisClient::Fail(void* token, uint32_t flags, Outcome outcome, const ClientError& error) {
  if (options_.metrics) metrics_.Count(static_cast<Verb>(flags >> kSinkFlagsShift), outcome);
  listener_->OnFailure(token, flags & kCallerFlagsMask, error);
}

// ---------------------------------------------------------------------------------------
// Settling in bulk, closing

void RedisClient::FailWritten(const ClientError& error) {
  size_t failed = 0;
  // The oldest written entry may be a unit with some of its replies in: its caller learns
  // those with the failure (a pipeline's answered commands did run).
  void* partial_token = !unit_replies_.empty() ? pipeline_.OldestWritten().token : nullptr;
  pipeline_.FailWritten([&](void* token, uint32_t flags) {
    if (token != nullptr && token == partial_token) {
      if (options_.metrics)
        metrics_.Count(static_cast<Verb>(flags >> kSinkFlagsShift), Outcome::kUnknown);
      redisReply so_far{};
      so_far.type = REDIS_REPLY_ARRAY;
      so_far.elements = unit_replies_.size();
      so_far.element = unit_replies_.data();
      listener_->OnUnitFailure(token, flags & kCallerFlagsMask, error, &so_far);
    } else {
      Fail(token, flags, Outcome::kUnknown, error);
    }
    ++failed;
  });
  DropUnitReplies();
  handshake_pending_ = 0;
  if (failed > 0) TrackSettled(failed);
}

// After a failed attempt: unsent commands fail, except those maxRetriesPerRequest lets wait
// for another (a caller with a fallback never waits).
void RedisClient::FailUnsentPastRetries(const ClientError& error) {
  uint32_t limit = options_.max_retries_per_request;
  if (limit == 0) {
    FailUnsent(error);
    return;
  }
  size_t failed = 0;
  pipeline_.DropUnsentUnless(
      [&](const PendingCommand& c) {
        return (c.flags & kHasFallback) == 0 &&
               (limit == kRetryForever || failed_attempts_ - c.epoch <= limit);
      },
      [&](void* token, uint32_t flags) {
        Fail(token, flags, Outcome::kError, error);
        ++failed;
      });
  if (failed > 0) TrackSettled(failed);
}

void RedisClient::FailUnsent(const ClientError& error) {
  size_t failed = 0;
  pipeline_.FailUnsent([&](void* token, uint32_t flags) {
    Fail(token, flags, Outcome::kError, error);
    ++failed;
  });
  if (failed > 0) TrackSettled(failed);
}

void RedisClient::SettleEarlyFailures() {
  SettleScope scope(listener_);
  std::vector<EarlyFailure> failures;
  failures.swap(early_failures_);
  for (const EarlyFailure& f : failures) Fail(f.token, f.flags, Outcome::kRefused, f.error);
  TrackSettled(failures.size());
}

void RedisClient::TrackSettled(size_t count) {
  awaiting_ -= count;
  if (awaiting_ == 0) {
    listener_->OnBusyChanged(false);
    EnsureRef();
  }
}

// Handles keep the loop (the process) alive only while a caller awaits an answer or a quit
// is draining: an idle client never holds a process open.
void RedisClient::EnsureRef() {
  bool want = awaiting_ > 0 || (quit_requested_ && !closing_handles_);
  if (want == refd_ || closing_handles_) return;
  refd_ = want;
  for (uv_handle_t* h : {deadline_timer_.base(), state_timer_.base()}) {
    if (want) {
      uv_ref(h);
    } else {
      uv_unref(h);
    }
  }
  if (conn_ != nullptr) conn_->SetRef(want);
}

void RedisClient::Quit() {
  if (quit_requested_ || closing_handles_) return;
  quit_requested_ = true;
  switch (state_) {
    case ClientState::kIdle:
    case ClientState::kDown: {
      // Commands kept for the next attempt (maxRetriesPerRequest) will not get one.
      SettleScope scope(listener_);
      EndNow(ClosedBeforeSent());
      break;
    }
    case ClientState::kConnecting:
    case ClientState::kReady: {
      // QUIT goes after every accepted command, so all of them are answered first.
      std::string_view quit("QUIT");
      pipeline_.Push(&quit, 1, nullptr, 0, 0, CommandKind::kQuit);
      if (state_ == ClientState::kReady) {
        state_ = ClientState::kClosing;
        StartQuitDeadline();
        RequestFlush();
      }
      EnsureRef();
      break;
    }
    case ClientState::kClosing:
    case ClientState::kClosed:
      break;
  }
}

void RedisClient::Disconnect() {
  if (closing_handles_) return;
  quit_requested_ = true;
  SettleScope scope(listener_);
  CloseConnection();
  FailWritten(ClientError{ErrorKind::kOutcomeUnknown, "ERR_OUTCOME_UNKNOWN",
                          "the client was disconnected after the command was sent; it may or "
                          "may not have run"});
  FailUnsent(ClientError{ErrorKind::kClosed, "ERR_CLIENT_CLOSED",
                         "the client was disconnected before the command was sent"});
  if (!early_failures_.empty()) SettleEarlyFailures();
  CloseHandles();
}

void RedisClient::CloseHandles() {
  if (closing_handles_) return;
  if (!early_failures_.empty()) SettleEarlyFailures();
  closing_handles_ = true;
  state_ = ClientState::kClosed;
  CloseConnection();
  idle_.Close();
  prepare_.Close();
  check_.Close();
  deadline_timer_.Close();
  state_timer_.Close();
}

void RedisClient::MaybeFinishClose() {
  if (closing_handles_ && handles_.open() == 0 && !closed_notified_) {
    closed_notified_ = true;
    if (!events_.empty()) DeliverEvents();
    listener_->OnClosed();  // The owner may delete this client here: nothing follows.
  }
}

ClientStats RedisClient::Stats() const {
  ClientStats s;
  s.state = state_;
  s.reconnect_attempts = reconnect_attempts_;
  s.connections_opened = connections_opened_;
  s.in_flight = pipeline_.written();
  s.queued = pipeline_.unsent();
  s.has_last_error = has_last_error_;
  s.last_error = last_error_;
  s.last_error_at_ms = last_error_at_ms_;
  s.breaker = breaker_.state();
  s.breaker_reason = breaker_.reason();
  s.breaker_opened_at_ms = breaker_opened_at_ms_;
  s.breaker_opened = breaker_.opened();
  s.breaker_closed = breaker_.closings();
  return s;
}

}  // namespace hirecache
