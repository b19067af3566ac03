// TLS: TlsContext's checks of its options; TlsSession against an in-memory OpenSSL server
// (the test carries the bytes between the two, in pieces of the sizes it chooses); and
// RedisClient over TLS against a real redis-server started with TLS only.
//
// The certificates are made with the openssl CLI the first time a test needs them, once per
// run of the test binary, in a temporary folder that is removed when the run ends.
#include "client/tls.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../support/test_server.h"
#include "client/redis_client.h"

namespace hirecache {
namespace {

using testing_support::AcceptsTcp;
using testing_support::FreePort;
using testing_support::ServerProcess;
using testing_support::Spawn;
using testing_support::Wait;

constexpr char kPassphrase[] = "hirecache-Secret-7Qx2-passphrase";
constexpr size_t kRecord = 16 * 1024;
// Pieces in which the tests pass ciphertext on: odd sizes, below, at and above a record.
const std::vector<size_t> kOddPieces = {1, 7, 16385, 3, 65537, 2, 4093, 16384, 1, 100003, 511};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

// ---------------------------------------------------------------------------------------
// Certificates

struct CertFiles {
  std::string cert_file;
  std::string key_file;
  std::string cert;  // PEM
  std::string key;   // PEM
};

struct Certificates {
  std::string dir;
  std::string error;                 // why they could not be made; empty when all is well
  CertFiles ca;                      // EC P-256, self-signed
  CertFiles good;                    // localhost, 127.0.0.1, ::1; signed by the CA
  CertFiles other;                   // other.example only; signed by the CA
  CertFiles expired;                 // as good, valid from 2020-01-01 to 2020-01-02
  CertFiles client;                  // clientAuth; signed by the CA
  std::string client_encrypted_key;  // client.key under kPassphrase (AES-256), PEM
};

// `openssl ca` with a database of its own: it is how OpenSSL 3.0's CLI sets a validity in
// the past (x509 has no -not_before/-not_after there, and -days cannot be negative).
std::string OpensslConfig(const std::string& dir) {
  return "[ req ]\n"
         "distinguished_name = dn\n"
         "prompt = no\n"
         "[ dn ]\n"
         "CN = placeholder\n"
         "[ v3_ca ]\n"
         "basicConstraints = critical, CA:TRUE\n"
         "keyUsage = critical, keyCertSign, cRLSign\n"
         "subjectKeyIdentifier = hash\n"
         "[ ca ]\n"
         "default_ca = test_ca\n"
         "[ test_ca ]\n"
         "dir = " +
         dir +
         "\n"
         "database = $dir/index.txt\n"
         "new_certs_dir = $dir/issued\n"
         "serial = $dir/serial\n"
         "default_md = sha256\n"
         "policy = policy_any\n"
         "unique_subject = no\n"
         "copy_extensions = none\n"
         "email_in_dn = no\n"
         "[ policy_any ]\n"
         "commonName = supplied\n"
         "[ server_localhost ]\n"
         "basicConstraints = critical, CA:FALSE\n"
         "keyUsage = critical, digitalSignature\n"
         "extendedKeyUsage = serverAuth\n"
         "subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1\n"
         "subjectKeyIdentifier = hash\n"
         "authorityKeyIdentifier = keyid\n"
         "[ server_other ]\n"
         "basicConstraints = critical, CA:FALSE\n"
         "keyUsage = critical, digitalSignature\n"
         "extendedKeyUsage = serverAuth\n"
         "subjectAltName = DNS:other.example\n"
         "subjectKeyIdentifier = hash\n"
         "authorityKeyIdentifier = keyid\n"
         "[ client ]\n"
         "basicConstraints = critical, CA:FALSE\n"
         "keyUsage = critical, digitalSignature\n"
         "extendedKeyUsage = clientAuth\n"
         "subjectKeyIdentifier = hash\n"
         "authorityKeyIdentifier = keyid\n";
}

Certificates MakeCertificates() {
  Certificates c;
  char tmpl[] = "/tmp/hirecache-cpp-tls-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    c.error = "mkdtemp failed";
    return c;
  }
  c.dir = tmpl;
  const std::string dir = c.dir;
  const std::string cnf = dir + "/openssl.cnf";
  const std::string log = dir + "/openssl.log";
  std::error_code ec;
  std::filesystem::create_directory(dir + "/issued", ec);
  if (ec || !WriteFile(dir + "/index.txt", "") || !WriteFile(dir + "/serial", "1000\n") ||
      !WriteFile(cnf, OpensslConfig(dir))) {
    c.error = "could not write the openssl files in " + dir;
    return c;
  }
  auto file = [&](const std::string& name) { return dir + "/" + name; };
  auto run = [&](std::vector<std::string> args) {
    if (!c.error.empty()) return;
    args.insert(args.begin(), "openssl");
    pid_t pid = Spawn(args, log);
    if (pid == 0 || Wait(pid) != 0) {
      c.error =
          "`openssl " + args[1] + "` failed (is the openssl CLI installed?):\n" + ReadFile(log);
    }
  };
  auto new_key = [&](const std::string& name) {
    run({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
         file(name + ".key")});
  };
  auto entry = [&](const std::string& name) {
    CertFiles f{file(name + ".crt"), file(name + ".key"), "", ""};
    f.cert = ReadFile(f.cert_file);
    f.key = ReadFile(f.key_file);
    return f;
  };
  auto issue = [&](const std::string& name, const std::string& subject, const std::string& section,
                   std::vector<std::string> validity) {
    new_key(name);
    run({"req", "-config", cnf, "-new", "-key", file(name + ".key"), "-subj", subject, "-out",
         file(name + ".csr")});
    std::vector<std::string> args = {
        "ca",    "-config",      cnf,           "-batch", "-notext", "-keyfile", file("ca.key"),
        "-cert", file("ca.crt"), "-extensions", section};
    args.insert(args.end(), validity.begin(), validity.end());
    args.insert(args.end(), {"-in", file(name + ".csr"), "-out", file(name + ".crt")});
    run(args);
    return entry(name);
  };

