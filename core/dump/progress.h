#pragma once
// Progress reporting for long work in core. The callback returns false to cancel;
// the work then stops at the next check and throws Error(ErrorKind::Cancelled).

#include <cstdint>
#include <functional>
#include <string>

namespace qs {

struct Progress {
    std::string stage;  // e.g. "original", "quantized", "metrics"
    std::int64_t done = 0;
    std::int64_t total = 0;
    std::string detail; // e.g. the image or layer being processed
};

using ProgressFn = std::function<bool(const Progress&)>;

} // namespace qs
