// nft.cc: one nftables command script through libnftables (the library the nft CLI is
// built on), in the calling thread's network namespace: run it inside a withNetns window
// to reach a pod's tables without spawning nsenter + nft. libnftables is dlopen'd on first
// use (no build-time dependency: Debian's nftables package ships libnftables.so.1, not
// its header), and a context lives only for one call, so its netlink socket is opened and
// closed in the namespace the call runs in.
#include <dlfcn.h>

#include <string>

#include "addon.h"
#include "errors.h"

namespace tapwire {
namespace {

// The few libnftables entry points used (stable ABI since nftables 0.9).
struct NftApi {
  void* (*ctx_new)(unsigned int flags);
  void (*ctx_free)(void* ctx);
  int (*buffer_output)(void* ctx);
  int (*buffer_error)(void* ctx);
  const char* (*get_output)(void* ctx);
  const char* (*get_error)(void* ctx);
  void (*set_output_flags)(void* ctx, unsigned int flags);
  int (*run_cmd)(void* ctx, const char* buf);
};

constexpr unsigned int kOutputJson = 1u << 4;  // NFT_CTX_OUTPUT_JSON

const NftApi* LoadApi(std::string* why) {
  static NftApi api;
  static bool tried = false;
  static bool ok = false;
  static std::string error;
  if (!tried) {
    tried = true;
    void* h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = dlerror();
      error = e != nullptr ? e : "dlopen failed";
    } else {
      auto sym = [&](const char* name) -> void* {
        void* p = dlsym(h, name);
        if (p == nullptr && error.empty()) error = std::string("libnftables.so.1 has no ") + name;
        return p;
      };
      api.ctx_new = reinterpret_cast<void* (*)(unsigned int)>(sym("nft_ctx_new"));
      api.ctx_free = reinterpret_cast<void (*)(void*)>(sym("nft_ctx_free"));
      api.buffer_output = reinterpret_cast<int (*)(void*)>(sym("nft_ctx_buffer_output"));
      api.buffer_error = reinterpret_cast<int (*)(void*)>(sym("nft_ctx_buffer_error"));
      api.get_output = reinterpret_cast<const char* (*)(void*)>(sym("nft_ctx_get_output_buffer"));
      api.get_error = reinterpret_cast<const char* (*)(void*)>(sym("nft_ctx_get_error_buffer"));
      api.set_output_flags = reinterpret_cast<void (*)(void*, unsigned int)>(sym("nft_ctx_output_set_flags"));
      api.run_cmd = reinterpret_cast<int (*)(void*, const char*)>(sym("nft_run_cmd_from_buffer"));
      ok = error.empty();
    }
  }
  if (!ok) *why = error;
  return ok ? &api : nullptr;
}

// nftRun(script, json): {rc, output, error}. rc is libnftables' return (0 = done); output
// and error are what nft would have printed on stdout and stderr. Throws ELIBACC (with
// `unavailable: true`) when libnftables cannot be loaded, ENOMEM when no context can be made.
Napi::Value NftRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string script = ArgString(info, 0, "script");
  bool json = info.Length() > 1 && info[1].ToBoolean().Value();
  std::string why;
  const NftApi* api = LoadApi(&why);
  if (api == nullptr) {
    Napi::Error e = ErrnoError(env, "dlopen", ELIBACC, "libnftables.so.1: " + why);
    e.Value().Set("unavailable", Napi::Boolean::New(env, true));
    throw e;
  }
  void* ctx = api->ctx_new(0);
  if (ctx == nullptr) throw ErrnoError(env, "nft_ctx_new", ENOMEM, "libnftables context");
  api->buffer_output(ctx);
  api->buffer_error(ctx);
  if (json) api->set_output_flags(ctx, kOutputJson);
  int rc = api->run_cmd(ctx, script.c_str());
  const char* out = api->get_output(ctx);
  const char* err = api->get_error(ctx);
  Napi::Object r = Napi::Object::New(env);
  r.Set("rc", Napi::Number::New(env, rc));
  r.Set("output", Napi::String::New(env, out != nullptr ? out : ""));
  r.Set("error", Napi::String::New(env, err != nullptr ? err : ""));
  api->ctx_free(ctx);
  return r;
}

}  // namespace

void InitNft(Napi::Env env, Napi::Object exports) {
  exports.Set("nftRun", Napi::Function::New(env, NftRun, "nftRun"));
}

}  // namespace tapwire
