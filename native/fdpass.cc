// fdpass.cc: file descriptors over Unix stream sockets (SCM_RIGHTS), a blocking
// connect for short-lived clients, peer credentials and the netns cookie of a socket.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace tapwire {
namespace {

constexpr size_t kMaxFds = 253;  // SCM_MAX_FD in the kernel

// Waits until fd is writable; used when a non-blocking socket takes a partial send.
int WaitWritable(int fd, int timeout_ms) {
  struct pollfd p = {fd, POLLOUT, 0};
  for (;;) {
    int r = poll(&p, 1, timeout_ms);
    if (r > 0) return 0;
    if (r == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

// sendFds(sockFd, data: Buffer, fds: number[]): number
// Sends all of data; the descriptors ride on the first sendmsg. Returns bytes sent.
Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock = ArgFd(info, 0, "sockFd");
  if (info.Length() < 2 || !info[1].IsBuffer()) ThrowType(env, "data must be a Buffer");
  auto data = info[1].As<Napi::Buffer<uint8_t>>();
  std::vector<int> fds = ArgFdArray(info, 2, "fds");
  if (data.Length() == 0) ThrowType(env, "data must hold at least 1 byte to carry descriptors");
  if (fds.size() > kMaxFds) ThrowType(env, "fds must hold at most 253 descriptors");

  std::vector<char> cbuf(fds.empty() ? 0 : CMSG_SPACE(sizeof(int) * fds.size()), 0);
  size_t off = 0;
  bool first = true;
  while (off < data.Length()) {
    struct iovec iov = {data.Data() + off, data.Length() - off};
    struct msghdr msg;
    std::memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (first && !fds.empty()) {
      msg.msg_control = cbuf.data();
      msg.msg_controllen = cbuf.size();
      struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN && !first) {
        int w = WaitWritable(sock, 5000);
        if (w == 0) continue;
        err = w;
      }
      throw ErrnoError(env, "sendmsg", err,
                       "fd " + std::to_string(sock) + ", " + std::to_string(fds.size()) + " fds",
                       {{"fd", Napi::Number::New(env, sock)}});
    }
    off += static_cast<size_t>(n);
    first = false;
  }
  return Napi::Number::New(env, static_cast<double>(off));
}

// recvFds(sockFd, maxBytes, maxFds): {data: Buffer, fds: number[]}
// One recvmsg (MSG_CMSG_CLOEXEC). data is empty at end of stream. A partial read is
// returned as is (the caller frames); truncated control data closes what arrived and throws.
Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock = ArgFd(info, 0, "sockFd");
  int max_bytes = ArgFd(info, 1, "maxBytes");
  int max_fds = ArgFd(info, 2, "maxFds");
  if (max_bytes < 1) ThrowType(env, "maxBytes must be at least 1");
  if (max_fds > static_cast<int>(kMaxFds)) ThrowType(env, "maxFds must be at most 253");

  std::vector<uint8_t> buf(max_bytes);
  std::vector<char> cbuf(CMSG_SPACE(sizeof(int) * (max_fds > 0 ? max_fds : 1)), 0);
  struct iovec iov = {buf.data(), buf.size()};
  struct msghdr msg;
  std::memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf.data();
  msg.msg_controllen = cbuf.size();
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    throw ErrnoError(env, "recvmsg", errno, "fd " + std::to_string(sock),
                     {{"fd", Napi::Number::New(env, sock)}});

  std::vector<int> fds;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* p = CMSG_DATA(c);
    for (size_t k = 0; k < count; k++) {
      int fd;
      std::memcpy(&fd, p + k * sizeof(int), sizeof(int));
      fds.push_back(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    for (int fd : fds) close(fd);
    Napi::Error e = ErrnoError(env, "recvmsg", EMSGSIZE,
                               "fd " + std::to_string(sock) + ": control data truncated, more than " +
                                   std::to_string(max_fds) + " fds sent",
                               {{"fd", Napi::Number::New(env, sock)}});
    e.Value().Set("truncated", Napi::Boolean::New(env, true));
    throw e;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(n)));
  Napi::Array arr = Napi::Array::New(env, fds.size());
  for (size_t k = 0; k < fds.size(); k++) arr.Set(static_cast<uint32_t>(k), fds[k]);
  out.Set("fds", arr);
  return out;
}

// unixConnect(path[, timeoutMs]): fd of a blocking, close-on-exec stream socket connected
// to path. With timeoutMs > 0, every later send/recv on it fails with EAGAIN once it has
// waited that long (SO_SNDTIMEO/SO_RCVTIMEO), so a hung peer cannot block forever.
Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  int timeoutMs = info.Length() > 1 && !info[1].IsUndefined() ? ArgFd(info, 1, "timeoutMs") : 0;
  struct sockaddr_un sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa.sun_path)
    throw ErrnoError(env, "connect", ENAMETOOLONG, path, {{"path", Napi::String::New(env, path)}});
  std::memcpy(sa.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, "socket", errno, "AF_UNIX, SOCK_STREAM");
  int r;
  do {
    r = connect(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    close(fd);
    throw ErrnoError(env, "connect", err, path, {{"path", Napi::String::New(env, path)}});
  }
  if (timeoutMs > 0) {
    struct timeval tv;
    tv.tv_sec = timeoutMs / 1000;
    tv.tv_usec = (timeoutMs % 1000) * 1000;
    for (int opt : {SO_RCVTIMEO, SO_SNDTIMEO}) {
      if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv) < 0) {
        int err = errno;
        close(fd);
        throw ErrnoError(env, "setsockopt", err, path + (opt == SO_RCVTIMEO ? ", SO_RCVTIMEO" : ", SO_SNDTIMEO"));
      }
    }
  }
  return Napi::Number::New(env, fd);
}

