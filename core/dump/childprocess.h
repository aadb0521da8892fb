#pragma once
// Runs a piece of work in a forked child process and collects what it wrote to a pipe,
// its exit status, and whether it had to be killed for running out of time. For work
// that might crash or hang inside a library we cannot fix (libhdf5 on a damaged file),
// and for measurements that need a fresh process (bench's memory probes).

#include <functional>
#include <string>

namespace qs {

struct ChildResult {
    bool exited = false;   // normal exit: see code
    int code = -1;
    int signal = 0;        // killed by this signal (when !exited)
    bool timedOut = false; // killed by us (SIGKILL) when the time limit passed
    std::string output;    // everything the child wrote to its pipe
};

// Forks. The child runs inChild(fd), where fd is the write end of the pipe; inChild must
// end the child itself (_exit or exec), and is only safe if it uses what fork() keeps
// working in a threaded parent. The parent reads the pipe until the child closes it, then
// reaps the child. The child is killed when `timeoutSeconds` pass without it writing
// anything (<= 0: no limit): a child that reports progress may run as long as it
// progresses. Throws Error(Internal) when no process can be created.
ChildResult runChild(const std::function<void(int fd)>& inChild, int timeoutSeconds);

} // namespace qs
