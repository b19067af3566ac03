#include "client/client_wrap.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <new>

#include "addon.h"
#include "client/redis_client.h"
#include "client/reply_policy.h"
#include "util/raw_method.h"

namespace hirecache::binding {

namespace {

const char* KindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kConnection:
      return "connection";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kOutcomeUnknown:
      return "outcome-unknown";
    case ErrorKind::kQueueFull:
      return "queue-full";
    case ErrorKind::kClosed:
      return "closed";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kTls:
      return "tls";
  }
  return "connection";
}

// Takes over a client whose JS object was collected while its handles were still open,
// and deletes it once libuv has closed them.
class OrphanedClient : public ReplyListener {
 public:
  OrphanedClient(std::unique_ptr<CommandSink> core, HirecacheAddon* addon)
      : core_(std::move(core)), addon_(addon) {
    core_->SetListener(this);
    core_->Disconnect();
  }
  void BeginSettle() override {}
  void EndSettle() override {}
  void OnReply(void*, uint32_t, const redisReply*) override {}
  void OnFailure(void*, uint32_t, const ClientError&) override {}
  void OnEvent(const ClientEvent&) override {}
  void OnBusyChanged(bool) override {}
  void OnClosed() override {
    HirecacheAddon* addon = addon_;
    delete this;
    addon->CoreClosed();
  }

 private:
  std::unique_ptr<CommandSink> core_;
  HirecacheAddon* addon_;
};

}  // namespace

namespace {

// A client's (or a cluster node's) state, counts, last error and breaker, as status() shows
// them.
void SetStats(Napi::Env env, Napi::Object s, const ClientStats& st) {
  s.Set("state", ClientStateName(st.state));
  s.Set("reconnectAttempts", static_cast<double>(st.reconnect_attempts));
  s.Set("connectionsOpened", static_cast<double>(st.connections_opened));
  s.Set("inFlight", static_cast<double>(st.in_flight));
  s.Set("queued", static_cast<double>(st.queued));
  if (st.has_last_error) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("code", st.last_error.code);
    e.Set("message", st.last_error.message);
    e.Set("at", static_cast<double>(st.last_error_at_ms));
    s.Set("lastError", e);
  } else {
    s.Set("lastError", env.Null());
  }
  s.Set("breaker", BreakerStateName(st.breaker));
  const char* reason = BreakerReasonName(st.breaker_reason);
  s.Set("breakerReason",
        reason != nullptr ? Napi::Value(Napi::String::New(env, reason)) : env.Null());
  s.Set("breakerOpenedAt", static_cast<double>(st.breaker_opened_at_ms));
  s.Set("breakerOpened", static_cast<double>(st.breaker_opened));
  s.Set("breakerClosed", static_cast<double>(st.breaker_closed));
}

}  // namespace

Napi::Value KeySlotOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "keySlot(key)");
  if (info[0].IsString()) {
    std::string key = info[0].As<Napi::String>().Utf8Value();
    return Napi::Number::New(env, KeySlot(key));
  }
  if (info[0].IsBuffer()) {
    Napi::Buffer<char> b = info[0].As<Napi::Buffer<char>>();
    return Napi::Number::New(env, KeySlot(std::string_view(b.Data(), b.Length())));
  }
  throw Napi::TypeError::New(env, "keySlot(key): the key must be a string or a Buffer");
}

Napi::Function ClientWrap::Define(Napi::Env env) {
  return DefineClass(env, "Client",
                     {
                         InstanceMethod<&ClientWrap::Command>("command"),
                         InstanceMethod<&ClientWrap::CommandOn>("commandOn"),
                         InstanceMethod<&ClientWrap::Nodes>("nodes"),
                         InstanceMethod<&ClientWrap::SetEndpoint>("setEndpoint"),
                         InstanceMethod<&ClientWrap::FailResolve>("failResolve"),
                         InstanceMethod<&ClientWrap::Unit>("unit"),
                         InstanceMethod<&ClientWrap::ReconnectIn>("reconnectIn"),
                         InstanceMethod<&ClientWrap::Get>("get"),
                         InstanceMethod<&ClientWrap::SetEx>("setex"),
                         InstanceMethod<&ClientWrap::Quit>("quit"),
                         InstanceMethod<&ClientWrap::Disconnect>("disconnect"),
                         InstanceMethod<&ClientWrap::Status>("status"),
                         InstanceMethod<&ClientWrap::Metrics>("metrics"),
                     });
}

