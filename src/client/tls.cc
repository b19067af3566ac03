#include "client/tls.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>

namespace hirecache {

namespace {

// Where distributions keep their trust store, tried after OpenSSL's own default paths
// (which honour SSL_CERT_FILE and SSL_CERT_DIR): the OpenSSL inside Node looks in its own
// build's folder, which is rarely where the system keeps its certificates.
constexpr const char* kSystemCertDir = "/etc/ssl/certs";
constexpr const char* kSystemBundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                 // Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",                   // Fedora, RHEL, Amazon Linux
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  // RHEL's extracted store
    "/etc/ssl/ca-bundle.pem",                             // openSUSE
    "/etc/ssl/cert.pem",                                  // Alpine, macOS
};

ClientError ConfigError(const std::string& message) {
  return ClientError{ErrorKind::kConnection, "ERR_INVALID_CONFIG", message};
}

// OpenSSL's reason as Node names it: "wrong version number" -> ERR_SSL_WRONG_VERSION_NUMBER.
std::string CodeOf(unsigned long err) {
  const char* reason = ERR_reason_error_string(err);
  std::string code = ERR_GET_LIB(err) == ERR_LIB_SSL ? "ERR_SSL_" : "ERR_OSSL_";
  if (reason == nullptr) return code + "UNKNOWN";
  for (const char* p = reason; *p != '\0'; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    code += std::isalnum(c) ? static_cast<char>(std::toupper(c)) : '_';
  }
  return code;
}

// X509_V_ERR_* as Node names them, so `err.code` reads as it would from Node's tls.
const char* VerifyCode(long result) {
  switch (result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "CERT_HAS_EXPIRED";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "CERT_NOT_YET_VALID";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return "DEPTH_ZERO_SELF_SIGNED_CERT";
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return "SELF_SIGNED_CERT_IN_CHAIN";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      return "UNABLE_TO_GET_ISSUER_CERT";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      return "UNABLE_TO_GET_ISSUER_CERT_LOCALLY";
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return "UNABLE_TO_VERIFY_LEAF_SIGNATURE";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "CERT_SIGNATURE_FAILURE";
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return "CERT_CHAIN_TOO_LONG";
    case X509_V_ERR_CERT_REVOKED:
      return "CERT_REVOKED";
    case X509_V_ERR_INVALID_CA:
      return "INVALID_CA";
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
      return "PATH_LENGTH_EXCEEDED";
    case X509_V_ERR_INVALID_PURPOSE:
      return "INVALID_PURPOSE";
    case X509_V_ERR_CERT_UNTRUSTED:
      return "CERT_UNTRUSTED";
    case X509_V_ERR_CERT_REJECTED:
      return "CERT_REJECTED";
    case X509_V_ERR_UNABLE_TO_GET_CRL:
      return "UNABLE_TO_GET_CRL";
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
      return "UNABLE_TO_DECRYPT_CERT_SIGNATURE";
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
      return "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY";
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
      return "ERROR_IN_CERT_NOT_BEFORE_FIELD";
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
      return "ERROR_IN_CERT_NOT_AFTER_FIELD";
    case X509_V_ERR_OUT_OF_MEM:
      return "OUT_OF_MEM";
    case X509_V_ERR_EE_KEY_TOO_SMALL:
      return "EE_KEY_TOO_SMALL";
    case X509_V_ERR_CA_KEY_TOO_SMALL:
      return "CA_KEY_TOO_SMALL";
    case X509_V_ERR_CA_MD_TOO_WEAK:
      return "CA_MD_TOO_WEAK";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return "ERR_TLS_CERT_ALTNAME_INVALID";
    default:
      return "ERR_TLS_CERT_VERIFY";
  }
}

bool IsIpAddress(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Adds every certificate in `pem` to the context's trust store; how many there were.
int AddTrusted(SSL_CTX* ctx, const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  while (bio != nullptr) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    // A certificate that is already there (X509_R_CERT_ALREADY_IN_HASH_TABLE) still counts.
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
    ++count;
  }
  ERR_clear_error();  // the end of the PEM text is reported as an error
  return count;
}

// Whether `dir` holds OpenSSL's hashed links ("5ad8a5d6.0"): then certificates are looked
// up by issuer when a chain is verified, and nothing is parsed up front.
bool IsHashedDirectory(const char* dir) {
  DIR* d = opendir(dir);
  if (d == nullptr) return false;
  bool hashed = false;
  while (dirent* e = readdir(d)) {
    const char* n = e->d_name;
    size_t len = std::strlen(n);
    if (len >= 10 && n[8] == '.' && std::all_of(n, n + 8, [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c));
        })) {
      hashed = true;
      break;
    }
  }
  closedir(d);
  return hashed;
}

