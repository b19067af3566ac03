// The argument bytes of the command being converted from JS, reused from call to call.
#ifndef HIRECACHE_BINDING_CLIENT_ARGUMENT_BUFFER_H_
#define HIRECACHE_BINDING_CLIENT_ARGUMENT_BUFFER_H_

#include <cstddef>
#include <memory>

namespace hirecache::binding {

// The argument bytes of the command being converted. Grows without zero-filling, and lets go
// of its memory after an unusually large command so one big value does not stay pinned.
class ArgumentBuffer {
 public:
  // Room for `extra` more bytes at the end; returns where they go.
  char* Reserve(size_t extra);
  void Commit(size_t n) { size_ += n; }
  void Append(const char* bytes, size_t n);
  void Clear();
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace hirecache::binding

#endif  // HIRECACHE_BINDING_CLIENT_ARGUMENT_BUFFER_H_
