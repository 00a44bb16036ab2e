// errors.h: one way to throw a failed syscall into JS, carrying errno, its
// symbolic code, the syscall's name and the arguments it was called with.
#pragma once
#include <napi.h>
#include <string>
#include <utility>
#include <vector>

namespace tapwire {

using Args = std::vector<std::pair<std::string, Napi::Value>>;

// Builds an Error whose message reads "<syscall>(<detail>) failed: <strerror> (<CODE>)"
// and whose properties are {errno, code, syscall, ...args}.
Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err, const std::string& detail,
                       const Args& args = {});

// A TypeError naming the argument that is wrong.
[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);

// Argument readers: throw a TypeError naming the argument when it has the wrong type.
int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* name);
// A UDP port: an integer 0..65535.
int ArgPort(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<std::string> ArgStringArray(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<int> ArgFdArray(const Napi::CallbackInfo& info, size_t i, const char* name);

}  // namespace tapwire