// new Client(options, errorFactory): options were validated in lib/client/config.js. Events
// go to the function in the JS object's own `onEvent` property, if any (a property, not a
// persistent reference: the object and its listener may then be collected together).
ClientWrap::ClientWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ClientWrap>(info),
      env_(info.Env()),
      max_value_bytes_(kDefaultMaxValueBytes) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "Client(options, errorFactory): bad arguments");
  }
  OptionReader o(info[0].As<Napi::Object>());
  ClientOptions options;
  options.host = o.String("host");
  options.port = static_cast<uint16_t>(o.Uint32("port", options.port));
  options.username = o.String("username");
  options.password = o.String("password");
  options.db = o.Uint32("db", options.db);
  options.client_name = o.String("name");
  options.connect_timeout_ms = o.Uint32("connectTimeout", options.connect_timeout_ms);
  options.command_timeout_ms = o.Uint32("commandTimeout", options.command_timeout_ms);
  options.keepalive_delay_s = o.Uint32("keepAliveSeconds", options.keepalive_delay_s);
  options.no_delay = o.Bool("noDelay", options.no_delay);
  options.max_queue = o.Uint32("maxQueue", options.max_queue);
  options.max_in_flight = o.Uint32("maxInFlight", options.max_in_flight);
  options.max_queue_bytes = o.Uint64("maxQueueBytes", options.max_queue_bytes);
  options.reconnect_base_delay_ms = o.Uint32("reconnectBaseDelay", options.reconnect_base_delay_ms);
  options.reconnect_max_delay_ms = o.Uint32("reconnectMaxDelay", options.reconnect_max_delay_ms);
  options.limits.max_bulk_bytes = o.Uint64("maxBulkBytes", options.limits.max_bulk_bytes);
  options.limits.max_aggregate_elements =
      o.Uint64("maxAggregateElements", options.limits.max_aggregate_elements);
  options.limits.max_line_bytes = o.Uint64("maxLineBytes", options.limits.max_line_bytes);
  options.limits.max_depth = std::min<uint32_t>(o.Uint32("maxDepth", options.limits.max_depth), 7);
  max_value_bytes_ = static_cast<size_t>(o.Uint64("maxValueBytes", kDefaultMaxValueBytes));
  options.metrics = o.Bool("metrics", options.metrics);
  options.subscriber = o.Bool("subscriber", options.subscriber);
  options.reconnect = o.Bool("reconnect", options.reconnect);
  options.owner_schedules_reconnect = o.Bool("ownerSchedulesReconnect", false);
  options.endpoint_from_owner = o.Bool("endpointFromOwner", false);
  // null (wait until the deadline) arrives as -1.
  Napi::Value retries = info[0].As<Napi::Object>().Get("maxRetriesPerRequest");
  if (retries.IsNumber()) {
    int64_t n = retries.As<Napi::Number>().Int64Value();
    options.max_retries_per_request = n < 0 ? kRetryForever : static_cast<uint32_t>(n);
  }
  Napi::Value tls = info[0].As<Napi::Object>().Get("tls");
  if (tls.IsObject()) {
    OptionReader t(tls.As<Napi::Object>());
    TlsOptions to;
    to.ca = t.String("ca");
    to.extra_ca_file = t.String("extraCaFile");
    to.cert = t.String("cert");
    to.key = t.String("key");
    to.passphrase = t.String("passphrase");
    to.servername = t.String("servername");
    to.reject_unauthorized = t.Bool("rejectUnauthorized", true);
    to.min_version = static_cast<uint16_t>(t.Uint32("minVersion", to.min_version));
    to.max_version = static_cast<uint16_t>(t.Uint32("maxVersion", to.max_version));
    TlsContextCache& contexts = env.GetInstanceData<HirecacheAddon>()->tls_contexts;
    // Node's roots, for a system without a trust store: sent by the first TLS client of the
    // environment, kept by the cache for every later one.
    std::string roots = t.String("fallbackCa");
    if (!roots.empty()) contexts.set_fallback_ca(std::move(roots));
    ClientError error;
    options.tls = contexts.Get(to, &error);
    std::fill(to.key.begin(), to.key.end(), '\0');
    std::fill(to.passphrase.begin(), to.passphrase.end(), '\0');
    if (options.tls == nullptr) {
      Napi::Error e = Napi::Error::New(env, error.message);
      e.Set("code", Napi::String::New(env, error.code));
      throw e;
    }
  }
  Napi::Value breaker = info[0].As<Napi::Object>().Get("breaker");
  if (breaker.IsBoolean() && !breaker.As<Napi::Boolean>().Value()) {
    options.breaker.enabled = false;
  } else if (breaker.IsObject()) {
    OptionReader b(breaker.As<Napi::Object>());
    BreakerOptions& d = options.breaker;
    d.enabled = b.Bool("enabled", d.enabled);
    d.stall_ms = b.Uint32("stallMs", d.stall_ms);
    d.failure_threshold = b.Uint32("failureThreshold", d.failure_threshold);
    d.failure_rate_percent =
        std::min<uint32_t>(b.Uint32("failureRatePercent", d.failure_rate_percent), 100);
    d.window_ms = b.Uint32("windowMs", d.window_ms);
    d.minimum_requests = b.Uint32("minimumRequests", d.minimum_requests);
    d.open_ms = b.Uint32("openMs", d.open_ms);
    d.max_open_ms = b.Uint32("maxOpenMs", d.max_open_ms);
  }

  Napi::Uint32Array cell = Napi::Uint32Array::New(env, 2);
  breaker_cell_data_ = cell.Data();
  breaker_cell_ = Napi::Persistent(cell);
  info.This().As<Napi::Object>().Set("breakerCell", cell);

  error_factory_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_resource_ = Napi::Persistent(Napi::Object::New(env));
  napi_async_init(env, async_resource_.Value(), Napi::String::New(env, "hirecache:reply"),
                  &async_context_);

  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  Napi::Value cluster = info[0].As<Napi::Object>().Get("cluster");
  if (cluster.IsObject()) {
    // A Redis Cluster: { nodes: [{ host, port }…], maxRedirections, refreshInterval,
    // readFromReplicas }, checked in lib/client/config.js.
    OptionReader c(cluster.As<Napi::Object>());
    ClusterOptions co;
    Napi::Array seeds = cluster.As<Napi::Object>().Get("nodes").As<Napi::Array>();
    for (uint32_t i = 0; i < seeds.Length(); ++i) {
      OptionReader seed(seeds.Get(i).As<Napi::Object>());
      co.seeds.emplace_back(seed.String("host"), static_cast<uint16_t>(seed.Uint32("port", 0)));
    }
    co.max_redirections = c.Uint32("maxRedirections", co.max_redirections);
    co.refresh_interval_ms = c.Uint32("refreshInterval", co.refresh_interval_ms);
    co.read_from_replicas = c.Bool("readFromReplicas", co.read_from_replicas);
    co.node = std::move(options);
    auto router = std::make_unique<ClusterRouter>(loop, std::move(co), this);
    router_ = router.get();
    core_ = std::move(router);
  } else {
    core_ = std::make_unique<RedisClient>(loop, std::move(options), this);
  }
  addon_ = env.GetInstanceData<HirecacheAddon>();
  addon_->AddClient(this);
  addon_->CoreOpened();
}

