// nlbatch.cc: netlinkBatchIn(netns, protocol, messages): sends a buffer of ready-made
// netlink messages to the kernel in one sendto() from inside a network namespace, on a
// pool thread (a NetnsJob), and returns every NLMSG_ERROR (ack or error) that came
// back. The kernel handles what one sendto() carries in the sender's own syscall (an
// nfnetlink batch is committed or aborted before sendto() returns), so every reply is
// already queued on the socket when it returns: the replies are read without waiting,
// until the socket is empty. What the messages mean is the caller's business. For
// requests the kernel answers in the sender's syscall: nfnetlink batches, rtnetlink
// changes (not dumps, which continue as the socket is read, nor protocols answered from
// a kernel thread).
#include <errno.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "netns_job.h"

#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NLMSGERR_ATTR_MSG
#define NLMSGERR_ATTR_MSG 1
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif

namespace tapwire {
namespace {

// sendto() the kernel (netlink port 0), retried on EINTR; sendto's result.
ssize_t SendToKernel(int fd, const uint8_t* data, size_t len) {
  struct sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = sendto(fd, data, len, 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  return sent;
}

struct Reply {
  uint32_t seq;
  int error;  // 0 for an ack, else a positive errno
  std::string message;  // the kernel's extended ack text, when it gave one
};

class BatchJob : public NetnsJob {
 public:
  BatchJob(Napi::Env env, std::string netns, int protocol, std::vector<uint8_t> buf)
      : NetnsJob(env, std::move(netns)), protocol_(protocol), buf_(std::move(buf)) {}

 protected:
  void Run() override {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol_);
    if (fd < 0) return Fail("socket", errno, "AF_NETLINK, protocol " + std::to_string(protocol_));
    struct Closer {
      int fd;
      ~Closer() { close(fd); }
    } closer{fd};  // closed however Exchange() ends, an exception included
    Exchange(fd);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, replies_.size());
    for (size_t i = 0; i < replies_.size(); i++) {
      Napi::Object r = Napi::Object::New(env);
      r.Set("seq", Napi::Number::New(env, replies_[i].seq));
      r.Set("error", Napi::Number::New(env, replies_[i].error));
      if (!replies_[i].message.empty()) r.Set("message", Napi::String::New(env, replies_[i].message));
      out.Set(static_cast<uint32_t>(i), r);
    }
    return out;
  }

 private:
  void Exchange(int fd) {
    int one = 1;
    // Acks without the request echoed back; errors with the kernel's text.
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    // A batch must fit one skb: make room for it (SO_SNDBUFFORCE needs CAP_NET_ADMIN;
    // without it, SO_SNDBUF's cap applies and a too-big batch fails EMSGSIZE below).
    int want = static_cast<int>(buf_.size()) + 4096;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) < 0)
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
    int rcv = 1 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    if (SendToKernel(fd, buf_.data(), buf_.size()) < 0) return Fail("sendto", errno, std::to_string(buf_.size()) + " bytes");
    std::vector<uint8_t> in(1 << 16);
    for (;;) {
      ssize_t n = recv(fd, in.data(), in.size(), MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // all replies read
        return Fail("recv", errno, "netlink replies");  // ENOBUFS: replies were lost
      }
      if (n == 0) return;
      if (static_cast<size_t>(n) > in.size()) return Fail("recv", EMSGSIZE, "a reply of " + std::to_string(n) + " bytes");
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<struct nlmsghdr*>(in.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) return Fail("recv", EPROTO, "truncated ack");
        auto* e = static_cast<struct nlmsgerr*>(NLMSG_DATA(h));
        Reply r{e->msg.nlmsg_seq, -e->error, ""};
        if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
          // TLVs follow the nlmsgerr and, unless capped, the echoed request
          size_t off = NLMSG_LENGTH(sizeof(struct nlmsgerr));
          if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
          auto* base = reinterpret_cast<uint8_t*>(h);
          while (off + sizeof(struct nlattr) <= h->nlmsg_len) {
            auto* a = reinterpret_cast<struct nlattr*>(base + off);
            if (a->nla_len < sizeof(struct nlattr) || off + a->nla_len > h->nlmsg_len) break;
            if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && a->nla_len > NLA_HDRLEN) {
              const char* s = reinterpret_cast<const char*>(a) + NLA_HDRLEN;
              r.message.assign(s, strnlen(s, a->nla_len - NLA_HDRLEN));
            }
            off += NLA_ALIGN(a->nla_len);
          }
        }
        replies_.push_back(std::move(r));
      }
    }
  }

  int protocol_;
  std::vector<uint8_t> buf_;
  std::vector<Reply> replies_;
};

