#include "store/memory_store_wrap.h"

#include <time.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "store/memory_store.h"

namespace hirecache::binding {

namespace {

// Reusable buffers that JS strings are copied (as UTF-16) and encoded (as UTF-8) into, so
// a call allocates nothing when its key and value fit.
class Scratch {
 public:
  Scratch() : bytes_(kInitialSize * 3), wide_(kInitialSize) {}
  char* data() { return bytes_.data(); }
  void Reserve(size_t n) {
    if (n > bytes_.size()) bytes_.resize(n);
  }
  char16_t* wide() { return wide_.data(); }
  size_t wide_size() const { return wide_.size(); }
  void ReserveWide(size_t n) {
    if (n > wide_.size()) wide_.resize(n);
  }
  // Gives back what one large value made them grow to.
  void Trim() {
    if (wide_.size() > kKeepSize) std::vector<char16_t>(kInitialSize).swap(wide_);
    if (bytes_.size() > kKeepSize * 3) std::vector<char>(kInitialSize * 3).swap(bytes_);
  }

 private:
  static constexpr size_t kInitialSize = 1024;
  static constexpr size_t kKeepSize = 64 * 1024;
  std::vector<char> bytes_;
  std::vector<char16_t> wide_;
};

// The longest string V8 can make (buffer.constants.MAX_STRING_LENGTH on 64-bit).
constexpr size_t kMaxJsStringLength = (size_t{1} << 29) - 24;

}  // namespace

class StoreState {
 public:
  explicit StoreState(const MemoryStore::Options& options) : store(options) {
#ifdef CLOCK_MONOTONIC_COARSE
    // The coarse clock costs a quarter of the precise one; its resolution (one kernel
    // tick, typically 1-4 ms) is ample for cache TTLs. Used only when it is that fine.
    timespec res;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0 &&
        res.tv_nsec <= 10 * 1000 * 1000) {
      coarse_ = true;
      slack_ms_ = static_cast<uint64_t>(res.tv_nsec + 999999) / 1000000;
    }
#endif
  }

  // Monotonic milliseconds.
  uint64_t Now() const {
#ifdef CLOCK_MONOTONIC_COARSE
    if (coarse_) {
      timespec ts;
      clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
      return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
    }
#endif
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }

  // The TTL to store for `ttl_ms`. The coarse clock may lag real time by up to its
  // resolution when the entry is written, so that much is added: an entry never expires
  // before its TTL has passed, and at most two clock ticks after.
  uint64_t StoredTtl(uint64_t ttl_ms) const { return ttl_ms == 0 ? 0 : ttl_ms + slack_ms_; }

  MemoryStore store;
  Scratch key_scratch;
  Scratch value_scratch;

 private:
  bool coarse_ = false;
  uint64_t slack_ms_ = 0;
};

namespace {

// Formats a number the way JS prints it, for error messages.
std::string JsNumber(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", d);
  return text;
}

void Check(napi_env env, napi_status status) {
  if (status != napi_ok) throw Napi::Error::New(env);
}

// If the 16 UTF-16 units at `in` are all ASCII, writes them to `out` as 16 bytes and
// returns true; else writes nothing and returns false.
inline bool NarrowAscii16(const char16_t* in, char* out) {
#if defined(__SSE2__)
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 8));
  const __m128i high_bits = _mm_and_si128(_mm_or_si128(lo, hi), _mm_set1_epi16(-128));  // 0xFF80
  if (_mm_movemask_epi8(_mm_cmpeq_epi16(high_bits, _mm_setzero_si128())) != 0xFFFF) return false;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(lo, hi));
  return true;
#else
  char16_t any = 0;
  for (size_t k = 0; k < 16; ++k) any |= in[k];
  if (any >= 0x80) return false;
  for (size_t k = 0; k < 16; ++k) out[k] = static_cast<char>(in[k]);
  return true;
#endif
}

// Encodes UTF-16 as UTF-8 the way V8 and Buffer.from(string) do: a lone surrogate becomes
// U+FFFD. `out` has room for 3 bytes per unit. Returns the number of bytes written.
size_t EncodeUtf8(const char16_t* in, size_t n, char* out) {
  char* o = out;
  size_t i = 0;
  while (i < n) {
    // ASCII runs, the common case, go sixteen units at a time.
    while (i + 16 <= n && NarrowAscii16(in + i, o)) {
      o += 16;
      i += 16;
    }
    // Then up to sixteen units one by one (the tail, or a run with non-ASCII in it).
    for (const size_t stop = std::min(n, i + 16); i < stop;) {
      uint32_t c = in[i++];
      if (c < 0x80) {
        *o++ = static_cast<char>(c);
      } else if (c < 0x800) {
        *o++ = static_cast<char>(0xC0 | (c >> 6));
        *o++ = static_cast<char>(0x80 | (c & 0x3F));
      } else if (c >= 0xD800 && c <= 0xDBFF && i < n && in[i] >= 0xDC00 && in[i] <= 0xDFFF) {
        c = 0x10000 + ((c - 0xD800) << 10) + (in[i++] - 0xDC00);
        *o++ = static_cast<char>(0xF0 | (c >> 18));
        *o++ = static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        *o++ = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        *o++ = static_cast<char>(0x80 | (c & 0x3F));
      } else {
        if (c >= 0xD800 && c <= 0xDFFF) c = 0xFFFD;  // A lone surrogate.
        *o++ = static_cast<char>(0xE0 | (c >> 12));
        *o++ = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        *o++ = static_cast<char>(0x80 | (c & 0x3F));
      }
    }
  }
  return static_cast<size_t>(o - out);
}

