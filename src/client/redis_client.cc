#include "client/redis_client.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>

#include "client/command_encoder.h"

namespace hirecache {

namespace {

// hiredis's reader compacts its buffer (a memmove of everything unread) each time it has
// consumed 1 KiB. Feeding it a large read at once makes that quadratic, so reads are fed
// in slices no larger than this.
constexpr size_t kReaderFeedSlice = 4096;
constexpr size_t kReadBufferSize = 64 * 1024;
// A large read settles its replies in slices of this many: between slices the continuations
// run and the commands they issued are written, so Redis works on them while the rest of
// the read is settled, instead of Node and Redis taking turns.
constexpr size_t kSettleSlice = 128;
// Keep the reader's buffer between replies instead of freeing it after each drain.
constexpr size_t kReaderKeepBuffer = 1024 * 1024;
// The output buffer's capacity is kept between writes up to this size.
constexpr size_t kKeepOutbufCapacity = 1024 * 1024;
// A connection that lasted at least this long resets the reconnect backoff when it is lost.
constexpr uint64_t kStableConnectionMs = 2000;

uint64_t WallClockMs() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::string Endpoint(const ClientOptions& o) {
  bool v6 = o.host.find(':') != std::string::npos;
  return (v6 ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
}

ClientError ErrorFromUv(int status, const std::string& what) {
  ClientError e;
  e.kind = ErrorKind::kConnection;
  e.code = CodeForUvStatus(status);
  e.message = what + ": " + uv_strerror(status);
  return e;
}

// The server's error text without any echo of the command's arguments ("unknown command
// 'AUTH', with args beginning with: …" would carry a password).
std::string WithoutArguments(const redisReply* reply) {
  std::string text(reply->str, reply->len);
  size_t args = text.find(" with args");
  if (args != std::string::npos) text.erase(args);
  while (!text.empty() && (text.back() == ',' || text.back() == ' ')) text.pop_back();
  return text;
}

// The first word of a server error ("WRONGPASS invalid username-password pair") is its code.
std::string ServerErrorCode(const redisReply* reply) {
  std::string_view text(reply->str, reply->len);
  size_t space = text.find(' ');
  return std::string(text.substr(0, space == std::string_view::npos ? text.size() : space));
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
  return "unknown";
}

struct RedisClient::PendingCommand {
  void* token;
  uint64_t deadline_ms;  // loop time; 0: none
  uint32_t encoded_len;  // bytes in outbuf_ while unsent
  uint32_t flags;
  CommandKind kind;
  bool settled;  // the caller already has its answer (deadline); the slot swallows the reply
};

// One TCP connection. It outlives its place in the client: libuv frees it in the close
// callback, and `client` is cleared if the client goes first.
struct RedisClient::Connection {
  explicit Connection(RedisClient* owner) : client(owner), reader(redisReaderCreate()) {
    tcp.data = this;
    connect_req.data = this;
    if (reader != nullptr) reader->maxbuf = kReaderKeepBuffer;
  }
  ~Connection() {
    if (reader != nullptr) redisReaderFree(reader);
  }
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  RedisClient* client;
  redisReader* reader;
  bool dead = false;  // declared dead: whatever it still reads is dropped
  char read_buffer[kReadBufferSize];
};

// A resolver request runs on libuv's thread pool and cannot be taken back once started, so
// an abandoned one (deadline passed, client closing) is only marked; its callback frees it
// and the client does not finish closing before that.
struct RedisClient::DnsRequest {
  uv_getaddrinfo_t req;
  RedisClient* client;
  bool abandoned;
};

struct RedisClient::WriteRequest {
  uv_write_t req;
  Connection* conn;
  std::string bytes;  // bytes.substr(offset) is what libuv is writing
  size_t offset;
};

RedisClient::RedisClient(uv_loop_t* loop, ClientOptions options, ReplyListener* listener)
    : loop_(loop),
      options_(std::move(options)),
      listener_(listener),
      reconnect_policy_(options_.reconnect_base_delay_ms, options_.reconnect_max_delay_ms),
      jitter_state_(uv_hrtime() | 1) {
  uv_idle_init(loop_, &idle_);
  uv_prepare_init(loop_, &prepare_);
  uv_check_init(loop_, &check_);
  uv_timer_init(loop_, &deadline_timer_);
  uv_timer_init(loop_, &state_timer_);
  open_handles_ = 5;
  for (uv_handle_t* h :
       {reinterpret_cast<uv_handle_t*>(&idle_), reinterpret_cast<uv_handle_t*>(&prepare_),
        reinterpret_cast<uv_handle_t*>(&check_), reinterpret_cast<uv_handle_t*>(&deadline_timer_),
        reinterpret_cast<uv_handle_t*>(&state_timer_)}) {
    h->data = this;
    uv_unref(h);
  }
}

RedisClient::~RedisClient() {
  // The owner deletes the client only after OnClosed: every handle is closed by then.
  assert(open_handles_ == 0 && dns_outstanding_ == 0);
}

SubmitResult RedisClient::Submit(const std::string_view* argv, size_t argc, void* token,
                                 uint32_t flags) {
  if (quit_requested_ || state_ == ClientState::kClosing || state_ == ClientState::kClosed) {
    return SubmitResult::kClosed;
  }
  // Once an attempt has failed, Redis counts as down until one succeeds: calls made during
  // the retries fail at once instead of waiting on an attempt that will likely fail too.
  bool down = state_ == ClientState::kDown ||
              (state_ == ClientState::kConnecting && reconnect_attempts_ > 0);
  if (down || fifo_.size() - written_ >= options_.max_queue) {
    EarlyFailure failure{token, flags, {}};
    if (down) {
      failure.error = last_error_;
      failure.error.message =
          "Redis is unreachable (" + last_error_.message + "); retrying in the background";
    } else {
      failure.error = {ErrorKind::kQueueFull, "ERR_QUEUE_FULL",
                       "more than " + std::to_string(options_.max_queue) +
                           " commands are waiting to be sent to Redis"};
    }
    early_failures_.push_back(std::move(failure));
    if (++awaiting_ == 1) {
      listener_->OnBusyChanged(true);
      EnsureRef();
    }
    uv_idle_start(&idle_, [](uv_idle_t* h) {
      auto* client = static_cast<RedisClient*>(h->data);
      uv_idle_stop(h);
      client->SettleEarlyFailures();
    });
    return SubmitResult::kAccepted;
  }

  size_t len = AppendCommand(outbuf_, argv, argc);
  uint64_t deadline =
      options_.command_timeout_ms == 0 ? 0 : uv_now(loop_) + options_.command_timeout_ms;
  fifo_.push_back(PendingCommand{token, deadline, static_cast<uint32_t>(len), flags,
                                 CommandKind::kUser, false});
  if (++awaiting_ == 1) {
    listener_->OnBusyChanged(true);
    EnsureRef();
  }
  if (!deadline_armed_ && deadline != 0) {
    deadline_armed_ = true;
    uv_timer_start(
        &deadline_timer_,
        [](uv_timer_t* t) { static_cast<RedisClient*>(t->data)->OnDeadlineTimer(); },
        options_.command_timeout_ms, 0);
  }
  if (state_ == ClientState::kIdle) {
    StartConnect();
  } else if (state_ == ClientState::kReady) {
    RequestFlush();
  }
  return SubmitResult::kAccepted;
}

// ---------------------------------------------------------------------------------------
// Connecting

void RedisClient::StartConnect() {
  state_ = ClientState::kConnecting;
  addresses_.clear();
  next_address_ = 0;
  last_connect_error_ = ClientError{};
  uv_timer_start(
      &state_timer_, [](uv_timer_t* t) { static_cast<RedisClient*>(t->data)->OnStateTimer(); },
      options_.connect_timeout_ms, 0);

  // An address literal needs no resolver (and no thread-pool hop).
  sockaddr_storage literal{};
  if (uv_ip4_addr(options_.host.c_str(), options_.port, reinterpret_cast<sockaddr_in*>(&literal)) ==
          0 ||
      uv_ip6_addr(options_.host.c_str(), options_.port,
                  reinterpret_cast<sockaddr_in6*>(&literal)) == 0) {
    addresses_.push_back(literal);
    ConnectNextAddress();
    return;
  }
  dns_ = new DnsRequest{};
  dns_->client = this;
  dns_->abandoned = false;
  dns_->req.data = dns_;
  ++dns_outstanding_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  std::string port = std::to_string(options_.port);
  int rc = uv_getaddrinfo(
      loop_, &dns_->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* dns = static_cast<DnsRequest*>(req->data);
        RedisClient* client = dns->client;
        bool abandoned = dns->abandoned;
        delete dns;
        --client->dns_outstanding_;
        if (abandoned) {
          if (res != nullptr) uv_freeaddrinfo(res);
          client->MaybeFinishClose();
          return;
        }
        client->dns_ = nullptr;
        client->OnResolved(status, res);
      },
      options_.host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    delete dns_;
    dns_ = nullptr;
    --dns_outstanding_;
    FailConnectAttempt(ErrorFromUv(rc, "resolving " + options_.host + " failed"));
  }
}

void RedisClient::OnResolved(int status, addrinfo* res) {
  if (status != 0) {
    FailConnectAttempt(ErrorFromUv(status, "resolving " + options_.host + " failed"));
    return;
  }
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    sockaddr_storage addr{};
    std::memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    addresses_.push_back(addr);
  }
  uv_freeaddrinfo(res);
  ConnectNextAddress();
}

void RedisClient::ConnectNextAddress() {
  while (next_address_ < addresses_.size()) {
    const sockaddr* addr = reinterpret_cast<const sockaddr*>(&addresses_[next_address_++]);
    conn_ = new Connection(this);
    uv_tcp_init(loop_, &conn_->tcp);
    ++open_handles_;
    if (!refd_) uv_unref(reinterpret_cast<uv_handle_t*>(&conn_->tcp));
    int rc =
        uv_tcp_connect(&conn_->connect_req, &conn_->tcp, addr, [](uv_connect_t* req, int status) {
          auto* conn = static_cast<Connection*>(req->data);
          if (conn->dead || conn->client == nullptr) return;
          conn->client->OnTcpConnected(conn, status);
        });
    if (rc == 0) return;
    last_connect_error_ = ErrorFromUv(rc, "connecting to " + Endpoint(options_) + " failed");
    CloseConnection();
  }
  ClientError error = last_connect_error_;
  if (error.code.empty()) {
    error.code = "ENOTFOUND";
    error.message = "no IPv4 or IPv6 address found for " + options_.host;
  }
  FailConnectAttempt(error);
}

void RedisClient::OnTcpConnected(Connection* conn, int status) {
  assert(conn == conn_);
  if (status < 0) {
    last_connect_error_ = ErrorFromUv(status, "connecting to " + Endpoint(options_) + " failed");
    CloseConnection();
    ConnectNextAddress();
    return;
  }
  if (conn->reader == nullptr) {
    FailConnectAttempt(ClientError{ErrorKind::kConnection, "ENOMEM", "out of memory"});
    return;
  }
  uv_tcp_nodelay(&conn->tcp, options_.no_delay ? 1 : 0);
  if (options_.keepalive_delay_s > 0) uv_tcp_keepalive(&conn->tcp, 1, options_.keepalive_delay_s);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&conn->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* c = static_cast<Connection*>(h->data);
        *buf = uv_buf_init(c->read_buffer, sizeof(c->read_buffer));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* c = static_cast<Connection*>(s->data);
        if (c->dead || c->client == nullptr) return;
        c->client->OnRead(c, nread, buf);
      });
  ++connections_opened_;
  StartHandshake();
}

