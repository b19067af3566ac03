#include "client/reply_policy.h"

#include <hiredis/hiredis.h>

namespace hirecache {

std::string_view ErrorCodeOf(std::string_view error_text) {
  size_t space = error_text.find(' ');
  std::string_view code =
      error_text.substr(0, space == std::string_view::npos ? error_text.size() : space);
  return code.empty() ? std::string_view("ERR") : code;  // an error must have a code
}

std::string WithoutArguments(std::string_view error_text) {
  std::string text(error_text);
  size_t args = text.find(" with args");
  if (args != std::string::npos) text.erase(args);
  while (!text.empty() && (text.back() == ',' || text.back() == ' ')) text.pop_back();
  return text;
}

bool IsOkReply(const redisReply* reply) {
  return reply->type == REDIS_REPLY_STATUS && reply->len == 2 && reply->str[0] == 'O' &&
         reply->str[1] == 'K';
}

bool IsUnavailableReply(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_ERROR) return false;
  std::string_view code = ErrorCodeOf(std::string_view(reply->str, reply->len));
  return code == "LOADING" || code == "BUSY" || code == "MASTERDOWN" || code == "CLUSTERDOWN" ||
         code == "NOAUTH";
}

ReplyClass ClassifyReply(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_ERROR) return ReplyClass::kOrdinary;
  std::string_view code = ErrorCodeOf(std::string_view(reply->str, reply->len));
  if (code == "READONLY") return ReplyClass::kReadOnly;
  if (code == "MOVED") return ReplyClass::kMoved;
  if (code == "ASK") return ReplyClass::kAsk;
  if (code == "TRYAGAIN") return ReplyClass::kTryAgain;
  if (code == "LOADING") return ReplyClass::kLoading;
  return ReplyClass::kOrdinary;
}

bool IsPushMessage(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return false;
  const redisReply* kind = reply->element[0];
  if (kind->type != REDIS_REPLY_STRING) return false;
  std::string_view k(kind->str, kind->len);
  return (k == "message" && reply->elements == 3) || (k == "smessage" && reply->elements == 3) ||
         (k == "pmessage" && reply->elements == 4);
}

}  // namespace hirecache
