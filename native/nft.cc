// nft.cc: one nftables command script through libnftables (the library the nft CLI is
// built on), in the calling thread's network namespace: run it inside a withNetns window
// to reach a pod's tables without spawning nsenter + nft. libnftables is dlopen'd on first
// use (no build-time dependency: Debian's nftables package ships libnftables.so.1, not
// its header), and a context lives only for one call, so its netlink socket is opened and
// closed in the namespace the call runs in. nftRunIn runs the same off the JS thread, in
// a NetnsJob. libnftables is not thread-safe (global tables set up per context), so
// every call holds one mutex.
//
// libnftables waits on its netlink socket with select(): an fd at or over FD_SETSIZE
// (1024) makes glibc's fortify check abort the whole process ("bit out of range 0 -
// FD_SETSIZE on fd_set"), and a daemon serving ~500 sandboxes holds more fds than that.
// So each call runs on a thread of its own with a private copy of the fd table
// (unshare(CLONE_FILES)) from which every fd above 2 is closed: the library's socket is a
// low fd there whatever the process holds, and the copy is gone with the thread. The
// thread is in the caller's network namespace (a new thread inherits its creator's).
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "addon.h"
#include "errors.h"
#include "netns_job.h"

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

std::mutex nft_mutex;

// Call with nft_mutex held.
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

struct NftOutcome {
  bool unavailable = false;  // libnftables cannot be loaded: `why` says why
  bool no_ctx = false;
  int isolate_errno = 0;  // the thread with low fds could not be made
  std::string why;
  int rc = 0;
  std::string output;
  std::string error;
};

// One script through a fresh context, in the calling thread (see OnLowFds).
void RunWith(const NftApi* api, const std::string& script, bool json, NftOutcome& o) {
  // Freed however this returns (an allocation below may throw).
  std::unique_ptr<void, void (*)(void*)> owned(api->ctx_new(0), api->ctx_free);
  void* ctx = owned.get();
  if (ctx == nullptr) {
    o.no_ctx = true;
    return;
  }
  api->buffer_output(ctx);
  api->buffer_error(ctx);
  if (json) api->set_output_flags(ctx, kOutputJson);
  o.rc = api->run_cmd(ctx, script.c_str());
  const char* out = api->get_output(ctx);
  const char* err = api->get_error(ctx);
  o.output = out != nullptr ? out : "";
  o.error = err != nullptr ? err : "";
}

// Runs fn on a new thread whose fd table is a private copy holding only 0-2 (see the top).
// Returns the errno that kept it from being set up (the thread, unshare), 0 when fn ran.
template <typename F>
int OnLowFds(F fn) {
  int err = 0;
  try {
    std::thread t([&] {
      if (unshare(CLONE_FILES) != 0) {
        err = errno;
        return;
      }
      // in the copy only; without close_range (Linux < 5.9) the library gets the lowest
      // free fd as before
      syscall(SYS_close_range, 3U, ~0U, 0U);
      try {
        fn();
      } catch (...) {
        err = ENOMEM;  // an allocation failed: nothing may leave the thread
      }
    });
    t.join();
  } catch (const std::system_error& e) {
    err = e.code().value() != 0 ? e.code().value() : EAGAIN;
  }
  return err;
}

NftOutcome RunScript(const std::string& script, bool json) {
  NftOutcome o;
  std::lock_guard<std::mutex> lock(nft_mutex);
  const NftApi* api = LoadApi(&o.why);
  if (api == nullptr) {
    o.unavailable = true;
    return o;
  }
  o.isolate_errno = OnLowFds([&] { RunWith(api, script, json, o); });
  return o;
}

Napi::Object ResultObject(Napi::Env env, const NftOutcome& o) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("rc", Napi::Number::New(env, o.rc));
  r.Set("output", Napi::String::New(env, o.output));
  r.Set("error", Napi::String::New(env, o.error));
  return r;
}

// nftRun(script, json): {rc, output, error}. rc is libnftables' return (0 = done); output
// and error are what nft would have printed on stdout and stderr. Throws ELIBACC (with
// `unavailable: true`) when libnftables cannot be loaded, ENOMEM when no context can be made.
Napi::Value NftRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string script = ArgString(info, 0, "script");
  bool json = info.Length() > 1 && info[1].ToBoolean().Value();
  NftOutcome o = RunScript(script, json);
  if (o.unavailable) {
    Napi::Error e = ErrnoError(env, "dlopen", ELIBACC, "libnftables.so.1: " + o.why);
    e.Value().Set("unavailable", Napi::Boolean::New(env, true));
    throw e;
  }
  if (o.isolate_errno != 0) throw ErrnoError(env, "unshare", o.isolate_errno, "a thread with its own fd table for libnftables");
  if (o.no_ctx) throw ErrnoError(env, "nft_ctx_new", ENOMEM, "libnftables context");
  return ResultObject(env, o);
}

class NftJob : public NetnsJob {
 public:
  NftJob(Napi::Env env, std::string netns, std::string script, bool json)
      : NetnsJob(env, std::move(netns)), script_(std::move(script)), json_(json) {}

 protected:
  void Run() override {
    o_ = RunScript(script_, json_);
    if (o_.unavailable) Fail("dlopen", ELIBACC, "libnftables.so.1: " + o_.why);
    if (o_.isolate_errno != 0) Fail("unshare", o_.isolate_errno, "a thread with its own fd table for libnftables");
    if (o_.no_ctx) Fail("nft_ctx_new", ENOMEM, "libnftables context");
  }
  Napi::Value Result(Napi::Env env) override { return ResultObject(env, o_); }
  void Decorate(Napi::Object e) override {
    if (o_.unavailable) e.Set("unavailable", Napi::Boolean::New(e.Env(), true));
  }

 private:
  std::string script_;
  bool json_;
  NftOutcome o_;
};

// nftRunIn(netns, script, json): Promise<{rc, output, error}>, run on a pool thread
// inside the namespace at path `netns`. Rejects as nftRun throws, or with the failed
// open/setns of the namespace.
Napi::Value NftRunIn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = ArgString(info, 0, "netns");
  std::string script = ArgString(info, 1, "script");
  bool json = info.Length() > 2 && info[2].ToBoolean().Value();
  return QueueJob<NftJob>(env, std::move(netns), std::move(script), json);
}

}  // namespace

void InitNft(Napi::Env env, Napi::Object exports) {
  exports.Set("nftRun", Napi::Function::New(env, NftRun, "nftRun"));
  exports.Set("nftRunIn", Napi::Function::New(env, NftRunIn, "nftRunIn"));
}

}  // namespace tapwire