void RedisClient::StartHandshake() {
  std::string bytes;
  std::vector<PendingCommand> steps;
  auto add = [&](std::initializer_list<std::string_view> args) {
    std::vector<std::string_view> argv(args);
    AppendCommand(bytes, argv.data(), argv.size());
    steps.push_back(PendingCommand{nullptr, 0, 0, 0, CommandKind::kHandshake, false});
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
  if (steps.empty()) {
    OnHandshakeDone();
    return;
  }
  // The handshake goes ahead of every queued command; those wait for it to succeed.
  fifo_.insert(fifo_.begin(), steps.begin(), steps.end());
  written_ = steps.size();
  expired_prefix_ = std::min(expired_prefix_ + steps.size(), fifo_.size());
  handshake_pending_ = steps.size();
  WriteBytes(bytes, 0);
}

void RedisClient::OnHandshakeDone() {
  uv_timer_stop(&state_timer_);
  state_ = quit_requested_ ? ClientState::kClosing : ClientState::kReady;
  reconnect_attempts_ = 0;
  connected_at_ = uv_now(loop_);
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
  RecordError(error);
  if (conn_ != nullptr) CloseConnection();
  AbandonDns();
  uv_timer_stop(&state_timer_);
  // Handshake commands of this attempt go with it; user commands were never written.
  while (written_ > 0) PopFront();
  handshake_pending_ = 0;
  ++reconnect_attempts_;
  ++backoff_level_;
  state_ = ClientState::kDown;
  // Callers waiting for this connection learn at once that Redis is unreachable, and so
  // does every call until a retry succeeds: nothing piles up behind a dead server.
  FailUnsent(error);
  if (quit_requested_) {
    CloseHandles();
    return;
  }
  ScheduleReconnect();
}

void RedisClient::FailConnection(const ClientError& error) {
  if (state_ == ClientState::kConnecting) {
    FailConnectAttempt(error);
    return;
  }
  SettleScope scope(listener_);
  RecordError(error);
  CloseConnection();
  ClientError unknown;
  unknown.kind = ErrorKind::kOutcomeUnknown;
  unknown.code = "ERR_OUTCOME_UNKNOWN";
  unknown.message = "the connection to Redis was lost after the command was sent (" + error.code +
                    "); it may or may not have run";
  FailWritten(unknown);
  drain_then_reconnect_ = false;
  if (quit_requested_) {
    ClientError closed{ErrorKind::kClosed, "ERR_CLIENT_CLOSED",
                       "the client was closed before the command was sent"};
    FailUnsent(closed);
    CloseHandles();
    return;
  }
  LoseConnection(error);
}

// After an established connection ended: reconnect at once if it had lasted (commands never
// written wait for the new connection, within their deadlines); otherwise back off, so that
// a server which accepts and then drops connections is not hammered.
void RedisClient::LoseConnection(const ClientError& error) {
  if (uv_now(loop_) - connected_at_ >= kStableConnectionMs) backoff_level_ = 0;
  if (backoff_level_++ == 0) {
    StartConnect();
    return;
  }
  state_ = ClientState::kDown;
  FailUnsent(error);
  ScheduleReconnect();
}

void RedisClient::ScheduleReconnect() {
  // xorshift64: jitter only needs to differ between processes, not to be unpredictable.
  jitter_state_ ^= jitter_state_ << 13;
  jitter_state_ ^= jitter_state_ >> 7;
  jitter_state_ ^= jitter_state_ << 17;
  double r = static_cast<double>(jitter_state_ >> 11) / static_cast<double>(1ULL << 53);
  uv_timer_start(
      &state_timer_, [](uv_timer_t* t) { static_cast<RedisClient*>(t->data)->OnStateTimer(); },
      reconnect_policy_.DelayMs(backoff_level_, r), 0);
}

void RedisClient::OnStateTimer() {
  if (state_ == ClientState::kConnecting) {
    FailConnectAttempt(ClientError{ErrorKind::kConnection, "ETIMEDOUT",
                                   "connecting to " + Endpoint(options_) + " took longer than " +
                                       std::to_string(options_.connect_timeout_ms) + " ms"});
  } else if (state_ == ClientState::kDown) {
    StartConnect();
  } else if (state_ == ClientState::kClosing) {
    Disconnect();  // The server did not answer the commands ahead of QUIT in time.
  }
}

// quit() waits for replies, but not forever: after the command timeout (or the connect
// timeout when commands have none) it disconnects.
void RedisClient::StartQuitDeadline() {
  uint32_t ms =
      options_.command_timeout_ms != 0 ? options_.command_timeout_ms : options_.connect_timeout_ms;
  uv_timer_start(
      &state_timer_, [](uv_timer_t* t) { static_cast<RedisClient*>(t->data)->OnStateTimer(); }, ms,
      0);
}

void RedisClient::CloseConnection() {
  Connection* conn = conn_;
  if (conn == nullptr) return;
  conn_ = nullptr;
  conn->dead = true;
  write_in_flight_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&conn->tcp));
  uv_close(reinterpret_cast<uv_handle_t*>(&conn->tcp), [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    RedisClient* client = c->client;
    delete c;
    if (client != nullptr) {
      --client->open_handles_;
      client->MaybeFinishClose();
    }
  });
}