  new_key("ca");
  run({"req", "-config", cnf, "-x509", "-new", "-key", file("ca.key"), "-subj",
       "/CN=hirecache test CA", "-days", "3650", "-extensions", "v3_ca", "-out", file("ca.crt")});
  c.ca = entry("ca");
  c.good = issue("server-good", "/CN=localhost", "server_localhost", {"-days", "3650"});
  c.other = issue("server-other", "/CN=other.example", "server_other", {"-days", "3650"});
  c.expired = issue("server-expired", "/CN=localhost", "server_localhost",
                    {"-startdate", "20200101000000Z", "-enddate", "20200102000000Z"});
  c.client = issue("client", "/CN=hirecache test client", "client", {"-days", "3650"});
  run({"pkey", "-in", file("client.key"), "-aes256", "-passout", std::string("pass:") + kPassphrase,
       "-out", file("client-encrypted.key")});
  if (c.error.empty()) c.client_encrypted_key = ReadFile(file("client-encrypted.key"));
  if (c.error.empty() && c.client_encrypted_key.find("ENCRYPTED") == std::string::npos) {
    c.error = "openssl pkey did not encrypt the client key";
  }
  return c;
}

Certificates* g_certificates = nullptr;

// The certificates, made on first use (a test binary that runs no TLS test makes none).
const Certificates& Certs() {
  if (g_certificates == nullptr) g_certificates = new Certificates(MakeCertificates());
  return *g_certificates;
}

// Removes the certificates' folder once every test of the run is done.
class CertificateCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_certificates == nullptr) return;
    std::error_code ec;
    if (!g_certificates->dir.empty()) std::filesystem::remove_all(g_certificates->dir, ec);
    if (ec) ADD_FAILURE() << "could not remove " << g_certificates->dir << ": " << ec.message();
    delete g_certificates;
    g_certificates = nullptr;
  }
};

[[maybe_unused]] ::testing::Environment* const kCertificateCleanup =
    ::testing::AddGlobalTestEnvironment(new CertificateCleanup);

// ---------------------------------------------------------------------------------------
// TlsContext::Create

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = &Certs();
    ASSERT_TRUE(certs_->error.empty()) << certs_->error;
  }

  TlsOptions Options() const {
    TlsOptions options;
    options.ca = certs_->ca.cert;
    return options;
  }

  // Create's refusal: nullptr, ERR_INVALID_CONFIG, a message free of secrets.
  ClientError Refusal(const TlsOptions& options) {
    ClientError error;
    std::shared_ptr<TlsContext> context = TlsContext::Create(options, &error);
    EXPECT_EQ(context, nullptr) << "accepted";
    EXPECT_EQ(error.code, "ERR_INVALID_CONFIG") << error.message;
    EXPECT_FALSE(error.message.empty());
    EXPECT_EQ(error.message.find(kPassphrase), std::string::npos) << error.message;
    EXPECT_EQ(error.message.find("PRIVATE KEY"), std::string::npos) << error.message;
    if (!options.passphrase.empty()) {
      EXPECT_EQ(error.message.find(options.passphrase), std::string::npos) << error.message;
    }
    return error;
  }

  const Certificates* certs_ = nullptr;
};

TEST_F(TlsContextTest, ValidOptionsMakeAContext) {
  ClientError error;
  std::shared_ptr<TlsContext> context = TlsContext::Create(Options(), &error);
  ASSERT_NE(context, nullptr) << error.message;
  EXPECT_NE(context->ctx(), nullptr);
  EXPECT_TRUE(context->verify());
}

TEST_F(TlsContextTest, ACaWithoutAPemCertificateIsRefusedByName) {
  TlsOptions options = Options();
  options.ca = "not a certificate at all";
  EXPECT_NE(Refusal(options).message.find("tls.ca"), std::string::npos);
  options.ca = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
  EXPECT_NE(Refusal(options).message.find("tls.ca"), std::string::npos);
}

