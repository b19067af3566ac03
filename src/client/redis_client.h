// A Redis client that runs on a caller-provided libuv loop (Node's own, or the system one in
// the unit tests). hiredis parses replies; this class owns the socket, the deadlines, the
// reconnection and the FIFO that pairs each reply with the command that asked for it.
//
// Rules it keeps (DESIGN.md, "Rules that keep replies with their callers"):
//   * A written command keeps its place in the FIFO until its reply arrives or the
//     connection dies; a deadline settles the caller early but the slot swallows the reply.
//   * When a connection dies, written commands fail with ERR_OUTCOME_UNKNOWN and are never
//     resent; only commands never written go out on the next connection.
//   * Bytes read after a connection was declared dead are dropped unparsed.
//   * The queue of unsent commands is bounded; while Redis is known to be down, calls fail
//     fast with the last connection error.
//   * Every command is settled exactly once.
#ifndef HIRECACHE_CLIENT_REDIS_CLIENT_H_
#define HIRECACHE_CLIENT_REDIS_CLIENT_H_

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/client_error.h"
#include "client/reconnect_policy.h"

struct redisReply;
struct redisReader;

namespace hirecache {

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
  uint32_t max_queue = 10000;  // commands accepted but not yet written
  uint32_t reconnect_base_delay_ms = 50;
  uint32_t reconnect_max_delay_ms = 2000;
};

enum class ClientState {
  kIdle,        // never asked to connect
  kConnecting,  // resolving, connecting or in the handshake
  kReady,       // connected and handshaken
  kDown,        // the last connection attempt failed; waiting for the backoff timer
  kClosing,     // quit(): draining replies
  kClosed,
};

const char* ClientStateName(ClientState state);

// The owner of the callers' promises (the N-API binding, or a test) implements this. Every
// OnReply / OnFailure happens between one BeginSettle and its EndSettle; EndSettle is where
// the binding lets JS continuations run, so they may call back into the client.
class ReplyListener {
 public:
  virtual ~ReplyListener() = default;
  virtual void BeginSettle() = 0;
  virtual void EndSettle() = 0;
  // `reply` belongs to the client and is freed when OnReply returns.
  virtual void OnReply(void* token, uint32_t flags, const redisReply* reply) = 0;
  virtual void OnFailure(void* token, uint32_t flags, const ClientError& error) = 0;
  // The number of commands awaiting settlement went from 0 to 1 (busy) or back (idle).
  virtual void OnBusyChanged(bool busy) = 0;
  // Every libuv handle and request of the client is closed; it may now be deleted.
  virtual void OnClosed() = 0;
};

struct ClientStats {
  ClientState state;
  uint32_t reconnect_attempts;  // consecutive failed attempts since the last success
  uint64_t connections_opened;
  uint64_t in_flight;  // written, awaiting replies
  uint64_t queued;     // accepted, not yet written
  bool has_last_error;
  ClientError last_error;
  uint64_t last_error_at_ms;  // wall clock (ms since the epoch)
};

enum class SubmitResult {
  kAccepted,  // the command will be settled through the listener (perhaps with an error)
  kClosed,    // quit() or disconnect() was called: nothing was queued, nothing will be settled
};

class RedisClient {
 public:
  RedisClient(uv_loop_t* loop, ClientOptions options, ReplyListener* listener);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Queues one command. `token` and `flags` come back in OnReply / OnFailure. The first
  // command connects. Nothing is written before the current loop turn ends. A command that
  // fails at once (Redis known to be down, queue full) is settled at the end of the loop
  // turn too, never synchronously: a caller looping on `await` still lets the loop turn.
  SubmitResult Submit(const std::string_view* argv, size_t argc, void* token, uint32_t flags);

  // Graceful close: commands already accepted are answered, then QUIT, then close.
  void Quit();
  // Immediate close: every pending command fails (written ones with ERR_OUTCOME_UNKNOWN).
  void Disconnect();

  ClientStats Stats() const;
  const ClientError& LastError() const { return last_error_; }
  ClientState state() const { return state_; }
  // Hands the callbacks to another listener (the binding's, when its JS object is collected
  // before the client finished closing).
  void SetListener(ReplyListener* listener) { listener_ = listener; }

