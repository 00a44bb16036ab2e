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
//   sock4Answer(fd, slot, request, reply, dst, port, varyFrom, varyTo, copyFrom, copyTo, ttlMs, usedAt):
//     a learned answer (slot 0..7 of the socket's, replacing what was there): a datagram
//     of request's length, equal to it outside bytes [varyFrom, varyTo), is answered here
//     with reply, its bytes [copyFrom, copyTo) taken from the datagram, sent to dst:port,
//     and cb is not called. It is used only within ttlMs of its last use (usedAt, ms since
//     the epoch, at first; 0: no limit) and only when its send succeeds; otherwise cb is
//     called as usual (a failed send is the caller's to make again, and to count). The
//     addon compares and copies bytes; what an answer is, and when it holds, is the
//     caller's (the DHCP server's: src/dhcp/fast-answers.ts).
//   sock4Answered(fd, out): for each slot i, out[2i] = the datagrams it answered since
//     the last call and out[2i+1] = its last use (ms since the epoch); returns their sum.
//   sock4Forget(fd): drops the socket's answers. Closing or watching it again does too.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <time.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "watch.h"

namespace tapwire {
namespace {

// Bounded so a flood cannot hold the loop (libuv's own UDP read does 32 per wake-up).
constexpr int kMaxPerWake = 32;
constexpr size_t kAnswerSlots = 8;
// a learned request or reply is at most this long (a DHCP message over Ethernet: 576-1500)
constexpr size_t kMaxAnswerBytes = 4096;

struct Answer {
  std::vector<unsigned char> request;
  std::vector<unsigned char> reply;
  struct sockaddr_in to;
  size_t varyFrom = 0, varyTo = 0, copyFrom = 0, copyTo = 0;
  double ttlMs = 0;
  double lastMs = 0;
  double hits = 0;
};

using Answers = std::vector<Answer>;  // kAnswerSlots, an empty request = unused

std::map<int, Answers>& AnswersByFd() {
  static std::map<int, Answers> m;
  return m;
}

double NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec / 1000000);  // whole ms, as Date.now()
}

bool Matches(const Answer& a, const unsigned char* data, size_t len) {
  size_t n = a.request.size();
  if (n == 0 || len != n) return false;
  const unsigned char* k = a.request.data();
  return std::memcmp(data, k, a.varyFrom) == 0 && std::memcmp(data + a.varyTo, k + a.varyTo, n - a.varyTo) == 0;
}

// Whether the datagram in w->data (len bytes) was answered from a learned answer.
bool AnsweredHere(Watch* w, Answers* answers, size_t len) {
  if (answers == nullptr) return false;
  for (Answer& a : *answers) {
    if (!Matches(a, w->data, len)) continue;
    double now = NowMs();
    if (a.ttlMs > 0 && now - a.lastMs >= a.ttlMs) continue;  // lapsed: the caller answers, and may learn it again
    std::memcpy(a.reply.data() + a.copyFrom, w->data + a.copyFrom, a.copyTo - a.copyFrom);
    ssize_t sent = sendto(w->fd, a.reply.data(), a.reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                          reinterpret_cast<struct sockaddr*>(&a.to), sizeof a.to);
    if (sent < 0) return false;  // the caller sees it, and its own send says why
    a.hits++;
    a.lastMs = now;
    return true;
  }
  return false;
}

void Drain4(Watch* w) {
  auto found = AnswersByFd().find(w->fd);
  Answers* answers = found == AnswersByFd().end() ? nullptr : &found->second;
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
    if (static_cast<size_t>(got) <= w->cap && AnsweredHere(w, answers, static_cast<size_t>(got))) continue;
    CallWatch(w, {Napi::Number::New(w->env, static_cast<double>(got)),
                  Napi::Number::New(w->env, static_cast<double>(ntohl(from.sin_addr.s_addr))),
                  Napi::Number::New(w->env, ntohs(from.sin_port))});
    if (!StillWatched(w)) return;  // the callback closed it (and maybe reused the fd)
    found = AnswersByFd().find(w->fd);  // the callback may have learned the first or forgotten all
    answers = found == AnswersByFd().end() ? nullptr : &found->second;
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
  AnswersByFd().erase(fd);  // a new watch of the fd starts with none (after: a refused one keeps the live watch's)
  return env.Undefined();
}

Napi::Value Sock4Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  AnswersByFd().erase(fd);
  CloseWatched(env, fd);
  return env.Undefined();
}

