#pragma once
// JSON has no infinity or NaN: every number we write to JSON (metrics, rank scores) goes
// through here, non-finite ones as the strings "inf", "-inf" and "nan".

#include <nlohmann/json.hpp>

#include <cmath>

namespace qs {

inline nlohmann::json jsonNumber(double v) {
    if (std::isnan(v))
        return "nan";
    if (std::isinf(v))
        return v > 0 ? "inf" : "-inf";
    return v;
}

} // namespace qs
