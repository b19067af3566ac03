#include "store/memory_store_wrap.h"

#include <algorithm>
#include <new>
#include <string_view>

#include "store/store_state.h"
#include "store/store_values.h"
#include "util/raw_method.h"

namespace hirecache::binding {

namespace {

// Entries examined by one sweep() or deletePrefixStep() when the caller names no budget:
// well under a millisecond when few have expired, about one when all of them have. The
// JS layer reads them (SWEEP_BUDGET, PREFIX_STEP_BUDGET) rather than repeating them.
constexpr uint64_t kSweepBudget = 1024;
constexpr uint64_t kPrefixStepBudget = 4096;
// sweepPerWrite is clamped here: more would make every write slow.
constexpr uint64_t kMaxSweepPerWrite = 1024;

// The operations, shared by the class's methods and by the detached fast functions.

napi_value DoGet(napi_env env, StoreState& s, napi_value* argv) {
  const std::string_view key = BytesArg(env, argv[0], s.key_scratch, "key");
  std::string_view value;
  bool ascii;
  if (!s.store.Get(key, s.Now(), &value, &ascii)) return Null(env);
  return DecodeString(env, value, ascii);
}

// The stored bytes as a Latin-1 string (one character per byte, which JS turns into a
// Buffer from its own pool far faster than a native Buffer is made), or as a Buffer when
// they are too long for a JS string; null on a miss.
napi_value DoGetBinary(napi_env env, StoreState& s, napi_value* argv) {
  const std::string_view key = BytesArg(env, argv[0], s.key_scratch, "key");
  std::string_view value;
  if (!s.store.Get(key, s.Now(), &value)) return Null(env);
  napi_value out;
  if (value.size() <= kMaxJsStringLength) {
    Check(env, napi_create_string_latin1(env, value.data(), value.size(), &out));
  } else {
    Check(env, napi_create_buffer_copy(env, value.size(), value.data(), nullptr, &out));
  }
  return out;
}

napi_value DoGetBuffer(napi_env env, StoreState& s, napi_value* argv) {
  const std::string_view key = BytesArg(env, argv[0], s.key_scratch, "key");
  std::string_view value;
  if (!s.store.Get(key, s.Now(), &value)) return Null(env);
  napi_value out;
  Check(env, napi_create_buffer_copy(env, value.size(), value.data(), nullptr, &out));
  return out;
}

// set(key, value, ttlMs = 0) -> false when the entry cannot be stored (larger than
// maxBytes alone, or out of memory), in which case the key holds no value after.
napi_value DoSet(napi_env env, StoreState& s, napi_value* argv) {
  const std::string_view key = BytesArg(env, argv[0], s.key_scratch, "key");
  const std::string_view value = BytesArg(env, argv[1], s.value_scratch, "value");
  const uint64_t ttl_ms = CountArg(env, argv[2], 0, "ttlMs");
  bool stored;
  try {
    stored =
        s.store.Set(key, value, s.StoredTtl(ttl_ms), s.Now()) == MemoryStore::SetResult::kStored;
  } catch (const std::bad_alloc&) {
    stored = false;
  }
  s.value_scratch.Trim();
  s.key_scratch.Trim();
  return Boolean(env, stored);
}

napi_value DoDel(napi_env env, StoreState& s, napi_value* argv) {
  const std::string_view key = BytesArg(env, argv[0], s.key_scratch, "key");
  return Boolean(env, s.store.Delete(key, s.Now()));
}

MemoryStore::Options OptionsFrom(const Napi::CallbackInfo& info) {
  MemoryStore::Options options;
  if (!info[0].IsObject()) return options;
  const OptionReader read(info[0].As<Napi::Object>());
  // The store clamps max_entries itself; a count past 2^32 must not wrap on the way.
  options.max_entries = static_cast<uint32_t>(std::min<uint64_t>(
      read.Uint64("maxEntries", options.max_entries), MemoryStore::kMaxEntriesLimit));
  options.max_bytes = read.Uint64("maxBytes", options.max_bytes);
  options.sweep_per_write = static_cast<uint32_t>(
      std::min(read.Uint64("sweepPerWrite", options.sweep_per_write), kMaxSweepPerWrite));
  return options;
}

Napi::Number Count(Napi::Env env, uint64_t n) {
  return Napi::Number::New(env, static_cast<double>(n));
}

// The defaults the JS layer applies, from the core's own constants.
Napi::Object Defaults(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("maxEntries", Count(env, MemoryStore::kDefaultMaxEntries));
  out.Set("maxBytes", Count(env, MemoryStore::kDefaultMaxBytes));
  out.Freeze();
  return out;
}

}  // namespace

Napi::Function DefineMemoryStore(Napi::Env env) { return MemoryStoreWrap::Define(env); }

Napi::Function MemoryStoreWrap::Define(Napi::Env env) {
  return DefineClass(env, "MemoryStore",
                     {
                         InstanceMethod<&MemoryStoreWrap::Get>("get"),
                         InstanceMethod<&MemoryStoreWrap::GetBuffer>("getBuffer"),
                         InstanceMethod<&MemoryStoreWrap::Set>("set"),
                         InstanceMethod<&MemoryStoreWrap::Del>("del"),
                         InstanceMethod<&MemoryStoreWrap::MGet>("mget"),
                         InstanceMethod<&MemoryStoreWrap::DeletePrefix>("deletePrefix"),
                         InstanceMethod<&MemoryStoreWrap::DeletePrefixStep>("deletePrefixStep"),
                         InstanceMethod<&MemoryStoreWrap::Sweep>("sweep"),
                         InstanceMethod<&MemoryStoreWrap::Clear>("clear"),
                         InstanceMethod<&MemoryStoreWrap::Stats>("stats"),
                         InstanceMethod<&MemoryStoreWrap::FastMethods>("fastMethods"),
                         StaticValue("DEFAULTS", Defaults(env)),
                         StaticValue("MAX_ENTRIES", Count(env, MemoryStore::kMaxEntriesLimit)),
                         StaticValue("MIN_BYTES", Count(env, MemoryStore::kMinBytes)),
                         StaticValue("PAGE_BYTES", Count(env, SlabArena::kPageBytes)),
                         StaticValue("SWEEP_BUDGET", Count(env, kSweepBudget)),
                         StaticValue("PREFIX_STEP_BUDGET", Count(env, kPrefixStepBudget)),
                     });
}

MemoryStoreWrap::MemoryStoreWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<MemoryStoreWrap>(info),
      state_(std::make_shared<StoreState>(OptionsFrom(info))) {}

// get(key) -> string | null. The value's bytes are decoded as UTF-8.
Napi::Value MemoryStoreWrap::Get(const Napi::CallbackInfo& info) {
  napi_value argv[] = {info[0]};
  return Napi::Value(info.Env(), DoGet(info.Env(), *state_, argv));
}

// getBuffer(key) -> Buffer | null, a copy of the stored bytes.
Napi::Value MemoryStoreWrap::GetBuffer(const Napi::CallbackInfo& info) {
  napi_value argv[] = {info[0]};
  return Napi::Value(info.Env(), DoGetBuffer(info.Env(), *state_, argv));
}

// set(key, value, ttlMs = 0) -> boolean.
Napi::Value MemoryStoreWrap::Set(const Napi::CallbackInfo& info) {
  napi_value argv[] = {info[0], info[1], info[2]};
  return Napi::Value(info.Env(), DoSet(info.Env(), *state_, argv));
}

// del(key) -> boolean: whether a live entry was removed.
Napi::Value MemoryStoreWrap::Del(const Napi::CallbackInfo& info) {
  napi_value argv[] = {info[0]};
  return Napi::Value(info.Env(), DoDel(info.Env(), *state_, argv));
}

// mget(keys) -> (string | null)[], one lookup per key, in order.
Napi::Value MemoryStoreWrap::MGet(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  bool is_array = false;
  Check(env, napi_is_array(env, info[0], &is_array));
  if (!is_array) throw Napi::TypeError::New(env, "MemoryStore: keys must be an array");
  uint32_t length = 0;
  Check(env, napi_get_array_length(env, info[0], &length));
  napi_value result;
  Check(env, napi_create_array_with_length(env, length, &result));
  StoreState& s = *state_;
  const uint64_t now = s.Now();
  for (uint32_t i = 0; i < length; ++i) {
    napi_value element;
    Check(env, napi_get_element(env, info[0], i, &element));
    const std::string_view key = BytesArg(env, element, s.key_scratch, "each key");
    std::string_view value;
    bool ascii;
    napi_value out =
        s.store.Get(key, now, &value, &ascii) ? DecodeString(env, value, ascii) : Null(env);
    Check(env, napi_set_element(env, result, i, out));
  }
  s.key_scratch.Trim();
  return Napi::Value(env, result);
}

// deletePrefix(prefix) -> number of live entries removed. The prefix is literal bytes.
Napi::Value MemoryStoreWrap::DeletePrefix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StoreState& s = *state_;
  const std::string_view prefix = BytesArg(env, info[0], s.key_scratch, "prefix");
  const size_t removed = s.store.DeletePrefix(prefix, s.Now());
  s.key_scratch.Trim();
  return Napi::Number::New(env, static_cast<double>(removed));
}