// The system's trust store, wherever this distribution keeps it; `fallback` where it has
// none. A hashed folder is preferred to a bundle file: parsing Debian's bundle takes about
// 30 ms, a lookup by hash costs nothing until a chain is verified.
void UseSystemTrust(SSL_CTX* ctx, const std::string& fallback) {
  // Honours SSL_CERT_FILE and SSL_CERT_DIR; one that names nothing readable counts for
  // nothing, so the search goes on.
  SSL_CTX_set_default_verify_paths(ctx);
  const char* file = getenv("SSL_CERT_FILE");
  const char* dir = getenv("SSL_CERT_DIR");
  bool found =
      (file != nullptr && access(file, R_OK) == 0) || (dir != nullptr && IsHashedDirectory(dir));
  if (!found && IsHashedDirectory(kSystemCertDir)) {
    found = SSL_CTX_load_verify_locations(ctx, nullptr, kSystemCertDir) == 1;
  }
  for (const char* path : kSystemBundles) {
    if (found) break;
    found = access(path, R_OK) == 0 && SSL_CTX_load_verify_locations(ctx, path, nullptr) == 1;
  }
  ERR_clear_error();  // a default path that does not exist is not an error
  if (!found && !fallback.empty()) AddTrusted(ctx, fallback);
}

// The passphrase for an encrypted key; none given fails the decryption instead of
// prompting on the terminal, which is what OpenSSL would do without a callback.
int PassphraseCallback(char* buf, int size, int, void* user) {
  const auto* passphrase = static_cast<const std::string*>(user);
  if (passphrase->empty() || passphrase->size() > static_cast<size_t>(size)) return 0;
  std::memcpy(buf, passphrase->data(), passphrase->size());
  return static_cast<int>(passphrase->size());
}

bool UseCertificateChain(SSL_CTX* ctx, const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  if (bio == nullptr) return false;
  X509* leaf = PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) return false;
  bool ok = SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  while (ok) {
    X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (ca == nullptr) break;
    if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
      X509_free(ca);
      ok = false;
    }
  }
  ERR_clear_error();
  return ok;
}

// Loads the private key; an empty string when it worked, else what went wrong (never the
// key or the passphrase).
std::string UsePrivateKey(SSL_CTX* ctx, const std::string& pem, const std::string& passphrase) {
  BioPtr bio = MemoryBio(pem);
  if (bio == nullptr) return "option tls.key could not be read (out of memory)";
  std::string pass = passphrase;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, PassphraseCallback, &pass);
  OPENSSL_cleanse(pass.data(), pass.size());
  if (key == nullptr) {
    unsigned long err = ERR_peek_last_error();
    ERR_clear_error();
    bool encrypted = pem.find("ENCRYPTED") != std::string::npos;
    if (encrypted && passphrase.empty()) {
      return "option tls.key is encrypted and no tls.passphrase was given";
    }
    if (encrypted || ERR_GET_REASON(err) == EVP_R_BAD_DECRYPT) {
      return "option tls.key could not be decrypted with tls.passphrase (wrong passphrase?)";
    }
    return "option tls.key holds no PEM private key that OpenSSL can read";
  }
  bool used = SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  if (!used || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return "option tls.key does not belong to the certificate in tls.cert";
  }
  return "";
}

}  // namespace

