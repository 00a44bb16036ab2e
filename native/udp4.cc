// udp4.cc: an IPv4 UDP socket (udpSocketBoundToDevice's) read and written from the
// addon instead of dgram, so that a datagram's way through Node is one poll callback and
// one call, with nothing allocated for it (the DHCP server's tail latency: see
// docs/dhcp-latency.md).
//   sock4Watch(fd, buf, cb): for each datagram, its bytes are received into buf (the
//     caller's, reused: valid only during the call) and cb(length, fromAddress, fromPort)
//     is called, fromAddress the sender's IPv4 address as an unsigned 32-bit number; a
//     datagram longer than buf is cut to buf's length (length > buf.length says so). A
//     receive error other than EAGAIN is cb(-errno, 0, 0). Close with sock4Close(fd).
//   sock4Send(fd, dst, port, data): one datagram to dst:port, now; returns 0, or the errno
//     of the failed sendto (EAGAIN when the socket's send buffer is full: not queued).
//   socketPort(fd): the local port a socket is bound to (getsockname).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "addon.h"
#include "errors.h"
#include "watch.h"

namespace tapwire {
namespace {

// Bounded so a flood cannot hold the loop (libuv's own UDP read does 32 per wake-up).
constexpr int kMaxPerWake = 32;

void Drain4(Watch* w) {
  for (int n = 0; n < kMaxPerWake; n++) {
    struct sockaddr_in from;
    socklen_t fromLen = sizeof from;
    std::memset(&from, 0, sizeof from);
    ssize_t got = recvfrom(w->fd, w->data, w->cap, MSG_DONTWAIT | MSG_TRUNC,
                           reinterpret_cast<struct sockaddr*>(&from), &fromLen);
    if (got < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR) continue;
      CallWatch(w, {Napi::Number::New(w->env, -err), Napi::Number::New(w->env, 0), Napi::Number::New(w->env, 0)});
      return;  // the next poll shows it again if it persists
    }
    CallWatch(w, {Napi::Number::New(w->env, static_cast<double>(got)),
                  Napi::Number::New(w->env, static_cast<double>(ntohl(from.sin_addr.s_addr))),
                  Napi::Number::New(w->env, ntohs(from.sin_port))});
    if (!StillWatched(w)) return;  // the callback closed it (and maybe reused the fd)
  }
}

Napi::Value Sock4Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (info.Length() < 2 || !info[1].IsBuffer()) ThrowType(env, "buf must be a Buffer");
  if (info.Length() < 3 || !info[2].IsFunction()) ThrowType(env, "cb must be a function");
  auto buf = info[1].As<Napi::Buffer<unsigned char>>();
  if (buf.Length() == 0) ThrowType(env, "buf must not be empty");
  StartWatch(env, fd, info[2].As<Napi::Function>(), Drain4, buf);
  return env.Undefined();
}

Napi::Value Sock4Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CloseWatched(env, ArgFd(info, 0, "fd"));
  return env.Undefined();
}

Napi::Value Sock4Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  std::string dst = ArgString(info, 1, "dst");
  int port = ArgPort(info, 2, "port");
  if (info.Length() < 4 || !info[3].IsBuffer()) ThrowType(env, "data must be a Buffer");
  auto data = info[3].As<Napi::Buffer<unsigned char>>();
  struct sockaddr_in to;
  std::memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, dst.c_str(), &to.sin_addr) != 1) ThrowType(env, "dst is not an IPv4 address: " + dst);
  ssize_t n = sendto(fd, data.Data(), data.Length(), MSG_DONTWAIT | MSG_NOSIGNAL,
                     reinterpret_cast<struct sockaddr*>(&to), sizeof to);
  return Napi::Number::New(env, n < 0 ? errno : 0);
}

Napi::Value SocketPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&sa), &len) < 0)
    throw ErrnoError(env, "getsockname", errno, "fd " + std::to_string(fd));
  if (sa.ss_family == AF_INET) return Napi::Number::New(env, ntohs(reinterpret_cast<struct sockaddr_in*>(&sa)->sin_port));
  if (sa.ss_family == AF_INET6) return Napi::Number::New(env, ntohs(reinterpret_cast<struct sockaddr_in6*>(&sa)->sin6_port));
  throw ErrnoError(env, "getsockname", EAFNOSUPPORT, "fd " + std::to_string(fd));
}

}  // namespace

void InitUdp4(Napi::Env env, Napi::Object exports) {
  exports.Set("sock4Watch", Napi::Function::New(env, Sock4Watch, "sock4Watch"));
  exports.Set("sock4Close", Napi::Function::New(env, Sock4Close, "sock4Close"));
  exports.Set("sock4Send", Napi::Function::New(env, Sock4Send, "sock4Send"));
  exports.Set("socketPort", Napi::Function::New(env, SocketPort, "socketPort"));
}

}  // namespace tapwire
