#include "netns_job.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "errors.h"
#include "netns.h"

namespace tapwire {

NetnsJob::NetnsJob(Napi::Env env, std::string netns)
    : Napi::AsyncWorker(env, "tapwire.netnsJob"),
      netns_(std::move(netns)),
      deferred_(Napi::Promise::Deferred::New(env)) {}

void NetnsJob::Fail(const char* syscall, int err, std::string detail) {
  syscall_ = syscall;
  err_ = err;
  detail_ = std::move(detail);
}

void NetnsJob::Execute() {
  int target = open(netns_.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) return Fail("open", errno, netns_);
  int orig = -1;
  NetnsFailure why;
  bool entered = EnterNetns(target, netns_, &orig, &why);
  close(target);
  if (!entered) return Fail(why.syscall, why.err, why.detail);
  Run();
  LeaveNetnsOrAbort(orig, netns_);
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
