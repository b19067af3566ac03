// The interface between whoever owns the callers' promises (the N-API binding, or a test)
// and whatever carries their commands to Redis: today one RedisClient, later a cluster
// router over one client per node. The binding holds a CommandSink and never needs to
// know which.
#ifndef HIRECACHE_CLIENT_COMMAND_SINK_H_
#define HIRECACHE_CLIENT_COMMAND_SINK_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "client/circuit_breaker.h"
#include "client/client_error.h"
#include "client/client_metrics.h"
#include "client/command_pipeline.h"

struct redisReply;

namespace hirecache {

// The states a client reports, in the order of ClientStateNames(). One list: the JS layer
// and its types read the names from the addon.
enum class ClientState {
  kIdle,        // never asked to connect
  kConnecting,  // resolving, connecting or in the handshake
  kReady,       // connected and handshaken
  kDown,        // the last connection attempt failed; waiting for the backoff timer
  kClosing,     // quit(): draining replies
  kClosed,
};
constexpr size_t kClientStateCount = 6;

const char* ClientStateName(ClientState state);

// Flags the sink itself reads. A caller's own flags (reply shapes…) use the bits below
// kSinkFlagsShift; the sink keeps private bookkeeping above them and strips it before a
// flag value goes back to the listener.
constexpr uint32_t kSettleWhenBreakerOpens = 1u << 20;  // waiting when the breaker opens:
                                                        // settle now instead of at the deadline
// Only if not written yet: a written one waits for its reply (the limiter's decisions, which
// Redis may be about to answer).
constexpr uint32_t kSettleUnsentWhenBreakerOpens = 1u << 21;
// Either of the two: the caller has somewhere else to go (the cache, the limiter).
constexpr uint32_t kHasFallback = kSettleWhenBreakerOpens | kSettleUnsentWhenBreakerOpens;
// Blocks by design (BLPOP, WAIT… with a timeout of its own): no deadline from
// command_timeout, and while it is the oldest written command the silence it causes is
// neither a stall nor a dead connection. Its owner keeps a guard of its own.
constexpr uint32_t kNoDeadline = 1u << 22;
constexpr uint32_t kSinkFlagsShift = 24;
constexpr uint32_t kCallerFlagsMask = (1u << kSinkFlagsShift) - 1;

// What happened to the connection or the breaker, for the owner to report (as events).
enum class ClientEventType {
  kConnect,       // TCP connected; the handshake follows
  kReady,         // handshake done; commands flow
  kError,         // a connect attempt failed, the connection was lost, or the handshake refused
  kClose,         // an established connection closed
  kReconnecting,  // a reconnect is scheduled in delay_ms
  kBreaker,       // the breaker changed state
  kResolve,       // a connect attempt waits for the owner to name the address (SetEndpoint)
};

struct ClientEvent {
  ClientEvent(ClientEventType t) : type(t) {}  // NOLINT(google-explicit-constructor)
  ClientEvent(ClientEventType t, ClientError e) : type(t), error(std::move(e)) {}
  ClientEventType type;
  ClientError error;                             // kError
  uint32_t delay_ms = 0;                         // kReconnecting
  uint32_t attempt = 0;                          // kReconnecting: failed attempts so far
  bool owner_decides = false;                    // kReconnecting: waits for ReconnectIn()
  BreakerState breaker = BreakerState::kClosed;  // kBreaker
  BreakerReason reason = BreakerReason::kNone;   // kBreaker
};

// Implemented by the owner of the callers' promises. Every OnReply / OnFailure happens
// between one BeginSettle and its EndSettle; EndSettle is where the binding lets JS
// continuations run, so they may call back into the sink.
class ReplyListener {
 public:
  virtual ~ReplyListener() = default;
  virtual void BeginSettle() = 0;
  virtual void EndSettle() = 0;
  // `reply` belongs to the sink and is freed when OnReply returns. A unit's replies come as
  // one array reply, one element per reply the unit asked for.
  virtual void OnReply(void* token, uint32_t flags, const redisReply* reply) = 0;
  // A message on a subscriber connection (an array: "message", channel, payload or
  // "pmessage", pattern, channel, payload or "smessage", channel, payload), delivered from
  // inside the read that completed it, between BeginSettle and EndSettle like a reply (the
  // listener may call back into the sink; the read stops if that closes the connection).
  // Only sinks created as subscribers send these.
  virtual void OnPush(const redisReply* /*message*/) {}
  virtual void OnFailure(void* token, uint32_t flags, const ClientError& error) = 0;
  // A unit that failed (its connection died) after some of its replies arrived: `so_far`
  // is an array of those, in order. By default, a plain failure.
  virtual void OnUnitFailure(void* token, uint32_t flags, const ClientError& error,
                             const redisReply* /*so_far*/) {
    OnFailure(token, flags, error);
  }
  // A connection or breaker event, delivered at a safe point (a later turn of the loop,
  // inside BeginSettle/EndSettle, never inside a call into the sink): the listener may call
  // back into the sink.
  virtual void OnEvent(const ClientEvent& event) = 0;
  // The breaker's state changed (`openings`: how many times it has opened). Called at
  // once, from inside the transition: the listener only records it (the event follows on
  // a later turn).
  virtual void OnBreakerState(BreakerState /*state*/, uint64_t /*openings*/) {}
  // The number of commands awaiting settlement went from 0 to 1 (busy) or back (idle).
  virtual void OnBusyChanged(bool busy) = 0;
  // Every libuv handle and request of the sink is closed; it may now be deleted.
  virtual void OnClosed() = 0;
};

struct ClientStats {
  ClientState state = ClientState::kClosed;
  uint32_t reconnect_attempts = 0;  // consecutive failed attempts since the last success
  uint64_t connections_opened = 0;
  uint64_t in_flight = 0;  // written, awaiting replies
  uint64_t queued = 0;     // accepted, not yet written
  bool has_last_error = false;
  ClientError last_error;
  uint64_t last_error_at_ms = 0;  // wall clock (ms since the epoch)
  BreakerState breaker = BreakerState::kClosed;
  BreakerReason breaker_reason = BreakerReason::kNone;
  uint64_t breaker_opened_at_ms = 0;  // wall clock of the last opening; 0: never opened
  uint64_t breaker_opened = 0;        // closed → open transitions
  uint64_t breaker_closed = 0;        // → closed transitions
};

enum class SubmitResult {
  kAccepted,  // the command will be settled through the listener (perhaps with an error)
  kClosed,    // quit() or disconnect() was called: nothing was queued, nothing will be settled
};

class CommandSink {
 public:
  virtual ~CommandSink() = default;

