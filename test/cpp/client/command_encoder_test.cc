// The encoder must produce exactly the RESP that hiredis's own formatter produces, for any
// bytes: NUL, CRLF, empty arguments and large values included.
#include "client/command_encoder.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <string>
#include <vector>

namespace hirecache {
namespace {

std::string HiredisFormat(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* out = nullptr;
  int n = redisFormatCommandArgv(&out, static_cast<int>(args.size()), argv.data(), lens.data());
  std::string s(out, static_cast<size_t>(n));
  free(out);
  return s;
}

std::string Encode(const std::vector<std::string>& args) {
  std::vector<std::string_view> argv(args.begin(), args.end());
  std::string out = "prefix";
  size_t n = AppendCommand(out, argv.data(), argv.size());
  EXPECT_EQ(n, out.size() - 6);
  EXPECT_EQ(n, EncodedCommandSize(argv.data(), argv.size()));
  return out.substr(6);
}

TEST(CommandEncoder, SimpleCommand) {
  EXPECT_EQ(Encode({"GET", "key"}), "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
}

TEST(CommandEncoder, MatchesHiredisForBinaryAndEmptyArguments) {
  std::vector<std::string> args = {"SET", std::string("a\0b", 3), "", "line\r\nbreak",
                                   std::string(1, '\xff')};
  EXPECT_EQ(Encode(args), HiredisFormat(args));
}

TEST(CommandEncoder, MatchesHiredisForLargeValuesAndManyArguments) {
  std::vector<std::string> args = {"MSET"};
  for (int i = 0; i < 1200; ++i) {
    args.push_back("key:" + std::to_string(i));
    args.push_back(
        std::string(static_cast<size_t>(i * 37 % 5000), static_cast<char>('a' + i % 26)));
  }
  args.push_back(std::string(1 << 20, 'z'));
  EXPECT_EQ(Encode(args), HiredisFormat(args));
}

TEST(CommandEncoder, LengthLinesForPowersOfTen) {
  for (size_t len : {0u, 9u, 10u, 99u, 100u, 1000u, 100000u}) {
    std::string arg(len, 'x');
    std::string_view v(arg);
    std::string out;
    AppendBulk(out, v);
    EXPECT_EQ(out, "$" + std::to_string(len) + "\r\n" + arg + "\r\n");
  }
}

}  // namespace
}  // namespace hirecache
