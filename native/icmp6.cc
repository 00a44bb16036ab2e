// icmp6.cc: the sockets IPv6 on a guest's bridge needs that dgram cannot make itself.
//   udp6SocketBoundToDevice(ifname, port): a UDP/IPv6 socket for the DHCPv6 server, bound
//     to [::]:port on ifname and joined to ff02::1:2 there (RFC 8415 7.1). Not for dgram:
//     libuv names a link-local peer's scope with if_indextoname in the process's own netns,
//     where the bridge's index does not exist, and fails the receive (ENXIO).
//   icmp6Open(ifname): a raw ICMPv6 socket on ifname that receives only Router
//     Solicitations (ICMP6_FILTER), joined to ff02::2 (all-routers), sending with hop limit
//     255 (RFC 4861 6.1.2) and allowed a source address the netns does not own
//     (IPV6_FREEBIND), so a Router Advertisement can carry the pod gateway's link-local.
//   sock6Watch(fd, cb): calls cb(data, from, port, hopLimit) for each datagram of either
//     socket, from the loop's own poll (uv_poll on the fd): no thread. sock6Close(fd):
//     stops watching and closes.
//   sock6Send(fd, dst, port, src, data): one datagram on the socket's interface to dst
//     (scoped to that interface) from src (IPV6_PKTINFO; "::" lets the kernel choose); on
//     the raw socket the kernel fills in the ICMPv6 checksum.
// Call the two open functions inside withNetns: a socket belongs to the netns it was made in.
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <memory>
#include <string>

#include "addon.h"
#include "errors.h"
#include "watch.h"

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

namespace tapwire {
namespace {

std::string CheckIfname(Napi::Env env, const Napi::CallbackInfo& info, const char* call) {
  std::string ifname = ArgString(info, 0, "ifname");
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    throw ErrnoError(env, call, ENAMETOOLONG, "\"" + ifname + "\"", {{"ifname", Napi::String::New(env, ifname)}});
  return ifname;
}

struct Opener {
  Napi::Env env;
  std::string ifname;
  int fd = -1;
  unsigned int index = 0;
  [[noreturn]] void Fail(const char* call, const std::string& what) {
    int err = errno;
    if (fd >= 0) close(fd);
    throw ErrnoError(env, call, err, what + " on \"" + ifname + "\"", {{"ifname", Napi::String::New(env, ifname)}});
  }
  void Open(int type, int proto) {
    index = if_nametoindex(ifname.c_str());
    if (index == 0) Fail("if_nametoindex", "\"" + ifname + "\"");
    fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd < 0) Fail("socket", "AF_INET6");
    if (type == SOCK_DGRAM) {
      int one = 1;
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) Fail("setsockopt", "IPV6_V6ONLY");
    }
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), static_cast<socklen_t>(ifname.size() + 1)) < 0)
      Fail("setsockopt", "SO_BINDTODEVICE");
  }
  void Join(const char* group) {
    struct ipv6_mreq mr;
    std::memset(&mr, 0, sizeof mr);
    inet_pton(AF_INET6, group, &mr.ipv6mr_multiaddr);
    mr.ipv6mr_interface = index;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
      Fail("setsockopt", std::string("IPV6_ADD_MEMBERSHIP ") + group);
  }
};

Napi::Value Udp6SocketBoundToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Opener o{env, CheckIfname(env, info, "setsockopt")};
  int port = ArgPort(info, 1, "port");
  o.Open(SOCK_DGRAM, 0);
  int one = 1;
  if (setsockopt(o.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) o.Fail("setsockopt", "SO_REUSEADDR");
  struct sockaddr_in6 sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(static_cast<uint16_t>(port));
  sa.sin6_addr = in6addr_any;
  if (bind(o.fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) < 0) o.Fail("bind", "[::]:" + std::to_string(port));
  o.Join("ff02::1:2");
  return Napi::Number::New(env, o.fd);
}

Napi::Value Icmp6Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Opener o{env, CheckIfname(env, info, "setsockopt")};
  o.Open(SOCK_RAW, IPPROTO_ICMPV6);
  struct icmp6_filter filter;
  ICMP6_FILTER_SETBLOCKALL(&filter);
  ICMP6_FILTER_SETPASS(ND_ROUTER_SOLICIT, &filter);
  if (setsockopt(o.fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) < 0) o.Fail("setsockopt", "ICMP6_FILTER");
  int one = 1, zero = 0, hops = 255;
  if (setsockopt(o.fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) < 0) o.Fail("setsockopt", "IPV6_RECVHOPLIMIT");
  if (setsockopt(o.fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) < 0)
    o.Fail("setsockopt", "IPV6_MULTICAST_HOPS");
  if (setsockopt(o.fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops) < 0) o.Fail("setsockopt", "IPV6_UNICAST_HOPS");
  if (setsockopt(o.fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof zero) < 0)
    o.Fail("setsockopt", "IPV6_MULTICAST_LOOP");
  if (setsockopt(o.fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &o.index, sizeof o.index) < 0)
    o.Fail("setsockopt", "IPV6_MULTICAST_IF");
  if (setsockopt(o.fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one) < 0) o.Fail("setsockopt", "IPV6_FREEBIND");
  o.Join("ff02::2");
  return Napi::Number::New(env, o.fd);
}

