#include "client/reply_reader.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>

namespace hirecache {

namespace {

// Keep the reader's buffer between replies instead of freeing it after each drain.
constexpr size_t kReaderKeepBuffer = 1024 * 1024;

redisReply* NewReply(int type) {
  auto* r = static_cast<redisReply*>(std::calloc(1, sizeof(redisReply)));
  if (r != nullptr) r->type = type;
  return r;
}

// Appends `child` to its parent array, if it has one. Elements arrive in order, so the
// parent's `elements` counts those attached so far; its vector grows by doubling (capacity
// 4 for 1 to 4 elements, then the next power of two), never by what the header announced.
bool Attach(const redisReadTask* task, redisReply* child) {
  if (task->parent == nullptr) return true;
  auto* parent = static_cast<redisReply*>(task->parent->obj);
  size_t n = parent->elements;
  assert(static_cast<size_t>(task->idx) == n);
  if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
    size_t capacity = n == 0 ? 4 : 2 * n;
    void* grown = std::realloc(parent->element, capacity * sizeof(redisReply*));
    if (grown == nullptr) return false;
    parent->element = static_cast<redisReply**>(grown);
  }
  parent->element[n] = child;
  parent->elements = n + 1;
  return true;
}

void* Finish(const redisReadTask* task, redisReply* r) {
  if (r == nullptr) return nullptr;
  if (!Attach(task, r)) {
    FreeReply(r);
    return nullptr;  // hiredis reports out of memory
  }
  return r;
}

void* CreateString(const redisReadTask* task, char* str, size_t len) {
  redisReply* r = NewReply(task->type);
  if (r == nullptr) return nullptr;
  r->str = static_cast<char*>(std::malloc(len + 1));
  if (r->str == nullptr) {
    std::free(r);
    return nullptr;
  }
  if (len > 0) std::memcpy(r->str, str, len);
  r->str[len] = '\0';
  r->len = len;
  return Finish(task, r);
}

void* CreateArray(const redisReadTask* task, int) {
  return Finish(task, NewReply(REDIS_REPLY_ARRAY));
}

void* CreateInteger(const redisReadTask* task, long long value) {
  redisReply* r = NewReply(REDIS_REPLY_INTEGER);
  if (r != nullptr) r->integer = value;
  return Finish(task, r);
}

void* CreateNil(const redisReadTask* task) { return Finish(task, NewReply(REDIS_REPLY_NIL)); }

void FreeObject(void* reply) { FreeReply(static_cast<redisReply*>(reply)); }

redisReplyObjectFunctions kGrowingReplies = {CreateString, CreateArray, CreateInteger, CreateNil,
                                             FreeObject};

}  // namespace

void FreeReply(redisReply* reply) {
  if (reply == nullptr) return;
  if (reply->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < reply->elements; ++i) FreeReply(reply->element[i]);
    std::free(reply->element);
  } else {
    std::free(reply->str);
  }
  std::free(reply);
}

// ---------------------------------------------------------------------------------------
// ProtocolGuard

bool ProtocolGuard::Fail(std::string message) {
  error_ = std::move(message);
  return false;
}

bool ProtocolGuard::FailLineTooLong() {
  return Fail("Redis sent a reply line longer than maxLineBytes (" +
              std::to_string(limits_.max_line_bytes) + ")");
}