ClientWrap::~ClientWrap() {
  addon_->ForgetClient(this);
  if (core_ != nullptr && !closed_) {
    new OrphanedClient(std::move(core_), addon_);  // Deletes itself when closed.
  }
  if (async_context_ != nullptr) napi_async_destroy(env_, async_context_);
}

void ClientWrap::Teardown() {
  tearing_down_ = true;
  if (core_ != nullptr && !closed_) core_->Disconnect();
}

// Appends one JS argument (string, Buffer or number) to the command being built.
void ClientWrap::AddArgument(napi_value v) {
  napi_env env = env_;
  size_t at = args_.size();
  napi_valuetype type;
  napi_typeof(env, v, &type);
  if (type == napi_string) {
    // A UTF-16 unit never takes more than 3 bytes of UTF-8: room for that, one copy. A
    // string of more units than maxValueBytes is too large whatever it holds.
    size_t units = 0;
    napi_get_value_string_utf16(env, v, nullptr, 0, &units);
    if (units > max_value_bytes_) ThrowValueTooLarge(units);
    size_t room = 3 * units + 1;
    size_t len = 0;
    napi_get_value_string_utf8(env, v, args_.Reserve(room), room, &len);
    if (len > max_value_bytes_) ThrowValueTooLarge(len);
    args_.Commit(len);
  } else if (type == napi_number) {
    double d = 0;
    napi_get_value_double(env, v, &d);
    char buf[32];
    std::to_chars_result r;
    if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9007199254740992.0) {
      r = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(d));
    } else {
      r = std::to_chars(buf, buf + sizeof(buf), d);
    }
    args_.Append(buf, static_cast<size_t>(r.ptr - buf));
  } else {
    // Bytes come as a Buffer or a Uint8Array; another view (a DataView, a Float64Array) is
    // most likely a mistake, and its bytes depend on the machine's endianness.
    napi_typedarray_type typed_type = napi_int8_array;
    void* data = nullptr;
    size_t len = 0;
    if (napi_get_typedarray_info(env, v, &typed_type, &len, &data, nullptr, nullptr) != napi_ok ||
        typed_type != napi_uint8_array) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
      throw Napi::TypeError::New(env,
                                 "command arguments must be strings, Buffers (or Uint8Arrays) or "
                                 "numbers");
    }
    if (len > max_value_bytes_) ThrowValueTooLarge(len);
    args_.Append(static_cast<const char*>(data), len);
  }
  arg_refs_.push_back({nullptr, at, args_.size() - at});
}

