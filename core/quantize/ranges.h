#pragma once
// Activation ranges from calibration statistics: pure functions (no LibTorch), unit-tested
// against naive references (tests/core/test_ranges.cpp).

#include <cstdint>
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

namespace qs {

// How an activation range is chosen from the calibration statistics.
enum class CalibrationMethod {
    MinMax,     // the observed minimum and maximum
    Percentile, // clip to the given percentile at both ends
    Mse,        // the range minimising the expected quantization error (from a histogram)
    Entropy,    // non-negative values: least KL divergence after quantization; signed: as Mse
};

const char* toString(CalibrationMethod method);
// "minmax" | "percentile" | "mse" | "entropy"; nothing for any other text.
bool parseCalibrationMethod(const std::string& text, CalibrationMethod& method);

constexpr int kHistogramBins = 2048;
constexpr double kMinScale = 1e-8; // below this an activation range is treated as empty

// What calibration saw of one value: its range (first pass) and a histogram over that
// range (second pass).
struct ValueStats {
    double min = std::numeric_limits<double>::infinity();
    double max = -std::numeric_limits<double>::infinity();
    std::int64_t count = 0;
    bool nonFinite = false;
    std::vector<double> histogram; // kHistogramBins over [lo(), hi()], second pass
    double lo() const { return std::min(min, 0.0); }
    double hi() const { return std::max(max, 0.0); }
};

struct QParams {
    double scale = 1.0;
    std::int64_t zeroPoint = 0;
    bool observed = true; // false: no calibration image reached the value
    int qmax = 255;       // highest level used (127 with reduce range)
};

// quint8 parameters for [lo, hi] on the levels 0..qmax (255, or 127 with reduce range);
// the range always holds 0 (zero padding must be exact).
QParams affine(double lo, double hi, int qmax);
// Clip both ends at the given percentile of the observed distribution.
QParams percentileRange(const ValueStats& s, double percentile, int qmax);
// The [lo, hi] on bin edges of a 256-bin summary minimising the expected squared error.
QParams mseRange(const ValueStats& s, int qmax);
// Non-negative values: the clipping threshold with the least KL divergence.
QParams entropyRange(const ValueStats& s, int qmax);
// The method's range; an unobserved or non-finite value gets observed = false.
QParams chooseRange(const ValueStats& s, CalibrationMethod method, double percentile, int qmax);

} // namespace qs
