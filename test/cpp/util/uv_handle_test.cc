// UvHandle and HandleGroup: handles free themselves in their close callbacks, the group
// reports when the last one is gone, and the loop closes cleanly after.
#include "util/uv_handle.h"

#include <gtest/gtest.h>

namespace hirecache {
namespace {

TEST(UvHandleTest, TheGroupIsToldWhenTheLastHandleHasClosed) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  int idle_calls = 0;
  HandleGroup group([](void* n) { ++*static_cast<int*>(n); }, &idle_calls);
  {
    UvHandle<uv_timer_t> timer(&group);
    UvHandle<uv_idle_t> idle(&group);
    uv_timer_init(&loop, timer.get());
    uv_idle_init(&loop, idle.get());
    EXPECT_EQ(group.open(), 2);
    timer.Close();
    EXPECT_TRUE(timer.closed());
    timer.Close();           // a second close is a no-op
  }                          // `idle` closes itself as it goes out of scope
  EXPECT_EQ(idle_calls, 0);  // close callbacks run on the loop, not before
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(idle_calls, 1);
  EXPECT_EQ(group.open(), 0);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(UvHandleTest, ACallbackStopsRunningOnceClosed) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  int fired = 0;
  {
    UvHandle<uv_timer_t> timer;
    uv_timer_init(&loop, timer.get());
    timer.get()->data = &fired;
    uv_timer_start(
        timer.get(), [](uv_timer_t* t) { ++*static_cast<int*>(t->data); }, 0, 0);
    timer.Close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(UvHandleTest, TimerDelayCountsFromTheLoopsCachedTime) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  uint64_t cached = uv_now(&loop);
  EXPECT_EQ(TimerDelayUntil(&loop, cached + 500), 500u);
  EXPECT_EQ(TimerDelayUntil(&loop, cached > 10 ? cached - 10 : 0), 0u);
  // The real clock never runs behind the loop's cached one.
  EXPECT_GE(MonotonicNowMs(), cached);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace hirecache