// deletePrefixStep(prefix, cursor, budget) -> [removed, nextCursor]: one step of a
// deletion by prefix over at most `budget` slots; nextCursor 0 means the pass is done.
Napi::Value MemoryStoreWrap::DeletePrefixStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StoreState& s = *state_;
  const std::string_view prefix = BytesArg(env, info[0], s.key_scratch, "prefix");
  size_t cursor = static_cast<size_t>(CountArg(env, info[1], 0, "cursor"));
  const uint64_t budget = CountArg(env, info[2], kPrefixStepBudget, "budget");
  const size_t removed = s.store.DeletePrefixStep(prefix, s.Now(), &cursor, budget);
  s.key_scratch.Trim();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::Number::New(env, static_cast<double>(removed)));
  out.Set(uint32_t{1}, Napi::Number::New(env, static_cast<double>(cursor)));
  return out;
}

// sweep(budget) -> number of expired entries removed among at most `budget` slots.
Napi::Value MemoryStoreWrap::Sweep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t budget = CountArg(env, info[0], kSweepBudget, "budget");
  return Napi::Number::New(env, static_cast<double>(state_->store.Sweep(state_->Now(), budget)));
}

Napi::Value MemoryStoreWrap::Clear(const Napi::CallbackInfo& info) {
  state_->store.Clear();
  return info.Env().Undefined();
}

