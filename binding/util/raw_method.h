// The binding's one vocabulary for raw N-API methods (the hot paths that skip
// node-addon-api's CallbackInfo), for their arguments and for the options objects the
// constructors read.
//
// Exception policy, for every callback that crosses from JS into C++: no C++ exception ever
// leaves it. RawMethod<Op> turns a Napi::Error into that JS exception, std::bad_alloc into an
// Error with code ERR_OUT_OF_MEMORY, and anything else into ERR_INTERNAL. Methods declared
// through node-addon-api get the same treatment from NODE_ADDON_API_CPP_EXCEPTIONS_ALL.
#ifndef HIRECACHE_BINDING_UTIL_RAW_METHOD_H_
#define HIRECACHE_BINDING_UTIL_RAW_METHOD_H_

#include <napi.h>

#include <cstdint>
#include <exception>
#include <new>
#include <string>

namespace hirecache::binding {

// Throws (as a pending JS exception) an Error with `code`; safe inside a raw callback.
inline void ThrowWithCode(napi_env env, const char* code, const char* message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, code, message);
}

// Runs `op` and converts whatever it throws by the policy above. Returns op's value, or
// nullptr with a JS exception pending.
template <typename Fn>
napi_value GuardCall(napi_env env, Fn&& op) noexcept {
  try {
    return op();
  } catch (const Napi::Error& e) {
    // napi_throw, not ThrowAsJavaScriptException: that one throws again in C++ when JS cannot
    // take an exception (a worker being terminated), and this function is noexcept.
    napi_throw(env, e.Value());
  } catch (const std::bad_alloc&) {
    ThrowWithCode(env, "ERR_OUT_OF_MEMORY", "hirecache: out of memory");
  } catch (const std::exception& e) {
    ThrowWithCode(env, "ERR_INTERNAL", e.what());
  } catch (...) {
    ThrowWithCode(env, "ERR_INTERNAL", "hirecache: unexpected native exception");
  }
  return nullptr;
}

// A raw method of up to N arguments whose state `State` is the function's data pointer
// (set with napi_create_function): no `this` to unwrap. Missing arguments are undefined.
template <typename State, size_t N, napi_value (*Op)(napi_env, State&, napi_value*)>
napi_value RawMethod(napi_env env, napi_callback_info info) noexcept {
  size_t argc = N;
  napi_value argv[N];
  void* data = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  if (argc < N) {
    napi_value undefined = nullptr;
    napi_get_undefined(env, &undefined);
    for (size_t i = argc; i < N; ++i) argv[i] = undefined;
  }
  return GuardCall(env, [&] { return Op(env, *static_cast<State*>(data), argv); });
}

// Reads the options object that lib/ validated. Only what memory safety needs is checked
// here: a missing or mistyped field takes the default, a number is clamped to its type.
class OptionReader {
 public:
  explicit OptionReader(Napi::Object options) : options_(options) {}

  // A number clamped to [0, 2^32 - 1] (never wrapped); anything else gives `fallback`.
  uint32_t Uint32(const char* name, uint32_t fallback) const {
    uint64_t v = Uint64(name, fallback);
    return v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v);
  }
  uint64_t Uint64(const char* name, uint64_t fallback) const {
    Napi::Value v = options_.Get(name);
    if (!v.IsNumber()) return fallback;
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0)) return fallback;
    return d >= 18446744073709551615.0 ? UINT64_MAX : static_cast<uint64_t>(d);
  }
  bool Has(const char* name) const { return !options_.Get(name).IsUndefined(); }
  bool Bool(const char* name, bool fallback) const {
    Napi::Value v = options_.Get(name);
    return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
  }
  std::string String(const char* name) const {
    Napi::Value v = options_.Get(name);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  }

 private:
  Napi::Object options_;
};

}  // namespace hirecache::binding

#endif  // HIRECACHE_BINDING_UTIL_RAW_METHOD_H_