// ---------------------------------------------------------------------------------------
// Writing

void RedisClient::RequestFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Whichever of prepare (before the loop polls) and check (right after) comes first sends
  // everything queued during this turn of the loop in one write.
  uv_prepare_start(&prepare_,
                   [](uv_prepare_t* h) { OnPrepareOrCheck(reinterpret_cast<uv_handle_t*>(h)); });
  uv_check_start(&check_,
                 [](uv_check_t* h) { OnPrepareOrCheck(reinterpret_cast<uv_handle_t*>(h)); });
}

void RedisClient::OnPrepareOrCheck(uv_handle_t* handle) {
  auto* client = static_cast<RedisClient*>(handle->data);
  client->flush_scheduled_ = false;
  uv_prepare_stop(&client->prepare_);
  uv_check_stop(&client->check_);
  client->Flush();
}

void RedisClient::SettleEarlyFailures() {
  SettleScope scope(listener_);
  std::vector<EarlyFailure> failures;
  failures.swap(early_failures_);
  for (const EarlyFailure& f : failures) listener_->OnFailure(f.token, f.flags, f.error);
  TrackSettled(failures.size());
}

void RedisClient::Flush() {
  if (state_ != ClientState::kReady && state_ != ClientState::kClosing) return;
  if (write_in_flight_ || drain_then_reconnect_ || conn_ == nullptr) return;
  if (outbuf_.size() == outbuf_skip_) return;
  written_ = fifo_.size();
  // The bytes leave outbuf_ before the write: a failed write settles callers, whose JS
  // continuations may queue new commands into outbuf_; these bytes must never go out again.
  std::string bytes;
  bytes.swap(outbuf_);
  size_t from = outbuf_skip_;
  outbuf_skip_ = 0;
  WriteBytes(bytes, from);
  // Reuse the buffer's capacity next turn (WriteBytes took it if the socket was full).
  if (outbuf_.empty() && bytes.capacity() <= kKeepOutbufCapacity) {
    bytes.clear();
    outbuf_.swap(bytes);
  }
}

