// Range selection (core/quantize/ranges.cpp) against naive references, fixed seeds, every
// parameter printed on failure.

#include "ranges.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <random>

using namespace qs;

namespace {

// A ValueStats of `n` samples drawn by `draw`, histogrammed over [lo(), hi()] as the
// calibrator does.
template <typename Draw>
ValueStats statsOf(int n, std::mt19937& rng, Draw draw, std::vector<double>* samples = nullptr) {
    ValueStats s;
    std::vector<double> v(static_cast<std::size_t>(n));
    for (auto& x : v)
        x = draw(rng);
    for (double x : v) {
        s.min = std::min(s.min, x);
        s.max = std::max(s.max, x);
    }
    s.count = n;
    s.histogram.assign(kHistogramBins, 0.0);
    for (double x : v) {
        auto i = static_cast<std::size_t>((x - s.lo()) / (s.hi() - s.lo()) * kHistogramBins);
        s.histogram[std::min<std::size_t>(i, kHistogramBins - 1)] += 1;
    }
    if (samples)
        *samples = v;
    return s;
}

QString describe(const QParams& q) {
    return QStringLiteral("scale %1 zero point %2 qmax %3").arg(q.scale, 0, 'g', 9).arg(q.zeroPoint).arg(q.qmax);
}

} // namespace

class TestRanges : public QObject {
    Q_OBJECT

private slots:
    void affineHoldsZeroAndTheRange() {
        std::mt19937 rng(101);
        std::uniform_real_distribution<double> u(-10, 10);
        for (int qmax : {127, 255})
            for (int k = 0; k < 200; ++k) {
                double lo = u(rng), hi = u(rng);
                if (lo > hi)
                    std::swap(lo, hi);
                const QParams q = affine(lo, hi, qmax);
                const QString msg = QStringLiteral("seed 101 case %1: [%2, %3] -> %4").arg(k).arg(lo).arg(hi).arg(describe(q));
                QVERIFY2(q.zeroPoint >= 0 && q.zeroPoint <= qmax, qPrintable(msg));
                // the range always holds 0, and its ends are within half a step of a level
                const double a = std::min(lo, 0.0), b = std::max(hi, 0.0);
                QVERIFY2(std::fabs((0 - q.zeroPoint) * q.scale - a) <= q.scale / 2 + 1e-12, qPrintable(msg));
                QVERIFY2(std::fabs((qmax - q.zeroPoint) * q.scale - b) <= q.scale / 2 + 1e-12, qPrintable(msg));
                QVERIFY2(std::fabs(q.scale - (b - a) / qmax) <= 1e-12 * std::max(1.0, b - a), qPrintable(msg));
            }
        // an empty range gets the smallest scale, zero exactly representable
        const QParams empty = affine(0, 0, 255);
        QCOMPARE(empty.scale, kMinScale);
        QCOMPARE(empty.zeroPoint, std::int64_t{0});
    }

    void percentileClipsTheTailsCounted() {
        // naive reference: sort the samples; the bins of the P-th and (100-P)-th samples
        std::mt19937 rng(202);
        std::normal_distribution<double> normal(0.5, 2.0);
        std::vector<double> samples;
        const ValueStats s = statsOf(20000, rng, [&](std::mt19937& r) { return normal(r); }, &samples);
        for (double p : {99.0, 99.9, 99.99}) {
            const QParams q = percentileRange(s, p, 255);
            std::sort(samples.begin(), samples.end());
            const double tail = samples.size() * (1.0 - p / 100.0);
            const double lo = samples[static_cast<std::size_t>(std::floor(tail))];
            const double hi = samples[samples.size() - 1 - static_cast<std::size_t>(std::floor(tail))];
            const double bin = (s.hi() - s.lo()) / kHistogramBins;
            const double gotLo = -q.zeroPoint * q.scale, gotHi = (255 - q.zeroPoint) * q.scale;
            const QString msg = QStringLiteral("seed 202, P %1: got [%2, %3], sorted samples [%4, %5], bin %6")
                                    .arg(p).arg(gotLo).arg(gotHi).arg(lo).arg(hi).arg(bin);
            QVERIFY2(std::fabs(gotLo - lo) <= bin + q.scale, qPrintable(msg));
            QVERIFY2(std::fabs(gotHi - hi) <= bin + q.scale, qPrintable(msg));
        }
    }

