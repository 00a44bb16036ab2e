// sock.cc: an IPv4 UDP socket bound to one interface, created in the calling
// thread's namespace (call it inside withNetns) and adopted by dgram afterwards; a
// datagram to a Unix socket; an interface's index by name; a connected Unix stream
// pair and whether a stream socket's peer has closed.
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "addon.h"
#include "errors.h"

namespace tapwire {
namespace {

// udpSocketBoundToDevice(ifname, port): fd (non-blocking, close-on-exec) with
// SO_REUSEADDR, SO_BROADCAST, IP_PKTINFO and SO_BINDTODEVICE, bound to 0.0.0.0:port.
Napi::Value UdpSocketBoundToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgString(info, 0, "ifname");
  int port = ArgPort(info, 1, "port");
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    throw ErrnoError(env, "setsockopt", ENAMETOOLONG, "SO_BINDTODEVICE \"" + ifname + "\"",
                     {{"ifname", Napi::String::New(env, ifname)}});
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, "socket", errno, "AF_INET, SOCK_DGRAM");
  auto fail = [&](const char* call, const std::string& what) {
    int err = errno;
    close(fd);
    throw ErrnoError(env, call, err, what + " on \"" + ifname + "\"",
                     {{"ifname", Napi::String::New(env, ifname)},
                      {"port", Napi::Number::New(env, port)}});
  };
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    fail("setsockopt", "SO_REUSEADDR");
  if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0)
    fail("setsockopt", "SO_BROADCAST");
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(),
                 static_cast<socklen_t>(ifname.size() + 1)) < 0)
    fail("setsockopt", "SO_BINDTODEVICE");
  struct sockaddr_in sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) < 0)
    fail("bind", "0.0.0.0:" + std::to_string(port));
  return Napi::Number::New(env, fd);
}

// unixDatagramSend(path, data): one datagram to a Unix datagram socket; a leading '@'
// names an abstract socket (as systemd's NOTIFY_SOCKET may).
Napi::Value UnixDatagramSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsBuffer()) ThrowType(env, "data must be a Buffer");
  auto data = info[1].As<Napi::Buffer<uint8_t>>();
  struct sockaddr_un sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa.sun_path)
    throw ErrnoError(env, "sendto", ENAMETOOLONG, path, {{"path", Napi::String::New(env, path)}});
  std::memcpy(sa.sun_path, path.data(), path.size());
  if (path[0] == '@') sa.sun_path[0] = '\0';
  socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, "socket", errno, "AF_UNIX, SOCK_DGRAM");
  ssize_t n = sendto(fd, data.Data(), data.Length(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&sa), len);
  int err = errno;
  close(fd);
  if (n < 0) throw ErrnoError(env, "sendto", err, path, {{"path", Napi::String::New(env, path)}});
  return env.Undefined();
}

// ifIndex(ifname): the interface's index in the calling thread's namespace (call it in a
// withNetns window), from if_nametoindex; ENODEV when there is no such interface.
Napi::Value IfIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgString(info, 0, "ifname");
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    throw ErrnoError(env, "if_nametoindex", ENAMETOOLONG, "\"" + ifname + "\"",
                     {{"ifname", Napi::String::New(env, ifname)}});
  unsigned int index = if_nametoindex(ifname.c_str());
  int err = errno;
  if (index == 0)
    throw ErrnoError(env, "if_nametoindex", err, "\"" + ifname + "\"",
                     {{"ifname", Napi::String::New(env, ifname)}});
  return Napi::Number::New(env, index);
}

// unixStreamPair(): [a, b], a connected AF_UNIX stream pair, both close-on-exec and
// blocking (each end's user sets its own mode).
Napi::Value UnixStreamPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    throw ErrnoError(env, "socketpair", errno, "AF_UNIX, SOCK_STREAM");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, sv[0]));
  out.Set(1u, Napi::Number::New(env, sv[1]));
  return out;
}

// peerClosed(fd): whether the other end of a connected stream socket has closed (or shut
// down its writing side): poll(2) without waiting, POLLHUP or POLLRDHUP set.
Napi::Value PeerClosed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN | POLLRDHUP;
  p.revents = 0;
  if (poll(&p, 1, 0) < 0) throw ErrnoError(env, "poll", errno, "fd " + std::to_string(fd));
  if (p.revents & POLLNVAL) throw ErrnoError(env, "poll", EBADF, "fd " + std::to_string(fd));
  return Napi::Boolean::New(env, (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0);
}

}  // namespace

void InitSock(Napi::Env env, Napi::Object exports) {
  exports.Set("udpSocketBoundToDevice",
              Napi::Function::New(env, UdpSocketBoundToDevice, "udpSocketBoundToDevice"));
  exports.Set("unixDatagramSend", Napi::Function::New(env, UnixDatagramSend, "unixDatagramSend"));
  exports.Set("ifIndex", Napi::Function::New(env, IfIndex, "ifIndex"));
  exports.Set("unixStreamPair", Napi::Function::New(env, UnixStreamPair, "unixStreamPair"));
  exports.Set("peerClosed", Napi::Function::New(env, PeerClosed, "peerClosed"));
}

}  // namespace tapwire
