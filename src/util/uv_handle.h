// libuv handles that close and free themselves, and the count of what is still closing.
//
// A libuv handle may be freed only in its close callback. UvHandle<T> owns a heap-allocated
// handle and hands it to uv_close when it is closed or destroyed; the close callback frees
// it. A HandleGroup counts every handle (and any other asynchronous resource, such as a
// resolver request) that an owner opened and that libuv has not finished with, and tells
// the owner when the last one is done: nobody counts open handles by hand.
#ifndef HIRECACHE_UTIL_UV_HANDLE_H_
#define HIRECACHE_UTIL_UV_HANDLE_H_

#include <uv.h>

#include <cassert>
#include <cstdint>

namespace hirecache {

// Counts the resources of one owner that libuv still holds. The owner calls Acquire for each
// one it opens and Release when libuv is done with it; `on_idle(arg)` runs at each Release
// that brings the count to zero, and may delete the group's owner (and so the group).
class HandleGroup {
 public:
  using IdleCallback = void (*)(void* arg);
  HandleGroup(IdleCallback on_idle, void* arg) : on_idle_(on_idle), arg_(arg) {}
  HandleGroup(const HandleGroup&) = delete;
  HandleGroup& operator=(const HandleGroup&) = delete;
  ~HandleGroup() { assert(open_ == 0); }

  void Acquire() { ++open_; }
  void Release() {
    assert(open_ > 0);
    if (--open_ == 0 && on_idle_ != nullptr) {
      IdleCallback on_idle = on_idle_;
      void* arg = arg_;
      on_idle(arg);  // Nothing of `this` is touched after: it may be gone.
    }
  }
  int open() const { return open_; }

 private:
  IdleCallback on_idle_;
  void* arg_;
  int open_ = 0;
};

// One libuv handle of type T (uv_timer_t, uv_idle_t, uv_tcp_t…), initialized by the caller
// with the matching uv_*_init on get(). Close() (or the destructor) starts uv_close; the
// memory is freed in the close callback, and the group, if any, is told then.
template <typename T>
class UvHandle {
 public:
  explicit UvHandle(HandleGroup* group = nullptr) : handle_(new Slot{}), group_(group) {
    handle_->group = group;
    if (group_ != nullptr) group_->Acquire();
  }
  ~UvHandle() { Close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  // The handle; only while it is open (after Close() there is none to touch).
  T* get() const {
    assert(handle_ != nullptr);
    return &handle_->handle;
  }
  uv_handle_t* base() const { return reinterpret_cast<uv_handle_t*>(get()); }
  bool closed() const { return handle_ == nullptr; }

  // Starts closing the handle; callbacks registered on it no longer run after this. The
  // handle must have been initialized. Closing twice is a no-op.
  void Close() {
    if (handle_ == nullptr) return;
    Slot* slot = handle_;
    handle_ = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&slot->handle), [](uv_handle_t* h) {
      // `handle` is the first member of Slot: the handle's address is the slot's.
      Slot* s = reinterpret_cast<Slot*>(h);
      HandleGroup* group = s->group;
      delete s;
      if (group != nullptr) group->Release();
    });
  }

 private:
  struct Slot {
    T handle;  // first member: see the close callback
    HandleGroup* group;
  };
  Slot* handle_;
  HandleGroup* group_;
};

// Milliseconds on the monotonic clock that libuv's own loop time is read from, read now
// (uv_now() is the time the loop cached at the start of its turn, which can be far behind
// after synchronous work).
inline uint64_t MonotonicNowUs() { return uv_hrtime() / 1000; }
inline uint64_t MonotonicNowMs() { return uv_hrtime() / 1000000; }

// The delay to pass to uv_timer_start so the timer fires no earlier than `deadline_ms`
// (a MonotonicNowMs() value): libuv counts the delay from the loop's cached time, which may
// lag behind the real time, so the delay is measured from that cached time too.
inline uint64_t TimerDelayUntil(uv_loop_t* loop, uint64_t deadline_ms) {
  uint64_t cached = uv_now(loop);
  return deadline_ms > cached ? deadline_ms - cached : 0;
}

}  // namespace hirecache

#endif  // HIRECACHE_UTIL_UV_HANDLE_H_
