// One connection to one Redis server: name resolution (uv_getaddrinfo, never a blocking
// getaddrinfo on the loop), TCP connect over each resolved address in turn, TLS when asked
// (a TlsSession between the socket and everything else), the reply reader, and writes. It knows
// nothing of commands: it reports what happens through ConnectionEvents, in the spirit of hiredis's
// `ev` hooks.
//
// Lifetime: the owner creates it with `new`, calls Start(), and ends it with Close(); it
// then frees itself once libuv has let go of its handle and any resolver request. No
// callback reaches the owner after Close(). While it lives it holds one count in the
// owner's HandleGroup, so the owner knows when everything it opened is gone.
#ifndef HIRECACHE_CLIENT_CONNECTION_H_
#define HIRECACHE_CLIENT_CONNECTION_H_

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "client/client_error.h"
#include "client/reply_reader.h"
#include "client/tls.h"
#include "util/uv_handle.h"

struct redisReply;

namespace hirecache {

struct ConnectionOptions {
  std::string host;
  uint16_t port = 6379;
  uint32_t keepalive_delay_s = 30;  // 0: keep-alive off
  bool no_delay = true;
  ProtocolLimits limits;
  // Set: the connection speaks TLS, and is reported connected only after its handshake.
  std::shared_ptr<TlsContext> tls;
};

class ConnectionEvents {
 public:
  virtual ~ConnectionEvents() = default;
  // The TCP connection (and its TLS handshake) is up; the owner may write (its own
  // handshake first).
  virtual void OnConnected() = 0;
  // Every address failed (or none was found), or the TLS handshake failed; the connection
  // is closed already.
  virtual void OnConnectFailed(const ClientError& error) = 0;
  // A read begins: replies follow, then OnReadEnd (always, even when the owner closed the
  // connection in between). Lets the owner bracket the settlements of one read.
  virtual void OnReadBegin() = 0;
  // One complete reply, owned by the connection and freed when this returns.
  // Returns true when it keeps `reply` (and frees it later with FreeReply).
  virtual bool OnReply(redisReply* reply) = 0;
  virtual void OnReadEnd() = 0;
  // A write that the socket could not take at once has been written in full.
  virtual void OnWriteDrained() = 0;
  // The established connection failed: the server closed it, a read or write failed, or
  // the server broke the protocol. The owner must Close() it.
  virtual void OnFailed(const ClientError& error) = 0;
};

class Connection {
 public:
  // Plaintext decrypted per SSL_read: one full TLS record.
  static constexpr size_t kTlsPlainChunk = 16 * 1024;

  Connection(uv_loop_t* loop, const ConnectionOptions& options, ConnectionEvents* events,
             HandleGroup* group);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Resolves the host (an address literal needs no resolver) and connects.
  void Start();

  // Writes bytes.substr(from). What the socket does not take at once is handed to libuv
  // together with `bytes` itself (which is then left empty; over TLS, `bytes` is emptied
  // once encrypted, and its records are handed over). Returns 0, or a libuv error (the owner
  // then fails the connection with WriteFailure's error), or UV_EPROTO when TLS could not
  // encrypt.
  int Write(std::string& bytes, size_t from);
  // A write is waiting for the socket to take it.
  bool write_pending() const { return writes_pending_ > 0; }
  // Bytes handed to libuv that the socket has not taken yet.
  size_t pending_write_bytes() const { return pending_write_bytes_; }

  // Reads whatever the kernel already holds for this socket, now, and delivers its replies
  // as a libuv read would. Called before deadlines are judged: libuv runs timers before it
  // polls sockets, and a reply that has arrived must win over its timer.
  void ReadNow();

  // Whether the socket keeps the loop alive (an idle client never holds a process open).
  void SetRef(bool ref);

  // Stops every callback to the owner and starts closing; frees itself when done. The one
  // exception: a read in progress still ends with OnReadEnd, so brackets stay balanced.
  void Close();

  // The error for a write that failed with libuv status `status`: over TLS, the server's
  // alert when one arrived before the connection broke (its reason, not "reset by peer").
  ClientError WriteFailure(int status);

  // Connected over TCP, and the TLS handshake has not finished yet.
  bool tls_handshaking() const { return tls_ != nullptr && !tls_->handshake_done(); }

  // "host:port" for messages ("[::1]:6379" for IPv6).
  const std::string& endpoint() const { return endpoint_; }

 private:
  struct DnsRequest;
  struct WriteRequest;

  ~Connection();
  void OnResolved(int status, addrinfo* res);
  void ConnectNext();
  void OnTcpConnected(int status);
  void CloseSocket();
  void HandleRead(ssize_t nread, const char* data);
  // Feeds plaintext to the reader and delivers each complete reply; false when the
  // stream broke the protocol.
  bool FeedReader(const char* data, size_t len);
  // TLS: drives the handshake with what has arrived, and reports the outcome.
  void ContinueTlsHandshake();
  // TLS: decrypts what has arrived and feeds it to the reader; false when the connection
  // failed (OnFailed was called).
  bool DecryptAndFeed();
  // Sends what TLS produced on its own (handshake messages, alerts, key updates).
  int SendTlsOutput();
  // Writes tls_out_ (what Write or SendTlsOutput put there).
  int WriteTlsOut();
  int WriteRaw(std::string& bytes, size_t from);
  void FailConnect(const ClientError& error);
  void MaybeDelete();

  uv_loop_t* loop_;
  ConnectionOptions options_;
  ConnectionEvents* events_;  // nullptr once closed
  HandleGroup* group_;
  std::string endpoint_;
  std::vector<sockaddr_storage> addresses_;
  size_t next_address_ = 0;
  ClientError last_error_;
  ReplyReader reader_;
  uv_tcp_t* tcp_ = nullptr;  // the current attempt's socket; freed in its close callback
  uv_connect_t connect_req_;
  DnsRequest* dns_ = nullptr;  // freed by its own callback
  // libuv handles and requests that still point at this object: it is deleted when the
  // count reaches zero after Close(). (Not a HandleGroup: the count's owner is what it
  // deletes.)
  int pending_ = 0;
  bool ref_ = false;
  bool reading_ = false;    // connected, and libuv is reading the socket
  int writes_pending_ = 0;  // libuv write requests not yet completed
  size_t pending_write_bytes_ = 0;
  bool closed_ = false;
  std::unique_ptr<TlsSession> tls_;
  std::string tls_out_;  // records to send; handed to libuv when the socket cannot take them
  ClientError tls_write_error_;  // why TLS could not encrypt (Write returned UV_EPROTO)
  char read_buffer_[64 * 1024];
  char plain_buffer_[kTlsPlainChunk];
};

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_CONNECTION_H_
