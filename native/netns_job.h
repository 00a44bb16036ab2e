// netns_job.h: native work run off the JS thread, inside a network namespace. A job
// runs on a libuv pool thread: Execute() enters the namespace, calls Run(), and always
// returns the thread to the namespace it came from (aborting the process if it cannot,
// as withNetns does), so a pool thread never keeps a pod namespace. JS gets a Promise.
// For kernel calls that block for milliseconds (an nftables commit, unregistering
// links), which would otherwise stall every DHCP server on the daemon's event loop.
#pragma once
#include <napi.h>

#include <string>
#include <utility>

namespace tapwire {

class NetnsJob : public Napi::AsyncWorker {
 public:
  NetnsJob(Napi::Env env, std::string netns);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  // Runs on the pool thread inside the namespace; on failure calls Fail() and returns.
  // An exception it lets escape becomes ENOMEM (bad_alloc) or EIO, after the thread has
  // left the namespace.
  virtual void Run() = 0;
  // The resolved value, built on the JS thread after a successful Run().
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  // Records a failed call: the promise rejects with ErrnoError(syscall, err, detail).
  void Fail(const char* syscall, int err, std::string detail);
  // Extra properties for the rejection (set on the JS thread).
  virtual void Decorate(Napi::Object) {}

  const std::string netns_;

 private:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  void RejectWith(const char* message) noexcept;
  void RejectQuietly(Napi::Value reason) noexcept;

  Napi::Promise::Deferred deferred_;
  const char* syscall_ = nullptr;
  int err_ = 0;
  std::string detail_;
  bool not_netns_ = false;
};

// Makes a Job (a NetnsJob) from `args`, queues it on the pool and returns its promise;
// the worker deletes itself when done.
template <class Job, class... Args>
Napi::Value QueueJob(Napi::Env env, Args&&... args) {
  auto* job = new Job(env, std::forward<Args>(args)...);
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

}  // namespace tapwire
