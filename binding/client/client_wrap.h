// The JS face of a CommandSink (today one RedisClient): turns JS arguments into a queued
// command and a promise, and settles that promise when the core reports the reply.
// Converts values; owns promises; nothing else.
#ifndef HIRECACHE_BINDING_CLIENT_CLIENT_WRAP_H_
#define HIRECACHE_BINDING_CLIENT_CLIENT_WRAP_H_

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "client/argument_buffer.h"
#include "client/command_sink.h"
#include "cluster/cluster_router.h"

namespace hirecache::binding {

class HirecacheAddon;

// Bits of the `flags` argument of command(): how to shape this command's answer. The addon
// exports them (constants.commandFlags), so lib/ never writes them again.
enum CommandFlags : uint32_t {
  kReplyBuffers = 1u << 0,  // bulk strings as Buffers instead of strings
  kSoftFail = 1u << 1,      // resolve with null on any failure instead of rejecting
  kReplyIsOk = 1u << 2,     // resolve with true for +OK, false otherwise (with kSoftFail)
  kReplyLatin1 = 1u << 3,   // bulk strings as Latin-1 strings: one char per byte, lossless,
                            // and far cheaper to make than Buffers (key names from SCAN)
  // Settled at once when the circuit breaker opens while it waits (the cache, the limiter).
  kBreakerEarly = kSettleWhenBreakerOpens,
  // The same, only while it is not written yet: a written one waits for its reply.
  kUnsentEarly = kSettleUnsentWhenBreakerOpens,
  // A blocking command with a guard of the caller's own (see kNoDeadline).
  kBlocking = kNoDeadline,
};

// The default of maxValueBytes: the largest argument a command may carry.
constexpr size_t kDefaultMaxValueBytes = 64 * 1024 * 1024;

// The most argument bytes one command may carry: Redis's own client-query-buffer-limit.
constexpr size_t kMaxCommandBytes = 1024 * 1024 * 1024;

// Exports the constants JS shares with this side: command flags, state names, defaults.
Napi::Object ClientConstants(Napi::Env env);

// keySlot(key): the Redis Cluster hash slot of a string or Buffer key.
Napi::Value KeySlotOf(const Napi::CallbackInfo& info);

class ClientWrap : public Napi::ObjectWrap<ClientWrap>, public ReplyListener {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ClientWrap(const Napi::CallbackInfo& info);
  ~ClientWrap() override;

  // Called by the environment's cleanup hook: closes the connection without touching JS.
  void Teardown();

  // ReplyListener
  void BeginSettle() override;
  void EndSettle() override;
  void OnReply(void* token, uint32_t flags, const redisReply* reply) override;
  void OnFailure(void* token, uint32_t flags, const ClientError& error) override;
  void OnUnitFailure(void* token, uint32_t flags, const ClientError& error,
                     const redisReply* so_far) override;
  void OnEvent(const ClientEvent& event) override;
  void OnPush(const redisReply* message) override;
  void OnBreakerState(BreakerState state, uint64_t openings) override;
  void OnBusyChanged(bool busy) override;
  void OnClosed() override;

 private:
  void CallOnEvent(const char* type, napi_value detail);
  void CallProperty(const char* name, size_t argc, napi_value* argv);
  Napi::Value Command(const Napi::CallbackInfo& info);
  Napi::Value CommandOn(const Napi::CallbackInfo& info);
  Napi::Value Nodes(const Napi::CallbackInfo& info);
  Napi::Value SetEndpoint(const Napi::CallbackInfo& info);
  Napi::Value FailResolve(const Napi::CallbackInfo& info);
  Napi::Value Unit(const Napi::CallbackInfo& info);
  Napi::Value ReconnectIn(const Napi::CallbackInfo& info);
  Napi::Value Get(const Napi::CallbackInfo& info);
  Napi::Value SetEx(const Napi::CallbackInfo& info);
  void StartCommand(const Napi::CallbackInfo& info, size_t min_args, uint32_t* flags,
                    size_t flags_at = 0);
  void AddArgument(napi_value v);
  // `endpoint`: to that node of a cluster, as it is (commandOn); null: routed as usual.
  Napi::Value SubmitCommand(uint32_t flags, const std::string* endpoint = nullptr);
  Napi::Value Quit(const Napi::CallbackInfo& info);
  Napi::Value Disconnect(const Napi::CallbackInfo& info);
  Napi::Value Status(const Napi::CallbackInfo& info);
  Napi::Value Metrics(const Napi::CallbackInfo& info);

  napi_value ConvertReply(const redisReply* reply, uint32_t flags, napi_value* too_large);
  napi_value MakeError(const char* kind, const std::string& code, const std::string& message);
  napi_value MakeClientError(const ClientError& error);
  [[noreturn]] void ThrowValueTooLarge(size_t size);

  napi_env env_;
  HirecacheAddon* addon_ = nullptr;
  std::unique_ptr<CommandSink> core_;
  ClusterRouter* router_ = nullptr;        // core_, when it routes over a cluster's nodes
  ClientMetrics final_metrics_;            // the core's counts, once it has closed (zero before)
  size_t max_value_bytes_;                 // the largest argument accepted (maxValueBytes)
  Napi::FunctionReference error_factory_;  // (kind, code, message) => Error, from lib/errors.js
  napi_async_context async_context_ = nullptr;
  // Two numbers JS reads (this object's `breakerCell`), written the moment the breaker
  // changes: its state, and how many times it has opened. A cache call checks them without
  // a call into the addon.
  Napi::Reference<Napi::Uint32Array> breaker_cell_;
  uint32_t* breaker_cell_data_ = nullptr;
  Napi::ObjectReference async_resource_;
  std::vector<napi_deferred> quit_waiters_;
  ArgumentBuffer args_;
  // The command being built: a literal (a verb such as "GET") or a range of args_.
  struct ArgRef {
    const char* literal;
    size_t offset;
    size_t length;
  };
  std::vector<ArgRef> arg_refs_;
  std::vector<std::string_view> argv_;
  std::vector<size_t> unit_argcs_;  // a unit's commands' argument counts (empty: one command)
  uint32_t unit_reply_count_ = 1;   // the replies the unit asks for
  int settle_depth_ = 0;
  napi_handle_scope settle_scope_ = nullptr;
  napi_callback_scope callback_scope_ = nullptr;
  bool closed_ = false;
  bool close_requested_ = false;  // quit() or disconnect(): holds one Ref until OnClosed
  bool tearing_down_ = false;
};

}  // namespace hirecache::binding

#endif  // HIRECACHE_BINDING_CLIENT_CLIENT_WRAP_H_