// Queues the command built from arg_refs_ and returns its promise.
Napi::Value ClientWrap::SubmitCommand(uint32_t flags, const std::string* endpoint) {
  if (args_.size() > kMaxCommandBytes) {
    napi_value error =
        MakeError("range", "ERR_VALUE_TOO_LARGE",
                  "a command of " + std::to_string(args_.size()) +
                      " bytes of arguments is more than Redis accepts in one command (1 GiB, its "
                      "client-query-buffer-limit)");
    throw Napi::Error(env_, error);
  }
  argv_.clear();
  for (const ArgRef& a : arg_refs_) {
    argv_.emplace_back(a.literal != nullptr ? a.literal : args_.data() + a.offset, a.length);
  }
  arg_refs_.clear();
  napi_deferred deferred = nullptr;
  napi_value promise = nullptr;
  if (napi_create_promise(env_, &deferred, &promise) != napi_ok) {
    return Napi::Value();  // JS cannot run any more (a worker is being terminated).
  }
  SubmitResult result = SubmitResult::kClosed;
  try {
    if (closed_) {
      // Nothing is queued: settled below as closed.
    } else if (endpoint != nullptr) {
      result = router_->SubmitTo(*endpoint, argv_.data(), argv_.size(), deferred, flags);
    } else if (unit_argcs_.empty()) {
      result = core_->Submit(argv_.data(), argv_.size(), deferred, flags);
    } else {
      CommandUnit unit{argv_.data(), unit_argcs_.data(), unit_argcs_.size(), unit_reply_count_};
      result = core_->SubmitUnit(unit, deferred, flags);
    }
  } catch (const std::bad_alloc&) {
    // Nothing was queued: the promise must still settle.
    OnFailure(deferred, flags,
              {ErrorKind::kQueueFull, "ERR_OUT_OF_MEMORY", "out of memory queuing the command"});
    return Napi::Value(env_, promise);
  }
  if (result == SubmitResult::kClosed) {
    OnFailure(deferred, flags, {ErrorKind::kClosed, "ERR_CLIENT_CLOSED", "the client was closed"});
  }
  return Napi::Value(env_, promise);
}

void ClientWrap::StartCommand(const Napi::CallbackInfo& info, size_t min_args, uint32_t* flags,
                              size_t flags_at) {
  if (info.Length() < min_args) throw Napi::TypeError::New(env_, "too few arguments");
  args_.Clear();
  arg_refs_.clear();
  unit_argcs_.clear();
  napi_get_value_uint32(env_, info[flags_at], flags);
}

// command(flags, name, ...args) => Promise
Napi::Value ClientWrap::Command(const Napi::CallbackInfo& info) {
  JsCallScope js(addon_);
  uint32_t flags = 0;
  StartCommand(info, 2, &flags);
  for (size_t i = 1; i < info.Length(); ++i) AddArgument(info[i]);
  return SubmitCommand(flags);
}

// commandOn(endpoint, flags, name, ...args) => Promise: one command to one node of a
// cluster ("host:port", as nodes() names it), as it is: SCAN on each primary.
Napi::Value ClientWrap::CommandOn(const Napi::CallbackInfo& info) {
  JsCallScope js(addon_);
  if (router_ == nullptr) throw Napi::TypeError::New(env_, "commandOn: not a cluster client");
  if (info.Length() < 3 || !info[0].IsString()) {
    throw Napi::TypeError::New(env_, "commandOn(endpoint, flags, name, ...args)");
  }
  std::string endpoint = info[0].As<Napi::String>().Utf8Value();
  uint32_t flags = 0;
  StartCommand(info, 3, &flags, 1);
  for (size_t i = 2; i < info.Length(); ++i) AddArgument(info[i]);
  return SubmitCommand(flags, &endpoint);
}

// setEndpoint(host, port): where a single-node client connects from now on (Sentinel's
// primary); an attempt waiting on a 'resolve' event goes ahead.
Napi::Value ClientWrap::SetEndpoint(const Napi::CallbackInfo& info) {
  JsCallScope js(addon_);
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env_, "setEndpoint(host, port)");
  }
  auto* client = router_ == nullptr ? static_cast<RedisClient*>(core_.get()) : nullptr;
  if (client != nullptr && !closed_) {
    client->SetEndpoint(info[0].As<Napi::String>().Utf8Value(),
                        static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value()));
  }
  return info.Env().Undefined();
}

// failResolve(code, message): the attempt waiting on a 'resolve' event fails with this error.
Napi::Value ClientWrap::FailResolve(const Napi::CallbackInfo& info) {
  JsCallScope js(addon_);
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    throw Napi::TypeError::New(env_, "failResolve(code, message)");
  }
  auto* client = router_ == nullptr ? static_cast<RedisClient*>(core_.get()) : nullptr;
  if (client != nullptr && !closed_) {
    client->FailResolve({ErrorKind::kConnection, info[0].As<Napi::String>().Utf8Value(),
                         info[1].As<Napi::String>().Utf8Value()});
  }
  return info.Env().Undefined();
}

// nodes() => [{ endpoint, role, slots, state, … }] for a cluster client; [] otherwise.
Napi::Value ClientWrap::Nodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  if (router_ == nullptr || closed_) return out;
  uint32_t i = 0;
  for (const ClusterNodeStats& n : router_->NodeStats()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("endpoint", n.endpoint);
    o.Set("role", n.primary ? "primary" : "replica");
    o.Set("slots", static_cast<double>(n.slots));
    SetStats(env, o, n.stats);
    out.Set(i++, o);
  }
  return out;
}