// Writes what the socket takes now and hands the rest (with `bytes` itself) to libuv.
// Returns false when the connection failed (and was handled) instead.
bool RedisClient::WriteBytes(std::string& bytes, size_t from) {
  auto* stream = reinterpret_cast<uv_stream_t*>(&conn_->tcp);
  size_t len = bytes.size() - from;
  uv_buf_t buf = uv_buf_init(bytes.data() + from, static_cast<unsigned int>(len));
  int n = uv_try_write(stream, &buf, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
  if (n < 0) {
    FailConnection(ErrorFromUv(n, "writing to " + Endpoint(options_) + " failed"));
    return false;
  }
  if (static_cast<size_t>(n) == len) return true;
  auto* req = new WriteRequest{};
  req->req.data = req;
  req->conn = conn_;
  req->offset = from + static_cast<size_t>(n);
  req->bytes = std::move(bytes);
  uv_buf_t rest = uv_buf_init(req->bytes.data() + req->offset,
                              static_cast<unsigned int>(req->bytes.size() - req->offset));
  int rc = uv_write(&req->req, stream, &rest, 1, OnWritten);
  if (rc != 0) {
    delete req;
    FailConnection(ErrorFromUv(rc, "writing to " + Endpoint(options_) + " failed"));
    return false;
  }
  write_in_flight_ = true;
  return true;
}

void RedisClient::OnWritten(uv_write_t* req, int status) {
  auto* w = static_cast<WriteRequest*>(req->data);
  Connection* conn = w->conn;
  delete w;
  if (conn->dead || conn->client == nullptr) return;
  RedisClient* client = conn->client;
  client->write_in_flight_ = false;
  if (status < 0) {
    client->FailConnection(
        ErrorFromUv(status, "writing to " + Endpoint(client->options_) + " failed"));
    return;
  }
  client->Flush();
}

// ---------------------------------------------------------------------------------------
// Reading

void RedisClient::OnRead(Connection* conn, ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;
  listener_->BeginSettle();
  if (nread < 0) {
    ClientError error =
        nread == UV_EOF ? ClientError{ErrorKind::kConnection, "ECONNRESET",
                                      "Redis at " + Endpoint(options_) + " closed the connection"}
                        : ErrorFromUv(static_cast<int>(nread),
                                      "reading from " + Endpoint(options_) + " failed");
    if (state_ == ClientState::kClosing && fifo_.empty()) {
      // The server closed the connection after answering QUIT.
      CloseConnection();
      CloseHandles();
    } else {
      FailConnection(error);
    }
    listener_->EndSettle();
    return;
  }

  ClientError failure;
  bool failed = false;
  size_t offset = 0;
  size_t settled_in_slice = 0;
  while (offset < static_cast<size_t>(nread) && !failed) {
    size_t slice = std::min(kReaderFeedSlice, static_cast<size_t>(nread) - offset);
    if (redisReaderFeed(conn->reader, buf->base + offset, slice) != REDIS_OK) {
      failure = {ErrorKind::kProtocol, "ERR_PROTOCOL", "Redis sent bytes hiredis cannot parse"};
      failed = true;
      break;
    }
    offset += slice;
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(conn->reader, &raw) != REDIS_OK) {
        failure = {ErrorKind::kProtocol, "ERR_PROTOCOL",
                   std::string("protocol error from Redis: ") + conn->reader->errstr};
        failed = true;
        break;
      }
      if (raw == nullptr) break;
      auto* reply = static_cast<redisReply*>(raw);
      if (written_ == 0) {
        freeReplyObject(reply);
        failure = {ErrorKind::kProtocol, "ERR_PROTOCOL",
                   "Redis sent a reply nobody asked for; the connection is out of step"};
        failed = true;
        break;
      }
      PendingCommand cmd = fifo_.front();
      PopFront();
      if (cmd.kind == CommandKind::kHandshake) {
        if (reply->type == REDIS_REPLY_ERROR) {
          failure = {ErrorKind::kConnection, ServerErrorCode(reply),
                     "Redis refused the connection handshake: " + WithoutArguments(reply)};
          failed = true;
        } else if (--handshake_pending_ == 0) {
          OnHandshakeDone();
        }
      } else if (cmd.kind == CommandKind::kQuit) {
        freeReplyObject(reply);
        CloseConnection();
        CloseHandles();
        break;
      } else if (cmd.kind == CommandKind::kUser) {
        if (reply->type == REDIS_REPLY_ERROR && reply->len >= 8 &&
            std::memcmp(reply->str, "READONLY", 8) == 0) {
          // A failover made this server a replica: finish what was written, then reconnect.
          drain_then_reconnect_ = true;
        }
        SettleReply(cmd, reply);
        ++settled_in_slice;
      }
      freeReplyObject(reply);
      if (failed) break;
      if (settled_in_slice == kSettleSlice && state_ == ClientState::kReady) {
        settled_in_slice = 0;
        listener_->EndSettle();  // Continuations run and may queue commands, or close.
        if (conn_ != conn) return;
        Flush();
        if (conn_ != conn) return;
        listener_->BeginSettle();
      }
    }
    if (conn_ != conn) break;
  }
  if (conn_ != conn) {
    // Closed meanwhile (QUIT answered): the rest of this read is not parsed.
  } else if (failed) {
    FailConnection(failure);
  } else if (drain_then_reconnect_ && written_ == 0 && conn_ == conn) {
    ClientError readonly{ErrorKind::kConnection, "READONLY",
                         "Redis answered READONLY (a failover happened); reconnecting"};
    RecordError(readonly);
    CloseConnection();
    drain_then_reconnect_ = false;
    LoseConnection(readonly);
  }
  listener_->EndSettle();  // JS continuations run here and may call back into the client.
}

