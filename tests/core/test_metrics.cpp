// Metrics, difference maps and float16 conversion against hand-computed values.

#include "detection.h"
#include "halffloat.h"
#include "metrics.h"

#include <QtTest>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

using namespace qs;

class TestMetrics : public QObject {
    Q_OBJECT

private slots:
    void handComputed() {
        // o = [1, 2, 3, 4], q = [1, 2.5, 2, 4]: e = [0, 0.5, -1, 0]
        const std::vector<float> o{1, 2, 3, 4}, q{1, 2.5f, 2, 4};
        const Metrics m = computeMetrics(o.data(), q.data(), o.size());
        // sum o^2 = 30, sum e^2 = 1.25 -> SQNR = 10 log10(24)
        QCOMPARE(m.count, 4);
        QVERIFY(std::fabs(m.sqnrDb - 10.0 * std::log10(24.0)) < 1e-9);
        QVERIFY(std::fabs(m.mse - 1.25 / 4) < 1e-12);
        QCOMPARE(m.maxAbs, 1.0);
        QVERIFY(std::fabs(m.meanAbs - 1.5 / 4) < 1e-12);
        QVERIFY(std::fabs(m.relErr - 1.5 / 10) < 1e-12);
        // <o,q> = 1 + 5 + 6 + 16 = 28; |q|^2 = 1 + 6.25 + 4 + 16 = 27.25
        QVERIFY(std::fabs(m.cosine - 28.0 / std::sqrt(30.0 * 27.25)) < 1e-12);
    }

    void identical() {
        const std::vector<float> o{0.5f, -1, 3};
        const Metrics m = computeMetrics(o.data(), o.data(), o.size());
        QVERIFY(std::isinf(m.sqnrDb) && m.sqnrDb > 0);
        QCOMPARE(m.mse, 0.0);
        QCOMPARE(m.maxAbs, 0.0);
        QCOMPARE(m.relErr, 0.0);
        QVERIFY(std::fabs(m.cosine - 1.0) < 1e-12);
    }

    void allZeroReference() {
        const std::vector<float> o{0, 0, 0}, q{0, 1, -1};
        const Metrics m = computeMetrics(o.data(), q.data(), o.size());
        QVERIFY(std::isinf(m.sqnrDb) && m.sqnrDb < 0);
        QVERIFY(std::isinf(m.relErr));
        QCOMPARE(m.cosine, 0.0);
        QVERIFY(std::fabs(m.mse - 2.0 / 3) < 1e-12);
        const Metrics z = computeMetrics(o.data(), o.data(), o.size());
        QVERIFY(std::isinf(z.sqnrDb) && z.sqnrDb > 0);
        QCOMPARE(z.relErr, 0.0);
        QCOMPARE(z.cosine, 1.0);
    }

