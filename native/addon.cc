// addon.cc: module entry. Syscalls only, no policy: every export is a thin
// wrapper whose failures throw (or reject with) errors carrying errno and arguments.
#include "addon.h"

namespace tapwire {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitFdPass(env, exports);
  InitExec(env, exports);
  InitNetns(env, exports);
  InitTun(env, exports);
  InitSock(env, exports);
  InitNft(env, exports);
  InitNlBatch(env, exports);
  InitNlDumps(env, exports);
  InitMount(env, exports);
  InitIcmp6(env, exports);
  InitUdp4(env, exports);
  return exports;
}

}  // namespace tapwire

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  return tapwire::Init(env, exports);
}

NODE_API_MODULE(tapwire, InitAll)
