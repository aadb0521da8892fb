// Activation ranges from calibration statistics (see ranges.h).

#include "ranges.h"

#include <algorithm>
#include <cmath>

namespace qs {

const char* toString(CalibrationMethod method) {
    switch (method) {
    case CalibrationMethod::MinMax:
        return "minmax";
    case CalibrationMethod::Percentile:
        return "percentile";
    case CalibrationMethod::Mse:
        return "mse";
    case CalibrationMethod::Entropy:
        return "entropy";
    }
    return "mse";
}

bool parseCalibrationMethod(const std::string& text, CalibrationMethod& method) {
    for (auto m : {CalibrationMethod::MinMax, CalibrationMethod::Percentile, CalibrationMethod::Mse,
                   CalibrationMethod::Entropy})
        if (text == toString(m)) {
            method = m;
            return true;
        }
    return false;
}

// ---------------------------------------------------------------------------------------
// quint8 parameters for [lo, hi] on the levels 0..qmax (255, or 127 with reduce range);
// the range always holds 0 (zero padding must be exact).
QParams affine(double lo, double hi, int qmax) {
    lo = std::min(lo, 0.0);
    hi = std::max(hi, 0.0);
    QParams q;
    q.scale = std::max((hi - lo) / qmax, kMinScale);
    q.zeroPoint = std::clamp<std::int64_t>(std::llround(-lo / q.scale), 0, qmax);
    q.qmax = qmax;
    return q;
}

static double binCenter(const ValueStats& s, std::size_t i) {
    return s.lo() + (static_cast<double>(i) + 0.5) * (s.hi() - s.lo()) / kHistogramBins;
}

// Clip both ends at the given percentile of the observed distribution.
QParams percentileRange(const ValueStats& s, double percentile, int qmax) {
    double total = 0;
    for (double n : s.histogram)
        total += n;
    if (total <= 0)
        return affine(s.min, s.max, qmax);
    const double tail = total * (1.0 - percentile / 100.0);
    double acc = 0, lo = s.lo(), hi = s.hi();
    for (std::size_t i = 0; i < s.histogram.size(); ++i) {
        acc += s.histogram[i];
        if (acc > tail) {
            lo = binCenter(s, i);
            break;
        }
    }
    acc = 0;
    for (std::size_t i = s.histogram.size(); i-- > 0;) {
        acc += s.histogram[i];
        if (acc > tail) {
            hi = binCenter(s, i);
            break;
        }
    }
    return affine(lo, hi, qmax);
}

// The [lo, hi] (on bin edges of a 256-bin summary) minimising the expected squared error:
// values outside are clipped, values inside get the uniform rounding error step^2/12.
// Prefix sums make each candidate O(1), so every pair of edges is tried.
QParams mseRange(const ValueStats& s, int qmax) {
    constexpr std::size_t kBins = 256;
    const std::size_t merge = s.histogram.size() / kBins;
    const double width = (s.hi() - s.lo()) / kBins;
    std::vector<double> n(kBins, 0.0), c(kBins);
    for (std::size_t i = 0; i < kBins; ++i) {
        for (std::size_t j = 0; j < merge; ++j)
            n[i] += s.histogram[i * merge + j];
        c[i] = s.lo() + (static_cast<double>(i) + 0.5) * width;
    }
    // prefix sums of n, n*c, n*c^2
    std::vector<double> p0(kBins + 1, 0), p1(kBins + 1, 0), p2(kBins + 1, 0);
    for (std::size_t i = 0; i < kBins; ++i) {
        p0[i + 1] = p0[i] + n[i];
        p1[i + 1] = p1[i] + n[i] * c[i];
        p2[i + 1] = p2[i] + n[i] * c[i] * c[i];
    }
    if (p0[kBins] <= 0)
        return affine(s.min, s.max, qmax);
    // clipped error of bins [a, b) to the value t: sum n (c - t)^2
    auto clip = [&](std::size_t a, std::size_t b, double t) {
        const double cnt = p0[b] - p0[a], s1 = p1[b] - p1[a], s2 = p2[b] - p2[a];
        return s2 - 2 * t * s1 + t * t * cnt;
    };
    const std::size_t zeroEdge =
        std::min<std::size_t>(kBins, static_cast<std::size_t>(std::llround(-s.lo() / width)));
    double best = std::numeric_limits<double>::infinity();
    std::size_t bestA = 0, bestB = kBins;
    for (std::size_t a = 0; a <= zeroEdge; ++a) {
        const double lo = s.lo() + static_cast<double>(a) * width;
        for (std::size_t b = std::max(zeroEdge, a + 1); b <= kBins; ++b) {
            const double hi = s.lo() + static_cast<double>(b) * width;
            const double step = (hi - lo) / qmax;
            const double err = clip(0, a, lo) + clip(b, kBins, hi) + (p0[b] - p0[a]) * step * step / 12.0;
            if (err < best) {
                best = err;
                bestA = a;
                bestB = b;
            }
        }
    }
    return affine(s.lo() + static_cast<double>(bestA) * width, s.lo() + static_cast<double>(bestB) * width, qmax);
}

// KL divergence between the distribution of |x| clipped at a threshold and its 128-level
// (per sign) quantized version; the threshold with the least divergence wins.
QParams entropyRange(const ValueStats& s, int qmax) {
    const bool nonNegative = s.min >= 0;
    const double amax = std::max(std::abs(s.lo()), std::abs(s.hi()));
    if (!(amax > 0))
        return affine(0, 0, qmax);
    const std::size_t bins = s.histogram.size();
    std::vector<double> h(bins, 0.0); // |x| over [0, amax]
    for (std::size_t i = 0; i < bins; ++i) {
        const double a = std::abs(binCenter(s, i));
        const std::size_t j = std::min(bins - 1, static_cast<std::size_t>(a / amax * static_cast<double>(bins)));
        h[j] += s.histogram[i];
    }
    // exact zeros (most of a post-ReLU tensor) are represented exactly at any threshold:
    // left in, their spike dominates the divergence and pulls the threshold down
    if (nonNegative)
        h[0] = 0;
    const std::size_t levels = nonNegative ? static_cast<std::size_t>(qmax) + 1 : (static_cast<std::size_t>(qmax) + 1) / 2;
    double bestKl = std::numeric_limits<double>::infinity();
    std::size_t bestEdge = bins;
    for (std::size_t edge = levels; edge <= bins; edge += 8) {
        std::vector<double> p(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(edge));
        for (std::size_t i = edge; i < bins; ++i)
            p[edge - 1] += h[i];
        double total = 0;
        for (double v : p)
            total += v;
        if (total <= 0)
            continue;
        // quantize the first `edge` bins into `levels` chunks, spread each back evenly over
        // the chunk's non-empty bins
        std::vector<double> q(edge, 0.0);
        for (std::size_t l = 0; l < levels; ++l) {
            const std::size_t a = l * edge / levels, b = (l + 1) * edge / levels;
            double sum = 0;
            std::size_t nonEmpty = 0;
            for (std::size_t i = a; i < b; ++i) {
                sum += h[i];
                nonEmpty += h[i] > 0;
            }
            for (std::size_t i = a; i < b; ++i)
                if (h[i] > 0)
                    q[i] = sum / static_cast<double>(nonEmpty);
        }
        double qTotal = 0;
        for (double v : q)
            qTotal += v;
        double kl = 0;
        for (std::size_t i = 0; i < edge; ++i) {
            if (p[i] <= 0)
                continue;
            const double pi = p[i] / total;
            const double qi = q[i] > 0 ? q[i] / qTotal : 1e-12;
            kl += pi * std::log(pi / qi);
        }
        if (kl < bestKl) {
            bestKl = kl;
            bestEdge = edge;
        }
    }
    const double t = amax * static_cast<double>(bestEdge) / static_cast<double>(bins);
    return nonNegative ? affine(0, std::min(t, s.hi()), qmax) : affine(std::max(-t, s.lo()), std::min(t, s.hi()), qmax);
}

QParams chooseRange(const ValueStats& s, CalibrationMethod method, double percentile, int qmax) {
    if (s.count == 0 || s.nonFinite) {
        QParams q = affine(0, 0, qmax);
        q.observed = false;
        return q;
    }
    if (method == CalibrationMethod::MinMax || s.histogram.empty() || !(s.hi() > s.lo()))
        return affine(s.min, s.max, qmax);
    switch (method) {
    case CalibrationMethod::Percentile:
        return percentileRange(s, percentile, qmax);
    case CalibrationMethod::Mse:
        return mseRange(s, qmax);
    case CalibrationMethod::Entropy:
        // KL calibration is for one-sided (post-ReLU) distributions; on signed values it
        // would need a symmetric range, wasteful on skewed data: those get the MSE range.
        return s.min >= 0 ? entropyRange(s, qmax) : mseRange(s, qmax);
    case CalibrationMethod::MinMax:
        break;
    }
    return affine(s.min, s.max, qmax);
}


} // namespace qs