 private:
  struct Connection;
  struct PendingCommand;
  struct DnsRequest;
  struct WriteRequest;
  enum class CommandKind : uint8_t { kUser, kHandshake, kQuit };

  // Connection lifecycle.
  void StartConnect();
  void OnResolved(int status, struct addrinfo* res);
  void RecordError(const ClientError& error);
  void ConnectNextAddress();
  void OnTcpConnected(Connection* conn, int status);
  void StartHandshake();
  void OnHandshakeDone();
  void FailConnection(const ClientError& error);
  void FailConnectAttempt(const ClientError& error);
  void ScheduleReconnect();
  void CloseConnection();
  void CloseHandles();
  void AbandonDns();

  // Data path.
  void RequestFlush();
  void Flush();
  bool WriteBytes(std::string& bytes, size_t from);
  static void OnWritten(uv_write_t* req, int status);
  void OnRead(Connection* conn, ssize_t nread, const uv_buf_t* buf);
  void SettleReply(const PendingCommand& cmd, redisReply* reply);
  void PopFront();

  // Deadlines.
  void ArmDeadlineTimer();
  void StartQuitDeadline();
  void LoseConnection(const ClientError& error);
  void OnDeadlineTimer();
  void OnStateTimer();

  // Settling in bulk.
  void FailWritten(const ClientError& error);
  void FailUnsent(const ClientError& error);
  void TrackSettled(size_t count);
  void SettleEarlyFailures();
  void EnsureRef();
  void MaybeFinishClose();

  static void OnPrepareOrCheck(uv_handle_t* handle);

  uv_loop_t* loop_;
  ClientOptions options_;
  ReplyListener* listener_;
  ReconnectPolicy reconnect_policy_;

  ClientState state_ = ClientState::kIdle;
  Connection* conn_ = nullptr;               // owned until its close callback frees it
  DnsRequest* dns_ = nullptr;                // the current attempt's resolver request, if any
  int dns_outstanding_ = 0;                  // resolver requests whose callbacks have not run yet
  std::vector<sockaddr_storage> addresses_;  // of the current attempt, in resolver order
  size_t next_address_ = 0;
  ClientError last_connect_error_;
  size_t handshake_pending_ = 0;

  // The FIFO: [written | unsent]. The first `written_` entries were handed to the socket;
  // `outbuf_` holds the encoded bytes of the unsent ones, in order.
  std::deque<PendingCommand> fifo_;
  size_t written_ = 0;
  size_t expired_prefix_ = 0;  // entries at the front whose deadline no longer matters
  size_t awaiting_ = 0;        // user commands not yet settled
  std::string outbuf_;
  size_t outbuf_skip_ = 0;  // leading bytes of outbuf_ that belong to dropped commands
  struct EarlyFailure {
    void* token;
    uint32_t flags;
    ClientError error;
  };
  std::vector<EarlyFailure> early_failures_;  // settled at the next prepare or check
  bool write_in_flight_ = false;
  bool drain_then_reconnect_ = false;  // after READONLY: finish written commands, reconnect
  bool quit_requested_ = false;

  uv_idle_t idle_;  // settles early failures; an active idle handle keeps poll from blocking
  uv_prepare_t prepare_;
  uv_check_t check_;
  uv_timer_t deadline_timer_;
  uv_timer_t state_timer_;  // the connect deadline, or the reconnect backoff
  bool flush_scheduled_ = false;
  bool deadline_armed_ = false;
  int open_handles_ = 0;
  bool closing_handles_ = false;
  bool closed_notified_ = false;
  bool refd_ = false;

  uint32_t reconnect_attempts_ = 0;  // failed attempts since the last handshake (for status)
  uint32_t backoff_level_ = 0;       // paces reconnection; reset by a connection that lasted
  uint64_t connected_at_ = 0;        // loop time of the current connection's handshake
  uint64_t connections_opened_ = 0;
  ClientError last_error_;
  bool has_last_error_ = false;
  uint64_t last_error_at_ms_ = 0;
  uint64_t jitter_state_;
};

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_REDIS_CLIENT_H_
