#include "client/connection.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace hirecache {

namespace {

// hiredis's reader compacts its buffer (a memmove of everything unread) each time it has
// consumed 1 KiB. Feeding it a large read at once makes that quadratic, so reads are fed
// in slices no larger than this.
constexpr size_t kReaderFeedSlice = 4096;
// ReadNow() reads at most this many buffers in one call, so a flood cannot hold the loop.
constexpr int kReadNowMaxBuffers = 16;
// Plaintext encrypted per step of a TLS write.
constexpr size_t kTlsWriteSlice = 256 * 1024;

}  // namespace

// A resolver request runs on libuv's thread pool and cannot be taken back once started, so
// an abandoned one is only marked; its callback frees it. Until then it holds a count in
// the owner's group: the loop must not be closed under it.
struct Connection::DnsRequest {
  uv_getaddrinfo_t req;
  Connection* conn;
  HandleGroup* group;
};

struct Connection::WriteRequest {
  uv_write_t req;
  Connection* conn;
  std::string bytes;  // bytes.substr(offset) is what libuv is writing
  size_t offset;
};

Connection::Connection(uv_loop_t* loop, const ConnectionOptions& options, ConnectionEvents* events,
                       HandleGroup* group)
    : loop_(loop),
      options_(options),
      events_(events),
      group_(group),
      endpoint_(EndpointOf(options.host, options.port)),
      reader_(options.limits) {
  connect_req_.data = this;
  group_->Acquire();
}

Connection::~Connection() { group_->Release(); }

void Connection::Start() {
  // An address literal needs no resolver (and no thread-pool hop).
  sockaddr_storage literal{};
  if (uv_ip4_addr(options_.host.c_str(), options_.port, reinterpret_cast<sockaddr_in*>(&literal)) ==
          0 ||
      uv_ip6_addr(options_.host.c_str(), options_.port,
                  reinterpret_cast<sockaddr_in6*>(&literal)) == 0) {
    addresses_.push_back(literal);
    ConnectNext();
    return;
  }
  dns_ = new DnsRequest{};
  dns_->conn = this;
  dns_->group = group_;
  dns_->req.data = dns_;
  group_->Acquire();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  std::string port = std::to_string(options_.port);
  ++pending_;
  int rc = uv_getaddrinfo(
      loop_, &dns_->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* dns = static_cast<DnsRequest*>(req->data);
        Connection* conn = dns->conn;
        HandleGroup* group = dns->group;
        delete dns;
        if (conn == nullptr) {  // abandoned by Close()
          if (res != nullptr) uv_freeaddrinfo(res);
          group->Release();
          return;
        }
        group->Release();  // The connection itself still holds one.
        conn->dns_ = nullptr;
        --conn->pending_;
        conn->OnResolved(status, res);
      },
      options_.host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    --pending_;
    group_->Release();
    delete dns_;
    dns_ = nullptr;
    OnResolved(rc, nullptr);
  }
}

void Connection::OnResolved(int status, addrinfo* res) {
  if (status != 0) {
    last_error_ = UvError(status, "resolving " + options_.host + " failed");
  } else {
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      sockaddr_storage addr{};
      std::memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
      addresses_.push_back(addr);
    }
    uv_freeaddrinfo(res);
  }
  ConnectNext();
}

// Tries the next resolved address; after the last one, reports the failure.
void Connection::ConnectNext() {
  while (!closed_ && next_address_ < addresses_.size()) {
    const sockaddr* addr = reinterpret_cast<const sockaddr*>(&addresses_[next_address_++]);
    tcp_ = new uv_tcp_t;
    uv_tcp_init(loop_, tcp_);
    tcp_->data = this;
    ++pending_;
    if (!ref_) uv_unref(reinterpret_cast<uv_handle_t*>(tcp_));
    int rc = uv_tcp_connect(&connect_req_, tcp_, addr, [](uv_connect_t* req, int status) {
      static_cast<Connection*>(req->data)->OnTcpConnected(status);
    });
    if (rc == 0) return;
    last_error_ = UvError(rc, "connecting to " + endpoint_ + " failed");
    CloseSocket();
  }
  if (closed_) return;
  ClientError error = last_error_;
  if (error.code.empty()) {
    error = {ErrorKind::kConnection, "ENOTFOUND",
             "no IPv4 or IPv6 address found for " + options_.host};
  }
  ConnectionEvents* events = events_;
  Close();
  events->OnConnectFailed(error);
}

