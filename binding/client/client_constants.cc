// The constants JS shares with the client's native side: command flags, state names and
// option defaults, so lib/ never writes them a second time.
#include "client/client_wrap.h"
#include "client/redis_client.h"

namespace hirecache::binding {

Napi::Object ClientConstants(Napi::Env env) {
  Napi::Object flags = Napi::Object::New(env);
  flags.Set("REPLY_BUFFERS", static_cast<double>(kReplyBuffers));
  flags.Set("SOFT_FAIL", static_cast<double>(kSoftFail));
  flags.Set("REPLY_IS_OK", static_cast<double>(kReplyIsOk));
  flags.Set("REPLY_LATIN1", static_cast<double>(kReplyLatin1));
  flags.Set("BREAKER_EARLY", static_cast<double>(kBreakerEarly));
  flags.Set("UNSENT_EARLY", static_cast<double>(kUnsentEarly));
  flags.Set("BLOCKING", static_cast<double>(kBlocking));
  Napi::Array states = Napi::Array::New(env, kClientStateCount);
  for (size_t i = 0; i < kClientStateCount; ++i) {
    states.Set(static_cast<uint32_t>(i), ClientStateName(static_cast<ClientState>(i)));
  }
  Napi::Array breaker_states = Napi::Array::New(env, kBreakerStateCount);
  for (uint32_t i = 0; i < kBreakerStateCount; ++i) {
    breaker_states.Set(i, BreakerStateName(static_cast<BreakerState>(i)));
  }
  breaker_states.Freeze();
  const ClientOptions d;
  Napi::Object defaults = Napi::Object::New(env);
  defaults.Set("host", d.host);
  defaults.Set("port", static_cast<double>(d.port));
  defaults.Set("connectTimeout", static_cast<double>(d.connect_timeout_ms));
  defaults.Set("commandTimeout", static_cast<double>(d.command_timeout_ms));
  defaults.Set("keepAlive", static_cast<double>(d.keepalive_delay_s) * 1000);
  defaults.Set("noDelay", d.no_delay);
  defaults.Set("maxQueue", static_cast<double>(d.max_queue));
  defaults.Set("maxInFlight", static_cast<double>(d.max_in_flight));
  defaults.Set("maxQueueBytes", static_cast<double>(d.max_queue_bytes));
  defaults.Set("reconnectBaseDelay", static_cast<double>(d.reconnect_base_delay_ms));
  defaults.Set("reconnectMaxDelay", static_cast<double>(d.reconnect_max_delay_ms));
  defaults.Set("maxValueBytes", static_cast<double>(kDefaultMaxValueBytes));
  defaults.Set("maxBulkBytes", static_cast<double>(d.limits.max_bulk_bytes));
  defaults.Set("maxAggregateElements", static_cast<double>(d.limits.max_aggregate_elements));
  defaults.Set("maxLineBytes", static_cast<double>(d.limits.max_line_bytes));
  defaults.Set("maxDepth", static_cast<double>(d.limits.max_depth));
  defaults.Set("metrics", d.metrics);
  Napi::Object breaker = Napi::Object::New(env);
  breaker.Set("stallMs", static_cast<double>(d.breaker.stall_ms));
  breaker.Set("failureThreshold", static_cast<double>(d.breaker.failure_threshold));
  breaker.Set("failureRatePercent", static_cast<double>(d.breaker.failure_rate_percent));
  breaker.Set("windowMs", static_cast<double>(d.breaker.window_ms));
  breaker.Set("minimumRequests", static_cast<double>(d.breaker.minimum_requests));
  breaker.Set("openMs", static_cast<double>(d.breaker.open_ms));
  breaker.Set("maxOpenMs", static_cast<double>(d.breaker.max_open_ms));
  breaker.Freeze();
  defaults.Set("breaker", breaker);
  Napi::Object out = Napi::Object::New(env);
  out.Set("commandFlags", flags);
  out.Set("states", states);
  out.Set("breakerStates", breaker_states);
  out.Set("defaults", defaults);
  out.Freeze();
  flags.Freeze();
  defaults.Freeze();
  states.Freeze();
  return out;
}

}  // namespace hirecache::binding
