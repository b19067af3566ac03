// ASCII case helpers for command names, which Redis matches without regard to case.
#ifndef HIRECACHE_UTIL_ASCII_H_
#define HIRECACHE_UTIL_ASCII_H_

#include <cstddef>
#include <string_view>

namespace hirecache {

// Whether `s` is `upper` (given in upper case) in any case.
inline bool EqualsUpper(std::string_view s, std::string_view upper) {
  if (s.size() != upper.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != upper[i]) return false;
  }
  return true;
}

// `s` in upper case, written into `out` (N bytes); an empty view when it does not fit.
template <size_t N>
std::string_view ToUpper(std::string_view s, char (&out)[N]) {
  if (s.size() > N) return {};
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    out[i] = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
  }
  return {out, s.size()};
}

}  // namespace hirecache

#endif  // HIRECACHE_UTIL_ASCII_H_
