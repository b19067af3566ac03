// Running a libuv loop in a test until something has happened, with a bound on the wait.
#ifndef HIRECACHE_TEST_SUPPORT_LOOP_RUNNER_H_
#define HIRECACHE_TEST_SUPPORT_LOOP_RUNNER_H_

#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>

namespace hirecache::test_support {

// Runs `loop` until `done` holds, for at most five seconds of wall time, and fails the test
// (naming the caller's line) if it never does. A client holds the loop only while it waits
// for something (an idle subscriber does not): a ticking timer keeps uv_run polling the
// sockets meanwhile, since with nothing holding the loop UV_RUN_ONCE returns at once.
inline void RunUntil(uv_loop_t* loop, const std::function<bool()>& done,
                     int line = __builtin_LINE()) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(
      &tick, [](uv_timer_t*) {}, 5, 5);
  auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done() && std::chrono::steady_clock::now() < limit) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  ASSERT_TRUE(done()) << "condition of line " << line << " not reached within 5 s";
}

// Runs `loop` for `ms` milliseconds.
inline void Sleep(uv_loop_t* loop, uint64_t ms) {
  uv_timer_t timer;
  bool fired = false;
  uv_timer_init(loop, &timer);
  timer.data = &fired;
  uv_timer_start(
      &timer, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, ms, 0);
  RunUntil(loop, [&] { return fired; });
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
}

}  // namespace hirecache::test_support

#endif  // HIRECACHE_TEST_SUPPORT_LOOP_RUNNER_H_
