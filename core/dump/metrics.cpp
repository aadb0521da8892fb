#include "metrics.h"

#include "parallel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <thread>

namespace qs {

namespace {

// Four running sums of each kind, element i in lane i % 4, added up at the end: one sum per
// kind would make every element wait for the previous one's addition (a chain of
// floating-point additions the compiler may not reorder), four keep the pipeline full.
constexpr std::size_t kLanes = 4;
struct Lanes {
    double ref2[kLanes] = {}, err2[kLanes] = {}, absErr[kLanes] = {}, absRef[kLanes] = {}, dot[kLanes] = {},
           q2[kLanes] = {}, maxAbs[kLanes] = {};
};

void addToLane(Lanes& s, std::size_t l, double a, double b) {
    const double e = b - a;
    s.ref2[l] += a * a;
    s.err2[l] += e * e;
    s.absErr[l] += std::fabs(e);
    s.absRef[l] += std::fabs(a);
    s.dot[l] += a * b;
    s.q2[l] += b * b;
    s.maxAbs[l] = std::max(s.maxAbs[l], std::fabs(e));
}

// Whole groups of four; returns how many elements it took.
std::size_t addLanes(const float* o, const float* q, std::size_t n, Lanes& s) {
    std::size_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (std::size_t l = 0; l < kLanes; ++l)
            addToLane(s, l, o[i + l], q[i + l]);
    return i;
}

#if defined(__x86_64__)
// The same lanes as one AVX2 register each, with the same operations in the same order
// (multiply, then add: no FMA), so the sums are bit for bit those of addLanes.
__attribute__((target("avx2"))) std::size_t addLanesAvx2(const float* o, const float* q, std::size_t n, Lanes& s) {
    __m256d ref2 = _mm256_loadu_pd(s.ref2), err2 = _mm256_loadu_pd(s.err2), absErr = _mm256_loadu_pd(s.absErr),
            absRef = _mm256_loadu_pd(s.absRef), dot = _mm256_loadu_pd(s.dot), q2 = _mm256_loadu_pd(s.q2),
            maxAbs = _mm256_loadu_pd(s.maxAbs);
    const __m256d sign = _mm256_set1_pd(-0.0);
    std::size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(o + i));
        const __m256d b = _mm256_cvtps_pd(_mm_loadu_ps(q + i));
        const __m256d e = _mm256_sub_pd(b, a);
        const __m256d absE = _mm256_andnot_pd(sign, e);
        ref2 = _mm256_add_pd(ref2, _mm256_mul_pd(a, a));
        err2 = _mm256_add_pd(err2, _mm256_mul_pd(e, e));
        absErr = _mm256_add_pd(absErr, absE);
        absRef = _mm256_add_pd(absRef, _mm256_andnot_pd(sign, a));
        dot = _mm256_add_pd(dot, _mm256_mul_pd(a, b));
        q2 = _mm256_add_pd(q2, _mm256_mul_pd(b, b));
        maxAbs = _mm256_max_pd(absE, maxAbs); // absE > max ? absE : max, as std::max(max, absE)
    }
    _mm256_storeu_pd(s.ref2, ref2);
    _mm256_storeu_pd(s.err2, err2);
    _mm256_storeu_pd(s.absErr, absErr);
    _mm256_storeu_pd(s.absRef, absRef);
    _mm256_storeu_pd(s.dot, dot);
    _mm256_storeu_pd(s.q2, q2);
    _mm256_storeu_pd(s.maxAbs, maxAbs);
    return i;
}
#endif

} // namespace

void MetricsAccumulator::add(const float* o, const float* q, std::size_t n) {
    Lanes s;
#if defined(__x86_64__)
    static const bool avx2 = __builtin_cpu_supports("avx2");
    std::size_t i = avx2 ? addLanesAvx2(o, q, n, s) : addLanes(o, q, n, s);
#else
    std::size_t i = addLanes(o, q, n, s);
#endif
    for (; i < n; ++i)
        addToLane(s, 0, o[i], q[i]);
    for (std::size_t l = 0; l < kLanes; ++l) {
        m_sumRef2 += s.ref2[l];
        m_sumErr2 += s.err2[l];
        m_sumAbsErr += s.absErr[l];
        m_sumAbsRef += s.absRef[l];
        m_dot += s.dot[l];
        m_sumQ2 += s.q2[l];
        m_maxAbs = std::max(m_maxAbs, s.maxAbs[l]);
    }
    m_count += static_cast<std::int64_t>(n);
}

void MetricsAccumulator::merge(const MetricsAccumulator& other) {
    m_sumRef2 += other.m_sumRef2;
    m_sumErr2 += other.m_sumErr2;
    m_sumAbsErr += other.m_sumAbsErr;
    m_sumAbsRef += other.m_sumAbsRef;
    m_dot += other.m_dot;
    m_sumQ2 += other.m_sumQ2;
    m_maxAbs = std::max(m_maxAbs, other.m_maxAbs);
    m_count += other.m_count;
}

std::array<double, kMetricCount> metricValues(const Metrics& m) {
    return {m.sqnrDb, m.mse, m.maxAbs, m.meanAbs, m.relErr, m.cosine};
}