// Reads a key or value argument as bytes: a string is encoded as UTF-8 into `scratch`, a
// Buffer (or any Uint8Array) is viewed in place. Either view is valid until the call
// returns. Throws a TypeError naming `what` for anything else.
//
// A string is copied out as UTF-16 and encoded here: V8 copies strings of any
// representation quickly, while its own UTF-8 writer is slow per character.
std::string_view BytesArg(napi_env env, napi_value value, Scratch& scratch, const char* what) {
  size_t units = 0;
  char16_t* wide = scratch.wide();
  napi_status status = napi_get_value_string_utf16(env, value, wide, scratch.wide_size(), &units);
  if (status == napi_ok) {
    if (units + 1 >= scratch.wide_size()) {
      // Possibly truncated: ask for the length and copy again.
      Check(env, napi_get_value_string_utf16(env, value, nullptr, 0, &units));
      scratch.ReserveWide(units + 1);
      wide = scratch.wide();
      Check(env, napi_get_value_string_utf16(env, value, wide, scratch.wide_size(), &units));
    }
    scratch.Reserve(units * 3);
    return std::string_view(scratch.data(), EncodeUtf8(wide, units, scratch.data()));
  }
  if (status == napi_string_expected) {
    bool is_buffer = false;
    Check(env, napi_is_buffer(env, value, &is_buffer));
    if (is_buffer) {
      void* data = nullptr;
      size_t length = 0;
      Check(env, napi_get_buffer_info(env, value, &data, &length));
      return std::string_view(length == 0 ? "" : static_cast<const char*>(data), length);
    }
  }
  throw Napi::TypeError::New(env,
                             std::string("MemoryStore: ") + what + " must be a string or a Buffer");
}

// Reads a non-negative count (milliseconds, slots); `undefined` means `fallback`. A
// fraction is rounded up, so a positive TTL never becomes 0 (which means "never expires").
uint64_t CountArg(napi_env env, napi_value value, uint64_t fallback, const char* what) {
  double ms = 0;
  if (napi_get_value_double(env, value, &ms) != napi_ok) {
    napi_valuetype type;
    Check(env, napi_typeof(env, value, &type));
    if (type == napi_undefined) return fallback;
    throw Napi::TypeError::New(env, std::string("MemoryStore: ") + what + " must be a number");
  }
  if (!(ms >= 0)) {
    throw Napi::RangeError::New(env, std::string("MemoryStore: ") + what +
                                         " must be a non-negative number, got " + JsNumber(ms));
  }
  // Saturates far beyond any real TTL (2^62 ms) instead of overflowing the conversion.
  if (ms >= 4611686018427387904.0) return uint64_t{1} << 62;
  return static_cast<uint64_t>(std::ceil(ms));
}

napi_value Null(napi_env env) {
  napi_value out;
  Check(env, napi_get_null(env, &out));
  return out;
}

napi_value Boolean(napi_env env, bool b) {
  napi_value out;
  Check(env, napi_get_boolean(env, b, &out));
  return out;
}

// Decodes stored bytes as UTF-8 into a JS string. ASCII, the common case (the store
// records it per value), is copied as Latin-1, which V8 takes without decoding.
napi_value DecodeString(napi_env env, std::string_view bytes, bool ascii) {
  napi_value out;
  if (ascii) {
    Check(env, napi_create_string_latin1(env, bytes.data(), bytes.size(), &out));
  } else {
    Check(env, napi_create_string_utf8(env, bytes.data(), bytes.size(), &out));
  }
  return out;
}

// The operations, shared by the class's methods and by the detached fast functions.

napi_value DoGet(napi_env env, StoreState& s, napi_value key_arg) {
  const std::string_view key = BytesArg(env, key_arg, s.key_scratch, "key");
  std::string_view value;
  bool ascii;
  if (!s.store.Get(key, s.Now(), &value, &ascii)) return Null(env);
  return DecodeString(env, value, ascii);
}