    void everyLengthAgainstReference() {
        // the accumulator sums four interleaved lanes plus a tail: lengths 1..13 cover every
        // tail, and the largest error sits in the last element (the tail, or the last lane)
        std::mt19937 rng(7);
        std::normal_distribution<float> dist;
        for (std::size_t n = 1; n <= 13; ++n) {
            std::vector<float> o(n), q(n);
            for (std::size_t i = 0; i < n; ++i) {
                o[i] = dist(rng);
                q[i] = o[i] + 0.05f * dist(rng);
            }
            q[n - 1] = o[n - 1] + 3.0f;
            long double ref2 = 0, err2 = 0, absErr = 0, absRef = 0, dot = 0, q2 = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const long double a = o[i], b = q[i], e = b - a;
                ref2 += a * a;
                err2 += e * e;
                absErr += std::fabs(e);
                absRef += std::fabs(a);
                dot += a * b;
                q2 += b * b;
            }
            const Metrics m = computeMetrics(o.data(), q.data(), n);
            const auto close = [](double got, long double want) {
                return std::fabs(got - static_cast<double>(want)) <= 1e-12 * std::fabs(static_cast<double>(want));
            };
            QCOMPARE(m.count, static_cast<std::int64_t>(n));
            QVERIFY2(close(m.mse, err2 / n), qPrintable(QStringLiteral("n = %1").arg(n)));
            QVERIFY(close(m.meanAbs, absErr / n));
            QVERIFY(close(m.relErr, absErr / absRef));
            QVERIFY(close(m.sqnrDb, 10.0L * std::log10(ref2 / err2)));
            QVERIFY(close(m.cosine, dot / std::sqrt(ref2 * q2)));
            QCOMPARE(m.maxAbs, static_cast<double>(q[n - 1]) - static_cast<double>(o[n - 1]));
        }
    }

    void summationOrderIsFixed() {
        // docs/metrics.md: element i is summed in lane i % 4 (a tail past the last group of
        // four in lane 0), the lanes are added 0..3 at the end. Whatever instructions the CPU
        // runs (AVX2 or not), the sums are bit for bit those of that order.
        std::mt19937 rng(3);
        std::normal_distribution<float> dist;
        const std::size_t n = 1003;
        std::vector<float> o(n), q(n);
        for (std::size_t i = 0; i < n; ++i) {
            o[i] = dist(rng);
            q[i] = o[i] + 0.1f * dist(rng);
        }
        double lane[4][6] = {};
        double maxAbs = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t l = i < n / 4 * 4 ? i % 4 : 0;
            const double a = o[i], b = q[i], e = b - a;
            lane[l][0] += a * a;
            lane[l][1] += e * e;
            lane[l][2] += std::fabs(e);
            lane[l][3] += std::fabs(a);
            lane[l][4] += a * b;
            maxAbs = std::max(maxAbs, std::fabs(e));
        }
        double sum[5] = {};
        for (int l = 0; l < 4; ++l)
            for (int k = 0; k < 5; ++k)
                sum[k] += lane[l][k];
        const Metrics m = computeMetrics(o.data(), q.data(), n);
        QVERIFY(m.sqnrDb == 10.0 * std::log10(sum[0] / sum[1])); // exactly
        QVERIFY(m.mse == sum[1] / static_cast<double>(n)); // exactly
        QVERIFY(m.meanAbs == sum[2] / static_cast<double>(n)); // exactly
        QVERIFY(m.relErr == sum[2] / sum[3]); // exactly
        QVERIFY(m.maxAbs == maxAbs); // exactly
    }

    void splitInvariance() {
        std::mt19937 rng(42);
        std::normal_distribution<float> dist;
        std::vector<float> o(1000), q(1000);
        for (std::size_t i = 0; i < o.size(); ++i) {
            o[i] = dist(rng);
            q[i] = o[i] + 0.05f * dist(rng);
        }
        const Metrics whole = computeMetrics(o.data(), q.data(), o.size());
        MetricsAccumulator a, b;
        a.add(o.data(), q.data(), 300);
        b.add(o.data() + 300, q.data() + 300, 700);
        a.merge(b);
        const Metrics parts = a.finish();
        if (std::fabs(whole.sqnrDb - parts.sqnrDb) > 1e-9)
            qWarning("seed 42: whole %.12f parts %.12f", whole.sqnrDb, parts.sqnrDb);
        QVERIFY(std::fabs(whole.sqnrDb - parts.sqnrDb) < 1e-9);
        QCOMPARE(whole.maxAbs, parts.maxAbs);
        QCOMPARE(whole.count, parts.count);
        // noise std 0.05 on unit signal: SQNR near 26 dB
        QVERIFY(whole.sqnrDb > 24 && whole.sqnrDb < 28);
    }

    void diffMapsHandComputed() {
        // 2 channels, 2 pixels. o = [[1, 0], [2, -4]], q = [[1.5, 0], [2, -3]]
        const std::vector<float> o{1, 0, 2, -4}, q{1.5f, 0, 2, -3};
        const DiffMaps d = diffMaps(o.data(), q.data(), 2, 2);
        QCOMPARE(d.absMean.size(), std::size_t{2});
        QVERIFY(std::fabs(d.absMean[0] - 0.25f) < 1e-7f); // (0.5 + 0) / 2
        QVERIFY(std::fabs(d.absMean[1] - 0.5f) < 1e-7f);  // (0 + 1) / 2
        // tau = 0.01 * 4 = 0.04: rel = (0.5/1 + 0/2)/2 and (0/0.04 + 1/4)/2
        QVERIFY(std::fabs(d.relMean[0] - 0.25f) < 1e-7f);
        QVERIFY(std::fabs(d.relMean[1] - 0.125f) < 1e-7f);
        // an all-zero reference uses tau = 1
        const std::vector<float> z{0, 0}, e{0.5f, 0};
        const DiffMaps dz = diffMaps(z.data(), e.data(), 1, 2);
        QVERIFY(std::fabs(dz.relMean[0] - 0.5f) < 1e-7f);
    }

    void halfConversion_data() {
        QTest::addColumn<float>("value");
        QTest::addColumn<int>("bits");
        QTest::addRow("one") << 1.0f << 0x3c00;
        QTest::addRow("minus two") << -2.0f << 0xc000;
        QTest::addRow("max") << 65504.0f << 0x7bff;
        QTest::addRow("overflow") << 70000.0f << 0x7c00;
        QTest::addRow("smallest subnormal") << 5.960464477539063e-08f << 0x0001;
        QTest::addRow("tie to even, down") << 2049.0f << 0x6800; // 2048 exactly representable
        QTest::addRow("tie to even, up") << 2051.0f << 0x6802;   // -> 2052
        QTest::addRow("zero") << 0.0f << 0x0000;
        QTest::addRow("third") << (1.0f / 3.0f) << 0x3555;
    }
    void halfConversion() {
        QFETCH(float, value);
        QFETCH(int, bits);
        QCOMPARE(int(floatToHalf(value)), bits);
    }

    void halfRoundTrip() {
        // every finite half survives half -> float -> half
        for (int b = 0; b < 0x10000; ++b) {
            if ((b & 0x7c00) == 0x7c00)
                continue;
            const auto h = static_cast<std::uint16_t>(b);
            QCOMPARE(int(floatToHalf(halfToFloat(h))), b);
        }
        // relative rounding error of normal values is at most 2^-11
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> dist(-1000.0f, 1000.0f);
        for (int i = 0; i < 10000; ++i) {
            const float v = dist(rng);
            if (std::fabs(v) < 1e-3f)
                continue;
            const float r = halfToFloat(floatToHalf(v));
            QVERIFY2(std::fabs(r - v) <= std::fabs(v) * (1.0f / 2048.0f), qPrintable(QString::number(v)));
        }
    }

    void bulkHalfConversionMatchesScalar() {
        // the bulk path (F16C where the CPU has it) must agree with the scalar one
        std::vector<std::uint16_t> all(0x10000);
        for (std::size_t i = 0; i < all.size(); ++i)
            all[i] = static_cast<std::uint16_t>(i);
        std::vector<float> bulk(all.size());
        halfToFloat(all.data(), bulk.data(), all.size());
        for (std::size_t i = 0; i < all.size(); ++i) {
            const float scalar = halfToFloat(all[i]);
            if (std::isnan(scalar))
                QVERIFY(std::isnan(bulk[i]));
            else
                QVERIFY2(bulk[i] == scalar, qPrintable(QString::number(i, 16)));
        }
    }

    void threadsDoNotChangeResults() {
        std::mt19937 rng(3);
        std::normal_distribution<float> dist;
        const std::size_t channels = 7, plane = 33;
        std::vector<float> o(channels * plane), q(o.size());
        for (std::size_t i = 0; i < o.size(); ++i) {
            o[i] = dist(rng);
            q[i] = o[i] + 0.1f * dist(rng);
        }
        std::vector<MetricsAccumulator> one(channels), three(channels);
        DiffMaps m1, m3;
        accumulateImage(o.data(), q.data(), channels, plane, one, &m1, 1);
        accumulateImage(o.data(), q.data(), channels, plane, three, &m3, 3);
        for (std::size_t c = 0; c < channels; ++c) {
            QCOMPARE(one[c].finish().sqnrDb, three[c].finish().sqnrDb);
            // the per-channel accumulator equals computing that channel alone
            const Metrics alone = computeMetrics(o.data() + c * plane, q.data() + c * plane, plane);
            QCOMPARE(one[c].finish().mse, alone.mse);
        }
        for (std::size_t p = 0; p < plane; ++p) {
            QVERIFY(std::fabs(m1.absMean[p] - m3.absMean[p]) < 1e-6f);
            QVERIFY(std::fabs(m1.relMean[p] - m3.relMean[p]) < 1e-5f);
        }
    }

    void detectionMatching() {
        const std::vector<Detection> o{{0, 0, 10, 10, 0.9f, 1}, {20, 20, 30, 30, 0.8f, 2}, {50, 50, 60, 60, 0.7f, 1}};
        const std::vector<Detection> q{{21, 21, 31, 31, 0.75f, 2}, {0, 0, 10, 9, 0.95f, 1}, {50, 50, 60, 60, 0.6f, 3}};
        QVERIFY(std::fabs(iou(o[0], q[1]) - 0.9f) < 1e-6f);
        const auto m = matchDetections(o, q);
        QCOMPARE(m.size(), std::size_t{2}); // the third differs in label
        QCOMPARE(m[0].original, 0);
        QCOMPARE(m[0].quantized, 1);
        QVERIFY(std::fabs(m[0].scoreDelta - 0.05f) < 1e-6f);
        QCOMPARE(m[1].original, 1);
        QCOMPARE(m[1].quantized, 0);
        QVERIFY(std::fabs(m[1].iou - 81.0f / 119.0f) < 1e-6f);
    }
};

QTEST_GUILESS_MAIN(TestMetrics)
#include "test_metrics.moc"