// unit(flags, replies, commands) => Promise: `commands` (an array of [name, ...args] arrays)
// queued as one unit that nothing else can come between, resolving with an array of their
// replies (error replies as Error elements). `replies` is how many replies the unit asks
// for: 0 means one per command (a SUBSCRIBE of n channels asks for n).
Napi::Value ClientWrap::Unit(const Napi::CallbackInfo& info) {
  JsCallScope js(addon_);
  uint32_t flags = 0;
  StartCommand(info, 3, &flags);
  uint32_t replies = info[1].As<Napi::Number>().Uint32Value();
  if (!info[2].IsArray()) throw Napi::TypeError::New(env_, "unit(): commands must be an array");
  napi_value commands = info[2];
  uint32_t count = 0;
  napi_get_array_length(env_, commands, &count);
  if (count == 0) throw Napi::TypeError::New(env_, "unit(): no commands");
  for (uint32_t i = 0; i < count; ++i) {
    napi_value command = nullptr;
    napi_get_element(env_, commands, i, &command);
    bool is_array = false;
    napi_is_array(env_, command, &is_array);
    uint32_t argc = 0;
    if (is_array) napi_get_array_length(env_, command, &argc);
    if (argc == 0)
      throw Napi::TypeError::New(env_, "unit(): each command must be a non-empty array");
    for (uint32_t j = 0; j < argc; ++j) {
      napi_value arg = nullptr;
      napi_get_element(env_, command, j, &arg);
      AddArgument(arg);
    }
    unit_argcs_.push_back(argc);
  }
  size_t args = 0;
  for (size_t n : unit_argcs_) args += n;
  if (unit_argcs_.size() != count || args != arg_refs_.size()) {
    // Reading the array ran JS that issued a command of its own, which reset the unit being
    // built: sending what is left would put the replies out of step.
    throw Napi::TypeError::New(env_, "unit(): the commands changed while they were read");
  }
  unit_reply_count_ = replies == 0 ? count : replies;
  return SubmitCommand(flags);
}

// get(flags, key) => Promise: GET without converting the verb from JS each time.
Napi::Value ClientWrap::Get(const Napi::CallbackInfo& info) {
  JsCallScope js(addon_);
  uint32_t flags = 0;
  StartCommand(info, 2, &flags);
  arg_refs_.push_back({"GET", 0, 3});
  AddArgument(info[1]);
  return SubmitCommand(flags);
}

// setex(flags, key, value, ttlSec) => Promise: SET key value EX ttlSec.
Napi::Value ClientWrap::SetEx(const Napi::CallbackInfo& info) {
  JsCallScope js(addon_);
  uint32_t flags = 0;
  StartCommand(info, 4, &flags);
  arg_refs_.push_back({"SET", 0, 3});
  AddArgument(info[1]);
  AddArgument(info[2]);
  arg_refs_.push_back({"EX", 0, 2});
  AddArgument(info[3]);
  return SubmitCommand(flags);
}