// The stored bytes as a Latin-1 string (one character per byte, which JS turns into a
// Buffer from its own pool far faster than a native Buffer is made), or as a Buffer when
// they are too long for a JS string; null on a miss.
napi_value DoGetBinary(napi_env env, StoreState& s, napi_value key_arg) {
  const std::string_view key = BytesArg(env, key_arg, s.key_scratch, "key");
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

napi_value DoGetBuffer(napi_env env, StoreState& s, napi_value key_arg) {
  const std::string_view key = BytesArg(env, key_arg, s.key_scratch, "key");
  std::string_view value;
  if (!s.store.Get(key, s.Now(), &value)) return Null(env);
  napi_value out;
  Check(env, napi_create_buffer_copy(env, value.size(), value.data(), nullptr, &out));
  return out;
}

// set(key, value, ttlMs = 0) -> false when the entry cannot be stored (larger than
// maxBytes alone, or out of memory), in which case the key holds no value after.
napi_value DoSet(napi_env env, StoreState& s, napi_value key_arg, napi_value value_arg,
                 napi_value ttl_arg) {
  const std::string_view key = BytesArg(env, key_arg, s.key_scratch, "key");
  const std::string_view value = BytesArg(env, value_arg, s.value_scratch, "value");
  const uint64_t ttl_ms = CountArg(env, ttl_arg, 0, "ttlMs");
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

napi_value DoDel(napi_env env, StoreState& s, napi_value key_arg) {
  const std::string_view key = BytesArg(env, key_arg, s.key_scratch, "key");
  return Boolean(env, s.store.Delete(key, s.Now()));
}

// A detached function's callback: the store comes from the function's own data pointer,
// so no JS object needs unwrapping. C++ exceptions become JS exceptions here.
template <napi_value (*Op)(napi_env, StoreState&, napi_value)>
napi_value Fast1(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  void* data = nullptr;
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  try {
    return Op(env, *static_cast<StoreState*>(data), argv[0]);
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
}

napi_value FastSet(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 3;
  napi_value argv[3];
  void* data = nullptr;
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  try {
    return DoSet(env, *static_cast<StoreState*>(data), argv[0], argv[1], argv[2]);
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
}

uint64_t OptionalUint(const Napi::Object& options, const char* name, uint64_t fallback) {
  Napi::Value v = options.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(options.Env(),
                               std::string("MemoryStore: option ") + name + " must be a number");
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0) {
    throw Napi::RangeError::New(options.Env(), std::string("MemoryStore: option ") + name +
                                                   " must be a non-negative safe integer");
  }
  return static_cast<uint64_t>(d);
}

MemoryStore::Options OptionsFrom(const Napi::CallbackInfo& info) {
  MemoryStore::Options options;
  if (info.Length() == 0 || info[0].IsUndefined()) return options;
  if (!info[0].IsObject()) {
    throw Napi::TypeError::New(info.Env(), "MemoryStore: options must be an object");
  }
  Napi::Object o = info[0].As<Napi::Object>();
  options.max_entries = static_cast<uint32_t>(std::min<uint64_t>(
      OptionalUint(o, "maxEntries", options.max_entries), MemoryStore::kMaxEntriesLimit));
  options.max_bytes = OptionalUint(o, "maxBytes", options.max_bytes);
  options.sweep_per_write = static_cast<uint32_t>(
      std::min<uint64_t>(OptionalUint(o, "sweepPerWrite", options.sweep_per_write), 1024));
  return options;
}

}  // namespace

Napi::Function DefineMemoryStore(Napi::Env env) { return MemoryStoreWrap::Define(env); }

Napi::Function MemoryStoreWrap::Define(Napi::Env env) {
  return DefineClass(
      env, "MemoryStore",
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
          StaticValue("MAX_ENTRIES",
                      Napi::Number::New(env, static_cast<double>(MemoryStore::kMaxEntriesLimit))),
          StaticValue("MIN_BYTES",
                      Napi::Number::New(env, static_cast<double>(MemoryStore::kMinBytes))),
          StaticValue("PAGE_BYTES",
                      Napi::Number::New(env, static_cast<double>(SlabArena::kPageBytes))),
      });
}

MemoryStoreWrap::MemoryStoreWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<MemoryStoreWrap>(info),
      state_(std::make_shared<StoreState>(OptionsFrom(info))) {}

// get(key) -> string | null. The value's bytes are decoded as UTF-8.
Napi::Value MemoryStoreWrap::Get(const Napi::CallbackInfo& info) {
  return Napi::Value(info.Env(), DoGet(info.Env(), *state_, info[0]));
}

// getBuffer(key) -> Buffer | null, a copy of the stored bytes.
Napi::Value MemoryStoreWrap::GetBuffer(const Napi::CallbackInfo& info) {
  return Napi::Value(info.Env(), DoGetBuffer(info.Env(), *state_, info[0]));
}

// set(key, value, ttlMs = 0) -> boolean.
Napi::Value MemoryStoreWrap::Set(const Napi::CallbackInfo& info) {
  return Napi::Value(info.Env(), DoSet(info.Env(), *state_, info[0], info[1], info[2]));
}

// del(key) -> boolean: whether a live entry was removed.
Napi::Value MemoryStoreWrap::Del(const Napi::CallbackInfo& info) {
  return Napi::Value(info.Env(), DoDel(info.Env(), *state_, info[0]));
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
  const uint64_t budget = CountArg(env, info[2], 4096, "budget");
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
  const uint64_t budget = CountArg(env, info[0], 1024, "budget");
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
  add("get", Fast1<DoGet>);
  add("getBinary", Fast1<DoGetBinary>);
  add("set", FastSet);
  add("del", Fast1<DoDel>);
  return out;
}

}  // namespace hirecache::binding