// netlinkBatchIn(netns: string, protocol: number, messages: Buffer):
//   Promise<{seq, error, message?}[]>
Napi::Value NetlinkBatchIn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = ArgString(info, 0, "netns");
  if (info.Length() < 2 || !info[1].IsNumber()) ThrowType(env, "protocol must be a number");
  int protocol = info[1].As<Napi::Number>().Int32Value();
  if (protocol < 0 || protocol > 31) ThrowType(env, "protocol must be a netlink protocol 0..31");
  if (info.Length() < 3 || !info[2].IsBuffer()) ThrowType(env, "messages must be a Buffer");
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < NLMSG_HDRLEN) ThrowType(env, "messages must hold at least one netlink message");
  std::vector<uint8_t> buf(b.Data(), b.Data() + b.Length());
  return QueueJob<BatchJob>(env, std::move(netns), protocol, std::move(buf));
}

// netlinkSocketHere(protocol): a close-on-exec netlink socket of `protocol` in the calling
// thread's namespace (call it in a withNetns window), with a 1 MB receive buffer and a 2 s
// receive timeout, for netlinkDump.
Napi::Value NetlinkSocketHere(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowType(env, "protocol must be a number");
  int protocol = info[0].As<Napi::Number>().Int32Value();
  if (protocol < 0 || protocol > 31) ThrowType(env, "protocol must be a netlink protocol 0..31");
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw ErrnoError(env, "socket", errno, "AF_NETLINK, protocol " + std::to_string(protocol));
  int rcv = 1 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  struct timeval tv = {2, 0};  // a dump is answered as it is read: never waits long
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return Napi::Number::New(env, fd);
}

// netlinkDump(fd, request, maxBytes): sends one dump request (a whole netlink message) on
// the netlink socket fd and reads its answer to NLMSG_DONE, synchronously (the kernel makes
// each part as the previous one is read, in the reader's own syscall); returns the messages
// of the answer (headers included) back to back, DONE left out. A NLMSG_ERROR answer
// throws it; an answer past maxBytes throws E2BIG, the rest of it unread (the socket is
// then of no further use: close it).
Napi::Value NetlinkDump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (info.Length() < 2 || !info[1].IsBuffer()) ThrowType(env, "request must be a Buffer");
  if (info.Length() < 3 || !info[2].IsNumber()) ThrowType(env, "maxBytes must be a number");
  double maxBytes = info[2].As<Napi::Number>().DoubleValue();
  auto req = info[1].As<Napi::Buffer<uint8_t>>();
  if (req.Length() < NLMSG_HDRLEN) ThrowType(env, "request must be a netlink message");
  uint32_t seq = reinterpret_cast<const struct nlmsghdr*>(req.Data())->nlmsg_seq;
  if (SendToKernel(fd, req.Data(), req.Length()) < 0) throw ErrnoError(env, "sendto", errno, "netlink dump request");
  std::vector<uint8_t> out;
  std::vector<uint8_t> in(1 << 15);
  for (;;) {
    ssize_t n = recv(fd, in.data(), in.size(), MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ErrnoError(env, "recv", errno, "netlink dump");
    }
    if (static_cast<size_t>(n) > in.size()) throw ErrnoError(env, "recv", EMSGSIZE, "netlink dump part");
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(in.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;  // an answer to something earlier
      if (h->nlmsg_type == NLMSG_DONE) return Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
      if (h->nlmsg_type == NLMSG_ERROR) {
        int err = h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))
                      ? -static_cast<struct nlmsgerr*>(NLMSG_DATA(h))->error
                      : EPROTO;
        throw ErrnoError(env, "recv", err != 0 ? err : EPROTO, "netlink dump");
      }
      auto* b = reinterpret_cast<uint8_t*>(h);
      out.insert(out.end(), b, b + NLMSG_ALIGN(h->nlmsg_len));
      if (static_cast<double>(out.size()) > maxBytes)
        throw ErrnoError(env, "recv", E2BIG, "netlink dump past " + std::to_string(static_cast<long long>(maxBytes)) + " bytes");
    }
  }
}

}  // namespace

void InitNlBatch(Napi::Env env, Napi::Object exports) {
  exports.Set("netlinkBatchIn", Napi::Function::New(env, NetlinkBatchIn, "netlinkBatchIn"));
  exports.Set("netlinkSocketHere", Napi::Function::New(env, NetlinkSocketHere, "netlinkSocketHere"));
  exports.Set("netlinkDump", Napi::Function::New(env, NetlinkDump, "netlinkDump"));
}

}  // namespace tapwire