// peerCred(fd): {pid, uid, gid} of the process at the other end of a Unix socket.
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    throw ErrnoError(env, "getsockopt", errno, "fd " + std::to_string(fd) + ", SO_PEERCRED",
                     {{"fd", Napi::Number::New(env, fd)}});
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", cred.pid);
  out.Set("uid", cred.uid);
  out.Set("gid", cred.gid);
  return out;
}

// socketNetnsCookie(fd): bigint, the SO_NETNS_COOKIE of the namespace the socket lives in.
Napi::Value SocketNetnsCookie(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) < 0)
    throw ErrnoError(env, "getsockopt", errno, "fd " + std::to_string(fd) + ", SO_NETNS_COOKIE",
                     {{"fd", Napi::Number::New(env, fd)}});
  return Napi::BigInt::New(env, cookie);
}

// netnsCookie(): bigint, the SO_NETNS_COOKIE of the calling thread's namespace (call it
// in a withNetns window), read from a socket made for it and closed again.
Napi::Value NetnsCookie(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, "socket", errno, "AF_UNIX, SOCK_DGRAM");
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  int rc = getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len);
  int err = errno;
  close(fd);
  if (rc < 0) throw ErrnoError(env, "getsockopt", err, "SO_NETNS_COOKIE");
  return Napi::BigInt::New(env, cookie);
}

// closeFd(fd): close(2); EBADF throws, EINTR counts as closed (Linux semantics).
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (close(fd) < 0 && errno != EINTR)
    throw ErrnoError(env, "close", errno, std::to_string(fd), {{"fd", Napi::Number::New(env, fd)}});
  return env.Undefined();
}

}  // namespace

void InitFdPass(Napi::Env env, Napi::Object exports) {
  exports.Set("sendFds", Napi::Function::New(env, SendFds, "sendFds"));
  exports.Set("recvFds", Napi::Function::New(env, RecvFds, "recvFds"));
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect, "unixConnect"));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
  exports.Set("socketNetnsCookie", Napi::Function::New(env, SocketNetnsCookie, "socketNetnsCookie"));
  exports.Set("netnsCookie", Napi::Function::New(env, NetnsCookie, "netnsCookie"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
}

}  // namespace tapwire
