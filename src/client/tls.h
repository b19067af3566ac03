// TLS for a connection, with OpenSSL and two memory BIOs: the socket stays libuv's, the
// ciphertext passes through this object on its way in and out, and nothing runs on
// another thread.
//
//   TlsContext  what every connection of a client shares: the trust store, the client
//               certificate and key, the protocol versions, whether to verify. Built once
//               per client from TlsOptions; a bad PEM or passphrase is reported then, not
//               at the first connect.
//   TlsSession  one connection's TLS state: the handshake, encrypting what the client
//               writes, decrypting what the socket reads. It never touches the socket:
//               the connection feeds it bytes and sends what it produced.
//
// Which OpenSSL: the addon uses the one inside Node (its headers ship with Node, its
// symbols are exported by the node binary, as libuv's are); the core's unit tests, built
// without Node, link the system's libssl. See docs/architecture.md.
#ifndef HIRECACHE_CLIENT_TLS_H_
#define HIRECACHE_CLIENT_TLS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "client/client_error.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace hirecache {

struct TlsOptions {
  // PEM. `ca` empty: the system's trust store, plus the certificates in the file
  // `extra_ca_file` (NODE_EXTRA_CA_CERTS), or `fallback_ca` (Node's own roots) where the
  // system has none.
  std::string ca;
  std::string extra_ca_file;
  std::string fallback_ca;
  std::string cert;  // the client's certificate chain (mutual TLS); empty: none
  std::string key;   // its private key, encrypted with `passphrase` if that is given
  std::string passphrase;
  // The name the server's certificate must carry, also sent as SNI; empty: the host.
  std::string servername;
  bool reject_unauthorized = true;
  uint16_t min_version = 0x0303;  // TLS 1.2 (TLS1_2_VERSION), as Node's default
  uint16_t max_version = 0;       // 0: the highest OpenSSL supports
};

class TlsContext {
 public:
  // nullptr with `error` set (code ERR_INVALID_CONFIG, naming the option) when an option
  // cannot be used. The message never carries key material or the passphrase.
  static std::shared_ptr<TlsContext> Create(const TlsOptions& options, ClientError* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  const std::string& servername() const { return servername_; }
  bool verify() const { return verify_; }

 private:
  TlsContext() = default;
  SSL_CTX* ctx_ = nullptr;
  std::string servername_;
  bool verify_ = true;
};

// Clients built with the same options share one context: the system's trust store is
// parsed once (about 30 ms for Debian's bundle, named by SSL_CERT_FILE on many machines),
// not for every client, pub/sub connection or isolated() call. One per addon instance
// (thread); a context lives as long as a client holds it.
class TlsContextCache {
 public:
  // The context for `options`; fallback_ca, when empty there, is the cache's own (below).
  std::shared_ptr<TlsContext> Get(const TlsOptions& options, ClientError* error);
  size_t size() const { return contexts_.size(); }
  // The roots to trust where the system has no trust store (Node's, given once).
  void set_fallback_ca(std::string pem) { fallback_ca_ = std::move(pem); }
  bool has_fallback_ca() const { return !fallback_ca_.empty(); }

 private:
  // Keyed by a SHA-256 of the options: no key material or passphrase is kept here.
  std::unordered_map<std::string, std::weak_ptr<TlsContext>> contexts_;
  std::string fallback_ca_;
};

class TlsSession {
 public:
  enum class Status {
    kOk,        // done (Handshake) / plaintext or nothing more for now (Read)
    kWantRead,  // the handshake needs more bytes from the server
    kClosed,    // the server ended the session (close_notify)
    kFailed,    // see the error
  };

  // `host` is what the connection dialled: the certificate is checked against the
  // context's servername, else this name or address.
  TlsSession(std::shared_ptr<TlsContext> context, const std::string& host,
             const std::string& endpoint);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // False when OpenSSL could not allocate the session.
  bool ok() const { return ssl_ != nullptr; }
  bool handshake_done() const { return handshake_done_; }

  // Drives the handshake with what Feed() gave so far; bytes to send wait in Output.
  Status Handshake(ClientError* error);
  // Ciphertext read from the socket.
  bool Feed(const char* data, size_t len);
  // Whether fed bytes are still waiting to be decrypted.
  bool has_input() const;
  // Up to `cap` bytes of plaintext into `out` (*n of them); kOk with *n == 0: need more.
  Status Read(char* out, size_t cap, size_t* n, ClientError* error);
  // Encrypts `len` bytes; the records wait in Output.
  bool Write(const char* data, size_t len, ClientError* error);
  // Appends the ciphertext waiting to be sent (handshake, records, alerts) to `out`.
  void TakeOutput(std::string& out);
  bool has_output() const;

 private:
  ClientError Failure(int ret, const char* during);

  std::shared_ptr<TlsContext> context_;
  std::string endpoint_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // ciphertext from the socket (owned by ssl_)
  BIO* out_ = nullptr;  // ciphertext to the socket (owned by ssl_)
  bool handshake_done_ = false;
};

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_TLS_H_
