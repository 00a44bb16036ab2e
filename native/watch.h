// watch.h: a socket read from the loop's own poll (uv_poll on the fd, no thread), one
// watch per fd. The addon runs on the main loop's thread only. A watch does not keep the
// process up by itself (uv_unref), and its drain function reads what is queued when the
// fd turns readable and calls the JS callback for each datagram.
#pragma once
#include <napi.h>
#include <uv.h>

namespace tapwire {

struct Watch {
  uv_poll_t poll;
  Napi::Env env;
  Napi::FunctionReference cb;
  int fd;
  // where the drain receives into, when the caller gave a buffer (else the drain's own)
  Napi::Reference<Napi::Buffer<unsigned char>> buf;
  unsigned char* data = nullptr;
  size_t cap = 0;
};

using Drain = void (*)(Watch* w);

// Starts watching fd (throws naming the fd if it is watched already or uv refuses); buf,
// when given, is where the drain receives into (w->data, w->cap), set before the poll starts.
Watch* StartWatch(Napi::Env env, int fd, Napi::Function cb, Drain drain,
                  Napi::Buffer<unsigned char> buf = Napi::Buffer<unsigned char>());

// Whether w is still the watch of its fd: a callback may have closed it (and the fd's
// number may have been reused by a new watch). Drains check it after every callback.
bool StillWatched(const Watch* w);

// Stops watching fd (when watched) and closes it; throws on close's failure.
void CloseWatched(Napi::Env env, int fd);

// Calls w's callback with args; an exception that escapes the JS side is not thrown through
// the poll callback but handed to the process ('uncaughtException', as dgram's would be).
void CallWatch(Watch* w, const std::initializer_list<napi_value>& args);

}  // namespace tapwire
