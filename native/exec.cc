// exec.cc: execve(2) from a Node process, undoing what Node did to the process
// state a fresh program expects to inherit: close-on-exec on stdio, O_NONBLOCK on
// stdio, ignored signals (SIGPIPE, SIGXFSZ) and the blocked-signal mask.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace tapwire {
namespace {

int ClearCloexec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return errno;
  if ((flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0) return errno;
  return 0;
}

void ClearNonblock(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

// Every disposition back to SIG_DFL (SIGKILL/SIGSTOP cannot change, glibc's reserved
// real-time signals refuse with EINVAL), then an empty mask: what libuv's uv_spawn
// gives a child, since Node ignores SIGPIPE and SIGXFSZ and handlers do not survive exec.
void ResetSignals() {
  struct sigaction sa = {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &sa, nullptr);
  }
  sigset_t empty;
  sigemptyset(&empty);
  pthread_sigmask(SIG_SETMASK, &empty, nullptr);
}

// execve(path, argv: string[], env: string[], keepFds: number[]): never returns on success.
// On failure it throws; the process state (signals, stdio flags) is already reset, so
// the caller must exit rather than carry on.
Napi::Value Execve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  std::vector<std::string> argv = ArgStringArray(info, 1, "argv");
  std::vector<std::string> envv = ArgStringArray(info, 2, "env");
  std::vector<int> keep = ArgFdArray(info, 3, "keepFds");
  if (argv.empty()) ThrowType(env, "argv must hold at least argv[0]");

  // Fail before touching process state when the target cannot be executed at all.
  if (access(path.c_str(), X_OK) < 0)
    throw ErrnoError(env, "execve", errno, path, {{"path", Napi::String::New(env, path)}});
  for (int fd : keep) {
    int err = ClearCloexec(fd);
    if (err != 0)
      throw ErrnoError(env, "fcntl", err, "fd " + std::to_string(fd) + ", F_SETFD",
                       {{"fd", Napi::Number::New(env, fd)}});
  }
  for (int fd = 0; fd <= 2; fd++) {
    ClearCloexec(fd);  // a closed stdio fd stays closed; not an error
    ClearNonblock(fd);
  }
  std::vector<char*> cargv, cenv;
  for (auto& s : argv) cargv.push_back(&s[0]);
  cargv.push_back(nullptr);
  for (auto& s : envv) cenv.push_back(&s[0]);
  cenv.push_back(nullptr);

  ResetSignals();
  execve(path.c_str(), cargv.data(), cenv.data());
  throw ErrnoError(env, "execve", errno, path, {{"path", Napi::String::New(env, path)}});
}

}  // namespace

void InitExec(Napi::Env env, Napi::Object exports) {
  exports.Set("execve", Napi::Function::New(env, Execve, "execve"));
}

}  // namespace tapwire
