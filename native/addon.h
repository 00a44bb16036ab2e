// addon.h: the exports of each native source file, registered in addon.cc.
#pragma once
#include <napi.h>

namespace tapwire {
void InitFdPass(Napi::Env env, Napi::Object exports);
void InitExec(Napi::Env env, Napi::Object exports);
void InitNetns(Napi::Env env, Napi::Object exports);
void InitTun(Napi::Env env, Napi::Object exports);
void InitSock(Napi::Env env, Napi::Object exports);
void InitNft(Napi::Env env, Napi::Object exports);
void InitNlBatch(Napi::Env env, Napi::Object exports);
void InitNlDumps(Napi::Env env, Napi::Object exports);
void InitMount(Napi::Env env, Napi::Object exports);
void InitIcmp6(Napi::Env env, Napi::Object exports);
void InitUdp4(Napi::Env env, Napi::Object exports);
}  // namespace tapwire