void Connection::OnTcpConnected(int status) {
  if (closed_) return;  // UV_ECANCELED after Close(), or a late answer
  if (status < 0) {
    last_error_ = UvError(status, "connecting to " + endpoint_ + " failed");
    CloseSocket();
    ConnectNext();
    return;
  }
  if (!reader_.ok()) {
    FailConnect(ClientError{ErrorKind::kConnection, "ENOMEM", "out of memory"});
    return;
  }
  uv_tcp_nodelay(tcp_, options_.no_delay ? 1 : 0);
  if (options_.keepalive_delay_s > 0) uv_tcp_keepalive(tcp_, 1, options_.keepalive_delay_s);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* c = static_cast<Connection*>(h->data);
        *buf = uv_buf_init(c->read_buffer_, sizeof(c->read_buffer_));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        static_cast<Connection*>(s->data)->HandleRead(nread, buf->base);
      });
  reading_ = true;
  if (options_.tls != nullptr) {
    tls_ = std::make_unique<TlsSession>(options_.tls, options_.host, endpoint_);
    if (!tls_->ok()) {
      FailConnect(ClientError{ErrorKind::kConnection, "ENOMEM", "out of memory"});
      return;
    }
    ContinueTlsHandshake();  // reports OnConnected once the handshake is done
    return;
  }
  events_->OnConnected();
}

void Connection::FailConnect(const ClientError& error) {
  ConnectionEvents* events = events_;
  Close();
  events->OnConnectFailed(error);
}

void Connection::ContinueTlsHandshake() {
  ClientError error;
  TlsSession::Status status = tls_->Handshake(&error);
  int rc = SendTlsOutput();  // the next flight, or the alert that ends a failed handshake
  if (status == TlsSession::Status::kFailed) {
    FailConnect(error);
  } else if (rc != 0) {
    FailConnect(WriteFailure(rc));
  } else if (status == TlsSession::Status::kOk) {
    events_->OnConnected();
    // Records that came with the handshake's last flight are read now.
    if (!closed_ && tls_->has_input()) {
      ConnectionEvents* events = events_;
      events->OnReadBegin();
      DecryptAndFeed();
      events->OnReadEnd();
    }
  }
}

int Connection::SendTlsOutput() {
  tls_out_.clear();
  tls_->TakeOutput(tls_out_);
  return WriteTlsOut();
}

int Connection::Write(std::string& bytes, size_t from) {
  if (tls_ == nullptr) return WriteRaw(bytes, from);
  // Encrypted a slice at a time and taken out of OpenSSL's buffer after each, so that a
  // large value does not leave that buffer grown to its size for the connection's life.
  tls_out_.clear();
  while (from < bytes.size()) {
    size_t len = std::min(kTlsWriteSlice, bytes.size() - from);
    if (!tls_->Write(bytes.data() + from, len, &tls_write_error_)) return UV_EPROTO;
    tls_->TakeOutput(tls_out_);
    from += len;
  }
  // The plaintext lives on in the records: a large batch is let go now, not kept by the
  // caller until its next write.
  if (bytes.capacity() > kTlsWriteSlice * 2) {
    std::string().swap(bytes);
  } else {
    bytes.clear();
  }
  return WriteTlsOut();
}

int Connection::WriteTlsOut() {
  int rc = tls_out_.empty() ? 0 : WriteRaw(tls_out_, 0);
  // Taken at once, a large buffer is let go rather than kept for the next small write.
  if (tls_out_.capacity() > kTlsWriteSlice * 2) std::string().swap(tls_out_);
  return rc;
}

