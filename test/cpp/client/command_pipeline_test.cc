// CommandPipeline without a server or a loop: the FIFO keeps replies with their callers,
// deadlines settle early without shifting slots, and unsent commands never leave once
// dropped.
#include "client/command_pipeline.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hirecache {
namespace {

void* Token(int n) { return reinterpret_cast<void*>(static_cast<intptr_t>(n)); }
int Id(void* token) { return static_cast<int>(reinterpret_cast<intptr_t>(token)); }

void PushGet(CommandPipeline& p, int id, uint64_t deadline) {
  std::string key = "k" + std::to_string(id);
  std::string_view argv[] = {"GET", key};
  p.Push(argv, 2, Token(id), 0, deadline);
}

TEST(CommandPipelineTest, TakesAllUnsentBytesInOrderAndCountsThemWritten) {
  CommandPipeline p;
  PushGet(p, 1, 0);
  PushGet(p, 2, 0);
  EXPECT_EQ(p.unsent(), 2u);
  std::string out;
  EXPECT_EQ(p.TakeUnsent(100, SIZE_MAX, out), 2u);
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n");
  EXPECT_EQ(p.written(), 2u);
  EXPECT_EQ(p.unsent(), 0u);
  EXPECT_EQ(p.unsent_bytes(), 0u);
  EXPECT_EQ(Id(p.PopWritten().token), 1);
  EXPECT_EQ(Id(p.PopWritten().token), 2);
  EXPECT_TRUE(p.empty());
}

TEST(CommandPipelineTest, APartialTakeLeavesTheRestQueuedWithTheirBytes) {
  CommandPipeline p;
  for (int i = 1; i <= 5; ++i) PushGet(p, i, 0);
  std::string out;
  EXPECT_EQ(p.TakeUnsent(2, SIZE_MAX, out), 2u);
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n");
  EXPECT_EQ(p.written(), 2u);
  EXPECT_EQ(p.unsent(), 3u);
  EXPECT_EQ(p.TakeUnsent(100, SIZE_MAX, out), 3u);
  EXPECT_EQ(out.substr(0, 21), "*2\r\n$3\r\nGET\r\n$2\r\nk3\r\n");
  EXPECT_EQ(p.written(), 5u);
}

TEST(CommandPipelineTest, ATakeStopsAtTheByteBoundButAlwaysTakesOneCommand) {
  CommandPipeline p;
  for (int i = 1; i <= 4; ++i) PushGet(p, i, 0);  // 21 bytes each
  std::string out;
  EXPECT_EQ(p.TakeUnsent(100, 50, out), 2u);
  EXPECT_EQ(out.size(), 42u);
  EXPECT_EQ(p.TakeUnsent(100, 10, out), 1u);  // larger than the bound alone: still goes
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$2\r\nk3\r\n");
  EXPECT_EQ(p.TakeUnsent(100, 21, out), 1u);
  EXPECT_EQ(p.unsent(), 0u);
  EXPECT_EQ(p.written(), 4u);
}

TEST(CommandPipelineTest, AnExpiredWrittenCommandKeepsItsSlotToSwallowItsReply) {
  CommandPipeline p;
  PushGet(p, 1, 100);
  PushGet(p, 2, 200);
  std::string out;
  p.TakeUnsent(100, SIZE_MAX, out);
  std::vector<int> expired;
  p.ExpireDue(150, [&](void* t, uint32_t, bool written) {
    EXPECT_TRUE(written);
    expired.push_back(Id(t));
  });
  EXPECT_EQ(expired, std::vector<int>({1}));
  EXPECT_EQ(p.written(), 2u);  // The slot stays.
  PendingCommand first = p.PopWritten();
  EXPECT_EQ(Id(first.token), 1);
  EXPECT_TRUE(first.settled);  // Its late reply is swallowed, not given to command 2.
  PendingCommand second = p.PopWritten();
  EXPECT_EQ(Id(second.token), 2);
  EXPECT_FALSE(second.settled);
}

TEST(CommandPipelineTest, AnExpiredUnsentCommandIsDroppedAndItsBytesNeverLeave) {
  CommandPipeline p;
  PushGet(p, 1, 100);
  PushGet(p, 2, 300);
  std::vector<int> expired;
  p.ExpireDue(100, [&](void* t, uint32_t, bool written) {
    EXPECT_FALSE(written) << "never written: not the server's failure";
    expired.push_back(Id(t));
  });
  EXPECT_EQ(expired, std::vector<int>({1}));
  EXPECT_EQ(p.unsent(), 1u);
  std::string out;
  EXPECT_EQ(p.TakeUnsent(100, SIZE_MAX, out), 1u);
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n");
  EXPECT_EQ(Id(p.PopWritten().token), 2);
}

TEST(CommandPipelineTest, NothingExpiresBeforeItsDeadlineAndNextDeadlineSkipsSettled) {
  CommandPipeline p;
  PushGet(p, 1, 100);
  PushGet(p, 2, 200);
  PushGet(p, 3, 0);  // no deadline
  int calls = 0;
  p.ExpireDue(99, [&](void*, uint32_t, bool) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(p.NextDeadline(), 100u);
  std::string out;
  p.TakeUnsent(100, SIZE_MAX, out);
  p.ExpireDue(100, [&](void*, uint32_t, bool) { ++calls; });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(p.NextDeadline(), 200u);
  EXPECT_EQ(p.OldestWrittenDeadline(), 100u);
  p.ExpireDue(1000, [&](void*, uint32_t, bool) { ++calls; });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(p.NextDeadline(), 0u);
}

TEST(CommandPipelineTest, FailingSettlesEachUnsettledUserCommandOnce) {
  CommandPipeline p;
  PushGet(p, 1, 100);
  PushGet(p, 2, 0);
  std::string out;
  p.TakeUnsent(100, SIZE_MAX, out);
  PushGet(p, 3, 0);
  PushGet(p, 4, 0);
  p.ExpireDue(100, [](void*, uint32_t, bool) {});  // 1 is settled by its deadline
  std::vector<int> written;
  p.FailWritten([&](void* t, uint32_t) { written.push_back(Id(t)); });
  EXPECT_EQ(written, std::vector<int>({2}));
  std::vector<int> unsent;
  p.FailUnsent([&](void* t, uint32_t) { unsent.push_back(Id(t)); });
  EXPECT_EQ(unsent, std::vector<int>({3, 4}));
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.unsent_bytes(), 0u);
}

TEST(CommandPipelineTest, HandshakeGoesAheadAndIsNeverReportedToCallers) {
  CommandPipeline p;
  PushGet(p, 1, 0);
  p.PrependHandshake(2);
  EXPECT_EQ(p.written(), 2u);
  EXPECT_EQ(p.unsent(), 1u);
  EXPECT_EQ(p.PopWritten().kind, CommandKind::kHandshake);
  std::vector<int> failed;
  p.FailWritten([&](void* t, uint32_t) { failed.push_back(Id(t)); });
  EXPECT_TRUE(failed.empty());
  EXPECT_EQ(p.unsent(), 1u);
}

TEST(CommandPipelineTest, QuitIsQueuedLikeACommandButIsNoCallersCommand) {
  CommandPipeline p;
  PushGet(p, 1, 0);
  std::string_view quit("QUIT");
  p.Push(&quit, 1, nullptr, 0, 0, CommandKind::kQuit);
  std::vector<int> failed;
  p.FailUnsent([&](void* t, uint32_t) { failed.push_back(Id(t)); });
  EXPECT_EQ(failed, std::vector<int>({1}));
}

TEST(CommandPipelineTest, SettleFlaggedKeepsWrittenSlotsAndDropsUnsentBytes) {
  CommandPipeline p;
  constexpr uint32_t kFlag = 1u << 20;
  auto push = [&](int id, uint32_t flags) {
    std::string key = "k" + std::to_string(id);
    std::string_view argv[] = {"GET", key};
    p.Push(argv, 2, Token(id), flags, 0);
  };
  push(1, kFlag);
  push(2, 0);
  std::string out;
  p.TakeUnsent(10, SIZE_MAX, out);  // 1 and 2 are written
  push(3, kFlag);
  push(4, 0);
  push(5, kFlag);
  push(6, 0);
  std::vector<int> written, unsent;
  p.SettleFlagged(
      kFlag, kFlag, [&](void* t, uint32_t) { written.push_back(Id(t)); },
      [&](void* t, uint32_t) { unsent.push_back(Id(t)); });
  EXPECT_EQ(written, std::vector<int>({1}));
  EXPECT_EQ(unsent, std::vector<int>({3, 5}));
  EXPECT_EQ(p.written(), 2u) << "a written command keeps its slot";
  EXPECT_EQ(p.unsent(), 2u);
  p.TakeUnsent(10, SIZE_MAX, out);
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$2\r\nk4\r\n*2\r\n$3\r\nGET\r\n$2\r\nk6\r\n")
      << "only the bytes of the commands kept go out";
  EXPECT_TRUE(p.PopWritten().settled) << "its reply will be swallowed";
  EXPECT_FALSE(p.PopWritten().settled);
  // A second opening settles nothing twice.
  written.clear();
  p.SettleFlagged(
      kFlag, kFlag, [&](void* t, uint32_t) { written.push_back(Id(t)); },
      [&](void* t, uint32_t) { unsent.push_back(Id(t)); });
  EXPECT_TRUE(written.empty());
}

TEST(CommandPipelineTest, AnUnsentOnlyFlagLeavesWrittenCommandsWaiting) {
  CommandPipeline p;
  constexpr uint32_t kAny = 1u << 20;
  constexpr uint32_t kUnsentOnly = 1u << 21;
  auto push = [&](int id, uint32_t flags) {
    std::string key = "k" + std::to_string(id);
    std::string_view argv[] = {"GET", key};
    p.Push(argv, 2, Token(id), flags, 0);
  };
  push(1, kUnsentOnly);
  std::string out;
  p.TakeUnsent(10, SIZE_MAX, out);
  push(2, kUnsentOnly);
  std::vector<int> written, unsent;
  p.SettleFlagged(
      kAny, kAny | kUnsentOnly, [&](void* t, uint32_t) { written.push_back(Id(t)); },
      [&](void* t, uint32_t) { unsent.push_back(Id(t)); });
  EXPECT_TRUE(written.empty()) << "a written command waits for its reply";
  EXPECT_EQ(unsent, std::vector<int>({2}));
  EXPECT_FALSE(p.PopWritten().settled);
}

TEST(CommandPipelineTest, AUnitIsOneEntryWithAllItsCommandsBytesAndItsReplyCount) {
  CommandPipeline p;
  PushGet(p, 1, 0);
  std::string_view argv[] = {"MULTI", "SET", "a", "1", "INCR", "n", "EXEC"};
  size_t argcs[] = {1, 3, 2, 1};
  p.PushUnit(CommandUnit{argv, argcs, 4, 4}, Token(2), 0, 0);
  PushGet(p, 3, 0);
  EXPECT_EQ(p.unsent(), 3u) << "the unit is one entry";
  std::string out;
  // A bound that cuts through the unit's bytes still takes it whole.
  EXPECT_EQ(p.TakeUnsent(2, 30, out), 1u);
  EXPECT_EQ(p.TakeUnsent(1, 30, out), 1u);
  EXPECT_EQ(out,
            "*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$4\r\nINCR\r\n$"
            "1\r\nn\r\n*1\r\n$4\r\nEXEC\r\n");
  EXPECT_EQ(p.PopWritten().replies, 1u);
  const PendingCommand& unit = p.OldestWritten();
  EXPECT_EQ(Id(unit.token), 2);
  EXPECT_EQ(unit.replies, 4u);
}

TEST(CommandPipelineTest, AnExpiredUnsentUnitIsDroppedWhole) {
  CommandPipeline p;
  std::string_view argv[] = {"MULTI", "INCR", "n", "EXEC"};
  size_t argcs[] = {1, 2, 1};
  p.PushUnit(CommandUnit{argv, argcs, 3, 3}, Token(1), 0, 100);
  PushGet(p, 2, 200);
  std::vector<int> expired;
  p.ExpireDue(150, [&](void* t, uint32_t, bool written) {
    EXPECT_FALSE(written);
    expired.push_back(Id(t));
  });
  EXPECT_EQ(expired, std::vector<int>({1}));
  std::string out;
  p.TakeUnsent(10, SIZE_MAX, out);
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n") << "no byte of the unit is left";
}

TEST(CommandPipelineTest, ADueUnsentCommandBehindOneWithoutADeadlineIsDroppedWithItsBytes) {
  CommandPipeline p;
  std::string_view blpop[] = {"BLPOP", "q", "5"};
  p.Push(blpop, 3, Token(1), 0, 0);  // a blocking command: no deadline
  PushGet(p, 2, 100);
  PushGet(p, 3, 300);
  std::vector<int> expired;
  p.ExpireDue(150, [&](void* t, uint32_t, bool written) {
    EXPECT_FALSE(written);
    expired.push_back(Id(t));
  });
  EXPECT_EQ(expired, std::vector<int>({2}));
  std::string out;
  EXPECT_EQ(p.TakeUnsent(10, SIZE_MAX, out), 2u);
  EXPECT_EQ(out, "*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n5\r\n*2\r\n$3\r\nGET\r\n$2\r\nk3\r\n")
      << "the expired GET never leaves";
}

TEST(CommandPipelineTest, DropUnsentUnlessKeepsTheBytesOfWhatItKeepsAndRecordsEpochs) {
  CommandPipeline p;
  PushGet(p, 1, 0);
  p.set_epoch(3);
  PushGet(p, 2, 0);
  PushGet(p, 3, 0);
  std::vector<int> dropped;
  p.DropUnsentUnless([](const PendingCommand& c) { return c.epoch == 3 && Id(c.token) != 3; },
                     [&](void* t, uint32_t) { dropped.push_back(Id(t)); });
  EXPECT_EQ(dropped, std::vector<int>({1, 3}));
  std::string out;
  EXPECT_EQ(p.TakeUnsent(10, SIZE_MAX, out), 1u);
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n");
}

}  // namespace
}  // namespace hirecache