std::shared_ptr<TlsContext> TlsContext::Create(const TlsOptions& options, ClientError* error) {
  std::shared_ptr<TlsContext> context(new TlsContext());
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    ERR_clear_error();
    *error = ConfigError("OpenSSL could not create a TLS context");
    return nullptr;
  }
  context->ctx_ = ctx;
  context->servername_ = options.servername;
  context->verify_ = options.reject_unauthorized;
  // No renegotiation (a server cannot make the client redo a handshake mid-stream), no
  // compression (CRIME).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (options.max_version != 0 && options.max_version < options.min_version) {
    *error = ConfigError("option tls.maxVersion is below tls.minVersion: no version is left");
    return nullptr;
  }
  if (SSL_CTX_set_min_proto_version(ctx, options.min_version) != 1 ||
      (options.max_version != 0 && SSL_CTX_set_max_proto_version(ctx, options.max_version) != 1)) {
    ERR_clear_error();
    *error = ConfigError("option tls.minVersion or tls.maxVersion names a version OpenSSL refuses");
    return nullptr;
  }
  SSL_CTX_set_verify(ctx, options.reject_unauthorized ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (options.ca.empty()) {
    UseSystemTrust(ctx, options.fallback_ca);
  } else if (AddTrusted(ctx, options.ca) == 0) {
    *error = ConfigError("option tls.ca holds no PEM certificate");
    return nullptr;
  }
  if (!options.extra_ca_file.empty()) {
    // Node warns about a file it cannot read and goes on; lib/client/tls.js does the same.
    SSL_CTX_load_verify_locations(ctx, options.extra_ca_file.c_str(), nullptr);
    ERR_clear_error();
  }
  if (options.cert.empty() != options.key.empty()) {
    *error = ConfigError(options.cert.empty() ? "option tls.key was given without tls.cert"
                                              : "option tls.cert was given without tls.key");
    return nullptr;
  }
  if (!options.cert.empty()) {
    if (!UseCertificateChain(ctx, options.cert)) {
      *error = ConfigError("option tls.cert holds no PEM certificate that OpenSSL can read");
      return nullptr;
    }
    std::string why = UsePrivateKey(ctx, options.key, options.passphrase);
    if (!why.empty()) {
      *error = ConfigError(why);
      return nullptr;
    }
  }
  return context;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<TlsContext> TlsContextCache::Get(const TlsOptions& given, ClientError* error) {
  const TlsOptions* options = &given;
  TlsOptions with_roots;
  if (given.fallback_ca.empty() && !fallback_ca_.empty() && given.ca.empty()) {
    with_roots = given;
    with_roots.fallback_ca = fallback_ca_;
    options = &with_roots;
  }
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool hashed = md != nullptr && EVP_DigestInit_ex(md, EVP_sha256(), nullptr) == 1;
  for (const std::string* field :
       {&options->ca, &options->extra_ca_file, &options->fallback_ca, &options->cert, &options->key,
        &options->passphrase, &options->servername}) {
    uint64_t size = field->size();
    hashed = hashed && EVP_DigestUpdate(md, &size, sizeof(size)) == 1 &&
             EVP_DigestUpdate(md, field->data(), field->size()) == 1;
  }
  uint16_t numbers[] = {static_cast<uint16_t>(options->reject_unauthorized), options->min_version,
                        options->max_version};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  hashed = hashed && EVP_DigestUpdate(md, numbers, sizeof(numbers)) == 1 &&
           EVP_DigestFinal_ex(md, digest, &digest_len) == 1;
  EVP_MD_CTX_free(md);
  if (!hashed) {  // out of memory: no sharing, the context still works
    ERR_clear_error();
    return TlsContext::Create(*options, error);
  }
  std::string key(reinterpret_cast<const char*>(digest), digest_len);
  for (auto it = contexts_.begin(); it != contexts_.end();) {
    it = it->second.expired() ? contexts_.erase(it) : std::next(it);
  }
  if (auto found = contexts_.find(key); found != contexts_.end()) return found->second.lock();
  std::shared_ptr<TlsContext> context = TlsContext::Create(*options, error);
  if (context != nullptr) contexts_.emplace(std::move(key), context);
  return context;
}

TlsSession::TlsSession(std::shared_ptr<TlsContext> context, const std::string& host,
                       const std::string& endpoint)
    : context_(std::move(context)), endpoint_(endpoint) {
  ssl_ = SSL_new(context_->ctx());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    BIO_free(in_);
    BIO_free(out_);
    SSL_free(ssl_);
    ssl_ = nullptr;
    ERR_clear_error();
    return;
  }
  // An empty input BIO means "wait for the socket", not end of stream.
  BIO_set_mem_eof_return(in_, -1);
  SSL_set_bio(ssl_, in_, out_);
  SSL_set_connect_state(ssl_);
  const std::string& name = context_->servername().empty() ? host : context_->servername();
  bool ip = IsIpAddress(name);
  // SNI carries host names only (RFC 6066); an address is checked against the IP SANs.
  if (!ip) SSL_set_tlsext_host_name(ssl_, name.c_str());
  if (context_->verify()) {
    SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str());
    } else {
      SSL_set1_host(ssl_, name.c_str());
    }
  }
}