int Connection::WriteRaw(std::string& bytes, size_t from) {
  auto* stream = reinterpret_cast<uv_stream_t*>(tcp_);
  size_t len = bytes.size() - from;
  if (writes_pending_ == 0) {
    uv_buf_t buf = uv_buf_init(bytes.data() + from, static_cast<unsigned int>(len));
    int n = uv_try_write(stream, &buf, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
    if (n < 0) return n;
    if (static_cast<size_t>(n) == len) return 0;
    from += static_cast<size_t>(n);
  }
  auto* req = new WriteRequest{};
  req->req.data = req;
  req->conn = this;
  req->offset = from;
  req->bytes = std::move(bytes);
  bytes.clear();
  uv_buf_t rest = uv_buf_init(req->bytes.data() + req->offset,
                              static_cast<unsigned int>(req->bytes.size() - req->offset));
  int rc = uv_write(&req->req, stream, &rest, 1, [](uv_write_t* r, int status) {
    auto* w = static_cast<WriteRequest*>(r->data);
    Connection* conn = w->conn;
    conn->pending_write_bytes_ -= w->bytes.size() - w->offset;
    delete w;
    --conn->writes_pending_;
    if (conn->closed_) return;
    if (status < 0) {
      ClientError error = conn->WriteFailure(status);
      if (conn->tls_handshaking()) {
        conn->FailConnect(error);
      } else {
        conn->events_->OnFailed(error);
      }
    } else if (conn->writes_pending_ == 0 && !conn->tls_handshaking()) {
      conn->events_->OnWriteDrained();
    }
  });
  if (rc != 0) {
    delete req;
    return rc;
  }
  ++writes_pending_;
  pending_write_bytes_ += req->bytes.size() - req->offset;
  return 0;
}

void Connection::ReadNow() {
  // Only once connected: recv() on a socket still connecting would consume the pending
  // connect error that libuv's own connect check reads.
  if (closed_ || !reading_ || tcp_ == nullptr || events_ == nullptr) return;
  // Nor during a TLS handshake: no reply can be waiting, and the handshake's outcome is
  // reported from libuv's own read, never from inside the caller's deadline check.
  if (tls_handshaking()) return;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp_), &fd) != 0) return;
  for (int i = 0; i < kReadNowMaxBuffers && !closed_; ++i) {
    ssize_t n = recv(fd, read_buffer_, sizeof(read_buffer_), MSG_DONTWAIT);
    if (n > 0) {
      HandleRead(n, read_buffer_);
      if (static_cast<size_t>(n) < sizeof(read_buffer_)) return;
    } else if (n == 0) {
      HandleRead(UV_EOF, nullptr);
      return;
    } else {
      return;  // EAGAIN: nothing more; another error: libuv's own read reports it.
    }
  }
}

// One read's bytes (or its error): over TLS, decrypted first (or taken by the handshake);
// fed to the reader in slices, each complete reply delivered at once.
void Connection::HandleRead(ssize_t nread, const char* data) {
  if (nread == 0 || closed_) return;
  ConnectionEvents* events = events_;
  bool handshaking = tls_handshaking();
  if (nread < 0) {
    ClientError error =
        nread == UV_EOF ? ClientError{ErrorKind::kConnection, "ECONNRESET",
                                      "Redis at " + endpoint_ + " closed the connection"}
                        : UvError(static_cast<int>(nread), "reading from " + endpoint_ + " failed");
    if (!handshaking) {
      events->OnFailed(error);
    } else if (nread == UV_EOF) {
      FailConnect(ClientError{ErrorKind::kTls, "ERR_TLS_HANDSHAKE",
                              "Redis at " + endpoint_ +
                                  " closed the connection during the TLS handshake (does this "
                                  "port speak TLS? is a client certificate required?)"});
    } else {
      FailConnect(error);
    }
    return;
  }
  if (tls_ != nullptr) {
    if (!tls_->Feed(data, static_cast<size_t>(nread))) {
      ClientError oom{ErrorKind::kConnection, "ENOMEM", "out of memory"};
      if (handshaking) {
        FailConnect(oom);
      } else {
        events->OnFailed(oom);
      }
      return;
    }
    if (handshaking) {
      ContinueTlsHandshake();
      return;
    }
    events->OnReadBegin();
    DecryptAndFeed();
    events->OnReadEnd();
    return;
  }
  events->OnReadBegin();
  FeedReader(data, static_cast<size_t>(nread));
  events->OnReadEnd();
}

