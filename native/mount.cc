// mount.cc: bind mounts (a netns pinned at a path, as `ip netns add` and `mount --bind`
// make them), without a mount(8) process per pin.
#include <errno.h>
#include <sys/mount.h>

#include <string>

#include "addon.h"
#include "errors.h"

namespace tapwire {
namespace {

// bindMount(source, target): mount(source, target, NULL, MS_BIND, NULL). target must exist.
Napi::Value BindMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source = ArgString(info, 0, "source");
  std::string target = ArgString(info, 1, "target");
  if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) < 0)
    throw ErrnoError(env, "mount", errno, source + " on " + target + ", MS_BIND",
                     {{"source", Napi::String::New(env, source)}, {"target", Napi::String::New(env, target)}});
  return env.Undefined();
}

}  // namespace

void InitMount(Napi::Env env, Napi::Object exports) {
  exports.Set("bindMount", Napi::Function::New(env, BindMount, "bindMount"));
}

}  // namespace tapwire
