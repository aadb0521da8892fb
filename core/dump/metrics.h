#pragma once
// Error metrics between an original (reference) tensor o and a quantized one q.
// Definitions, edge cases included, are in docs/metrics.md; keep the two in step.

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace qs {

struct Metrics {
    double sqnrDb = 0;  // 10 log10(sum o^2 / sum (q-o)^2); +inf when q == o
    double mse = 0;     // mean (q-o)^2
    double maxAbs = 0;  // max |q-o|
    double meanAbs = 0; // mean |q-o|
    double relErr = 0;  // sum |q-o| / sum |o|; 0 when q == o, +inf when o == 0 != q
    double cosine = 0;  // <o,q> / (|o| |q|); 1 when both are zero, 0 when only one is
    std::int64_t count = 0;
};

// The six metrics as numbers, in the dump's order (sqnr_db, mse, max_abs, mean_abs,
// rel_err, cosine: docs/dump-format.md), and back.
constexpr int kMetricCount = 6;
std::array<double, kMetricCount> metricValues(const Metrics& m);
Metrics metricsFromValues(const double* values);

// Streaming accumulator: add element pairs in any number of pieces, then finish().
// Sums are kept in double, so the result does not depend on how the data was split
// beyond rounding.
class MetricsAccumulator {
public:
    void add(const float* original, const float* quantized, std::size_t n);
    void merge(const MetricsAccumulator& other);
    Metrics finish() const;

    // The sums behind the metrics, for storing and merging exactly (shards of one run):
    // Σo², Σe², Σ|e|, Σ|o|, Σo·q, Σq², max|e|, n.
    static constexpr int kSums = 8;
    std::array<double, kSums> sums() const;
    static MetricsAccumulator fromSums(const double* sums);

private:
    double m_sumRef2 = 0, m_sumErr2 = 0, m_sumAbsErr = 0, m_sumAbsRef = 0;
    double m_dot = 0, m_sumQ2 = 0, m_maxAbs = 0;
    std::int64_t m_count = 0;
};

Metrics computeMetrics(const float* original, const float* quantized, std::size_t n);

// Difference maps for heatmaps, reduced over channels: for an activation laid out as
// [C, H*W], out[p] = mean over c of |q-o| (abs) and of |q-o| / max(|o|, tau) (rel),
// where tau = relFloor * max|o| over the whole [C, H*W] tensor (1 if that max is 0).
struct DiffMaps {
    std::vector<float> absMean; // [H*W]
    std::vector<float> relMean; // [H*W]
};
constexpr double kRelFloor = 0.01;
DiffMaps diffMaps(const float* original, const float* quantized, std::size_t channels,
                  std::size_t plane, int threads = 1);

// Mean over channels of a [C, plane] tensor.
std::vector<float> channelMean(const float* values, std::size_t channels, std::size_t plane);

// One image of one layer, [C, plane] each: adds channel c's elements to perChannel[c]
// (size C) and, when maps is given, computes its difference maps. Channels are split
// over `threads` threads; results do not depend on the thread count beyond rounding.
void accumulateImage(const float* original, const float* quantized, std::size_t channels,
                     std::size_t plane, std::vector<MetricsAccumulator>& perChannel,
                     DiffMaps* maps, int threads);

} // namespace qs
