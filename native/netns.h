// netns.h: entering and leaving a network namespace on the calling thread, shared by
// withNetns (the JS thread) and NetnsJob (pool threads).
#pragma once
#include <string>

namespace tapwire {

struct NetnsFailure {
  const char* syscall = nullptr;
  int err = 0;
  std::string detail;
  bool not_netns = false;  // target is not a network namespace
};

// Moves the calling thread into the namespace open at `target` (`label` names it in
// errors). On success returns true and sets *orig to an fd of the namespace left.
bool EnterNetns(int target, const std::string& label, int* orig, NetnsFailure* why);

// Returns the thread to `orig` and closes it; aborts the process if it cannot (a
// thread stuck in a pod namespace is worse than a crash).
void LeaveNetnsOrAbort(int orig, const std::string& label);

}  // namespace tapwire