bool ProtocolGuard::Check(const char* data, size_t len) {
  if (!error_.empty()) return false;
  const char* p = data;
  const char* end = data + len;
  while (p < end) {
    switch (state_) {
      case State::kType:
        type_ = *p++;
        line_bytes_ = 1;
        last_was_cr_ = false;
        if (type_ == '+' || type_ == '-' || type_ == ':') {
          state_ = State::kLine;
        } else if (type_ == '$' || type_ == '*') {
          state_ = State::kHeader;
          negative_ = false;
          number_ = 0;
          digits_ = 0;
        } else {
          static const char kHex[] = "0123456789abcdef";
          auto byte = static_cast<unsigned char>(type_);
          return Fail(std::string("Redis sent a reply starting with byte 0x") + kHex[byte >> 4] +
                      kHex[byte & 15] + ", which is not a RESP2 type");
        }
        break;
      case State::kLine: {
        // A line ends at the first CRLF, exactly where hiredis ends it; a lone LF or CR is
        // part of the line (and counts against the limit).
        const char* stop = end;
        bool ended = false;
        const char* q = p;
        while (q < end) {
          const void* nl = std::memchr(q, '\n', static_cast<size_t>(end - q));
          if (nl == nullptr) break;
          const char* at = static_cast<const char*>(nl);
          bool cr_before = at > p ? at[-1] == '\r' : last_was_cr_;
          if (cr_before) {
            stop = at + 1;
            ended = true;
            break;
          }
          q = at + 1;
        }
        size_t take = static_cast<size_t>(stop - p);
        line_bytes_ += take;
        if (line_bytes_ > limits_.max_line_bytes) {
          return FailLineTooLong();
        }
        last_was_cr_ = take > 0 && stop[-1] == '\r';
        p = stop;
        if (ended) EndValue();
        break;
      }
      case State::kHeader: {
        // A header is [-]digits CRLF and nothing else: what hiredis's number parser reads
        // the same way. Anything else fails here, before hiredis could read it otherwise.
        char c = *p++;
        if (++line_bytes_ > limits_.max_line_bytes) {
          return FailLineTooLong();
        }
        if (last_was_cr_) {
          if (c != '\n') {
            return Fail(std::string("Redis sent a ") + (type_ == '$' ? "bulk string" : "array") +
                        " length with a CR not followed by LF");
          }
          last_was_cr_ = false;
          if (!EndHeader()) return false;
        } else if (c == '\r') {
          last_was_cr_ = true;
        } else if (c == '-' && digits_ == 0 && !negative_) {
          negative_ = true;
        } else if (c >= '0' && c <= '9' && digits_ < 19) {
          number_ = number_ * 10 + static_cast<uint64_t>(c - '0');
          ++digits_;
        } else {
          return Fail(std::string("Redis sent a malformed ") +
                      (type_ == '$' ? "bulk string" : "array") + " length");
        }
        break;
      }
      case State::kBulk: {
        if (bulk_left_ > 2) {  // the payload: any bytes, skipped
          uint64_t take = std::min<uint64_t>(bulk_left_ - 2, static_cast<uint64_t>(end - p));
          p += take;
          bulk_left_ -= take;
          break;
        }
        // The payload's CRLF (hiredis skips these two bytes unchecked; they are checked here).
        char c = *p++;
        if (c != (bulk_left_ == 2 ? '\r' : '\n')) {
          return Fail("Redis sent a bulk string not followed by CRLF");
        }
        if (--bulk_left_ == 0) EndValue();
        break;
      }
    }
  }
  return true;
}

// A `$` or `*` header line is complete: check it against the limits.
bool ProtocolGuard::EndHeader() {
  const char* what = type_ == '$' ? "bulk string" : "array";
  if (digits_ == 0) return Fail(std::string("Redis sent a ") + what + " header without a length");
  if (negative_) {
    if (number_ != 1) return Fail(std::string("Redis sent a negative ") + what + " length");
    EndValue();  // A null bulk string or null array.
    return true;
  }
  if (type_ == '$') {
    if (number_ > limits_.max_bulk_bytes) {
      return Fail("Redis announced a bulk string of " + std::to_string(number_) +
                  " bytes, more than maxBulkBytes (" + std::to_string(limits_.max_bulk_bytes) +
                  ")");
    }
    bulk_left_ = number_ + 2;
    state_ = State::kBulk;
    return true;
  }
  if (number_ > limits_.max_aggregate_elements) {
    return Fail("Redis announced an array of " + std::to_string(number_) +
                " elements, more than maxAggregateElements (" +
                std::to_string(limits_.max_aggregate_elements) + ")");
  }
  if (number_ == 0) {
    EndValue();
    return true;
  }
  if (open_.size() >= limits_.max_depth) {
    return Fail("Redis sent arrays nested deeper than maxDepth (" +
                std::to_string(limits_.max_depth) + ")");
  }
  open_.push_back(number_);
  state_ = State::kType;
  return true;
}

// One value is complete; so is every array whose last element it was.
void ProtocolGuard::EndValue() {
  state_ = State::kType;
  while (!open_.empty()) {
    if (--open_.back() > 0) return;
    open_.pop_back();
  }
  ++values_completed_;
}

// ---------------------------------------------------------------------------------------
// ReplyReader

ReplyReader::ReplyReader(const ProtocolLimits& limits)
    : guard_(limits), reader_(redisReaderCreateWithFunctions(&kGrowingReplies)) {
  if (reader_ != nullptr) reader_->maxbuf = kReaderKeepBuffer;
}

ReplyReader::~ReplyReader() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

bool ReplyReader::Feed(const char* data, size_t len) {
  if (failed()) return false;
  if (!guard_.Check(data, len)) {
    error_ = guard_.error();
    return false;
  }
  if (redisReaderFeed(reader_, data, len) != REDIS_OK) {
    error_ = "out of memory while reading a reply";
    return false;
  }
  return true;
}

redisReply* ReplyReader::Next() {
  if (failed()) return nullptr;
  void* reply = nullptr;
  if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
    error_ = std::string("protocol error from Redis: ") + reader_->errstr;
    return nullptr;
  }
  return static_cast<redisReply*>(reply);
}

}  // namespace hirecache
