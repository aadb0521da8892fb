#pragma once
// Progress reporting for long work in core. The callback returns false to cancel;
// the work then stops at the next check and throws Error(ErrorKind::Cancelled).

#include "error.h"

#include <cstdint>
#include <functional>
#include <string>

namespace qs {

struct Progress {
    std::string stage;  // e.g. "original", "quantized", "metrics"
    std::int64_t done = 0;
    std::int64_t total = 0;
    std::string detail; // e.g. the image or layer being processed
    // jobs over images: images finished and in all (imagesTotal 0: not such a job)
    std::int64_t images = 0, imagesTotal = 0;
};

using ProgressFn = std::function<bool(const Progress&)>;

// The one cancel check: reports `state` (if anyone listens) and throws
// Error(Cancelled) when the listener asks to stop.
inline void reportProgress(const ProgressFn& progress, const Progress& state) {
    if (progress && !progress(state))
        throw Error(ErrorKind::Cancelled, "cancelled");
}

} // namespace qs
