// nldumps.cc: netlinkDumpEach(items, protocol, maxBytes, timeoutMs): one netlink dump in
// each of many network namespaces, on one pool thread (one JS round trip for all): for
// each item it opens the namespace's path, enters it, makes a netlink socket there, checks
// the namespace's SO_NETNS_COOKIE against the one expected (another namespace at the path
// is not read), sends the item's dump request, reads the answer to NLMSG_DONE, and returns
// to the namespace it came from. Each item's outcome is its own: the answer's messages, or
// the errno of what failed. Bounded: past the deadline the items not yet read fail
// ETIMEDOUT, and each socket waits at most what is left of it for the kernel.
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "netns.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace tapwire {
namespace {

struct Item {
  std::string netns;
  std::string cookie;  // decimal; empty: not checked
  std::vector<uint8_t> request;
  // outcome
  std::vector<uint8_t> answer;
  const char* syscall = nullptr;
  int err = 0;
  std::string detail;
};

double NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

class DumpEachJob : public Napi::AsyncWorker {
 public:
  DumpEachJob(Napi::Env env, std::vector<Item> items, int protocol, size_t max_bytes, double timeout_ms)
      : Napi::AsyncWorker(env, "tapwire.netlinkDumpEach"),
        items_(std::move(items)),
        protocol_(protocol),
        max_bytes_(max_bytes),
        timeout_ms_(timeout_ms),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    double deadline = NowMs() + timeout_ms_;
    std::vector<uint8_t> in(1 << 15);
    for (Item& it : items_) {
      double left = deadline - NowMs();
      if (left <= 0) {
        Fail(it, "netlinkDumpEach", ETIMEDOUT, "deadline passed before this namespace was read");
        continue;
      }
      try {
        ReadOne(it, in, left);
      } catch (const std::bad_alloc&) {
        Fail(it, "netlinkDumpEach", ENOMEM, "out of memory");
      } catch (...) {
        Fail(it, "netlinkDumpEach", EIO, "exception");
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      Napi::Array out = Napi::Array::New(env, items_.size());
      for (size_t i = 0; i < items_.size(); i++) {
        const Item& it = items_[i];
        if (it.syscall == nullptr) {
          out.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, it.answer.data(), it.answer.size()));
        } else {
          out.Set(static_cast<uint32_t>(i), ErrnoError(env, it.syscall, it.err, it.detail).Value());
        }
      }
      deferred_.Resolve(out);
    } catch (const Napi::Error& e) {
      Reject(e.Value());
    } catch (...) {
      try {
        Reject(Napi::Error::New(env, "netlinkDumpEach: cannot build its outcome").Value());
      } catch (...) {
      }
    }
  }

  void OnError(const Napi::Error& e) override { Reject(e.Value()); }

 private:
  static void Fail(Item& it, const char* syscall, int err, std::string detail) {
    it.syscall = syscall;
    it.err = err;
    it.detail = std::move(detail);
    it.answer.clear();
  }

  void Reject(Napi::Value v) noexcept {
    try {
      deferred_.Reject(v);
    } catch (...) {
    }
  }

  // One item, inside its namespace; the thread always leaves it before this returns.
  void ReadOne(Item& it, std::vector<uint8_t>& in, double left_ms) {
    // O_NONBLOCK: a FIFO named as the path must not block the thread in open()
    int target = open(it.netns.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (target < 0) return Fail(it, "open", errno, it.netns);
    int orig = -1;
    NetnsFailure why;
    bool entered = EnterNetns(target, it.netns, &orig, &why);
    close(target);
    if (!entered) return Fail(it, why.syscall, why.err, why.detail);
    struct Leave {
      int orig;
      const std::string& label;
      ~Leave() { LeaveNetnsOrAbort(orig, label); }
    } leave{orig, it.netns};
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol_);
    if (fd < 0) return Fail(it, "socket", errno, "AF_NETLINK, protocol " + std::to_string(protocol_));
    struct Closer {
      int fd;
      ~Closer() { close(fd); }
    } closer{fd};
    if (!it.cookie.empty()) {
      uint64_t cookie = 0;
      socklen_t len = sizeof cookie;
      if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) < 0)
        return Fail(it, "getsockopt", errno, "SO_NETNS_COOKIE");
      if (std::to_string(cookie) != it.cookie)
        return Fail(it, "netlinkDumpEach", ESTALE, it.netns + " leads to another namespace than expected");
    }
    struct timeval tv;
    tv.tv_sec = static_cast<time_t>(left_ms / 1000);
    tv.tv_usec = static_cast<suseconds_t>((left_ms - tv.tv_sec * 1000.0) * 1000);
    if (tv.tv_sec == 0 && tv.tv_usec < 1000) tv.tv_usec = 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_nl kernel;
    std::memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    ssize_t sent;
    do {
      sent = sendto(fd, it.request.data(), it.request.size(), 0, reinterpret_cast<struct sockaddr*>(&kernel),
                    sizeof kernel);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) return Fail(it, "sendto", errno, "netlink dump request");
    uint32_t seq = reinterpret_cast<const struct nlmsghdr*>(it.request.data())->nlmsg_seq;
    // SO_RCVTIMEO bounds each recv; the deadline bounds the whole dump
    const double deadline = NowMs() + left_ms;
    for (;;) {
      if (NowMs() > deadline) return Fail(it, "recv", ETIMEDOUT, "netlink dump");
      ssize_t n = recv(fd, in.data(), in.size(), MSG_TRUNC);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = (errno == EAGAIN || errno == EWOULDBLOCK) ? ETIMEDOUT : errno;
        return Fail(it, "recv", err, "netlink dump");
      }
      if (static_cast<size_t>(n) > in.size()) return Fail(it, "recv", EMSGSIZE, "netlink dump part");
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<struct nlmsghdr*>(in.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_seq != seq) continue;
        if (h->nlmsg_type == NLMSG_DONE) return;
        if (h->nlmsg_type == NLMSG_ERROR) {
          int err = h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))
                        ? -static_cast<struct nlmsgerr*>(NLMSG_DATA(h))->error
                        : EPROTO;
          return Fail(it, "recv", err != 0 ? err : EPROTO, "netlink dump");
        }
        auto* b = reinterpret_cast<uint8_t*>(h);
        // the last message of a part may end unpadded: never past what was received
        size_t take = std::min<size_t>(NLMSG_ALIGN(h->nlmsg_len), static_cast<size_t>(len));
        it.answer.insert(it.answer.end(), b, b + take);
        if (it.answer.size() > max_bytes_)
          return Fail(it, "recv", E2BIG, "netlink dump past " + std::to_string(max_bytes_) + " bytes");
      }
    }
  }

  std::vector<Item> items_;
  int protocol_;
  size_t max_bytes_;
  double timeout_ms_;
  Napi::Promise::Deferred deferred_;
};