  // Queues one command. `token` and `flags` come back in OnReply / OnFailure. A command
  // that fails at once (Redis known to be down, a bound reached) is settled at the end of
  // the loop turn, never synchronously: a caller looping on `await` still lets the loop turn.
  virtual SubmitResult Submit(const std::string_view* argv, size_t argc, void* token,
                              uint32_t flags) = 0;
  // Queues a unit as one entry: its commands are admitted, written, timed out and failed
  // together, and nothing another caller queues can come between them (a MULTI … EXEC).
  virtual SubmitResult SubmitUnit(const CommandUnit& unit, void* token, uint32_t flags) = 0;
  // After a kReconnecting event that leaves the wait to the owner: try again in delay_ms.
  virtual void ReconnectIn(uint32_t delay_ms) = 0;
  // Graceful close: commands already accepted are answered first.
  virtual void Quit() = 0;
  // Immediate close: every pending command fails (written ones with ERR_OUTCOME_UNKNOWN).
  virtual void Disconnect() = 0;
  virtual ClientStats Stats() const = 0;
  // Outcomes and latencies by verb (all zero when metrics are off).
  virtual const ClientMetrics& Metrics() const = 0;
  // Hands the callbacks to another listener (the binding's, when its JS object is collected
  // before the sink finished closing).
  virtual void SetListener(ReplyListener* listener) = 0;
};

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_COMMAND_SINK_H_
