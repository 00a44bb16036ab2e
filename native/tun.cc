// tun.cc: tap devices through /dev/net/tun (rtnetlink cannot create them).
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace tapwire {
namespace {

bool OptBool(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

// openTap(name, {vnetHdr, multiQueue, queues, persist, create, ifindex}): number[]
// One fd per queue, close-on-exec. Attaches to an existing persistent tap of the same
// name and flags, unless `create`: then only a new tap is made (IFF_TUN_EXCL: EBUSY when
// any link has the name), with interface index `ifindex` when given (TUNSETIFINDEX:
// EBUSY when another link has it). Names longer than IFNAMSIZ-1 are refused, never
// truncated.
Napi::Value OpenTap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "name");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>()
                                                              : Napi::Object::New(env);
  bool vnet = OptBool(opts, "vnetHdr");
  bool mq = OptBool(opts, "multiQueue");
  bool persist = OptBool(opts, "persist");
  bool create = OptBool(opts, "create");
  unsigned int ifindex = 0;
  Napi::Value ix = opts.Get("ifindex");
  if (!ix.IsUndefined()) {
    double d = ix.IsNumber() ? ix.As<Napi::Number>().DoubleValue() : -1;
    if (d < 1 || d > 0x7fffffff || d != static_cast<unsigned int>(d))
      ThrowType(env, "ifindex must be an integer 1..2147483647");
    if (!create) ThrowType(env, "ifindex needs create: true");
    ifindex = static_cast<unsigned int>(d);
  }
  int queues = 1;
  Napi::Value q = opts.Get("queues");
  if (!q.IsUndefined()) {
    if (!q.IsNumber()) ThrowType(env, "queues must be a number");
    queues = q.As<Napi::Number>().Int32Value();
  }
  if (name.empty() || name.size() >= IFNAMSIZ)
    throw ErrnoError(env, "ioctl", ENAMETOOLONG,
                     "TUNSETIFF \"" + name + "\": name must be 1-15 bytes, got " +
                         std::to_string(name.size()),
                     {{"name", Napi::String::New(env, name)}});
  if (queues < 1 || queues > 256) ThrowType(env, "queues must be 1..256, got " + std::to_string(queues));
  if (queues > 1 && !mq) ThrowType(env, "queues > 1 needs multiQueue: true");

  std::vector<int> fds;
  auto fail = [&](const char* call, int err, const std::string& detail) {
    for (int fd : fds) close(fd);
    throw ErrnoError(env, call, err, detail, {{"name", Napi::String::New(env, name)}});
  };
  for (int i = 0; i < queues; i++) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) fail("open", errno, "/dev/net/tun");
    fds.push_back(fd);
    struct ifreq ifr;
    std::memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0) | (mq ? IFF_MULTI_QUEUE : 0);
    // the first queue creates the tap; the others attach to it
    if (create && i == 0) ifr.ifr_flags |= IFF_TUN_EXCL;
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    if (create && i == 0 && ifindex != 0 && ioctl(fd, TUNSETIFINDEX, &ifindex) < 0)
      fail("ioctl", errno, "TUNSETIFINDEX " + std::to_string(ifindex) + " for \"" + name + "\"");
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) fail("ioctl", errno, "TUNSETIFF \"" + name + "\"");
  }
  if (persist && ioctl(fds[0], TUNSETPERSIST, 1) < 0)
    fail("ioctl", errno, "TUNSETPERSIST \"" + name + "\"");
  Napi::Array out = Napi::Array::New(env, fds.size());
  for (size_t k = 0; k < fds.size(); k++) out.Set(static_cast<uint32_t>(k), fds[k]);
  return out;
}

// tapSetPersist(fd, on): TUNSETPERSIST; a persistent tap outlives its fds (and its owner).
Napi::Value TapSetPersist(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  bool on = info.Length() > 1 && info[1].ToBoolean().Value();
  if (ioctl(fd, TUNSETPERSIST, on ? 1 : 0) < 0)
    throw ErrnoError(env, "ioctl", errno, "fd " + std::to_string(fd) + ", TUNSETPERSIST",
                     {{"fd", Napi::Number::New(env, fd)}});
  return env.Undefined();
}

// tapInfo(fd): {name, flags} from TUNGETIFF, to check what an fd is attached to.
Napi::Value TapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0)
    throw ErrnoError(env, "ioctl", errno, "fd " + std::to_string(fd) + ", TUNGETIFF",
                     {{"fd", Napi::Number::New(env, fd)}});
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", Napi::String::New(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
  out.Set("vnetHdr", Napi::Boolean::New(env, (ifr.ifr_flags & IFF_VNET_HDR) != 0));
  out.Set("multiQueue", Napi::Boolean::New(env, (ifr.ifr_flags & IFF_MULTI_QUEUE) != 0));
  out.Set("persist", Napi::Boolean::New(env, (ifr.ifr_flags & IFF_PERSIST) != 0));
  return out;
}

}  // namespace

void InitTun(Napi::Env env, Napi::Object exports) {
  exports.Set("openTap", Napi::Function::New(env, OpenTap, "openTap"));
  exports.Set("tapSetPersist", Napi::Function::New(env, TapSetPersist, "tapSetPersist"));
  exports.Set("tapInfo", Napi::Function::New(env, TapInfo, "tapInfo"));
}

}  // namespace tapwire
