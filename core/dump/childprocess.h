#pragma once
// Runs a piece of work in a forked child process and collects what it wrote to a pipe,
// its exit status, and whether it had to be killed for running out of time. For work
// that might crash or hang inside a library we cannot fix (libhdf5 on a damaged file),
// and for measurements that need a fresh process (bench's memory probes).

#include <functional>
#include <mutex>
#include <string>

namespace qs {

struct ChildResult {
    bool exited = false;   // normal exit: see code
    int code = -1;
    int signal = 0;        // killed by this signal (when !exited)
    bool timedOut = false; // killed by us (SIGKILL): no output for the time limit
    bool cancelled = false; // killed by us (SIGKILL): `cancelled` said so
    std::string output;    // everything the child wrote to its pipe
};

struct ChildOptions {
    // Kill the child when it writes nothing for this long (<= 0: no limit). A child that
    // reports progress may run as long as it progresses.
    int stallSeconds = 0;
    // Polled whenever the wait is interrupted (a signal arrived) and every 200 ms: true
    // kills the child, and the result says cancelled.
    std::function<bool()> cancelled;
    // Held across fork() only, so that the child starts with whatever it guards in a
    // consistent state (e.g. the HDF5 lock: no other thread inside libhdf5 at that moment).
    std::recursive_mutex* holdAcrossFork = nullptr;
};

// Forks. The child runs inChild(fd), where fd is the write end of the pipe; inChild must
// end the child itself (_exit or exec), and is only safe if it uses what fork() keeps
// working in a threaded parent. If inChild throws or returns, the child exits 127. The
// parent reads the pipe until the child closes it, then reaps the child. Throws
// Error(Internal) when no process can be created.
ChildResult runChild(const std::function<void(int fd)>& inChild, const ChildOptions& options = {});

} // namespace qs
