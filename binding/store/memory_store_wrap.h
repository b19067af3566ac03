// The JS class `MemoryStore` over the core's embedded store. Every method is synchronous:
// the store lives in this process and never waits for anything.
#ifndef HIRECACHE_BINDING_STORE_MEMORY_STORE_WRAP_H_
#define HIRECACHE_BINDING_STORE_MEMORY_STORE_WRAP_H_

#include <napi.h>

#include <memory>

namespace hirecache::binding {

// Returns the constructor of the JS class `MemoryStore`, for the addon's exports.
Napi::Function DefineMemoryStore(Napi::Env env);

// The store with its clock and conversion buffers (memory_store_wrap.cc). Shared by the
// JS object and the detached functions of fastMethods(), so it lives until all are gone.
class StoreState;

// new MemoryStore({ maxEntries, maxBytes, sweepPerWrite }) with get, getBuffer, set, del,
// mget, deletePrefix, deletePrefixStep, sweep, clear, stats, and fastMethods():
// { get, getBinary, set, del }
// as plain functions that need no `this`, which saves the unwrapping of the JS object on
// every call of the hot path (lib/store/memory-store.js uses them).
class MemoryStoreWrap : public Napi::ObjectWrap<MemoryStoreWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit MemoryStoreWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Get(const Napi::CallbackInfo& info);
  Napi::Value GetBuffer(const Napi::CallbackInfo& info);
  Napi::Value Set(const Napi::CallbackInfo& info);
  Napi::Value Del(const Napi::CallbackInfo& info);
  Napi::Value MGet(const Napi::CallbackInfo& info);
  Napi::Value DeletePrefix(const Napi::CallbackInfo& info);
  Napi::Value DeletePrefixStep(const Napi::CallbackInfo& info);
  Napi::Value Sweep(const Napi::CallbackInfo& info);
  Napi::Value Clear(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value FastMethods(const Napi::CallbackInfo& info);

  std::shared_ptr<StoreState> state_;
};

}  // namespace hirecache::binding

#endif  // HIRECACHE_BINDING_STORE_MEMORY_STORE_WRAP_H_
