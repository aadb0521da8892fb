#include "childprocess.h"

#include "error.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace qs {

ChildResult runChild(const std::function<void(int fd)>& inChild, const ChildOptions& options) {
    int fds[2];
    // close-on-exec: a process the parent starts meanwhile (the GUI's own QProcess) must
    // not inherit the write end, or the parent would never see end of file
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw Error(ErrorKind::Internal, "cannot create a pipe for a child process");
    pid_t pid;
    {
        std::unique_lock<std::recursive_mutex> hold;
        if (options.holdAcrossFork)
            hold = std::unique_lock<std::recursive_mutex>(*options.holdAcrossFork);
        pid = ::fork();
        if (pid == 0) {
            hold.release(); // the child's copy is the child's business (see holdAcrossFork)
            ::close(fds[0]);
            try {
                inChild(fds[1]);
            } catch (...) {
            }
            ::_exit(127); // never back into the caller's code in the child
        }
    }
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw Error(ErrorKind::Internal, "cannot start a child process (fork failed)");
    }
    ::close(fds[1]);
    ChildResult r;
    using Clock = std::chrono::steady_clock;
    const auto limit = std::chrono::seconds(options.stallSeconds);
    auto deadline = Clock::now() + limit;
    auto stop = [&](bool& flag) {
        flag = true;
        ::kill(pid, SIGKILL);
    };
    char buffer[4096];
    for (;;) {
        if (options.cancelled && options.cancelled()) {
            stop(r.cancelled);
            break;
        }
        int waitMs = 200;
        if (options.stallSeconds > 0) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) {
                stop(r.timedOut);
                break;
            }
            waitMs = static_cast<int>(std::min<long long>(left, waitMs));
        }
        pollfd p{fds[0], POLLIN, 0};
        const int ready = ::poll(&p, 1, waitMs);
        if (ready <= 0)
            continue; // timeout or a signal: the checks above run again
        const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; // closed: the child is done (or wrote all it will)
        r.output.append(buffer, static_cast<std::size_t>(n));
        deadline = Clock::now() + limit; // it is progressing
    }
    ::close(fds[0]);
    int status = 0;
    bool reaped = false;
    for (;;) { // the pipe is closed; the child may still be on its way out (or stuck)
        const bool killed = r.timedOut || r.cancelled;
        const pid_t done = ::waitpid(pid, &status, killed ? 0 : WNOHANG);
        if (done == pid) {
            reaped = true;
            break;
        }
        if (done < 0 && errno != EINTR)
            break; // not ours to reap any more: the status is unknown
        if (done == 0 && options.cancelled && options.cancelled())
            stop(r.cancelled);
        else if (done == 0 && options.stallSeconds > 0 && Clock::now() >= deadline)
            stop(r.timedOut);
        else if (done == 0)
            ::usleep(2000);
    }
    if (reaped && WIFEXITED(status)) {
        r.exited = true;
        r.code = WEXITSTATUS(status);
    } else if (reaped && WIFSIGNALED(status)) {
        r.signal = WTERMSIG(status);
    }
    return r;
}

} // namespace qs
