#include "store/store_values.h"

#include <napi.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace hirecache::binding {

namespace {

// Formats a number the way JS prints it, for error messages.
std::string JsNumber(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", d);
  return text;
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

}  // namespace

void Check(napi_env env, napi_status status) {
  if (status != napi_ok) throw Napi::Error::New(env);
}

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

napi_value DecodeString(napi_env env, std::string_view bytes, bool ascii) {
  napi_value out;
  if (ascii) {
    Check(env, napi_create_string_latin1(env, bytes.data(), bytes.size(), &out));
  } else {
    Check(env, napi_create_string_utf8(env, bytes.data(), bytes.size(), &out));
  }
  return out;
}

}  // namespace hirecache::binding
