#pragma once
// What JSON cannot hold, handled once. JSON has no infinity or NaN: every number we
// write to JSON (metrics, rank scores) goes through jsonNumber, non-finite ones as the
// strings "inf", "-inf" and "nan". JSON text must be UTF-8, and names come from model
// files and dumps that need not be: jsonText writes invalid bytes as U+FFFD instead of
// throwing.

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

inline std::string jsonText(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace qs
