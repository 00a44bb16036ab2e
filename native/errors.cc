#include "errors.h"

#include <uv.h>

#include <cerrno>
#include <cmath>
#include <cstring>

namespace tapwire {

Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err, const std::string& detail,
                       const Args& args) {
  // libuv's names, as Node's own errors carry them; errnos libuv has no name for (ELIBACC,
  // EPROTO's cousins) get glibc's instead of "Unknown system error -N".
  const char* code = uv_err_name(uv_translate_sys_error(err));
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
  if (std::strncmp(code, "Unknown", 7) == 0) {
    const char* name = strerrorname_np(err);
    if (name != nullptr) code = name;
  }
#endif
  std::string msg = std::string(syscall) + "(" + detail + ") failed: " + std::strerror(err) + " (" +
                    code + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  Napi::Object o = e.Value();
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("code", Napi::String::New(env, code));
  o.Set("syscall", Napi::String::New(env, syscall));
  for (const auto& kv : args) o.Set(kv.first, kv.second);
  return e;
}

void ThrowType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber())
    ThrowType(info.Env(), std::string(name) + " must be a file descriptor number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0 || d > 0x7fffffff || d != static_cast<int>(d))
    ThrowType(info.Env(), std::string(name) + " must be a non-negative integer, got " +
                              std::to_string(d));
  return static_cast<int>(d);
}

int ArgPort(const Napi::CallbackInfo& info, size_t i, const char* name) {
  const std::string want = std::string(name) + " must be an integer 0..65535";
  if (info.Length() <= i || !info[i].IsNumber()) ThrowType(info.Env(), want);
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0 || d > 65535 || d != static_cast<int>(d))
    ThrowType(info.Env(), want + ", got " + info[i].ToString().Utf8Value());
  return static_cast<int>(d);
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString())
    ThrowType(info.Env(), std::string(name) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos)
    ThrowType(info.Env(), std::string(name) + " must not contain NUL bytes");
  return s;
}

std::vector<std::string> ArgStringArray(const Napi::CallbackInfo& info, size_t i,
                                        const char* name) {
  if (info.Length() <= i || !info[i].IsArray())
    ThrowType(info.Env(), std::string(name) + " must be an array of strings");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!v.IsString())
      ThrowType(info.Env(), std::string(name) + "[" + std::to_string(k) + "] must be a string");
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s.find('\0') != std::string::npos)
      ThrowType(info.Env(),
                std::string(name) + "[" + std::to_string(k) + "] must not contain NUL bytes");
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<int> ArgFdArray(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsArray())
    ThrowType(info.Env(), std::string(name) + " must be an array of file descriptors");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int> out;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!std::isfinite(d) || d < 0 || d > 0x7fffffff || d != static_cast<int>(d))
      ThrowType(info.Env(), std::string(name) + "[" + std::to_string(k) +
                                "] must be a non-negative integer file descriptor");
    out.push_back(static_cast<int>(d));
  }
  return out;
}

}  // namespace tapwire
