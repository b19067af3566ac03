// What an error reply from Redis means for the client, beyond the caller's own answer.
//
// Most error replies (WRONGTYPE, NOSCRIPT, ERR …) are the command's answer and nothing more.
// A few say something about the connection or the cluster: READONLY (the server became a
// replica in a failover: finish what was written, then reconnect). MOVED, ASK, TRYAGAIN and
// LOADING are recognized already so the cluster router can act on them; today they are
// settled as ordinary error replies.
#ifndef HIRECACHE_CLIENT_REPLY_POLICY_H_
#define HIRECACHE_CLIENT_REPLY_POLICY_H_

#include <string>
#include <string_view>

struct redisReply;

namespace hirecache {

enum class ReplyClass {
  kOrdinary,  // a value, or an error reply that concerns only its caller
  kReadOnly,  // READONLY: the server is a replica now; reconnect after the written replies
  kMoved,     // MOVED slot host:port: the slot lives on another node
  kAsk,       // ASK slot host:port: this one command goes to another node
  kTryAgain,  // TRYAGAIN: a multi-key command during resharding
  kLoading,   // LOADING: the server is loading its dataset
};

// Classifies one reply. Only error replies are ever anything but kOrdinary.
ReplyClass ClassifyReply(const redisReply* reply);

// Whether a reply read on a subscriber connection is a message ("message", "pmessage" or
// "smessage" array) rather than the answer to a command.
bool IsPushMessage(const redisReply* reply);

// Whether the reply is the status +OK (SET, AUTH, SELECT, CLIENT SETNAME…).
bool IsOkReply(const redisReply* reply);

// An error reply saying the server cannot serve this connection now (LOADING, BUSY,
// MASTERDOWN, CLUSTERDOWN, or NOAUTH: a password is required and none was given): a failure
// for the circuit breaker, unlike an error about the command itself.
bool IsUnavailableReply(const redisReply* reply);

// The code of an error text: its first word ("WRONGPASS invalid username-password pair"
// gives "WRONGPASS"; an empty error gives "ERR"). The one parser of error codes for the
// core and the binding.
std::string_view ErrorCodeOf(std::string_view error_text);

// The server's error text without any echo of the command's arguments ("unknown command
// 'AUTH', with args beginning with: …" could carry a password).
std::string WithoutArguments(std::string_view error_text);

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_REPLY_POLICY_H_
