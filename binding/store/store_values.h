// How the store's bytes cross the N-API boundary: keys and values from JS strings (encoded
// as UTF-8 here, into reusable buffers) or Buffers (viewed in place), counts from numbers,
// and stored bytes back into JS strings.
#ifndef HIRECACHE_BINDING_STORE_STORE_VALUES_H_
#define HIRECACHE_BINDING_STORE_STORE_VALUES_H_

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace hirecache::binding {

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

// Throws a Napi::Error for the pending N-API error when `status` is not napi_ok.
void Check(napi_env env, napi_status status);

// Reads a key or value argument as bytes: a string is encoded as UTF-8 into `scratch`, a
// Buffer (or any Uint8Array) is viewed in place. Either view is valid until the call
// returns. Throws a TypeError naming `what` for anything else.
std::string_view BytesArg(napi_env env, napi_value value, Scratch& scratch, const char* what);

// Reads a non-negative count (milliseconds, slots); `undefined` means `fallback`. A
// fraction is rounded up, so a positive TTL never becomes 0 (which means "never expires").
// Throws a TypeError or RangeError naming `what` for anything else.
uint64_t CountArg(napi_env env, napi_value value, uint64_t fallback, const char* what);

// Decodes stored bytes as UTF-8 into a JS string. ASCII, the common case (the store
// records it per value), is copied as Latin-1, which V8 takes without decoding.
napi_value DecodeString(napi_env env, std::string_view bytes, bool ascii);

napi_value Null(napi_env env);
napi_value Boolean(napi_env env, bool b);

}  // namespace hirecache::binding

#endif  // HIRECACHE_BINDING_STORE_STORE_VALUES_H_