// netlinkDumpEach(items: {netns: string, cookie?: string, request: Buffer}[], protocol: number,
//   maxBytes: number, timeoutMs: number): Promise<(Buffer | Error)[]>
Napi::Value NetlinkDumpEach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) ThrowType(env, "items must be an array");
  if (info.Length() < 2 || !info[1].IsNumber()) ThrowType(env, "protocol must be a number");
  if (info.Length() < 3 || !info[2].IsNumber()) ThrowType(env, "maxBytes must be a number");
  if (info.Length() < 4 || !info[3].IsNumber()) ThrowType(env, "timeoutMs must be a number");
  int protocol = info[1].As<Napi::Number>().Int32Value();
  if (protocol < 0 || protocol > 31) ThrowType(env, "protocol must be a netlink protocol 0..31");
  double max_bytes = info[2].As<Napi::Number>().DoubleValue();
  if (!(max_bytes >= 0 && max_bytes <= (1 << 30))) ThrowType(env, "maxBytes must be 0..2^30");
  double timeout_ms = info[3].As<Napi::Number>().DoubleValue();
  if (!(timeout_ms > 0 && timeout_ms <= 600000)) ThrowType(env, "timeoutMs must be > 0 and <= 600000");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<Item> items(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) ThrowType(env, "items[" + std::to_string(i) + "] must be an object");
    Napi::Object o = v.As<Napi::Object>();
    Napi::Value ns = o.Get("netns");
    if (!ns.IsString() || ns.As<Napi::String>().Utf8Value().empty())
      ThrowType(env, "items[" + std::to_string(i) + "].netns must be a path");
    items[i].netns = ns.As<Napi::String>().Utf8Value();
    Napi::Value cookie = o.Get("cookie");
    if (!cookie.IsUndefined()) {
      if (!cookie.IsString()) ThrowType(env, "items[" + std::to_string(i) + "].cookie must be a decimal string");
      items[i].cookie = cookie.As<Napi::String>().Utf8Value();
    }
    Napi::Value req = o.Get("request");
    if (!req.IsBuffer()) ThrowType(env, "items[" + std::to_string(i) + "].request must be a Buffer");
    auto b = req.As<Napi::Buffer<uint8_t>>();
    if (b.Length() < NLMSG_HDRLEN) ThrowType(env, "items[" + std::to_string(i) + "].request must be a netlink message");
    items[i].request.assign(b.Data(), b.Data() + b.Length());
  }
  auto* job = new DumpEachJob(env, std::move(items), protocol, static_cast<size_t>(max_bytes), timeout_ms);
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

}  // namespace

void InitNlDumps(Napi::Env env, Napi::Object exports) {
  exports.Set("netlinkDumpEach", Napi::Function::New(env, NetlinkDumpEach, "netlinkDumpEach"));
}

}  // namespace tapwire
