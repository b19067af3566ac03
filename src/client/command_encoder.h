// RESP encoding of commands: every argument goes out as a length-prefixed bulk string,
// so no user text is ever interpreted by the server's inline-command parser.
#ifndef HIRECACHE_CLIENT_COMMAND_ENCODER_H_
#define HIRECACHE_CLIENT_COMMAND_ENCODER_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace hirecache {

// Appends `*<argc>\r\n` (the array header of a command with `argc` arguments).
void AppendArrayHeader(std::string& out, size_t argc);

// Appends one argument as `$<len>\r\n<bytes>\r\n`.
void AppendBulk(std::string& out, std::string_view arg);

// Appends a whole command. Returns the number of bytes appended.
size_t AppendCommand(std::string& out, const std::string_view* argv, size_t argc);

// The number of bytes AppendCommand would append, for bounds checks before encoding.
size_t EncodedCommandSize(const std::string_view* argv, size_t argc);

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_COMMAND_ENCODER_H_