void RedisClient::SettleReply(const PendingCommand& cmd, redisReply* reply) {
  if (cmd.settled) return;  // Its deadline passed; the caller already has its answer.
  listener_->OnReply(cmd.token, cmd.flags, reply);
  TrackSettled(1);
}

void RedisClient::PopFront() {
  fifo_.pop_front();
  if (written_ > 0) --written_;
  if (expired_prefix_ > 0) --expired_prefix_;
}

// ---------------------------------------------------------------------------------------
// Deadlines

void RedisClient::OnDeadlineTimer() {
  deadline_armed_ = false;
  uint64_t now = uv_now(loop_);
  SettleScope scope(listener_);
  ClientError timeout{
      ErrorKind::kTimeout, "ETIMEDOUT",
      "Redis did not answer within " + std::to_string(options_.command_timeout_ms) + " ms"};
  size_t i = expired_prefix_;
  while (i < fifo_.size()) {
    PendingCommand& cmd = fifo_[i];
    if (cmd.settled || cmd.deadline_ms == 0) {
      ++i;
      continue;
    }
    if (cmd.deadline_ms > now) break;
    void* token = cmd.token;
    uint32_t flags = cmd.flags;
    if (i < written_) {
      cmd.settled = true;  // The slot stays to swallow the late reply.
      ++i;
    } else {
      // Never written: drop it and its bytes so it never runs. Deadlines grow along the
      // FIFO, so an expiring unsent command is the first unsent one: its bytes lead outbuf_.
      assert(i == written_);
      outbuf_skip_ += cmd.encoded_len;
      fifo_.erase(fifo_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    listener_->OnFailure(token, flags, timeout);
    TrackSettled(1);
  }
  expired_prefix_ = i;
  if (outbuf_skip_ == outbuf_.size()) {
    outbuf_.clear();
    outbuf_skip_ = 0;
  }
  // A connection whose oldest written command got no reply for twice the command timeout is
  // dead in all but name (a partition without a reset): fail it, so callers fail fast.
  if (written_ > 0 && conn_ != nullptr && fifo_.front().deadline_ms != 0 &&
      fifo_.front().deadline_ms + options_.command_timeout_ms <= now) {
    FailConnection({ErrorKind::kConnection, "ETIMEDOUT",
                    "Redis at " + Endpoint(options_) + " sent nothing for " +
                        std::to_string(2 * static_cast<uint64_t>(options_.command_timeout_ms)) +
                        " ms; the connection is considered dead"});
  }
  ArmDeadlineTimer();
}

// Arms the deadline timer for the next command deadline, or for the moment the oldest
// written command would make the connection count as dead, whichever comes first.
void RedisClient::ArmDeadlineTimer() {
  if (closing_handles_ || options_.command_timeout_ms == 0) return;
  uint64_t wake = 0;
  for (size_t i = expired_prefix_; i < fifo_.size(); ++i) {
    if (!fifo_[i].settled && fifo_[i].deadline_ms != 0) {
      wake = fifo_[i].deadline_ms;
      break;
    }
  }
  if (written_ > 0 && conn_ != nullptr && fifo_.front().deadline_ms != 0) {
    uint64_t dead_at = fifo_.front().deadline_ms + options_.command_timeout_ms;
    if (wake == 0 || dead_at < wake) wake = dead_at;
  }
  if (wake == 0) return;
  uint64_t now = uv_now(loop_);
  deadline_armed_ = true;
  uv_timer_start(
      &deadline_timer_,
      [](uv_timer_t* t) { static_cast<RedisClient*>(t->data)->OnDeadlineTimer(); },
      wake > now ? wake - now : 0, 0);
}

// ---------------------------------------------------------------------------------------
// Settling in bulk, closing

void RedisClient::FailWritten(const ClientError& error) {
  while (written_ > 0) {
    PendingCommand cmd = fifo_.front();
    PopFront();
    if (cmd.kind == CommandKind::kUser && !cmd.settled) {
      listener_->OnFailure(cmd.token, cmd.flags, error);
      TrackSettled(1);
    }
  }
  handshake_pending_ = 0;
}

void RedisClient::FailUnsent(const ClientError& error) {
  outbuf_.clear();
  outbuf_skip_ = 0;
  size_t failed = 0;
  for (size_t i = written_; i < fifo_.size(); ++i) {
    const PendingCommand& cmd = fifo_[i];
    if (cmd.kind == CommandKind::kUser && !cmd.settled) {
      listener_->OnFailure(cmd.token, cmd.flags, error);
      ++failed;
    }
  }
  fifo_.erase(fifo_.begin() + static_cast<std::ptrdiff_t>(written_), fifo_.end());
  if (failed > 0) TrackSettled(failed);
  expired_prefix_ = std::min(expired_prefix_, fifo_.size());
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
  if (want == refd_) return;
  refd_ = want;
  auto apply = [want](void* h) {
    if (want) {
      uv_ref(static_cast<uv_handle_t*>(h));
    } else {
      uv_unref(static_cast<uv_handle_t*>(h));
    }
  };
  apply(&deadline_timer_);
  apply(&state_timer_);
  if (conn_ != nullptr) apply(&conn_->tcp);
}

void RedisClient::Quit() {
  if (quit_requested_ || closing_handles_) return;
  quit_requested_ = true;
  switch (state_) {
    case ClientState::kIdle:
    case ClientState::kDown:
      CloseHandles();
      break;
    case ClientState::kConnecting:
    case ClientState::kReady: {
      // QUIT goes after every accepted command, so all of them are answered first.
      std::string_view quit("QUIT");
      size_t len = AppendCommand(outbuf_, &quit, 1);
      fifo_.push_back(
          PendingCommand{nullptr, 0, static_cast<uint32_t>(len), 0, CommandKind::kQuit, false});
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
  ClientError unknown{ErrorKind::kOutcomeUnknown, "ERR_OUTCOME_UNKNOWN",
                      "the client was disconnected after the command was sent; it may or may "
                      "not have run"};
  FailWritten(unknown);
  ClientError closed{ErrorKind::kClosed, "ERR_CLIENT_CLOSED",
                     "the client was disconnected before the command was sent"};
  FailUnsent(closed);
  if (!early_failures_.empty()) SettleEarlyFailures();
  CloseHandles();
}

void RedisClient::CloseHandles() {
  if (closing_handles_) return;
  if (!early_failures_.empty()) SettleEarlyFailures();
  closing_handles_ = true;
  state_ = ClientState::kClosed;
  if (conn_ != nullptr) CloseConnection();
  AbandonDns();
  auto on_close = [](uv_handle_t* h) {
    auto* client = static_cast<RedisClient*>(h->data);
    --client->open_handles_;
    client->MaybeFinishClose();
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline_timer_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&state_timer_), on_close);
}

void RedisClient::AbandonDns() {
  if (dns_ == nullptr) return;
  dns_->abandoned = true;
  uv_cancel(reinterpret_cast<uv_req_t*>(&dns_->req));
  dns_ = nullptr;
}

void RedisClient::MaybeFinishClose() {
  if (closing_handles_ && open_handles_ == 0 && dns_outstanding_ == 0 && !closed_notified_) {
    closed_notified_ = true;
    listener_->OnClosed();  // The owner may delete this client here: nothing follows.
  }
}

ClientStats RedisClient::Stats() const {
  ClientStats s;
  s.state = state_;
  s.reconnect_attempts = reconnect_attempts_;
  s.connections_opened = connections_opened_;
  s.in_flight = written_;
  s.queued = fifo_.size() - written_;
  s.has_last_error = has_last_error_;
  s.last_error = last_error_;
  s.last_error_at_ms = last_error_at_ms_;
  return s;
}

}  // namespace hirecache
