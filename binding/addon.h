// The addon instance: per-environment state of hirecache (one per main thread or worker).
#ifndef HIRECACHE_BINDING_ADDON_H_
#define HIRECACHE_BINDING_ADDON_H_

#include <napi.h>

#include <unordered_set>

#include "client/tls.h"

namespace hirecache::binding {

class ClientWrap;

class HirecacheAddon : public Napi::Addon<HirecacheAddon> {
 public:
  HirecacheAddon(Napi::Env env, Napi::Object exports);

  // Clients register while their connection machinery is open, so that the environment's
  // cleanup (process exit, worker exit) can close every libuv handle before the loop goes.
  void AddClient(ClientWrap* client) { clients_.insert(client); }
  void ForgetClient(ClientWrap* client) { clients_.erase(client); }
  void CoreOpened() { ++open_cores_; }
  void CoreClosed();

  // TLS contexts shared by the clients of this environment.
  TlsContextCache tls_contexts;

  // JS is on the stack (a binding method was called from JS): settlements must not open a
  // callback scope of their own.
  int js_depth = 0;

 private:
  static void OnEnvCleanup(napi_async_cleanup_hook_handle handle, void* arg);

  std::unordered_set<ClientWrap*> clients_;
  int open_cores_ = 0;
  napi_async_cleanup_hook_handle cleanup_handle_ = nullptr;
  bool cleanup_started_ = false;
};

// Marks a binding method's run as JS-initiated.
class JsCallScope {
 public:
  explicit JsCallScope(HirecacheAddon* addon) : addon_(addon) { ++addon_->js_depth; }
  ~JsCallScope() { --addon_->js_depth; }
  JsCallScope(const JsCallScope&) = delete;
  JsCallScope& operator=(const JsCallScope&) = delete;

 private:
  HirecacheAddon* addon_;
};

}  // namespace hirecache::binding

#endif  // HIRECACHE_BINDING_ADDON_H_
