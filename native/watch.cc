// watch.cc: see watch.h.
#include "watch.h"

#include <errno.h>
#include <unistd.h>

#include <map>
#include <string>

#include "errors.h"

namespace tapwire {
namespace {

struct Entry {
  Watch* watch;
  Drain drain;
};

std::map<int, Entry>& Watches() {
  static std::map<int, Entry> m;
  return m;
}

void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  Watch* w = static_cast<Watch*>(handle->data);
  auto it = Watches().find(w->fd);
  if (it == Watches().end() || it->second.watch != w) return;
  Drain drain = it->second.drain;
  // POLLERR (a pending socket error): libuv has stopped the poll. Started again, and the
  // drain's receive returns the error (which clears it) or what is still queued: a watch
  // must never go deaf for good.
  if (status < 0 && uv_poll_start(&w->poll, UV_READABLE, OnReadable) != 0) return;
  try {
    Napi::HandleScope scope(w->env);
    drain(w);
  } catch (...) {
    // nothing may unwind through libuv's C frames (an allocation failing in a drain)
  }
}

}  // namespace

Watch* StartWatch(Napi::Env env, int fd, Napi::Function cb, Drain drain, Napi::Buffer<unsigned char> buf) {
  if (Watches().count(fd)) ThrowType(env, "fd " + std::to_string(fd) + " is already watched");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) ThrowType(env, "no event loop");
  // everything the drain reads is set before the poll can fire
  auto w = new Watch{uv_poll_t{}, env, Napi::FunctionReference(), fd, {}};
  try {
    w->cb = Napi::Persistent(cb);
    if (!buf.IsEmpty()) {
      w->buf = Napi::Persistent(buf);  // kept alive as long as the watch
      w->data = buf.Data();
      w->cap = buf.Length();
    }
  } catch (...) {
    delete w;  // nothing registered yet
    throw;
  }
  w->poll.data = w;
  int rc = uv_poll_init_socket(loop, &w->poll, fd);
  if (rc != 0) {
    delete w;  // a failed init leaves nothing registered
    throw ErrnoError(env, "uv_poll_init_socket", -rc, "fd " + std::to_string(fd));
  }
  rc = uv_poll_start(&w->poll, UV_READABLE, OnReadable);
  if (rc != 0) {
    // the handle is on the loop's list: freed only by its close callback
    w->cb.Reset();
    w->buf.Reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), [](uv_handle_t* h) { delete static_cast<Watch*>(h->data); });
    throw ErrnoError(env, "uv_poll_start", -rc, "fd " + std::to_string(fd));
  }
  uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));  // a watcher alone does not keep the process up
  Watches()[fd] = Entry{w, drain};
  return w;
}

bool StillWatched(const Watch* w) {
  auto it = Watches().find(w->fd);
  return it != Watches().end() && it->second.watch == w;
}

void CloseWatched(Napi::Env env, int fd) {
  auto it = Watches().find(fd);
  if (it != Watches().end()) {
    Watch* w = it->second.watch;
    Watches().erase(it);
    uv_poll_stop(&w->poll);  // takes the fd out of the loop's epoll set now
    w->cb.Reset();
    w->buf.Reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), [](uv_handle_t* h) { delete static_cast<Watch*>(h->data); });
  }
  if (close(fd) < 0) throw ErrnoError(env, "close", errno, std::to_string(fd));
}

void CallWatch(Watch* w, const std::initializer_list<napi_value>& args) {
  try {
    w->cb.MakeCallback(w->env.Global(), args);
  } catch (const Napi::Error& e) {
    // The callbacks catch what a peer can cause; what escapes (from them, or from the
    // nextTick queue run on the way out) goes where dgram's would: 'uncaughtException'
    napi_fatal_exception(w->env, e.Value());
  }
}

}  // namespace tapwire