// reconnectIn(ms): the retry strategy's answer to a reconnecting event that left it the wait.
Napi::Value ClientWrap::ReconnectIn(const Napi::CallbackInfo& info) {
  JsCallScope js(addon_);
  if (!closed_ && info.Length() > 0) core_->ReconnectIn(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value ClientWrap::Quit(const Napi::CallbackInfo& info) {
  JsCallScope js(addon_);
  napi_deferred deferred = nullptr;
  napi_value promise = nullptr;
  if (napi_create_promise(env_, &deferred, &promise) != napi_ok) return Napi::Value();
  if (closed_) {
    napi_value undefined;
    napi_get_undefined(env_, &undefined);
    napi_resolve_deferred(env_, deferred, undefined);
  } else {
    if (!close_requested_) Ref();  // Stay reachable until the close completes.
    close_requested_ = true;
    quit_waiters_.push_back(deferred);
    core_->Quit();
  }
  return Napi::Value(env_, promise);
}

Napi::Value ClientWrap::Disconnect(const Napi::CallbackInfo& info) {
  JsCallScope js(addon_);
  if (!closed_) {
    if (!close_requested_) Ref();
    close_requested_ = true;
    core_->Disconnect();
  }
  return info.Env().Undefined();
}

Napi::Value ClientWrap::Status(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object s = Napi::Object::New(env);
  ClientStats st = closed_ || core_ == nullptr ? ClientStats{} : core_->Stats();
  if (closed_ || core_ == nullptr) st.state = ClientState::kClosed;
  SetStats(env, s, st);
  if (router_ != nullptr && !closed_) {
    s.Set("mapReads", static_cast<double>(router_->map_reads()));
    s.Set("redirections", static_cast<double>(router_->redirections()));
  }
  return s;
}

// Outcomes by verb, latency histograms by verb (buckets not cumulative here; the JS side
// shapes them for Prometheus), and the breaker's transitions.
Napi::Value ClientWrap::Metrics(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  const ClientMetrics& m = core_ != nullptr ? core_->Metrics() : final_metrics_;
  Napi::Object commands = Napi::Object::New(env);
  Napi::Object by_command = Napi::Object::New(env);
  for (size_t v = 0; v < kVerbCount; ++v) {
    Verb verb = static_cast<Verb>(v);
    Napi::Object row = Napi::Object::New(env);
    for (size_t o = 0; o < kOutcomeCount; ++o) {
      row.Set(OutcomeName(static_cast<Outcome>(o)),
              static_cast<double>(m.outcome(verb, static_cast<Outcome>(o))));
    }
    commands.Set(VerbName(verb), row);
    const LatencyHistogram& h = m.latency(verb);
    Napi::Array counts = Napi::Array::New(env, kLatencyBuckets);
    for (size_t b = 0; b < kLatencyBuckets; ++b) {
      counts.Set(static_cast<uint32_t>(b), static_cast<double>(h.counts[b]));
    }
    Napi::Object hist = Napi::Object::New(env);
    hist.Set("counts", counts);
    hist.Set("sumMs", static_cast<double>(h.sum_us) / 1000.0);
    hist.Set("count", static_cast<double>(h.count));
    by_command.Set(VerbName(verb), hist);
  }
  Napi::Array bounds = Napi::Array::New(env, kLatencyBoundsUs.size());
  for (size_t b = 0; b < kLatencyBoundsUs.size(); ++b) {
    bounds.Set(static_cast<uint32_t>(b), static_cast<double>(kLatencyBoundsUs[b]) / 1000.0);
  }
  Napi::Object latency = Napi::Object::New(env);
  latency.Set("bucketsMs", bounds);
  latency.Set("byCommand", by_command);
  out.Set("commands", commands);
  out.Set("latency", latency);
  return out;
}

// ---------------------------------------------------------------------------------------
// ReplyListener

void ClientWrap::BeginSettle() {
  if (settle_depth_++ > 0 || tearing_down_) return;
  napi_open_handle_scope(env_, &settle_scope_);
  if (addon_->js_depth == 0 && async_context_ != nullptr) {
    napi_value resource = nullptr;
    napi_get_reference_value(env_, static_cast<napi_ref>(async_resource_), &resource);
    if (resource == nullptr ||
        napi_open_callback_scope(env_, resource, async_context_, &callback_scope_) != napi_ok) {
      callback_scope_ = nullptr;
    }
  }
}

void ClientWrap::EndSettle() {
  if (settle_depth_ == 1 && !tearing_down_) {
    // Closing the callback scope runs the promise continuations, as after a JS socket's
    // 'data' event. They may call into this object again (depth is still 1 meanwhile).
    if (callback_scope_ != nullptr) {
      napi_callback_scope scope = callback_scope_;
      callback_scope_ = nullptr;
      napi_close_callback_scope(env_, scope);
    }
    if (settle_scope_ != nullptr) {
      napi_handle_scope scope = settle_scope_;
      settle_scope_ = nullptr;
      napi_close_handle_scope(env_, scope);
    }
  }
  --settle_depth_;
}

void ClientWrap::OnReply(void* token, uint32_t flags, const redisReply* reply) {
  if (tearing_down_) return;
  auto deferred = static_cast<napi_deferred>(token);
  napi_value value;
  if (reply->type == REDIS_REPLY_ERROR) {
    if (flags & kSoftFail) {
      if (flags & kReplyIsOk) {
        napi_get_boolean(env_, false, &value);
      } else {
        napi_get_null(env_, &value);
      }
      napi_resolve_deferred(env_, deferred, value);
      return;
    }
    std::string_view text(reply->str, reply->len);
    napi_reject_deferred(env_, deferred,
                         MakeError("reply", std::string(ErrorCodeOf(text)), std::string(text)));
    return;
  }
  if (flags & kReplyIsOk) {
    napi_get_boolean(env_, IsOkReply(reply), &value);
  } else {
    napi_value too_large = nullptr;
    value = ConvertReply(reply, flags, &too_large);
    if (too_large != nullptr) {
      if (flags & kSoftFail) {
        napi_get_null(env_, &value);
        napi_resolve_deferred(env_, deferred, value);
      } else {
        napi_reject_deferred(env_, deferred, too_large);
      }
      return;
    }
  }
  napi_resolve_deferred(env_, deferred, value);
}

void ClientWrap::OnFailure(void* token, uint32_t flags, const ClientError& error) {
  if (tearing_down_) return;
  auto deferred = static_cast<napi_deferred>(token);
  if (flags & kSoftFail) {
    napi_value value;
    if (flags & kReplyIsOk) {
      napi_get_boolean(env_, false, &value);
    } else {
      napi_get_null(env_, &value);
    }
    napi_resolve_deferred(env_, deferred, value);
    return;
  }
  napi_reject_deferred(env_, deferred, MakeClientError(error));
}

// The error carries what the unit's answered commands replied, as `replies` (an array in
// order, error replies as Error elements).
void ClientWrap::OnUnitFailure(void* token, uint32_t flags, const ClientError& error,
                               const redisReply* so_far) {
  if (tearing_down_) return;
  napi_value err = MakeClientError(error);
  napi_value too_large = nullptr;
  napi_value replies = ConvertReply(so_far, flags, &too_large);
  if (too_large == nullptr) napi_set_named_property(env_, err, "replies", replies);
  napi_reject_deferred(env_, static_cast<napi_deferred>(token), err);
}

void ClientWrap::OnBreakerState(BreakerState state, uint64_t openings) {
  if (breaker_cell_data_ == nullptr || tearing_down_) return;
  breaker_cell_data_[0] = static_cast<uint32_t>(state);
  breaker_cell_data_[1] = static_cast<uint32_t>(openings);
}

// Runs from a libuv callback, perhaps while the environment can no longer run JS (a worker
// being terminated): raw calls only, each failure simply ends the delivery.
void ClientWrap::OnEvent(const ClientEvent& event) {
  if (tearing_down_ || closed_) return;
  napi_value detail = nullptr;
  if (napi_create_object(env_, &detail) != napi_ok) return;
  auto set = [&](const char* name, napi_value v) {
    if (v != nullptr) napi_set_named_property(env_, detail, name, v);
  };
  auto number = [&](double d) {
    napi_value v = nullptr;
    napi_create_double(env_, d, &v);
    return v;
  };
  auto text = [&](const char* str) {
    napi_value v = nullptr;
    if (str == nullptr) {
      napi_get_null(env_, &v);
    } else {
      napi_create_string_utf8(env_, str, NAPI_AUTO_LENGTH, &v);
    }
    return v;
  };
  const char* type = "error";
  switch (event.type) {
    case ClientEventType::kConnect:
      type = "connect";
      break;
    case ClientEventType::kReady:
      type = "ready";
      break;
    case ClientEventType::kError:
      type = "error";
      set("error", MakeClientError(event.error));
      break;
    case ClientEventType::kClose:
      type = "close";
      break;
    case ClientEventType::kReconnecting:
      type = "reconnecting";
      set("delayMs", number(event.delay_ms));
      set("attempt", number(event.attempt));
      if (event.owner_decides) {
        napi_value yes = nullptr;
        napi_get_boolean(env_, true, &yes);
        set("ownerDecides", yes);
      }
      break;
    case ClientEventType::kResolve:
      type = "resolve";
      break;
    case ClientEventType::kBreaker:
      type = "breaker";
      set("state", text(BreakerStateName(event.breaker)));
      set("reason", text(BreakerReasonName(event.reason)));
      break;
  }
  CallOnEvent(type, detail);
}

// A message on a subscriber connection: this object's `onPush(parts)`, the message's parts
// as Buffers ("message", channel, payload or "pmessage", pattern, channel, payload…).
void ClientWrap::OnPush(const redisReply* message) {
  if (tearing_down_ || closed_) return;
  napi_value too_large = nullptr;
  napi_value parts = ConvertReply(message, kReplyBuffers, &too_large);
  if (too_large != nullptr) return;  // Past what a Buffer holds: nothing to deliver.
  CallProperty("onPush", 1, &parts);
}

// Calls this object's `onEvent(type, detail)`. Runs inside a settle bracket, from a libuv
// callback: nothing may throw here. A listener that throws is reported as Node reports an
// exception thrown by an event listener: as an uncaught exception.
void ClientWrap::CallOnEvent(const char* type, napi_value detail) {
  napi_value argv[2];
  napi_create_string_utf8(env_, type, NAPI_AUTO_LENGTH, &argv[0]);
  argv[1] = detail;
  CallProperty("onEvent", 2, argv);
}

// Calls the function in this object's property `name`, if there is one.
void ClientWrap::CallProperty(const char* name, size_t argc, napi_value* argv) {
  napi_value self = nullptr;
  if (napi_get_reference_value(env_, static_cast<napi_ref>(*this), &self) != napi_ok ||
      self == nullptr) {
    return;
  }
  napi_value fn = nullptr;
  napi_valuetype fn_type = napi_undefined;
  if (napi_get_named_property(env_, self, name, &fn) != napi_ok ||
      napi_typeof(env_, fn, &fn_type) != napi_ok || fn_type != napi_function) {
    return;
  }
  napi_value result = nullptr;
  if (napi_call_function(env_, self, fn, argc, argv, &result) == napi_pending_exception) {
    // A listener threw. (When the environment cannot run JS any more, nothing is pending.)
    napi_value exception = nullptr;
    napi_valuetype exception_type = napi_undefined;
    if (napi_get_and_clear_last_exception(env_, &exception) == napi_ok && exception != nullptr &&
        napi_typeof(env_, exception, &exception_type) == napi_ok &&
        exception_type != napi_undefined) {
      napi_fatal_exception(env_, exception);
    }
  }
}

void ClientWrap::OnBusyChanged(bool busy) {
  if (tearing_down_) return;
  // While a caller awaits a reply, the JS object must not be collected. Raw calls: this runs
  // from libuv callbacks, where nothing may throw.
  uint32_t count = 0;
  if (busy) {
    napi_reference_ref(env_, static_cast<napi_ref>(*this), &count);
  } else {
    napi_reference_unref(env_, static_cast<napi_ref>(*this), &count);
  }
}

void ClientWrap::OnClosed() {
  closed_ = true;
  HirecacheAddon* addon = addon_;
  if (!tearing_down_) {
    BeginSettle();
    napi_value undefined;
    napi_get_undefined(env_, &undefined);
    std::vector<napi_deferred> waiters;
    waiters.swap(quit_waiters_);
    for (napi_deferred d : waiters) napi_resolve_deferred(env_, d, undefined);
    napi_value detail;
    napi_create_object(env_, &detail);
    CallOnEvent("end", detail);
    uint32_t count = 0;
    if (close_requested_) napi_reference_unref(env_, static_cast<napi_ref>(*this), &count);
    EndSettle();
  }
  // What was counted outlives the core; a closed client's breaker reads closed, as its
  // status() says.
  final_metrics_ = core_->Metrics();
  if (breaker_cell_data_ != nullptr && !tearing_down_) {
    breaker_cell_data_[0] = static_cast<uint32_t>(BreakerState::kClosed);
  }
  core_.reset();  // Safe: the core promises nothing runs after OnClosed.
  if (async_context_ != nullptr) {
    napi_async_destroy(env_, async_context_);
    async_context_ = nullptr;
  }
  addon->ForgetClient(this);
  addon->CoreClosed();
}

// ---------------------------------------------------------------------------------------
// Values

// Converts a reply to a JS value. A value JS cannot hold (a string past V8's length limit,
// a Buffer past its size limit) leaves `*too_large` set and an Error in its place, which
// OnReply turns into the command's answer; no unset napi_value ever leaves here.
napi_value ClientWrap::ConvertReply(const redisReply* reply, uint32_t flags,
                                    napi_value* too_large) {
  napi_value v = nullptr;
  napi_status status = napi_ok;
  switch (reply->type) {
    case REDIS_REPLY_STRING:
      if (flags & kReplyLatin1) {
        status = napi_create_string_latin1(env_, reply->str, reply->len, &v);
      } else if (flags & kReplyBuffers) {
        void* data;
        status = napi_create_buffer_copy(env_, reply->len, reply->str, &data, &v);
      } else {
        status = napi_create_string_utf8(env_, reply->str, reply->len, &v);
      }
      break;
    case REDIS_REPLY_STATUS:
      status = napi_create_string_utf8(env_, reply->str, reply->len, &v);
      break;
    case REDIS_REPLY_INTEGER:
      status = napi_create_int64(env_, reply->integer, &v);
      break;
    case REDIS_REPLY_NIL:
      status = napi_get_null(env_, &v);
      break;
    case REDIS_REPLY_ARRAY:
      status = napi_create_array_with_length(env_, reply->elements, &v);
      for (size_t i = 0; status == napi_ok && i < reply->elements; ++i) {
        napi_set_element(env_, v, static_cast<uint32_t>(i),
                         ConvertReply(reply->element[i], flags, too_large));
      }
      break;
    case REDIS_REPLY_ERROR: {
      // An error inside an array (EXEC, scripts) becomes an Error value, not a rejection.
      std::string_view text(reply->str, reply->len);
      return MakeError("reply", std::string(ErrorCodeOf(text)), std::string(text));
    }
    default:
      status = napi_get_undefined(env_, &v);
      break;
  }
  if (status == napi_ok && v != nullptr) return v;
  bool pending = false;
  napi_is_exception_pending(env_, &pending);
  if (pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env_, &ignored);
  }
  napi_value error = MakeError(
      "range", "ERR_REPLY_TOO_LARGE",
      "a reply of " + std::to_string(reply->len) + " bytes is more than JavaScript can hold as a " +
          ((flags & kReplyBuffers) ? "Buffer" : "string; read it with callBuffer()"));
  if (*too_large == nullptr) *too_large = error;
  return error;
}

// Builds the error through lib/errors.js. Runs from libuv callbacks, so it never throws: when
// JS cannot run (the environment is stopping) it falls back to a plain Error with a code.
napi_value ClientWrap::MakeError(const char* kind, const std::string& code,
                                 const std::string& message) {
  napi_value args[3];
  napi_create_string_utf8(env_, kind, NAPI_AUTO_LENGTH, &args[0]);
  napi_create_string_utf8(env_, code.data(), code.size(), &args[1]);
  napi_create_string_utf8(env_, message.data(), message.size(), &args[2]);
  napi_value undefined;
  napi_get_undefined(env_, &undefined);
  napi_value error = nullptr;
  napi_value factory = nullptr;
  napi_get_reference_value(env_, static_cast<napi_ref>(error_factory_), &factory);
  if (factory != nullptr &&
      napi_call_function(env_, undefined, factory, 3, args, &error) == napi_ok) {
    return error;
  }
  bool pending = false;
  napi_is_exception_pending(env_, &pending);
  if (pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env_, &ignored);
  }
  if (napi_create_error(env_, args[1], args[2], &error) != napi_ok)
    napi_get_undefined(env_, &error);
  return error;
}

// A RangeError built by lib/errors.js (so it belongs to the caller's realm), thrown.
void ClientWrap::ThrowValueTooLarge(size_t size) {
  napi_value error =
      MakeError("range", "ERR_VALUE_TOO_LARGE",
                "a command argument is " + std::to_string(size) +
                    " bytes, more than maxValueBytes (" + std::to_string(max_value_bytes_) + ")");
  throw Napi::Error(env_, error);
}

napi_value ClientWrap::MakeClientError(const ClientError& error) {
  return MakeError(KindName(error.kind), error.code, error.message);
}

}  // namespace hirecache::binding
