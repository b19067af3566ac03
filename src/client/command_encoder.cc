#include "client/command_encoder.h"

#include <cstring>

namespace hirecache {
namespace {

// Writes the decimal digits of `n` followed by CRLF into `buf` (at least 22 bytes) and
// returns how many bytes were written. Faster than snprintf on the hot path.
size_t FormatLengthLine(char* buf, size_t n) {
  char digits[20];
  size_t count = 0;
  do {
    digits[count++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  for (size_t i = 0; i < count; ++i) buf[i] = digits[count - 1 - i];
  buf[count] = '\r';
  buf[count + 1] = '\n';
  return count + 2;
}

size_t DecimalDigits(size_t n) {
  size_t d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

}  // namespace

void AppendArrayHeader(std::string& out, size_t argc) {
  char buf[24];
  buf[0] = '*';
  out.append(buf, 1 + FormatLengthLine(buf + 1, argc));
}

void AppendBulk(std::string& out, std::string_view arg) {
  char buf[24];
  buf[0] = '$';
  size_t header = 1 + FormatLengthLine(buf + 1, arg.size());
  size_t at = out.size();
  out.resize(at + header + arg.size() + 2);
  char* p = &out[at];
  std::memcpy(p, buf, header);
  if (!arg.empty()) std::memcpy(p + header, arg.data(), arg.size());
  p[header + arg.size()] = '\r';
  p[header + arg.size() + 1] = '\n';
}

size_t AppendCommand(std::string& out, const std::string_view* argv, size_t argc) {
  size_t before = out.size();
  out.reserve(before + EncodedCommandSize(argv, argc));
  AppendArrayHeader(out, argc);
  for (size_t i = 0; i < argc; ++i) AppendBulk(out, argv[i]);
  return out.size() - before;
}

size_t EncodedCommandSize(const std::string_view* argv, size_t argc) {
  size_t total = 1 + DecimalDigits(argc) + 2;
  for (size_t i = 0; i < argc; ++i) {
    total += 1 + DecimalDigits(argv[i].size()) + 2 + argv[i].size() + 2;
  }
  return total;
}

}  // namespace hirecache
