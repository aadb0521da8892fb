// Hexagonal binning against counts worked out by hand.

#include "hexbin.h"

#include <QtTest>

#include <cmath>
#include <limits>

using namespace qs;

class TestHexbin : public QObject {
    Q_OBJECT

private slots:
    void handCounted() {
        // bounds [0,2] x [0,2], 2 hexagons across, square plot: cell width 1, rows sqrt(3) apart.
        // lattice 1 centres (i, j*sqrt(3)), lattice 2 centres (i+0.5, (j+0.5)*sqrt(3))
        const std::vector<double> x{0.0, 0.5, 1.0, 0.9, 0.45, std::numeric_limits<double>::quiet_NaN()};
        const std::vector<double> y{0.0, 0.866, 0.1, 0.0, 0.8, 1.0};
        const HexBins b = hexbin(x, y, 2, 0, 2, 0, 2, 1.0);
        QVERIFY(std::fabs(b.cellWidth - 1.0) < 1e-12);
        QVERIFY(std::fabs(b.cellHeight - std::sqrt(3.0)) < 1e-12);
        QCOMPARE(b.total(), std::size_t{5}); // the NaN sample is skipped
        auto countAt = [&](double cx, double cy) {
            for (std::size_t i = 0; i < b.counts.size(); ++i)
                if (std::fabs(b.centerX[i] - cx) < 1e-9 && std::fabs(b.centerY[i] - cy) < 1e-9)
                    return b.counts[i];
            return 0;
        };
        QCOMPARE(countAt(0, 0), 1);                          // (0, 0)
        QCOMPARE(countAt(1, 0), 2);                          // (1.0, 0.1) and (0.9, 0)
        QCOMPARE(countAt(0.5, std::sqrt(3.0) / 2), 2);       // (0.5, 0.866) and (0.45, 0.8)
        QCOMPARE(b.counts.size(), std::size_t{3});
        QCOMPARE(b.maxCount(), 2);
    }

    void everyPointLandsInItsNearestHexagon() {
        // brute force: for every point, the hexagon it is counted in has the nearest centre
        // of the whole lattice, in the metric where the hexagons are regular
        std::vector<double> x, y;
        for (int i = 0; i < 400; ++i) {
            x.push_back(std::fmod(i * 0.6180339887, 1.0) * 10);
            y.push_back(std::fmod(i * 0.4142135623, 1.0) * 4);
        }
        const double xMin = 0, xMax = 10, yMin = 0, yMax = 4, aspect = 0.8;
        const int grid = 7;
        const HexBins b = hexbin(x, y, grid, xMin, xMax, yMin, yMax, aspect);
        QCOMPARE(b.total(), x.size());
        // y scale that makes the hexagons regular: rows of one lattice are sqrt(3) cell widths apart
        const double yScale = b.cellWidth * std::sqrt(3.0) / b.cellHeight;
        const int rows = static_cast<int>(std::ceil((yMax - yMin) / b.cellHeight)) + 2;
        std::vector<int> expected(b.counts.size(), 0);
        for (std::size_t k = 0; k < x.size(); ++k) {
            // nearest centre of both lattices, by brute force over every candidate
            double best = std::numeric_limits<double>::infinity(), bx = 0, by = 0;
            for (int lattice = 0; lattice < 2; ++lattice)
                for (int i = -1; i <= grid + 1; ++i)
                    for (int j = -1; j <= rows; ++j) {
                        const double cx = xMin + (i + 0.5 * lattice) * b.cellWidth;
                        const double cy = yMin + (j + 0.5 * lattice) * b.cellHeight;
                        const double d = std::hypot(x[k] - cx, (y[k] - cy) * yScale);
                        if (d < best) {
                            best = d;
                            bx = cx;
                            by = cy;
                        }
                    }
            // the point alone, binned with the same grid, lands in exactly that hexagon
            const HexBins one = hexbin({x[k]}, {y[k]}, grid, xMin, xMax, yMin, yMax, aspect);
            QCOMPARE(one.counts.size(), std::size_t{1});
            QVERIFY2(std::fabs(one.centerX[0] - bx) < 1e-9 && std::fabs(one.centerY[0] - by) < 1e-9,
                     qPrintable(QStringLiteral("point %1 (%2, %3): binned at (%4, %5), nearest centre (%6, %7)")
                                    .arg(k).arg(x[k]).arg(y[k]).arg(one.centerX[0]).arg(one.centerY[0]).arg(bx).arg(by)));
            bool found = false;
            for (std::size_t c = 0; c < b.counts.size(); ++c)
                if (std::fabs(b.centerX[c] - bx) < 1e-9 && std::fabs(b.centerY[c] - by) < 1e-9) {
                    ++expected[c];
                    found = true;
                }
            QVERIFY2(found, qPrintable(QStringLiteral("point %1 has no hexagon in the full binning").arg(k)));
        }
        // and the full binning counts exactly those points in each hexagon
        for (std::size_t c = 0; c < b.counts.size(); ++c)
            QCOMPARE(b.counts[c], expected[c]);
        // corners: a regular hexagon around the centre, top vertex straight above
        double dx = 0, dy = 0;
        b.corner(0, dx, dy);
        QCOMPARE(dx, 0.0);
        QVERIFY(dy > 0);
    }

    void emptyAndDegenerate() {
        const HexBins none = hexbin({}, {}, 10);
        QCOMPARE(none.total(), std::size_t{0});
        const HexBins same = hexbin({1, 1, 1}, {2, 2, 2}, 10);
        QCOMPARE(same.total(), std::size_t{3});
        QCOMPARE(same.counts.size(), std::size_t{1});
    }
};

QTEST_GUILESS_MAIN(TestHexbin)
#include "test_hexbin.moc"
