// A growable array of trivially copyable elements in a memory mapping of its own.
//
// Why not std::vector: growing moves the array's pages (mremap) instead of copying its
// bytes, capacity not yet written costs no memory (the kernel maps a page on first touch),
// a fresh array reads as zeros without being written, and freeing it returns the memory to
// the system at once, where malloc would keep a large freed buffer in its heap. The store's
// slot array and bucket table and the limiter's index use it.
#ifndef HIRECACHE_UTIL_MAPPED_ARRAY_H_
#define HIRECACHE_UTIL_MAPPED_ARRAY_H_

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace hirecache {

// The untyped mapping under MappedArray (mapped_array.cc).
namespace mapped_memory {

// Maps (when `data` is null) or remaps `data` from `old_bytes` to `new_bytes`; both are
// multiples of kSystemPage. New bytes read as zeros. Throws std::bad_alloc when the system
// refuses (the old mapping is then unchanged).
void* Resize(void* data, size_t old_bytes, size_t new_bytes);
// Unmaps `bytes` at `data` (a no-op for null).
void Free(void* data, size_t bytes);

constexpr size_t kSystemPage = 4096;

inline size_t RoundToPages(size_t bytes) {
  return (bytes + kSystemPage - 1) / kSystemPage * kSystemPage;
}

}  // namespace mapped_memory

template <typename T>
class MappedArray {
  static_assert(std::is_trivially_copyable_v<T>, "MappedArray moves its bytes");

 public:
  MappedArray() = default;
  ~MappedArray() { Reset(); }
  MappedArray(const MappedArray&) = delete;
  MappedArray& operator=(const MappedArray&) = delete;

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  // The bytes of the mapping that the elements written so far may have touched.
  size_t used_bytes() const { return mapped_memory::RoundToPages(size_ * sizeof(T)); }

  // Appends `v`. Throws std::bad_alloc when the mapping cannot grow (the array is then
  // unchanged).
  void push_back(const T& v) {
    if (size_ == capacity_) Grow(size_ + 1);
    data_[size_++] = v;
  }

  // Replaces the contents with `n` zero-filled elements, in a fresh mapping (so no page of
  // the old contents stays resident). Throws std::bad_alloc (the array is then unchanged).
  void AssignZeros(size_t n) {
    MappedArray fresh;
    if (n > 0) fresh.Grow(n);  // A fresh anonymous mapping reads as zeros.
    fresh.size_ = n;
    swap(fresh);
  }

  // Frees the mapping; the array is then empty.
  void Reset() {
    mapped_memory::Free(data_, mapped_memory::RoundToPages(capacity_ * sizeof(T)));
    data_ = nullptr;
    size_ = capacity_ = 0;
  }

  void swap(MappedArray& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

 private:
  // Grows the capacity to at least `at_least` elements, at least doubling it so that
  // push_back stays amortized O(1).
  void Grow(size_t at_least) {
    const size_t want = std::max({at_least, capacity_ * 2, mapped_memory::kSystemPage / sizeof(T)});
    const size_t old_bytes = mapped_memory::RoundToPages(capacity_ * sizeof(T));
    const size_t new_bytes = mapped_memory::RoundToPages(want * sizeof(T));
    data_ = static_cast<T*>(mapped_memory::Resize(data_, old_bytes, new_bytes));
    capacity_ = new_bytes / sizeof(T);
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace hirecache

#endif  // HIRECACHE_UTIL_MAPPED_ARRAY_H_
