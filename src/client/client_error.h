// Errors the client reports to its callers, each with a stable code that crosses to JS.
#ifndef HIRECACHE_CLIENT_CLIENT_ERROR_H_
#define HIRECACHE_CLIENT_CLIENT_ERROR_H_

#include <cstdint>
#include <string>

namespace hirecache {

// The category tells the JS layer which Error class to build.
enum class ErrorKind {
  kConnection,      // connect refused, reset, DNS failure, connect deadline, handshake failure
  kTimeout,         // the command's own deadline passed
  kOutcomeUnknown,  // written, then the connection died before its reply arrived
  kQueueFull,       // the bound on not-yet-sent commands was reached
  kClosed,          // quit() or disconnect() was called
  kProtocol,        // the server sent bytes the reader could not parse
  kTls,             // TLS refused the server (certificate, name, version) or broke down
};

struct ClientError {
  ErrorKind kind = ErrorKind::kConnection;
  std::string code;     // e.g. "ECONNREFUSED", "ETIMEDOUT", "ERR_OUTCOME_UNKNOWN", "WRONGPASS"
  std::string message;  // a sentence for people; never contains a password
};

// Maps a libuv status (negative errno or EAI_*) to the code Node itself would use.
std::string CodeForUvStatus(int status);

// A connection error for a failed libuv call: `what` ("connecting to host:port failed")
// followed by libuv's text, with Node's code for the status.
ClientError UvError(int status, const std::string& what);

// "host:port" for messages, with an IPv6 address in brackets ("[::1]:6379").
std::string EndpointOf(const std::string& host, uint16_t port);

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_CLIENT_ERROR_H_
