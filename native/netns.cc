// netns.cc: a synchronous network-namespace window for the calling (JS) thread.
// setns() moves only the calling thread; libuv's pool threads are created at module
// load (in the host namespace), so no pool thread ever inherits a pod namespace; a pool
// thread enters one only inside a NetnsJob, which always brings it back.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "addon.h"
#include "errors.h"
#include "netns.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

namespace tapwire {

bool EnterNetns(int target, const std::string& label, int* orig, NetnsFailure* why) {
  struct statfs sfs;
  int nserr = 0;
  if (fstatfs(target, &sfs) < 0)
    nserr = errno;
  else if (static_cast<unsigned long>(sfs.f_type) != NSFS_MAGIC)
    nserr = EINVAL;
  if (nserr != 0) {
    *why = {"setns", nserr, label + ": not a network namespace", true};
    return false;
  }
  *orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (*orig < 0) {
    *why = {"open", errno, "/proc/thread-self/ns/net", false};
    return false;
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    *why = {"setns", errno, label + ", CLONE_NEWNET", false};
    close(*orig);
    *orig = -1;
    return false;
  }
  return true;
}

void LeaveNetnsOrAbort(int orig, const std::string& label) {
  if (setns(orig, CLONE_NEWNET) != 0) {
    // A thread stuck in a pod namespace is worse than a crash.
    std::fprintf(stderr, "tapwire: FATAL: cannot return to the original network namespace after %s: %s\n",
                 label.c_str(), std::strerror(errno));
    std::abort();
  }
  close(orig);
}

namespace {

// withNetns(target: string | number, fn: (hostNsFd: number) => T): T
// fn runs synchronously inside the target namespace and receives an fd of the namespace
// the thread came from (valid only during the window). The thread always returns.
Napi::Value WithNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsFunction()) ThrowType(env, "fn must be a function");
  Napi::Function fn = info[1].As<Napi::Function>();
  int target;
  bool own_target = false;
  std::string label;
  if (info.Length() > 0 && info[0].IsString()) {
    label = ArgString(info, 0, "netns");
    target = open(label.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0)
      throw ErrnoError(env, "open", errno, label, {{"netns", Napi::String::New(env, label)}});
    own_target = true;
  } else {
    target = ArgFd(info, 0, "netns");
    label = "fd " + std::to_string(target);
  }
  int orig = -1;
  NetnsFailure why;
  bool entered = EnterNetns(target, label, &orig, &why);
  if (own_target) close(target);
  if (!entered) {
    Args args;
    if (std::string(why.syscall) == "setns") args.push_back({"netns", Napi::String::New(env, label)});
    Napi::Error e = ErrnoError(env, why.syscall, why.err, why.detail, args);
    if (why.not_netns) e.Value().Set("notNetns", Napi::Boolean::New(env, true));
    throw e;
  }
  Napi::Value result;
  try {
    result = fn.Call({Napi::Number::New(env, orig)});
  } catch (...) {
    LeaveNetnsOrAbort(orig, label);
    throw;
  }
  LeaveNetnsOrAbort(orig, label);
  if (result.IsPromise())
    ThrowType(env, "withNetns: fn returned a Promise; a namespace window must be synchronous");
  return result;
}

// netnsInode(): inode of the calling thread's network namespace (for proofs in tests).
Napi::Value NetnsInode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct stat st;
  if (stat("/proc/thread-self/ns/net", &st) < 0)
    throw ErrnoError(env, "stat", errno, "/proc/thread-self/ns/net");
  return Napi::Number::New(env, static_cast<double>(st.st_ino));
}

void Noop(uv_work_t*) {}
void NoopDone(uv_work_t* w, int) { delete w; }

// Submitting one work item makes libuv create its whole pool now, from this thread,
// while it is still in the host namespace.
void WarmThreadpool(Napi::Env env) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return;
  uv_work_t* w = new uv_work_t;
  if (uv_queue_work(loop, w, Noop, NoopDone) != 0) delete w;
}

}  // namespace

void InitNetns(Napi::Env env, Napi::Object exports) {
  WarmThreadpool(env);
  exports.Set("withNetns", Napi::Function::New(env, WithNetns, "withNetns"));
  exports.Set("netnsInode", Napi::Function::New(env, NetnsInode, "netnsInode"));
}

}  // namespace tapwire
