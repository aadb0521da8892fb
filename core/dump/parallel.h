#pragma once
// Splitting a loop over a few threads, for the metrics pass (no pool: the pieces are large).

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace qs {

// How many threads to use for `work` items, asked for `threads` (at least 1).
inline std::size_t threadCount(int threads, std::size_t work) {
    return std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)), work));
}

// Runs fn(k, begin, end) for the k-th of t contiguous ranges of [0, n), k = 0 on this thread.
template <typename Fn>
void parallelRanges(std::size_t n, std::size_t t, Fn fn) {
    std::vector<std::thread> workers;
    for (std::size_t k = 1; k < t; ++k)
        workers.emplace_back(fn, k, n * k / t, n * (k + 1) / t);
    fn(std::size_t{0}, std::size_t{0}, n / t);
    for (auto& w : workers)
        w.join();
}

// Lowers the calling thread's scheduling priority to nice +10 (Linux: per thread; threads
// it starts inherit it). For the work a recording does beside the models (the metrics
// worker): on a machine with as many cores as model threads it then takes the cores when
// the models leave them idle instead of slowing every pass, yet, unlike SCHED_IDLE, still
// gets a share (about a tenth) when something else keeps the cores busy, so it never starves.
inline void backgroundPriority() {
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
}

} // namespace qs
