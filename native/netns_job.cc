#include "netns_job.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "errors.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

namespace tapwire {

NetnsJob::NetnsJob(Napi::Env env, std::string netns)
    : Napi::AsyncWorker(env, "tapwire.netnsJob"), netns_(std::move(netns)), deferred_(Napi::Promise::Deferred::New(env)) {}

void NetnsJob::Fail(const char* syscall, int err, std::string detail) {
  syscall_ = syscall;
  err_ = err;
  detail_ = std::move(detail);
}

void NetnsJob::Execute() {
  int target = open(netns_.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) return Fail("open", errno, netns_);
  struct statfs sfs;
  if (fstatfs(target, &sfs) < 0 || static_cast<unsigned long>(sfs.f_type) != NSFS_MAGIC) {
    close(target);
    return Fail("setns", EINVAL, netns_ + ": not a network namespace");
  }
  int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig < 0) {
    int err = errno;
    close(target);
    return Fail("open", err, "/proc/thread-self/ns/net");
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int err = errno;
    close(target);
    close(orig);
    return Fail("setns", err, netns_ + ", CLONE_NEWNET");
  }
  close(target);
  Run();
  if (setns(orig, CLONE_NEWNET) != 0) {
    // A pool thread stuck in a pod namespace is worse than a crash.
    std::fprintf(stderr, "tapwire: FATAL: pool thread cannot return to its network namespace after %s: %s\n",
                 netns_.c_str(), std::strerror(errno));
    std::abort();
  }
  close(orig);
}

void NetnsJob::OnOK() {
  Napi::Env env = Env();
  if (syscall_ == nullptr) {
    deferred_.Resolve(Result(env));
    return;
  }
  Napi::Error e = ErrnoError(env, syscall_, err_, detail_, {{"netns", Napi::String::New(env, netns_)}});
  Decorate(e.Value());
  deferred_.Reject(e.Value());
}

void NetnsJob::OnError(const Napi::Error& e) { deferred_.Reject(e.Value()); }

}  // namespace tapwire