TEST_F(TlsContextTest, ACertWithoutAKeyAndAKeyWithoutACertAreRefused) {
  TlsOptions options = Options();
  options.cert = certs_->client.cert;
  ClientError error = Refusal(options);
  EXPECT_NE(error.message.find("tls.cert"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("tls.key"), std::string::npos) << error.message;

  options = Options();
  options.key = certs_->client.key;
  error = Refusal(options);
  EXPECT_NE(error.message.find("tls.key"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("tls.cert"), std::string::npos) << error.message;
}

TEST_F(TlsContextTest, AKeyThatDoesNotBelongToTheCertIsRefused) {
  TlsOptions options = Options();
  options.cert = certs_->client.cert;
  options.key = certs_->good.key;  // another P-256 key
  ClientError error = Refusal(options);
  EXPECT_NE(error.message.find("tls.key"), std::string::npos) << error.message;

  options.key = certs_->client.key;  // its own: accepted
  ClientError ok;
  EXPECT_NE(TlsContext::Create(options, &ok), nullptr) << ok.message;
}

TEST_F(TlsContextTest, AnEncryptedKeyNeedsItsPassphrase) {
  TlsOptions options = Options();
  options.cert = certs_->client.cert;
  options.key = certs_->client_encrypted_key;

  ClientError none = Refusal(options);
  EXPECT_NE(none.message.find("tls.passphrase"), std::string::npos) << none.message;

  options.passphrase = "not-the-Passphrase-31";
  ClientError wrong = Refusal(options);
  EXPECT_NE(wrong.message.find("tls.passphrase"), std::string::npos) << wrong.message;
  EXPECT_EQ(wrong.message.find("not-the-Passphrase-31"), std::string::npos) << wrong.message;

  options.passphrase = kPassphrase;
  ClientError error;
  std::shared_ptr<TlsContext> context = TlsContext::Create(options, &error);
  EXPECT_NE(context, nullptr) << error.message;
  EXPECT_EQ(error.message.find(kPassphrase), std::string::npos);
}

TEST_F(TlsContextTest, AVersionOpenSslDoesNotKnowIsRefused) {
  TlsOptions options = Options();
  options.min_version = 0x0399;
  EXPECT_NE(Refusal(options).message.find("tls.minVersion"), std::string::npos);
}

TEST_F(TlsContextTest, AMinVersionAboveTheMaxVersionIsRefused) {
  TlsOptions options = Options();
  options.min_version = 0x0304;  // TLS 1.3
  options.max_version = 0x0303;  // TLS 1.2
  ClientError error = Refusal(options);
  EXPECT_NE(error.message.find("tls.minVersion"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("tls.maxVersion"), std::string::npos) << error.message;
}

TEST_F(TlsContextTest, TheCacheSharesAContextBetweenEqualOptionsAndForgetsUnusedOnes) {
  TlsContextCache cache;
  ClientError error;
  std::shared_ptr<TlsContext> first = cache.Get(Options(), &error);
  ASSERT_NE(first, nullptr) << error.message;
  EXPECT_EQ(cache.Get(Options(), &error), first);
  TlsOptions other = Options();
  other.servername = "other.example";
  std::shared_ptr<TlsContext> second = cache.Get(other, &error);
  ASSERT_NE(second, nullptr);
  EXPECT_NE(second, first);
  EXPECT_EQ(second->servername(), "other.example");
  EXPECT_EQ(cache.size(), 2u);
  first.reset();
  // An entry nobody holds goes with the next lookup; a refused one is never kept.
  TlsOptions bad = Options();
  bad.ca = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  EXPECT_EQ(cache.Get(bad, &error), nullptr);
  EXPECT_EQ(error.code, "ERR_INVALID_CONFIG");
  EXPECT_EQ(cache.size(), 1u);
}

// ---------------------------------------------------------------------------------------
// TlsSession against an in-memory OpenSSL server

// An OpenSSL server whose socket is two memory BIOs: the test feeds it what the client sent
// and takes what it answers.
class MemoryServer {
 public:
  struct Options {
    bool require_client_cert = false;
    int max_version = 0;  // 0: OpenSSL's highest
  };

  MemoryServer(const CertFiles& cert, const std::string& ca_file, Options options) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    bool ok = ctx_ != nullptr &&
              SSL_CTX_use_certificate_chain_file(ctx_, cert.cert_file.c_str()) == 1 &&
              SSL_CTX_use_PrivateKey_file(ctx_, cert.key_file.c_str(), SSL_FILETYPE_PEM) == 1;
    if (ok && options.require_client_cert) {
      ok = SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) == 1;
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    if (ok && options.max_version != 0) {
      ok = SSL_CTX_set_max_proto_version(ctx_, options.max_version) == 1;
    }
    if (ok) ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    if (ssl_ != nullptr && in_ != nullptr && out_ != nullptr) {
      BIO_set_mem_eof_return(in_, -1);  // empty: wait for more, not end of stream
      SSL_set_bio(ssl_, in_, out_);
      SSL_set_accept_state(ssl_);
      SSL_set_msg_callback(ssl_, [](int write_p, int, int content_type, const void* buf, size_t len,
                                    SSL*, void* arg) {
        if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
            *static_cast<const unsigned char*>(buf) == SSL3_MT_KEY_UPDATE) {
          ++static_cast<MemoryServer*>(arg)->key_updates_received_;
        }
      });
      SSL_set_msg_callback_arg(ssl_, this);
    } else {
      BIO_free(in_);
      BIO_free(out_);
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    ERR_clear_error();
  }
  ~MemoryServer() {
    SSL_free(ssl_);  // and both BIOs
    SSL_CTX_free(ctx_);
  }
  MemoryServer(const MemoryServer&) = delete;
  MemoryServer& operator=(const MemoryServer&) = delete;

  bool ok() const { return ssl_ != nullptr; }
  SSL* ssl() const { return ssl_; }
  bool done() const { return SSL_is_init_finished(ssl_) == 1; }
  bool failed() const { return failed_; }
  // KeyUpdate messages the client sent.
  int key_updates_received() const { return key_updates_received_; }

  void Feed(const char* data, size_t len) {
    ASSERT_EQ(BIO_write(in_, data, static_cast<int>(len)), static_cast<int>(len));
  }
  void TakeOutput(std::string& out) {
    char buf[16 * 1024];
    int n;
    while ((n = BIO_read(out_, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  }
  // One step of the handshake with what it was fed so far.
  void Step() {
    if (done() || failed_) return;
    ERR_clear_error();
    int ret = SSL_do_handshake(ssl_);
    if (ret != 1 && SSL_get_error(ssl_, ret) != SSL_ERROR_WANT_READ) failed_ = true;
    ERR_clear_error();
  }
  // Decrypts everything it was fed; SSL_get_error of the read that stopped.
  int ReadAll(std::string& out) {
    char buf[16 * 1024];
    for (;;) {
      ERR_clear_error();
      int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      int err = SSL_get_error(ssl_, n);
      if (err != SSL_ERROR_WANT_READ) failed_ = true;
      ERR_clear_error();
      return err;
    }
  }
  bool Write(const std::string& data) {
    ERR_clear_error();
    bool ok = SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
              static_cast<int>(data.size());
    ERR_clear_error();
    return ok;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // owned by ssl_ once set
  BIO* out_ = nullptr;  // owned by ssl_ once set
  bool failed_ = false;
  int key_updates_received_ = 0;
};

// The wire between a TlsSession and a MemoryServer: what each side sent waits here until
// the test passes it on.
class Link {
 public:
  Link(TlsSession* client, MemoryServer* server) : client_(client), server_(server) {}

  // Runs both handshakes, passing at most `piece` bytes each way per step. Returns the
  // client's status: kOk once the client is done and the server has what it needs (done,
  // or failed and its alert waits for the client), kFailed when the client failed
  // (error()), kWantRead when the exchange stalled.
  TlsSession::Status Handshake(size_t piece) {
    TlsSession::Status status = CallHandshake();
    for (int step = 0; step < 1000000; ++step) {
      client_->TakeOutput(to_server_);
      if (status == TlsSession::Status::kFailed) return status;
      bool moved = false;
      if (!to_server_.empty()) {
        size_t n = std::min(piece, to_server_.size());
        server_->Feed(to_server_.data(), n);
        to_server_.erase(0, n);
        moved = true;
      }
      server_->Step();
      server_->TakeOutput(to_client_);
      if (status == TlsSession::Status::kOk) {
        if (to_server_.empty() && (server_->done() || server_->failed())) return status;
        if (!moved) return status;
        continue;
      }
      if (!to_client_.empty()) {
        size_t n = std::min(piece, to_client_.size());
        EXPECT_TRUE(client_->Feed(to_client_.data(), n));
        to_client_.erase(0, n);
        status = CallHandshake();
        moved = true;
      }
      if (!moved) return status;  // neither side has anything more to say
    }
    ADD_FAILURE() << "the handshake did not end";
    return status;
  }

  // Passes everything the client wrote to the server in `pieces` (cycled), decrypting
  // after each piece into `plain`; the server's last SSL_get_error.
  int PassToServer(const std::vector<size_t>& pieces, std::string& plain) {
    client_->TakeOutput(to_server_);
    std::string bytes;
    bytes.swap(to_server_);
    int err = SSL_ERROR_WANT_READ;
    size_t at = 0;
    for (size_t i = 0; at < bytes.size(); ++i) {
      size_t n = std::min(pieces[i % pieces.size()], bytes.size() - at);
      server_->Feed(bytes.data() + at, n);
      at += n;
      err = server_->ReadAll(plain);
      if (err != SSL_ERROR_WANT_READ) break;
    }
    server_->TakeOutput(to_client_);
    return err;
  }

  // Passes everything the server sent to the client in `pieces` (cycled), reading the
  // plaintext after each piece into `plain`; the status of the client's last Read.
  TlsSession::Status PassToClient(const std::vector<size_t>& pieces, std::string& plain) {
    server_->TakeOutput(to_client_);
    std::string bytes;
    bytes.swap(to_client_);
    TlsSession::Status status = TlsSession::Status::kOk;
    size_t at = 0;
    for (size_t i = 0; at < bytes.size() && status == TlsSession::Status::kOk; ++i) {
      size_t n = std::min(pieces[i % pieces.size()], bytes.size() - at);
      EXPECT_TRUE(client_->Feed(bytes.data() + at, n));
      at += n;
      status = ReadAll(plain);
    }
    return status;
  }

  // Feeds bytes to the client as if the server had sent them, then reads.
  TlsSession::Status Inject(const std::string& bytes, std::string& plain) {
    EXPECT_TRUE(client_->Feed(bytes.data(), bytes.size()));
    return ReadAll(plain);
  }

  const ClientError& error() const { return error_; }
  int handshake_calls() const { return handshake_calls_; }

 private:
  TlsSession::Status CallHandshake() {
    ++handshake_calls_;
    return client_->Handshake(&error_);
  }

  TlsSession::Status ReadAll(std::string& plain) {
    char buf[kRecord];
    for (;;) {
      size_t n = 0;
      TlsSession::Status status = client_->Read(buf, sizeof(buf), &n, &error_);
      if (status != TlsSession::Status::kOk) return status;
      if (n == 0) return status;
      plain.append(buf, n);
    }
  }

  TlsSession* client_;
  MemoryServer* server_;
  std::string to_server_;
  std::string to_client_;
  ClientError error_;
  int handshake_calls_ = 0;
};

std::string RandomBytes(size_t len, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string out(len, '\0');
  for (char& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

class TlsSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = &Certs();
    ASSERT_TRUE(certs_->error.empty()) << certs_->error;
  }

  TlsOptions Trusting() const {
    TlsOptions options;
    options.ca = certs_->ca.cert;
    return options;
  }

  // A TlsSession to `host` (context_ and session_) and an in-memory server presenting `cert`
  // (server_), joined by link_; what an earlier Open made goes first.
  void Open(const TlsOptions& options, const std::string& host, const CertFiles& cert,
            MemoryServer::Options server_options = {}) {
    link_.reset();
    session_.reset();
    server_.reset();
    context_.reset();
    ClientError error;
    context_ = TlsContext::Create(options, &error);
    ASSERT_NE(context_, nullptr) << error.message;
    session_ = std::make_unique<TlsSession>(context_, host, host + ":6380");
    ASSERT_TRUE(session_->ok());
    server_ = std::make_unique<MemoryServer>(cert, certs_->ca.cert_file, server_options);
    ASSERT_TRUE(server_->ok()) << "the in-memory server could not be set up";
    link_ = std::make_unique<Link>(session_.get(), server_.get());
  }
  // The trusting options to "localhost", the good certificate.
  void Open() { Open(Trusting(), "localhost", certs_->good); }

  // The handshake over link_, in records; with `tickets`, the client then also reads the session
  // tickets the server sends after it (TLS 1.3) into `*tickets`.
  void Handshake(std::string* tickets = nullptr) {
    ASSERT_EQ(link_->Handshake(kRecord), TlsSession::Status::kOk) << link_->error().message;
    if (tickets != nullptr) {
      ASSERT_EQ(link_->PassToClient({kRecord}, *tickets), TlsSession::Status::kOk);
    }
  }

  // Open() and Handshake(tickets).
  void Connect(std::string* tickets = nullptr) {
    ASSERT_NO_FATAL_FAILURE(Open());
    ASSERT_NO_FATAL_FAILURE(Handshake(tickets));
  }

  // The client's handshake against `cert` as `host`: its status, and its error in `error`.
  TlsSession::Status HandshakeWith(const TlsOptions& options, const CertFiles& cert,
                                   const std::string& host, ClientError* error) {
    Open(options, host, cert);
    if (link_ == nullptr) return TlsSession::Status::kFailed;
    TlsSession::Status status = link_->Handshake(kRecord);
    *error = link_->error();
    if (status == TlsSession::Status::kOk) {
      EXPECT_TRUE(session_->handshake_done());
      EXPECT_TRUE(server_->done());
    }
    return status;
  }

  const Certificates* certs_ = nullptr;
  // Made by Open(); link_ last, as it points at session_ and server_.
  std::shared_ptr<TlsContext> context_;
  std::unique_ptr<TlsSession> session_;
  std::unique_ptr<MemoryServer> server_;
  std::unique_ptr<Link> link_;
};

TEST_F(TlsSessionTest, TheHandshakeCompletesWhenBytesArriveOneAtATime) {
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_FALSE(session_->handshake_done());
  ASSERT_EQ(link_->Handshake(1), TlsSession::Status::kOk)
      << link_->error().code << ": " << link_->error().message;
  EXPECT_TRUE(session_->handshake_done());
  EXPECT_TRUE(server_->done());
  EXPECT_EQ(SSL_version(server_->ssl()), TLS1_3_VERSION);
  // One call per byte of the server's flight: it really was driven a byte at a time.
  EXPECT_GT(link_->handshake_calls(), 200);
  const char* sni = SSL_get_servername(server_->ssl(), TLSEXT_NAMETYPE_host_name);
  EXPECT_STREQ(sni, "localhost");

  // And the session carries data, both ways, a byte at a time too.
  ClientError error;
  ASSERT_TRUE(session_->Write("PING\r\n", 6, &error)) << error.message;
  std::string at_server;
  EXPECT_EQ(link_->PassToServer({1}, at_server), SSL_ERROR_WANT_READ);
  EXPECT_EQ(at_server, "PING\r\n");
  ASSERT_TRUE(server_->Write("+PONG\r\n"));
  std::string at_client;
  EXPECT_EQ(link_->PassToClient({1}, at_client), TlsSession::Status::kOk);
  EXPECT_EQ(at_client, "+PONG\r\n");
  EXPECT_FALSE(session_->has_input());
}

TEST_F(TlsSessionTest, FourMebibytesEachWayArriveByteExactInOddPieces) {
  ASSERT_NO_FATAL_FAILURE(Connect());

  const std::string up = RandomBytes(4 << 20, 1);
  ClientError error;
  ASSERT_TRUE(session_->Write(up.data(), up.size(), &error)) << error.message;
  EXPECT_TRUE(session_->has_output());
  std::string at_server;
  EXPECT_EQ(link_->PassToServer(kOddPieces, at_server), SSL_ERROR_WANT_READ);
  EXPECT_FALSE(session_->has_output());
  ASSERT_EQ(at_server.size(), up.size());
  EXPECT_TRUE(at_server == up) << "the server received different bytes";

  const std::string down = RandomBytes(4 << 20, 2);
  ASSERT_TRUE(server_->Write(down));
  std::string at_client;
  EXPECT_EQ(link_->PassToClient(kOddPieces, at_client), TlsSession::Status::kOk)
      << link_->error().code;
  ASSERT_EQ(at_client.size(), down.size());
  EXPECT_TRUE(at_client == down) << "the client received different bytes";
  EXPECT_FALSE(session_->has_input());
}

TEST_F(TlsSessionTest, TheServersCloseNotifyEndsTheSession) {
  std::string plain;
  ASSERT_NO_FATAL_FAILURE(Connect(&plain));
  ASSERT_TRUE(server_->Write("last words"));
  SSL_shutdown(server_->ssl());
  EXPECT_EQ(link_->PassToClient({kRecord}, plain), TlsSession::Status::kClosed);
  EXPECT_EQ(plain, "last words");
}

TEST_F(TlsSessionTest, GarbageAfterTheHandshakeFailsWithAnSslCode) {
  std::string plain;
  ASSERT_NO_FATAL_FAILURE(Connect(&plain));
  EXPECT_EQ(link_->Inject("this is not a TLS record, not at all\r\n", plain),
            TlsSession::Status::kFailed);
  EXPECT_TRUE(StartsWith(link_->error().code, "ERR_SSL_")) << link_->error().code;
  EXPECT_EQ(link_->error().kind, ErrorKind::kTls);
  EXPECT_NE(link_->error().message.find("localhost:6380"), std::string::npos)
      << link_->error().message;
  EXPECT_TRUE(plain.empty());
}

TEST_F(TlsSessionTest, AServernameTheCertificateLacksIsRefused) {
  TlsOptions options = Trusting();
  options.servername = "wrong.example";
  ClientError error;
  EXPECT_EQ(HandshakeWith(options, certs_->good, "localhost", &error), TlsSession::Status::kFailed);
  EXPECT_EQ(error.code, "ERR_TLS_CERT_ALTNAME_INVALID") << error.message;
  EXPECT_EQ(error.kind, ErrorKind::kTls);

  // The servername, not the host, is what is checked (and sent as SNI).
  options.servername = "localhost";
  ASSERT_NO_FATAL_FAILURE(Open(options, "127.0.0.2", certs_->good));
  EXPECT_EQ(link_->Handshake(kRecord), TlsSession::Status::kOk) << link_->error().code;
  EXPECT_STREQ(SSL_get_servername(server_->ssl(), TLSEXT_NAMETYPE_host_name), "localhost");
}

TEST_F(TlsSessionTest, AnIpHostIsCheckedAgainstTheIpSan) {
  ASSERT_NO_FATAL_FAILURE(Open(Trusting(), "127.0.0.1", certs_->good));
  EXPECT_EQ(link_->Handshake(kRecord), TlsSession::Status::kOk)
      << link_->error().code << ": " << link_->error().message;
  // An address is never sent as SNI (RFC 6066).
  EXPECT_EQ(SSL_get_servername(server_->ssl(), TLSEXT_NAMETYPE_host_name), nullptr);

  ClientError error;
  EXPECT_EQ(HandshakeWith(Trusting(), certs_->good, "127.0.0.2", &error),
            TlsSession::Status::kFailed);
  EXPECT_EQ(error.code, "ERR_TLS_CERT_ALTNAME_INVALID") << error.message;
  EXPECT_EQ(HandshakeWith(Trusting(), certs_->good, "::1", &error), TlsSession::Status::kOk)
      << error.code;
}

TEST_F(TlsSessionTest, ACertificateForAnotherNameIsRefused) {
  ClientError error;
  EXPECT_EQ(HandshakeWith(Trusting(), certs_->other, "localhost", &error),
            TlsSession::Status::kFailed);
  EXPECT_EQ(error.code, "ERR_TLS_CERT_ALTNAME_INVALID") << error.message;
  EXPECT_EQ(error.kind, ErrorKind::kTls);
  EXPECT_NE(error.message.find("localhost:6380"), std::string::npos) << error.message;
  // The same certificate is fine for the name it carries.
  EXPECT_EQ(HandshakeWith(Trusting(), certs_->other, "other.example", &error),
            TlsSession::Status::kOk)
      << error.code;
}

TEST_F(TlsSessionTest, AnExpiredCertificateIsRefused) {
  ClientError error;
  EXPECT_EQ(HandshakeWith(Trusting(), certs_->expired, "localhost", &error),
            TlsSession::Status::kFailed);
  EXPECT_EQ(error.code, "CERT_HAS_EXPIRED") << error.message;
  EXPECT_EQ(error.kind, ErrorKind::kTls);
}

TEST_F(TlsSessionTest, TheSystemStoreDoesNotTrustTheTestCa) {
  TlsOptions options;  // no ca: the system's trust store
  ClientError error;
  EXPECT_EQ(HandshakeWith(options, certs_->good, "localhost", &error), TlsSession::Status::kFailed);
  EXPECT_TRUE(error.code == "SELF_SIGNED_CERT_IN_CHAIN" ||
              error.code == "UNABLE_TO_VERIFY_LEAF_SIGNATURE" ||
              error.code == "UNABLE_TO_GET_ISSUER_CERT_LOCALLY")
      << error.code << ": " << error.message;
  // The test CA's file as extra_ca_file (NODE_EXTRA_CA_CERTS) next to the system store is
  // trusted.
  options.extra_ca_file = certs_->ca.cert_file;
  EXPECT_EQ(HandshakeWith(options, certs_->good, "localhost", &error), TlsSession::Status::kOk)
      << error.code;
}

TEST_F(TlsSessionTest, RejectUnauthorizedFalseAcceptsExpiredAndMisnamedCertificates) {
  TlsOptions options = Trusting();
  options.reject_unauthorized = false;
  ClientError error;
  EXPECT_EQ(HandshakeWith(options, certs_->expired, "localhost", &error), TlsSession::Status::kOk)
      << error.code;
  EXPECT_EQ(HandshakeWith(options, certs_->other, "localhost", &error), TlsSession::Status::kOk)
      << error.code;
  options.ca.clear();  // nor is the issuer checked
  EXPECT_EQ(HandshakeWith(options, certs_->good, "localhost", &error), TlsSession::Status::kOk)
      << error.code;
}

TEST_F(TlsSessionTest, AServerRequiringAClientCertificateRefusesAClientWithout) {
  ASSERT_NO_FATAL_FAILURE(Open(Trusting(), "localhost", certs_->good, {true, 0}));
  TlsSession::Status status = link_->Handshake(kRecord);
  // TLS 1.3: the client is done before the server has judged its (empty) certificate; the
  // server's alert then arrives with the first read.
  if (status == TlsSession::Status::kOk) {
    std::string plain;
    status = link_->PassToClient({kRecord}, plain);
    EXPECT_TRUE(plain.empty());
  }
  EXPECT_TRUE(server_->failed());
  EXPECT_EQ(status, TlsSession::Status::kFailed);
  EXPECT_TRUE(StartsWith(link_->error().code, "ERR_SSL_"))
      << link_->error().code << ": " << link_->error().message;
}

TEST_F(TlsSessionTest, AServerRequiringAClientCertificateAcceptsOne) {
  TlsOptions options = Trusting();
  options.cert = certs_->client.cert;
  options.key = certs_->client_encrypted_key;
  options.passphrase = kPassphrase;
  ASSERT_NO_FATAL_FAILURE(Open(options, "localhost", certs_->good, {true, 0}));
  ASSERT_NO_FATAL_FAILURE(Handshake());
  EXPECT_EQ(SSL_version(server_->ssl()), TLS1_3_VERSION);
  EXPECT_FALSE(server_->failed());
  X509* peer = SSL_get1_peer_certificate(server_->ssl());
  EXPECT_NE(peer, nullptr) << "the server did not get the client's certificate";
  X509_free(peer);
  EXPECT_EQ(SSL_get_verify_result(server_->ssl()), X509_V_OK);

  ClientError error;
  ASSERT_TRUE(session_->Write("PING\r\n", 6, &error)) << error.message;
  std::string at_server;
  EXPECT_EQ(link_->PassToServer({kRecord}, at_server), SSL_ERROR_WANT_READ);
  EXPECT_EQ(at_server, "PING\r\n");
  ASSERT_TRUE(server_->Write("+PONG\r\n"));
  std::string at_client;
  EXPECT_EQ(link_->PassToClient({kRecord}, at_client), TlsSession::Status::kOk);
  EXPECT_EQ(at_client, "+PONG\r\n");
}

TEST_F(TlsSessionTest, AMinVersionAboveTheServersMaxFails) {
  MemoryServer::Options tls12{false, TLS1_2_VERSION};
  // The default minimum (TLS 1.2) meets such a server.
  ASSERT_NO_FATAL_FAILURE(Open(Trusting(), "localhost", certs_->good, tls12));
  ASSERT_NO_FATAL_FAILURE(Handshake());
  EXPECT_EQ(SSL_version(server_->ssl()), TLS1_2_VERSION);

  TlsOptions options = Trusting();
  options.min_version = 0x0304;
  ASSERT_NO_FATAL_FAILURE(Open(options, "localhost", certs_->good, tls12));
  EXPECT_EQ(link_->Handshake(kRecord), TlsSession::Status::kFailed);
  EXPECT_TRUE(StartsWith(link_->error().code, "ERR_SSL_"))
      << link_->error().code << ": " << link_->error().message;
  EXPECT_EQ(link_->error().kind, ErrorKind::kTls);
  EXPECT_FALSE(session_->handshake_done());
}

TEST_F(TlsSessionTest, AKeyUpdateTheServerRequestsIsAnswered) {
  std::string plain;
  ASSERT_NO_FATAL_FAILURE(Connect(&plain));
  ASSERT_EQ(SSL_key_update(server_->ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
  ASSERT_TRUE(server_->Write("after the update"));
  EXPECT_EQ(link_->PassToClient({kRecord}, plain), TlsSession::Status::kOk) << link_->error().code;
  EXPECT_EQ(plain, "after the update");
  // OpenSSL answers with the next write (RFC 8446: before the next application data).
  ClientError error;
  ASSERT_TRUE(session_->Write("+OK\r\n", 5, &error)) << error.message;
  std::string at_server;
  EXPECT_EQ(link_->PassToServer({kRecord}, at_server), SSL_ERROR_WANT_READ);
  EXPECT_EQ(at_server, "+OK\r\n");
  EXPECT_EQ(server_->key_updates_received(), 1) << "the client did not update its own keys";
  // Both directions keep working under the new keys.
  ASSERT_TRUE(server_->Write("and after that"));
  plain.clear();
  EXPECT_EQ(link_->PassToClient({1}, plain), TlsSession::Status::kOk) << link_->error().code;
  EXPECT_EQ(plain, "and after that");
}

// ---------------------------------------------------------------------------------------
// RedisClient over TLS against a real redis-server

// redis-server with TLS only (--port 0), presenting the good certificate, in a temporary
// folder of its own.
class TlsRedisServer {
 public:
  TlsRedisServer(const Certificates& certs, bool auth_clients)
      : port_(FreePort()),
        process_(
            "hirecache-cpp-tls-redis",
            [&](const std::string& dir) -> std::vector<std::string> {
              return {"redis-server",
                      "--port",
                      "0",
                      "--tls-port",
                      std::to_string(port_),
                      "--bind",
                      "127.0.0.1",
                      "--tls-cert-file",
                      certs.good.cert_file,
                      "--tls-key-file",
                      certs.good.key_file,
                      "--tls-ca-cert-file",
                      certs.ca.cert_file,
                      "--tls-auth-clients",
                      auth_clients ? "yes" : "no",
                      "--save",
                      "",
                      "--appendonly",
                      "no",
                      "--dir",
                      dir,
                      "--logfile",
                      dir + "/redis.log"};
            },
            [this] { return AcceptsTcp(port_); }) {}

  int port() const { return port_; }
  bool running() const { return process_.ready(); }
  std::string log() const {
    return ReadFile(process_.dir() + "/stdout.log") + ReadFile(process_.dir() + "/redis.log");
  }

 private:
  int port_;
  ServerProcess process_;
};

// A TCP listener of the test's own that speaks no TLS: the test decides what it does with
// the client's ClientHello.
class FakeServer {
 public:
  FakeServer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        listen(listen_fd_, 4) == 0 &&
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~FakeServer() {
    if (conn_fd_ >= 0) close(conn_fd_);
    if (listen_fd_ >= 0) close(listen_fd_);
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  int port() const { return port_; }

  // Accepts the connection and reads what it sent so far, without waiting; true once a
  // whole TLS record (the ClientHello) has arrived.
  bool PollClientHello() {
    if (conn_fd_ < 0) conn_fd_ = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK);
    if (conn_fd_ < 0) return false;
    char buf[4096];
    ssize_t n;
    while ((n = recv(conn_fd_, buf, sizeof(buf), 0)) > 0) received_.append(buf, n);
    if (received_.size() < 5) return false;
    size_t record = 5 + ((static_cast<unsigned char>(received_[3]) << 8) |
                         static_cast<unsigned char>(received_[4]));
    return received_.size() >= record;
  }
  const std::string& received() const { return received_; }

  bool Send(const std::string& bytes) {
    return send(conn_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  void ShutdownWrite() { shutdown(conn_fd_, SHUT_WR); }

  // Whether the client closed its side within five seconds (recv reads end of stream).
  bool SeesClientClose() {
    auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < limit) {
      pollfd p{conn_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(conn_fd_, buf, sizeof(buf), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
    }
    return false;
  }

 private:
  int listen_fd_ = -1;
  int conn_fd_ = -1;
  int port_ = 0;
  std::string received_;
};

struct Result {
  bool done = false;
  bool ok = false;
  std::string value;  // a string or status reply, an integer in decimal, "(nil)", an error code
  ErrorKind kind = ErrorKind::kConnection;  // for a failure
};

// Keeps each settlement by its token.
class Listener : public ReplyListener {
 public:
  void BeginSettle() override { ++depth; }
  void EndSettle() override { --depth; }
  void OnReply(void* token, uint32_t, const redisReply* r) override {
    Result& result = Slot(token);
    result.ok = r->type != REDIS_REPLY_ERROR;
    if (r->type == REDIS_REPLY_INTEGER) {
      result.value = std::to_string(r->integer);
    } else if (r->type == REDIS_REPLY_NIL) {
      result.value = "(nil)";
    } else if (r->str != nullptr) {
      result.value.assign(r->str, r->len);
    }
  }
  void OnFailure(void* token, uint32_t, const ClientError& error) override {
    Result& result = Slot(token);
    result.ok = false;
    result.value = error.code;
    result.kind = error.kind;
  }
  void OnEvent(const ClientEvent& event) override {
    EXPECT_GT(depth, 0) << "event outside BeginSettle/EndSettle";
    events.push_back(event);
  }
  void OnBusyChanged(bool) override {}
  void OnClosed() override { closed = true; }

  // The codes of the kError events so far.
  std::vector<std::string> ErrorCodes() const {
    std::vector<std::string> codes;
    for (const ClientEvent& e : events) {
      if (e.type == ClientEventType::kError) codes.push_back(e.error.code);
    }
    return codes;
  }

  std::map<uintptr_t, Result> results;
  std::vector<ClientEvent> events;
  int depth = 0;
  bool closed = false;

 private:
  Result& Slot(void* token) {
    Result& result = results[reinterpret_cast<uintptr_t>(token)];
    EXPECT_FALSE(result.done) << "settled twice";
    EXPECT_GT(depth, 0) << "settled outside BeginSettle/EndSettle";
    result.done = true;
    return result;
  }
};

class TlsClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // As in Node: a write to a socket the server has reset fails with EPIPE instead of
    // killing the process.
    signal(SIGPIPE, SIG_IGN);
    if (Certs().error.empty()) server_ = new TlsRedisServer(Certs(), false);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_open_ = true;
    certs_ = &Certs();
    ASSERT_TRUE(certs_->error.empty()) << certs_->error;
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(server_->running()) << "redis-server with TLS did not start:\n" << server_->log();
  }
  void TearDown() override {
    if (client_ != nullptr) {
      client_->Disconnect();
      RunUntil([&] { return listener_.closed; });
      client_.reset();
    }
    if (loop_open_) {
      EXPECT_EQ(uv_loop_close(&loop_), 0) << "a libuv handle was left open";
    }
  }

  TlsOptions Trusting() const {
    TlsOptions options;
    options.ca = certs_->ca.cert;
    return options;
  }

  void MakeClient(const TlsOptions& tls, const std::string& host = "127.0.0.1", int port = 0,
                  ClientOptions options = {}) {
    ClientError error;
    options.tls = TlsContext::Create(tls, &error);
    ASSERT_NE(options.tls, nullptr) << error.message;
    options.host = host;
    options.port = static_cast<uint16_t>(port != 0 ? port : server_->port());
    client_ = std::make_unique<RedisClient>(&loop_, options, &listener_);
  }

  uintptr_t Send(std::vector<std::string> args) {
    uintptr_t token = next_token_++;
    listener_.results[token];
    std::vector<std::string_view> argv(args.begin(), args.end());
    if (client_->Submit(argv.data(), argv.size(), reinterpret_cast<void*>(token), 0) ==
        SubmitResult::kClosed) {
      listener_.results[token] = {true, false, "closed"};
    }
    return token;
  }

  const Result& Get(uintptr_t token) { return listener_.results[token]; }

  bool AllDone() {
    for (auto& [token, result] : listener_.results) {
      if (!result.done) return false;
    }
    return true;
  }

  // Runs the loop until `done` holds, for at most five seconds of wall time.
  void RunUntil(const std::function<bool()>& done, int line = __builtin_LINE()) {
    auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < limit) uv_run(&loop_, UV_RUN_ONCE);
    ASSERT_TRUE(done()) << "condition of line " << line << " not reached within 5 s";
  }

  // RunUntil for a condition outside the loop (a FakeServer's socket): the loop never
  // blocks, and the condition is checked between its turns.
  void RunPolling(const std::function<bool()>& done, int line = __builtin_LINE()) {
    auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < limit) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(done()) << "condition of line " << line << " not reached within 5 s";
  }

  static TlsRedisServer* server_;
  const Certificates* certs_ = nullptr;
  uv_loop_t loop_;
  bool loop_open_ = false;
  Listener listener_;
  std::unique_ptr<RedisClient> client_;
  uintptr_t next_token_ = 1;
};

TlsRedisServer* TlsClientTest::server_ = nullptr;

TEST_F(TlsClientTest, PipelinedCommandsReachTheirOwnCallers) {
  MakeClient(Trusting());
  std::vector<uintptr_t> sets, gets;
  for (int i = 0; i < 2000; ++i) {
    sets.push_back(Send({"SET", "tls:k" + std::to_string(i), "v" + std::to_string(i)}));
    gets.push_back(Send({"GET", "tls:k" + std::to_string(i)}));
  }
  RunUntil([&] { return AllDone(); });
  for (int i = 0; i < 2000; ++i) {
    EXPECT_EQ(Get(sets[i]).value, "OK") << i;
    EXPECT_EQ(Get(gets[i]).value, "v" + std::to_string(i)) << i;
  }
  EXPECT_EQ(client_->Stats().connections_opened, 1u);
  EXPECT_EQ(client_->state(), ClientState::kReady);
  EXPECT_TRUE(listener_.ErrorCodes().empty());
}

TEST_F(TlsClientTest, AFourMebibyteValueRoundTrips) {
  // "localhost" goes through the resolver; the certificate is checked against the name.
  MakeClient(Trusting(), "localhost");
  std::string value = RandomBytes(4 << 20, 3);
  uintptr_t set = Send({"SET", "tls:big", value});
  uintptr_t len = Send({"STRLEN", "tls:big"});
  uintptr_t get = Send({"GET", "tls:big"});
  uintptr_t after = Send({"ECHO", "after"});
  RunUntil([&] { return AllDone(); });
  EXPECT_EQ(Get(set).value, "OK");
  EXPECT_EQ(Get(len).value, std::to_string(4 << 20));
  ASSERT_EQ(Get(get).value.size(), value.size()) << Get(get).value.substr(0, 100);
  EXPECT_TRUE(Get(get).value == value) << "the value came back different";
  EXPECT_EQ(Get(after).value, "after");
  EXPECT_EQ(client_->Stats().connections_opened, 1u);
}

TEST_F(TlsClientTest, AServernameMismatchFailsCommandsWithTheCertificateError) {
  TlsOptions tls = Trusting();
  tls.servername = "wrong.example";
  ClientOptions options;
  options.max_retries_per_request = 0;
  MakeClient(tls, "127.0.0.1", 0, options);
  uintptr_t get = Send({"GET", "tls:k"});
  RunUntil([&] { return Get(get).done; });
  EXPECT_FALSE(Get(get).ok);
  EXPECT_EQ(Get(get).value, "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(Get(get).kind, ErrorKind::kTls);
  ClientStats stats = client_->Stats();
  EXPECT_EQ(stats.connections_opened, 0u) << "a refused certificate is no connection";
  EXPECT_EQ(stats.last_error.code, "ERR_TLS_CERT_ALTNAME_INVALID");
  RunUntil([&] { return !listener_.ErrorCodes().empty(); });
  EXPECT_EQ(listener_.ErrorCodes().front(), "ERR_TLS_CERT_ALTNAME_INVALID");
  // TearDown disconnects and checks that the loop closes with nothing left open.
}

TEST_F(TlsClientTest, DisconnectDuringTheTlsHandshakeLeavesNothingOpen) {
  FakeServer fake;
  ASSERT_NE(fake.port(), 0);
  MakeClient(Trusting(), "127.0.0.1", fake.port());
  uintptr_t ping = Send({"PING"});
  RunPolling([&] { return fake.PollClientHello(); });
  EXPECT_EQ(static_cast<unsigned char>(fake.received()[0]), 0x16) << "not a TLS handshake";
  EXPECT_EQ(client_->state(), ClientState::kConnecting);
  EXPECT_EQ(client_->Stats().connections_opened, 0u);
  EXPECT_FALSE(Get(ping).done);
  client_->Disconnect();
  RunUntil([&] { return listener_.closed && Get(ping).done; });
  EXPECT_FALSE(Get(ping).ok);
  client_.reset();
  EXPECT_TRUE(fake.SeesClientClose()) << "the socket was not closed";
  loop_open_ = false;
  EXPECT_EQ(uv_loop_close(&loop_), 0) << "a libuv handle was left open";
}

TEST_F(TlsClientTest, AServerClosingDuringTheHandshakeFailsTheAttempt) {
  FakeServer fake;
  ASSERT_NE(fake.port(), 0);
  ClientOptions options;
  options.max_retries_per_request = 0;
  MakeClient(Trusting(), "127.0.0.1", fake.port(), options);
  uintptr_t ping = Send({"PING"});
  RunPolling([&] { return fake.PollClientHello(); });
  fake.ShutdownWrite();  // FIN, everything it sent read: no reset
  RunPolling([&] { return Get(ping).done; });
  EXPECT_EQ(Get(ping).value, "ERR_TLS_HANDSHAKE");
  EXPECT_EQ(client_->Stats().connections_opened, 0u);
}

TEST_F(TlsClientTest, AHandshakeTheServerNeverAnswersEndsAtTheConnectTimeout) {
  FakeServer fake;
  ASSERT_NE(fake.port(), 0);
  ClientOptions options;
  options.max_retries_per_request = 0;
  options.connect_timeout_ms = 200;
  MakeClient(Trusting(), "127.0.0.1", fake.port(), options);
  uintptr_t ping = Send({"PING"});
  RunPolling([&] { return fake.PollClientHello(); });
  RunPolling([&] { return Get(ping).done; });  // the server says nothing
  EXPECT_EQ(Get(ping).value, "ETIMEDOUT");
  EXPECT_EQ(client_->Stats().connections_opened, 0u);
  EXPECT_TRUE(fake.SeesClientClose()) << "the timed-out socket was not closed";
}

TEST_F(TlsClientTest, APlaintextServerIsReportedAsNotSpeakingTls) {
  FakeServer fake;
  ASSERT_NE(fake.port(), 0);
  ClientOptions options;
  options.max_retries_per_request = 0;
  MakeClient(Trusting(), "127.0.0.1", fake.port(), options);
  uintptr_t ping = Send({"PING"});
  RunPolling([&] { return fake.PollClientHello(); });
  ASSERT_TRUE(fake.Send("-ERR Protocol error: unbalanced quotes in request\r\n"));
  RunPolling([&] { return Get(ping).done; });
  EXPECT_EQ(Get(ping).value, "ERR_SSL_WRONG_VERSION_NUMBER");
  EXPECT_NE(client_->Stats().last_error.message.find("speak TLS"), std::string::npos)
      << client_->Stats().last_error.message;
}

TEST_F(TlsClientTest, AClientCertificateRefusedByRedisFailsTheConnectAttempt) {
  TlsRedisServer strict(*certs_, true);
  ASSERT_TRUE(strict.running()) << strict.log();
  ClientOptions options;
  options.max_retries_per_request = 0;
  MakeClient(Trusting(), "127.0.0.1", strict.port(), options);
  uintptr_t set = Send({"SET", "tls:refused", "1"});
  RunUntil([&] { return Get(set).done; });
  // The refusal surfaces while connecting (the handshake's PING), so the SET was never
  // written: it fails with the connection's error, not ERR_OUTCOME_UNKNOWN.
  // Its code is the server's alert, also when the PING's write met the reset that follows
  // the alert.
  EXPECT_TRUE(StartsWith(Get(set).value, "ERR_SSL_")) << Get(set).value;
  client_->Disconnect();
  RunUntil([&] { return listener_.closed; });
  client_.reset();
  listener_ = Listener();

  TlsOptions tls = Trusting();
  tls.cert = certs_->client.cert;
  tls.key = certs_->client_encrypted_key;
  tls.passphrase = kPassphrase;
  MakeClient(tls, "127.0.0.1", strict.port(), options);
  uintptr_t accepted = Send({"SET", "tls:accepted", "1"});
  RunUntil([&] { return Get(accepted).done; });
  EXPECT_EQ(Get(accepted).value, "OK");
  client_->Disconnect();
  RunUntil([&] { return listener_.closed; });
  client_.reset();
}

}  // namespace
}  // namespace hirecache
