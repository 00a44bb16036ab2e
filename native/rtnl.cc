// rtnl.cc: linkDeleteGroupIn(netns, group): one RTM_DELLINK with ifindex 0 and IFLA_GROUP,
// which makes the kernel unregister every link of that group in the namespace as one
// batch. Unregistering waits for RCU grace periods (tens of ms), in the sender's own
// syscall, so it runs in a NetnsJob on a pool thread instead of on the JS thread.
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "addon.h"
#include "errors.h"
#include "netns_job.h"

namespace tapwire {
namespace {

class DeleteGroupJob : public NetnsJob {
 public:
  DeleteGroupJob(Napi::Env env, std::string netns, uint32_t group)
      : NetnsJob(env, std::move(netns)), group_(group) {}

 protected:
  void Run() override {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return Fail("socket", errno, "AF_NETLINK, NETLINK_ROUTE");
    struct Closer {
      int fd;
      ~Closer() { close(fd); }
    } closer{fd};  // closed on every way out, an exception included
    struct timeval tv = {10, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) return Fail("setsockopt", errno, "SO_RCVTIMEO");
    struct {
      struct nlmsghdr n;
      struct ifinfomsg i;
      char attrs[RTA_SPACE(sizeof(uint32_t))];
    } req;
    std::memset(&req, 0, sizeof req);
    req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    req.n.nlmsg_type = RTM_DELLINK;
    req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.n.nlmsg_seq = 1;
    req.i.ifi_family = AF_UNSPEC;
    auto* rta = reinterpret_cast<struct rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(req.n.nlmsg_len));
    rta->rta_type = IFLA_GROUP;
    rta->rta_len = RTA_LENGTH(sizeof(uint32_t));
    std::memcpy(RTA_DATA(rta), &group_, sizeof group_);
    req.n.nlmsg_len = NLMSG_ALIGN(req.n.nlmsg_len) + RTA_ALIGN(rta->rta_len);
    std::string what = "RTM_DELLINK group " + std::to_string(group_);
    struct sockaddr_nl kernel;
    std::memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd, &req, req.n.nlmsg_len, 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof kernel) < 0) {
      int err = errno;
      return Fail("sendto", err, what);
    }
    char buf[8192];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        return Fail("recv", err, what);
      }
      for (auto* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, n);
           h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_seq != 1 || h->nlmsg_type != NLMSG_ERROR) continue;
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) return Fail("recv", EPROTO, what + ": truncated ack");
        int e = -static_cast<struct nlmsgerr*>(NLMSG_DATA(h))->error;
        if (e != 0) Fail("RTM_DELLINK", e, "group " + std::to_string(group_));
        return;
      }
    }
  }

 private:
  uint32_t group_;
};

// linkDeleteGroupIn(netns: string, group: number): Promise<void>
Napi::Value LinkDeleteGroupIn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = ArgString(info, 0, "netns");
  if (info.Length() < 2 || !info[1].IsNumber()) ThrowType(env, "group must be a number");
  double g = info[1].As<Napi::Number>().DoubleValue();
  if (g < 1 || g > 4294967295.0 || g != static_cast<double>(static_cast<uint32_t>(g)))
    ThrowType(env, "group must be an integer 1..4294967295, got " + std::to_string(g));
  return QueueJob<DeleteGroupJob>(env, std::move(netns), static_cast<uint32_t>(g));
}

}  // namespace

void InitRtnl(Napi::Env env, Napi::Object exports) {
  exports.Set("linkDeleteGroupIn", Napi::Function::New(env, LinkDeleteGroupIn, "linkDeleteGroupIn"));
}

}  // namespace tapwire
