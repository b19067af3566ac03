#include "client/argument_buffer.h"

#include <algorithm>
#include <cstring>

namespace hirecache::binding {

char* ArgumentBuffer::Reserve(size_t extra) {
  if (capacity_ - size_ < extra) {
    size_t capacity = std::max({capacity_ * 2, size_ + extra, static_cast<size_t>(256)});
    std::unique_ptr<char[]> bigger(new char[capacity]);
    if (size_ > 0) std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    capacity_ = capacity;
  }
  return data_.get() + size_;
}

void ArgumentBuffer::Append(const char* bytes, size_t n) {
  if (n == 0) return;
  std::memcpy(Reserve(n), bytes, n);
  size_ += n;
}

void ArgumentBuffer::Clear() {
  size_ = 0;
  constexpr size_t kKeep = 64 * 1024;
  if (capacity_ > kKeep) {
    data_.reset();
    capacity_ = 0;
  }
}

}  // namespace hirecache::binding
