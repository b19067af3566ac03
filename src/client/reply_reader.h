// Turns the bytes a Redis connection receives into replies, treating them as untrusted input.
//
// hiredis's reader parses RESP well but trusts the peer: an array header is allocated in
// full before its elements arrive (`*2147483647\r\n`, 13 bytes, reserves 16 GiB and takes
// seconds to free), a bulk header is believed whatever its size, and a line without CRLF
// is rescanned from its start on every feed (quadratic). ReplyReader puts a linear-time
// framing check (ProtocolGuard) in front of hiredis that enforces hard limits before
// hiredis sees the bytes, and builds replies with its own object functions, which grow an
// array as its elements arrive instead of allocating from the header.
//
// Replies are ordinary hiredis `redisReply` trees; free them with FreeReply().
#ifndef HIRECACHE_CLIENT_REPLY_READER_H_
#define HIRECACHE_CLIENT_REPLY_READER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

struct redisReply;
struct redisReader;

namespace hirecache {

// Limits on what one connection accepts from the server. Past any of them the connection
// fails with ERR_PROTOCOL at once.
struct ProtocolLimits {
  // The largest bulk string; Redis's own proto-max-bulk-len default.
  uint64_t max_bulk_bytes = 512ull * 1024 * 1024;
  // The most elements one array may announce.
  uint64_t max_aggregate_elements = 16ull * 1024 * 1024;
  // The longest line (a status, an error, an integer, a header), CRLF included.
  uint64_t max_line_bytes = 64 * 1024;
  // How deeply arrays may nest (hiredis itself stops at 7).
  uint32_t max_depth = 7;
};

// Checks the framing of a RESP2 byte stream, one chunk at a time, in time linear in the
// bytes: a type byte, then a line, a bulk payload or an array of further values. It keeps
// only a small stack of open arrays and never allocates by a header.
class ProtocolGuard {
 public:
  explicit ProtocolGuard(const ProtocolLimits& limits) : limits_(limits) {}

  // Consumes `len` bytes. Returns false, with error() set, at the first byte that breaks
  // a limit or the framing; every later call then returns false too.
  bool Check(const char* data, size_t len);
  const std::string& error() const { return error_; }
  // Top-level values completed so far (for tests that compare with hiredis).
  uint64_t values_completed() const { return values_completed_; }

 private:
  enum class State : uint8_t { kType, kLine, kHeader, kBulk };
  bool Fail(std::string message);
  bool FailLineTooLong();
  bool EndHeader();
  void EndValue();

  ProtocolLimits limits_;
  State state_ = State::kType;
  char type_ = 0;
  uint64_t line_bytes_ = 0;     // bytes of the current line so far
  bool negative_ = false;       // the header being read started with '-'
  bool last_was_cr_ = false;    // the line's last byte so far was CR
  uint64_t number_ = 0;         // the header's value so far
  uint32_t digits_ = 0;         // digits of the header so far
  uint64_t bulk_left_ = 0;      // payload bytes plus CRLF still to come
  std::vector<uint64_t> open_;  // elements still to come in each open array, outermost first
  uint64_t values_completed_ = 0;
  std::string error_;
};

class ReplyReader {
 public:
  explicit ReplyReader(const ProtocolLimits& limits);
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // False when memory for the reader could not be had.
  bool ok() const { return reader_ != nullptr; }

  // Takes `len` received bytes. Returns false, with error() set, when they break a limit or
  // the protocol; the connection must then be dropped.
  bool Feed(const char* data, size_t len);

  // The next complete reply, or nullptr when more bytes are needed (or on an error:
  // check failed()). The caller owns the reply: FreeReply() it.
  redisReply* Next();
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  ProtocolGuard guard_;
  redisReader* reader_;
  std::string error_;
};

// Frees a reply made by ReplyReader, with everything inside it. Cost: linear in the
// elements that actually arrived.
void FreeReply(redisReply* reply);

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_REPLY_READER_H_