// Drains a watched IPv6 socket: each datagram (with its sender and hop limit) to the
// callback as a Buffer of its own; bounded so a flood cannot hold the loop.
void Drain6(Watch* w) {
  for (int n = 0; n < 64; n++) {
    unsigned char buf[9216];
    unsigned char ctrl[CMSG_SPACE(sizeof(int)) + 64];
    struct sockaddr_in6 from;
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh;
    std::memset(&mh, 0, sizeof mh);
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctrl;
    mh.msg_controllen = sizeof ctrl;
    ssize_t got = recvmsg(w->fd, &mh, MSG_DONTWAIT);
    if (got < 0) return;  // EAGAIN, or an error the next poll will show again
    int hopLimit = -1;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) std::memcpy(&hopLimit, CMSG_DATA(c), sizeof hopLimit);
    }
    char text[INET6_ADDRSTRLEN] = "";
    inet_ntop(AF_INET6, &from.sin6_addr, text, sizeof text);
    CallWatch(w, {Napi::Buffer<unsigned char>::Copy(w->env, buf, static_cast<size_t>(got)),
                  Napi::String::New(w->env, text), Napi::Number::New(w->env, ntohs(from.sin6_port)),
                  Napi::Number::New(w->env, hopLimit)});
    if (!StillWatched(w)) return;  // the callback closed it (and maybe reused the fd)
  }
}

Napi::Value Sock6Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (info.Length() < 2 || !info[1].IsFunction()) ThrowType(env, "cb must be a function");
  StartWatch(env, fd, info[1].As<Napi::Function>(), Drain6);
  return env.Undefined();
}

Napi::Value Sock6Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CloseWatched(env, ArgFd(info, 0, "fd"));
  return env.Undefined();
}

Napi::Value Sock6Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  std::string dst = ArgString(info, 1, "dst");
  int port = ArgPort(info, 2, "port");
  std::string src = ArgString(info, 3, "src");
  if (info.Length() < 5 || !info[4].IsBuffer()) ThrowType(env, "data must be a Buffer");
  auto data = info[4].As<Napi::Buffer<unsigned char>>();
  struct sockaddr_in6 to;
  std::memset(&to, 0, sizeof to);
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET6, dst.c_str(), &to.sin6_addr) != 1) ThrowType(env, "dst is not an IPv6 address: " + dst);
  struct in6_pktinfo pi;
  std::memset(&pi, 0, sizeof pi);
  if (inet_pton(AF_INET6, src.c_str(), &pi.ipi6_addr) != 1) ThrowType(env, "src is not an IPv6 address: " + src);
  // the interface: the one the socket is bound to, by index (SO_BINDTOIFINDEX reads the
  // socket's own; a name would be looked up in this thread's netns, not the socket's)
  int bound = 0;
  socklen_t len = sizeof bound;
  if (getsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &bound, &len) < 0)
    throw ErrnoError(env, "getsockopt", errno, "SO_BINDTOIFINDEX");
  pi.ipi6_ifindex = static_cast<unsigned int>(bound);
  to.sin6_scope_id = pi.ipi6_ifindex;
  unsigned char ctrl[CMSG_SPACE(sizeof pi)];
  std::memset(ctrl, 0, sizeof ctrl);
  struct iovec iov = {data.Data(), data.Length()};
  struct msghdr mh;
  std::memset(&mh, 0, sizeof mh);
  mh.msg_name = &to;
  mh.msg_namelen = sizeof to;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctrl;
  mh.msg_controllen = sizeof ctrl;
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof pi);
  std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
  if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
    throw ErrnoError(env, "sendmsg", errno, dst + " from " + src, {{"dst", Napi::String::New(env, dst)}});
  return env.Undefined();
}

}  // namespace

void InitIcmp6(Napi::Env env, Napi::Object exports) {
  exports.Set("udp6SocketBoundToDevice", Napi::Function::New(env, Udp6SocketBoundToDevice, "udp6SocketBoundToDevice"));
  exports.Set("icmp6Open", Napi::Function::New(env, Icmp6Open, "icmp6Open"));
  exports.Set("sock6Watch", Napi::Function::New(env, Sock6Watch, "sock6Watch"));
  exports.Set("sock6Close", Napi::Function::New(env, Sock6Close, "sock6Close"));
  exports.Set("sock6Send", Napi::Function::New(env, Sock6Send, "sock6Send"));
}

}  // namespace tapwire