// Arguments dst (IPv4 text, at dstAt) and port (at portAt) as a socket address, for
// sock4Send and sock4Answer alike.
struct sockaddr_in ArgDestination(const Napi::CallbackInfo& info, size_t dstAt, size_t portAt) {
  std::string dst = ArgString(info, dstAt, "dst");
  int port = ArgPort(info, portAt, "port");
  struct sockaddr_in to;
  std::memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, dst.c_str(), &to.sin_addr) != 1) ThrowType(info.Env(), "dst is not an IPv4 address: " + dst);
  return to;
}

size_t ArgIndex(const Napi::CallbackInfo& info, size_t i, const char* name, size_t max) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= static_cast<double>(max)) || v != static_cast<double>(static_cast<size_t>(v)))
    ThrowType(info.Env(), std::string(name) + " must be an integer 0.." + std::to_string(max));
  return static_cast<size_t>(v);
}

std::vector<unsigned char> ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsBuffer()) ThrowType(info.Env(), std::string(name) + " must be a Buffer");
  auto b = info[i].As<Napi::Buffer<unsigned char>>();
  if (b.Length() == 0 || b.Length() > kMaxAnswerBytes)
    ThrowType(info.Env(), std::string(name) + " must be 1.." + std::to_string(kMaxAnswerBytes) + " bytes");
  return std::vector<unsigned char>(b.Data(), b.Data() + b.Length());
}

Napi::Value Sock4Answer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  size_t slot = ArgIndex(info, 1, "slot", kAnswerSlots - 1);
  Answer a;
  a.request = ArgBytes(info, 2, "request");
  a.reply = ArgBytes(info, 3, "reply");
  a.to = ArgDestination(info, 4, 5);
  a.varyFrom = ArgIndex(info, 6, "varyFrom", a.request.size());
  a.varyTo = ArgIndex(info, 7, "varyTo", a.request.size());
  if (a.varyTo < a.varyFrom) ThrowType(env, "varyTo must not be below varyFrom");
  size_t copyMax = std::min(a.request.size(), a.reply.size());
  a.copyFrom = ArgIndex(info, 8, "copyFrom", copyMax);
  a.copyTo = ArgIndex(info, 9, "copyTo", copyMax);
  if (a.copyTo < a.copyFrom) ThrowType(env, "copyTo must not be below copyFrom");
  if (info.Length() <= 10 || !info[10].IsNumber()) ThrowType(env, "ttlMs must be a number");
  a.ttlMs = info[10].As<Napi::Number>().DoubleValue();
  if (!(a.ttlMs >= 0)) ThrowType(env, "ttlMs must be 0 or more");
  if (info.Length() <= 11 || !info[11].IsNumber()) ThrowType(env, "usedAt must be a number");
  a.lastMs = info[11].As<Napi::Number>().DoubleValue();
  if (!(a.lastMs >= 0)) ThrowType(env, "usedAt must be ms since the epoch");
  Answers& answers = AnswersByFd()[fd];
  answers.resize(kAnswerSlots);
  answers[slot] = std::move(a);
  return env.Undefined();
}

Napi::Value Sock4Answered(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    ThrowType(env, "out must be a Float64Array");
  auto out = info[1].As<Napi::Float64Array>();
  if (out.ElementLength() < 2 * kAnswerSlots)
    ThrowType(env, "out must hold " + std::to_string(2 * kAnswerSlots) + " numbers");
  double sum = 0;
  auto found = AnswersByFd().find(fd);
  for (size_t i = 0; i < kAnswerSlots; i++) {
    Answer* a = found == AnswersByFd().end() ? nullptr : &found->second[i];
    out[2 * i] = a ? a->hits : 0;
    out[2 * i + 1] = a ? a->lastMs : 0;
    if (a) {
      sum += a->hits;
      a->hits = 0;
    }
  }
  return Napi::Number::New(env, sum);
}

Napi::Value Sock4Forget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AnswersByFd().erase(ArgFd(info, 0, "fd"));
  return env.Undefined();
}

Napi::Value Sock4Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct sockaddr_in to = ArgDestination(info, 1, 2);
  if (info.Length() < 4 || !info[3].IsBuffer()) ThrowType(env, "data must be a Buffer");
  auto data = info[3].As<Napi::Buffer<unsigned char>>();
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
  exports.Set("sock4Answer", Napi::Function::New(env, Sock4Answer, "sock4Answer"));
  exports.Set("sock4Answered", Napi::Function::New(env, Sock4Answered, "sock4Answered"));
  exports.Set("sock4Forget", Napi::Function::New(env, Sock4Forget, "sock4Forget"));
  exports.Set("socketPort", Napi::Function::New(env, SocketPort, "socketPort"));
}

}  // namespace tapwire
