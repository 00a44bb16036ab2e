#include "netns_job.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <new>

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
  if (!entered) {
    not_netns_ = why.not_netns;
    return Fail(why.syscall, why.err, why.detail);
  }
  // Whatever Run() does, the thread leaves the namespace before this returns: the guard's
  // destructor runs on every way out, an exception thrown by a handler below included
  // (node-addon-api turns an escaping exception into a rejection, and the pool thread
  // must not stay in the pod's namespace meanwhile). The handlers' texts are short
  // enough not to allocate.
  struct Leave {
    int orig;
    const std::string& label;
    ~Leave() { LeaveNetnsOrAbort(orig, label); }
  } leave{orig, netns_};
  try {
    Run();
  } catch (const std::bad_alloc&) {
    Fail("job", ENOMEM, "out of memory");
  } catch (...) {
    Fail("job", EIO, "exception");
  }
}

// OnOK and OnError run on the JS thread from libuv's after-work callback, with no JS
// frame below them: a JS exception left pending there is an uncaught exception that ends
// the daemon, and a C++ exception reaching libuv's C frames terminates it (SIGABRT).
// So neither lets anything out: whatever fails while building the outcome, the promise
// still settles, rejected with what failed; if even that fails, it stays pending.
void NetnsJob::OnOK() {
  Napi::Env env = Env();
  try {
    if (syscall_ == nullptr) {
      deferred_.Resolve(Result(env));
      return;
    }
    Napi::Error e = ErrnoError(env, syscall_, err_, detail_, {{"netns", Napi::String::New(env, netns_)}});
    if (not_netns_) e.Value().Set("notNetns", Napi::Boolean::New(env, true));
    Decorate(e.Value());
    deferred_.Reject(e.Value());
  } catch (const Napi::Error& e) {
    RejectQuietly(e.Value());
  } catch (const std::bad_alloc&) {
    RejectWith("netns job: out of memory building its outcome");
  } catch (...) {
    RejectWith("netns job: cannot build its outcome");
  }
}

void NetnsJob::OnError(const Napi::Error& e) {
  try {
    deferred_.Reject(e.Value());
  } catch (...) {
    RejectWith("netns job failed");
  }
}

void NetnsJob::RejectWith(const char* message) noexcept {
  try {
    RejectQuietly(Napi::Error::New(Env(), message).Value());
  } catch (...) {
  }
}

void NetnsJob::RejectQuietly(Napi::Value reason) noexcept {
  try {
    deferred_.Reject(reason);
  } catch (...) {
  }
}

}  // namespace tapwire
