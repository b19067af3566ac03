#include "util/mapped_array.h"

#include <sys/mman.h>

#include <new>

namespace hirecache::mapped_memory {

void* Resize(void* data, size_t old_bytes, size_t new_bytes) {
  void* mem = data == nullptr ? mmap(nullptr, new_bytes, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                              : mremap(data, old_bytes, new_bytes, MREMAP_MAYMOVE);
  if (mem == MAP_FAILED) throw std::bad_alloc();
  return mem;
}

void Free(void* data, size_t bytes) {
  if (data != nullptr) munmap(data, bytes);
}

}  // namespace hirecache::mapped_memory