TlsSession::~TlsSession() { SSL_free(ssl_); }  // frees both BIOs

TlsSession::Status TlsSession::Handshake(ClientError* error) {
  ERR_clear_error();
  int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    handshake_done_ = true;
    return Status::kOk;
  }
  if (SSL_get_error(ssl_, ret) == SSL_ERROR_WANT_READ) return Status::kWantRead;
  *error = Failure(ret, "during the TLS handshake");
  return Status::kFailed;
}

bool TlsSession::Feed(const char* data, size_t len) {
  return BIO_write(in_, data, static_cast<int>(len)) == static_cast<int>(len);
}

bool TlsSession::has_input() const { return BIO_ctrl_pending(in_) > 0 || SSL_pending(ssl_) > 0; }

TlsSession::Status TlsSession::Read(char* out, size_t cap, size_t* n, ClientError* error) {
  ERR_clear_error();
  int ret = SSL_read(ssl_, out, static_cast<int>(std::min<size_t>(cap, INT_MAX)));
  if (ret > 0) {
    *n = static_cast<size_t>(ret);
    return Status::kOk;
  }
  *n = 0;
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      return Status::kOk;
    case SSL_ERROR_ZERO_RETURN:
      return Status::kClosed;
    default:
      *error = Failure(ret, "reading");
      return Status::kFailed;
  }
}

bool TlsSession::Write(const char* data, size_t len, ClientError* error) {
  while (len > 0) {
    int chunk = static_cast<int>(std::min<size_t>(len, INT_MAX / 2));
    ERR_clear_error();
    int ret = SSL_write(ssl_, data, chunk);
    if (ret != chunk) {
      *error = Failure(ret, "writing");
      return false;
    }
    data += chunk;
    len -= static_cast<size_t>(chunk);
  }
  return true;
}

bool TlsSession::has_output() const { return BIO_ctrl_pending(out_) > 0; }

void TlsSession::TakeOutput(std::string& out) {
  size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return;
  size_t at = out.size();
  out.resize(at + pending);
  int got = BIO_read(out_, out.data() + at, static_cast<int>(pending));
  out.resize(at + static_cast<size_t>(std::max(got, 0)));
}

// The error for a failed OpenSSL call: a refused certificate by its verification result,
// anything else by OpenSSL's reason.
ClientError TlsSession::Failure(int ret, const char* during) {
  ClientError error{ErrorKind::kTls, "", ""};
  long verify = SSL_get_verify_result(ssl_);
  if (!handshake_done_ && context_->verify() && verify != X509_V_OK) {
    error.code = VerifyCode(verify);
    error.message = "the TLS certificate of " + endpoint_ +
                    " was refused: " + X509_verify_cert_error_string(verify);
    ERR_clear_error();
    return error;
  }
  unsigned long err = ERR_get_error();
  ERR_clear_error();
  if (err == 0) {
    error.code = handshake_done_ ? "ECONNRESET" : "ERR_TLS_HANDSHAKE";
    error.message = std::string("TLS failed ") + during + " with " + endpoint_ + " (OpenSSL code " +
                    std::to_string(SSL_get_error(ssl_, ret)) + ")";
    return error;
  }
  error.code = CodeOf(err);
  const char* reason = ERR_reason_error_string(err);
  error.message = std::string("TLS failed ") + during + " with " + endpoint_ + ": " +
                  (reason != nullptr ? reason : "unknown reason");
  if (ERR_GET_REASON(err) == SSL_R_WRONG_VERSION_NUMBER) {
    error.message += " (does this port speak TLS? a plaintext Redis answers this way)";
  }
  return error;
}

}  // namespace hirecache