bool Connection::DecryptAndFeed() {
  while (!closed_) {
    size_t n = 0;
    ClientError error;
    TlsSession::Status status = tls_->Read(plain_buffer_, sizeof(plain_buffer_), &n, &error);
    if (status == TlsSession::Status::kClosed) {
      events_->OnFailed(ClientError{ErrorKind::kConnection, "ECONNRESET",
                                    "Redis at " + endpoint_ + " closed the TLS session"});
      return false;
    }
    if (status == TlsSession::Status::kFailed) {
      events_->OnFailed(error);
      return false;
    }
    if (n == 0) break;
    if (!FeedReader(plain_buffer_, n)) return false;
  }
  if (closed_) return false;
  // What TLS wrote on its own while reading (an alert; OpenSSL answers a key update with
  // the next write instead) goes out now.
  if (tls_->has_output()) {
    int rc = SendTlsOutput();
    if (rc != 0) {
      events_->OnFailed(WriteFailure(rc));
      return false;
    }
  }
  return true;
}

bool Connection::FeedReader(const char* data, size_t len) {
  size_t offset = 0;
  bool failed = false;
  while (offset < len && !closed_ && !failed) {
    size_t slice = std::min(kReaderFeedSlice, len - offset);
    failed = !reader_.Feed(data + offset, slice);
    offset += slice;
    while (!failed && !closed_) {
      redisReply* reply = reader_.Next();
      if (reply == nullptr) {
        failed = reader_.failed();
        break;
      }
      if (!events_->OnReply(reply)) FreeReply(reply);
    }
  }
  if (closed_) return false;
  if (failed) {
    events_->OnFailed(
        ClientError{ErrorKind::kProtocol, "ERR_PROTOCOL",
                    reader_.error() + "; the connection to " + endpoint_ + " was dropped"});
    return false;
  }
  return true;
}

ClientError Connection::WriteFailure(int status) {
  if (status == UV_EPROTO && !tls_write_error_.code.empty()) return tls_write_error_;
  ClientError error = UvError(status, "writing to " + endpoint_ + " failed");
  if (tls_ == nullptr || tcp_ == nullptr) return error;
  // A TLS server that refuses the session (a client certificate it wanted, in TLS 1.3 judged
  // after the client's last flight) sends its alert and closes; a write that follows meets
  // the reset. The alert is still readable, and says why.
  // A buffer of its own: a write may fail inside a read (the handshake's last reply flushes
  // the queued commands), whose bytes must not be overwritten under it.
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp_), &fd) != 0) return error;
  std::string scratch(kTlsPlainChunk, '\0');
  for (int i = 0; i < kReadNowMaxBuffers; ++i) {
    ssize_t n = recv(fd, scratch.data(), scratch.size(), MSG_DONTWAIT);
    if (n <= 0 || !tls_->Feed(scratch.data(), static_cast<size_t>(n))) break;
  }
  for (int i = 0; i < kReadNowMaxBuffers; ++i) {
    size_t n = 0;
    ClientError tls_error;
    TlsSession::Status got = tls_->handshake_done()
                                 ? tls_->Read(scratch.data(), scratch.size(), &n, &tls_error)
                                 : tls_->Handshake(&tls_error);
    if (got == TlsSession::Status::kFailed) return tls_error;
    if (got != TlsSession::Status::kOk || n == 0) break;
  }
  return error;
}

void Connection::SetRef(bool ref) {
  ref_ = ref;
  if (tcp_ == nullptr) return;
  if (ref) {
    uv_ref(reinterpret_cast<uv_handle_t*>(tcp_));
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(tcp_));
  }
}

void Connection::CloseSocket() {
  uv_tcp_t* tcp = tcp_;
  if (tcp == nullptr) return;
  tcp_ = nullptr;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp));
  uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) {
    auto* conn = static_cast<Connection*>(h->data);
    delete reinterpret_cast<uv_tcp_t*>(h);
    --conn->pending_;
    conn->MaybeDelete();
  });
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  events_ = nullptr;
  if (dns_ != nullptr) {
    dns_->conn = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&dns_->req));
    dns_ = nullptr;
    --pending_;
  }
  CloseSocket();
  MaybeDelete();
}

void Connection::MaybeDelete() {
  if (closed_ && pending_ == 0) delete this;
}

}  // namespace hirecache