    void mseRangeIsTheBruteForceMinimum() {
        // naive reference: the same objective summed bin by bin for every pair of edges
        std::mt19937 rng(303);
        std::exponential_distribution<double> expo(1.5);
        std::uniform_real_distribution<double> u(0, 1);
        const ValueStats s = statsOf(50000, rng, [&](std::mt19937& r) { return u(r) < 0.9 ? expo(r) - 0.2 : 6 * u(r); });
        for (int qmax : {127, 255}) {
            constexpr std::size_t kBins = 256;
            const std::size_t merge = s.histogram.size() / kBins;
            const double width = (s.hi() - s.lo()) / kBins;
            std::vector<double> n(kBins, 0.0), c(kBins);
            for (std::size_t i = 0; i < kBins; ++i) {
                for (std::size_t j = 0; j < merge; ++j)
                    n[i] += s.histogram[i * merge + j];
                c[i] = s.lo() + (i + 0.5) * width;
            }
            const auto zeroEdge = static_cast<std::size_t>(std::llround(-s.lo() / width));
            double best = INFINITY, bestLo = 0, bestHi = 0;
            for (std::size_t a = 0; a <= zeroEdge; ++a)
                for (std::size_t b = std::max(zeroEdge, a + 1); b <= kBins; ++b) {
                    const double lo = s.lo() + a * width, hi = s.lo() + b * width, step = (hi - lo) / qmax;
                    double err = 0;
                    for (std::size_t i = 0; i < kBins; ++i) {
                        if (i < a)
                            err += n[i] * (c[i] - lo) * (c[i] - lo);
                        else if (i >= b)
                            err += n[i] * (c[i] - hi) * (c[i] - hi);
                        else
                            err += n[i] * step * step / 12;
                    }
                    if (err < best * (1 - 1e-12)) {
                        best = err;
                        bestLo = lo;
                        bestHi = hi;
                    }
                }
            const QParams want = affine(bestLo, bestHi, qmax), got = mseRange(s, qmax);
            QVERIFY2(std::fabs(got.scale - want.scale) <= 1e-9 * want.scale && got.zeroPoint == want.zeroPoint,
                     qPrintable(QStringLiteral("seed 303 qmax %1: got %2, brute force %3 ([%4, %5])")
                                    .arg(qmax).arg(describe(got), describe(want)).arg(bestLo).arg(bestHi)));
        }
    }

    void entropyKeepsTheBulkOfAOneSidedDistribution() {
        std::mt19937 rng(404);
        std::exponential_distribution<double> expo(1.0);
        const ValueStats s = statsOf(50000, rng, [&](std::mt19937& r) { return expo(r); });
        const QParams q = entropyRange(s, 255);
        const double hi = (255 - q.zeroPoint) * q.scale;
        // clips the sparse tail, keeps at least the 99th percentile (exp(1): ln(100) = 4.6)
        QVERIFY2(q.zeroPoint == 0 && hi <= s.max + 1e-9 && hi >= std::log(100.0),
                 qPrintable(QStringLiteral("seed 404: %1, max %2").arg(describe(q)).arg(s.max)));
    }

    void unobservedValuesSaySo() {
        ValueStats none;
        QVERIFY(!chooseRange(none, CalibrationMethod::MinMax, 99.99, 255).observed);
        ValueStats bad;
        bad.count = 10;
        bad.nonFinite = true;
        QVERIFY(!chooseRange(bad, CalibrationMethod::Percentile, 99.99, 255).observed);
        std::mt19937 rng(505);
        std::uniform_real_distribution<double> u(-1, 3);
        const ValueStats s = statsOf(1000, rng, [&](std::mt19937& r) { return u(r); });
        const QParams mm = chooseRange(s, CalibrationMethod::MinMax, 99.99, 127);
        QVERIFY(mm.observed);
        QCOMPARE(mm.qmax, 127);
        const QParams ref = affine(s.min, s.max, 127);
        QCOMPARE(mm.scale, ref.scale);
        QCOMPARE(mm.zeroPoint, ref.zeroPoint);
        CalibrationMethod m = CalibrationMethod::MinMax;
        QVERIFY(parseCalibrationMethod("entropy", m) && m == CalibrationMethod::Entropy);
        QVERIFY(!parseCalibrationMethod("kl", m));
    }
};

QTEST_GUILESS_MAIN(TestRanges)
#include "test_ranges.moc"
