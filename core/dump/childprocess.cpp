#include "childprocess.h"

#include "error.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace qs {

ChildResult runChild(const std::function<void(int fd)>& inChild, int timeoutSeconds) {
    int fds[2];
    if (::pipe(fds) != 0)
        throw Error(ErrorKind::Internal, "cannot create a pipe for a child process");
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw Error(ErrorKind::Internal, "cannot start a child process (fork failed)");
    }
    if (pid == 0) {
        ::close(fds[0]);
        inChild(fds[1]);
        ::_exit(127); // inChild should not return
    }
    ::close(fds[1]);
    ChildResult r;
    using Clock = std::chrono::steady_clock;
    auto deadline = Clock::now() + std::chrono::seconds(timeoutSeconds);
    char buffer[4096];
    for (;;) {
        int waitMs = -1;
        if (timeoutSeconds > 0) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) {
                r.timedOut = true;
                ::kill(pid, SIGKILL);
                break;
            }
            waitMs = static_cast<int>(left);
        }
        pollfd p{fds[0], POLLIN, 0};
        const int ready = ::poll(&p, 1, waitMs);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0)
            continue; // deadline check above
        const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; // closed: the child is done (or wrote all it will)
        r.output.append(buffer, static_cast<std::size_t>(n));
        deadline = Clock::now() + std::chrono::seconds(timeoutSeconds); // it is progressing
    }
    ::close(fds[0]);
    int status = 0;
    for (;;) { // the pipe is closed; the child may still be on its way out (or stuck)
        const pid_t done = ::waitpid(pid, &status, r.timedOut ? 0 : WNOHANG);
        if (done == pid || (done < 0 && errno != EINTR))
            break;
        if (done == 0 && timeoutSeconds > 0 && Clock::now() >= deadline) {
            r.timedOut = true;
            ::kill(pid, SIGKILL);
        } else if (done == 0) {
            ::usleep(2000);
        }
    }
    if (WIFEXITED(status)) {
        r.exited = true;
        r.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        r.signal = WTERMSIG(status);
    }
    return r;
}

} // namespace qs