// stats() -> { entries, bytes, maxEntries, maxBytes, hits, misses, evictions, expired,
// compactions }; `bytes` is what maxBytes bounds (store/memory_store.h).
Napi::Value MemoryStoreWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const MemoryStore::Stats s = state_->store.GetStats();
  Napi::Object out = Napi::Object::New(env);
  const auto put = [&](const char* name, uint64_t v) {
    out.Set(name, Napi::Number::New(env, static_cast<double>(v)));
  };
  put("entries", s.entries);
  put("bytes", s.bytes);
  put("maxEntries", s.max_entries);
  put("maxBytes", s.max_bytes);
  put("hits", s.hits);
  put("misses", s.misses);
  put("evictions", s.evictions);
  put("expired", s.expired);
  put("compactions", s.compactions);
  return out;
}

// fastMethods() -> { get, getBinary, set, del }: functions bound to this store through
// their data pointer. Each holds a reference to the store's state, released by its
// finalizer, so a function kept after the JS object is gone still works safely.
Napi::Value MemoryStoreWrap::FastMethods(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  const auto add = [&](const char* name, napi_callback cb) {
    napi_value fn;
    Check(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, state_.get(), &fn));
    auto* keep = new std::shared_ptr<StoreState>(state_);
    const napi_status status = napi_add_finalizer(
        env, fn, keep,
        [](napi_env, void* data, void*) { delete static_cast<std::shared_ptr<StoreState>*>(data); },
        nullptr, nullptr);
    if (status != napi_ok) {
      delete keep;
      Check(env, status);
    }
    out.Set(name, Napi::Value(env, fn));
  };
  add("get", RawMethod<StoreState, 1, DoGet>);
  add("getBinary", RawMethod<StoreState, 1, DoGetBinary>);
  add("set", RawMethod<StoreState, 3, DoSet>);
  add("del", RawMethod<StoreState, 1, DoDel>);
  return out;
}

}  // namespace hirecache::binding