Metrics metricsFromValues(const double* v) {
    Metrics m;
    m.sqnrDb = v[0];
    m.mse = v[1];
    m.maxAbs = v[2];
    m.meanAbs = v[3];
    m.relErr = v[4];
    m.cosine = v[5];
    return m;
}

std::array<double, MetricsAccumulator::kSums> MetricsAccumulator::sums() const {
    return {m_sumRef2, m_sumErr2, m_sumAbsErr, m_sumAbsRef, m_dot, m_sumQ2, m_maxAbs, static_cast<double>(m_count)};
}

MetricsAccumulator MetricsAccumulator::fromSums(const double* s) {
    MetricsAccumulator a;
    a.m_sumRef2 = s[0];
    a.m_sumErr2 = s[1];
    a.m_sumAbsErr = s[2];
    a.m_sumAbsRef = s[3];
    a.m_dot = s[4];
    a.m_sumQ2 = s[5];
    a.m_maxAbs = s[6];
    a.m_count = static_cast<std::int64_t>(s[7]);
    return a;
}

Metrics MetricsAccumulator::finish() const {
    constexpr double inf = std::numeric_limits<double>::infinity();
    Metrics m;
    m.count = m_count;
    if (m_count == 0)
        return m;
    const double n = static_cast<double>(m_count);
    m.mse = m_sumErr2 / n;
    m.meanAbs = m_sumAbsErr / n;
    m.maxAbs = m_maxAbs;
    if (m_sumErr2 == 0)
        m.sqnrDb = inf; // identical: no noise at all
    else if (m_sumRef2 == 0)
        m.sqnrDb = -inf; // noise without signal
    else
        m.sqnrDb = 10.0 * std::log10(m_sumRef2 / m_sumErr2);
    if (m_sumAbsErr == 0)
        m.relErr = 0;
    else if (m_sumAbsRef == 0)
        m.relErr = inf;
    else
        m.relErr = m_sumAbsErr / m_sumAbsRef;
    if (m_sumRef2 == 0 && m_sumQ2 == 0)
        m.cosine = 1;
    else if (m_sumRef2 == 0 || m_sumQ2 == 0)
        m.cosine = 0;
    else
        m.cosine = std::clamp(m_dot / std::sqrt(m_sumRef2 * m_sumQ2), -1.0, 1.0);
    return m;
}

Metrics computeMetrics(const float* original, const float* quantized, std::size_t n) {
    MetricsAccumulator acc;
    acc.add(original, quantized, n);
    return acc.finish();
}

namespace {

} // namespace

DiffMaps diffMaps(const float* o, const float* q, std::size_t channels, std::size_t plane, int threads) {
    DiffMaps maps;
    maps.absMean.assign(plane, 0.0f);
    maps.relMean.assign(plane, 0.0f);
    if (channels == 0)
        return maps;
    const std::size_t n = channels * plane;
    float maxRef = 0;
    for (std::size_t i = 0; i < n; ++i)
        maxRef = std::max(maxRef, std::fabs(o[i]));
    const float tau = maxRef > 0 ? static_cast<float>(kRelFloor) * maxRef : 1.0f;
    // each thread sums its channel range into its own partial maps
    const std::size_t t = threadCount(threads, channels);
    std::vector<std::vector<double>> absSum(t, std::vector<double>(plane, 0.0));
    std::vector<std::vector<double>> relSum(t, std::vector<double>(plane, 0.0));
    parallelRanges(channels, t, [&](std::size_t k, std::size_t c0, std::size_t c1) {
        auto& as = absSum[k];
        auto& rs = relSum[k];
        for (std::size_t c = c0; c < c1; ++c) {
            const float* oc = o + c * plane;
            const float* qc = q + c * plane;
            for (std::size_t p = 0; p < plane; ++p) {
                const float e = std::fabs(qc[p] - oc[p]);
                as[p] += e;
                rs[p] += e / std::max(std::fabs(oc[p]), tau);
            }
        }
    });
    for (std::size_t p = 0; p < plane; ++p) {
        double a = 0, r = 0;
        for (std::size_t k = 0; k < t; ++k) {
            a += absSum[k][p];
            r += relSum[k][p];
        }
        maps.absMean[p] = static_cast<float>(a / static_cast<double>(channels));
        maps.relMean[p] = static_cast<float>(r / static_cast<double>(channels));
    }
    return maps;
}

std::vector<float> channelMean(const float* values, std::size_t channels, std::size_t plane) {
    std::vector<double> sum(plane, 0.0);
    for (std::size_t c = 0; c < channels; ++c)
        for (std::size_t p = 0; p < plane; ++p)
            sum[p] += values[c * plane + p];
    std::vector<float> mean(plane, 0.0f);
    if (channels > 0)
        for (std::size_t p = 0; p < plane; ++p)
            mean[p] = static_cast<float>(sum[p] / static_cast<double>(channels));
    return mean;
}

void accumulateImage(const float* o, const float* q, std::size_t channels, std::size_t plane,
                     std::vector<MetricsAccumulator>& perChannel, DiffMaps* maps, int threads) {
    parallelRanges(channels, threadCount(threads, channels), [&](std::size_t, std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c)
            perChannel[c].add(o + c * plane, q + c * plane, plane);
    });
    if (maps)
        *maps = diffMaps(o, q, channels, plane, threads);
}

} // namespace qs
