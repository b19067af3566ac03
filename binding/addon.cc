// Init only: registers each native class of hirecache on the module's exports, and the
// environment cleanup that closes every client when the process or worker exits.
#include "addon.h"

#include "client/client_wrap.h"
#include "ratelimit/rate_limiter_wrap.h"
#include "store/memory_store_wrap.h"

namespace hirecache::binding {

HirecacheAddon::HirecacheAddon(Napi::Env env, Napi::Object exports) {
  // Classes:
  exports.Set("LocalLimiter", DefineLocalLimiter(env));
  exports.Set("MemoryStore", DefineMemoryStore(env));
  exports.Set("Client", ClientWrap::Define(env));
  exports.Set("clientConstants", ClientConstants(env));
  exports.Set("keySlot", Napi::Function::New<KeySlotOf>(env, "keySlot"));

  napi_add_async_cleanup_hook(env, OnEnvCleanup, this, &cleanup_handle_);
}

void HirecacheAddon::OnEnvCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* addon = static_cast<HirecacheAddon*>(arg);
  addon->cleanup_started_ = true;
  // Teardown may unregister clients: iterate over a copy.
  std::unordered_set<ClientWrap*> clients = addon->clients_;
  for (ClientWrap* client : clients) client->Teardown();
  if (addon->open_cores_ == 0 && addon->cleanup_handle_ != nullptr) {
    napi_remove_async_cleanup_hook(addon->cleanup_handle_);
    addon->cleanup_handle_ = nullptr;
  }
}

void HirecacheAddon::CoreClosed() {
  if (--open_cores_ == 0 && cleanup_started_ && cleanup_handle_ != nullptr) {
    napi_remove_async_cleanup_hook(cleanup_handle_);
    cleanup_handle_ = nullptr;
  }
}

}  // namespace hirecache::binding

using HirecacheAddon = hirecache::binding::HirecacheAddon;
NODE_API_ADDON(HirecacheAddon)
