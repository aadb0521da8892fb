// Layer matching: path first, then execution order + shape; unmatched reported.

#include "matching.h"

#include <QtTest>

using namespace qs;

namespace {
TapRecord rec(const std::string& module, std::vector<std::int64_t> shape, int call = 0) {
    return TapRecord{module, call, "aten::conv2d", std::move(shape)};
}
} // namespace

class TestMatching : public QObject {
    Q_OBJECT

private slots:
    void normalize() {
        QCOMPARE(QString::fromStdString(normalizeModulePath("module.features.0")), QStringLiteral("features.0"));
        QCOMPARE(QString::fromStdString(normalizeModulePath("a.b._packed_params")), QStringLiteral("a.b"));
    }

    void byPath() {
        const std::vector<TapRecord> o{rec("a", {8, 4, 4}), rec("b", {8, 4, 4})};
        const std::vector<TapRecord> q{rec("module.a", {8, 4, 4}), rec("module.b", {8, 4, 4})};
        const auto r = matchLayers(o, q);
        QCOMPARE(r.pairs.size(), std::size_t{2});
        QCOMPARE(r.pairs[0].original, 0);
        QCOMPARE(r.pairs[0].quantized, 0);
        QVERIFY(r.pairs[0].method == MatchMethod::Path);
        QVERIFY(r.unmatchedOriginal.empty() && r.unmatchedQuantized.empty());
    }

    void fxNamesFallBackToOrderAndShape() {
        // FX conversion leaves only a prefix: several convolutions share one path
        const std::vector<TapRecord> o{rec("body.conv1", {64, 8, 8}), rec("body.layer1.0.conv1", {64, 8, 8}),
                                       rec("body.layer1.0.conv2", {256, 8, 8}), rec("head", {3, 8, 8})};
        const std::vector<TapRecord> q{rec("body", {64, 8, 8}), rec("body", {64, 8, 8}),
                                       rec("body", {256, 8, 8}), rec("head", {3, 8, 8})};
        const auto r = matchLayers(o, q);
        QCOMPARE(r.pairs.size(), std::size_t{4});
        for (int i = 0; i < 4; ++i) {
            QCOMPARE(r.pairs[static_cast<std::size_t>(i)].original, i);
            QCOMPARE(r.pairs[static_cast<std::size_t>(i)].quantized, i);
        }
        QVERIFY(r.pairs[3].method == MatchMethod::Path);
        QVERIFY(r.pairs[0].method == MatchMethod::OrderShape);
    }

    void unmatchedAreReported() {
        // the quantized model lost one layer and gained another of a new shape
        const std::vector<TapRecord> o{rec("a", {8, 4, 4}), rec("extra", {16, 4, 4}), rec("c", {8, 2, 2})};
        const std::vector<TapRecord> q{rec("a", {8, 4, 4}), rec("new", {5, 4, 4}), rec("c", {8, 2, 2})};
        const auto r = matchLayers(o, q);
        QCOMPARE(r.pairs.size(), std::size_t{2});
        QCOMPARE(r.unmatchedOriginal, std::vector<int>{1});
        QCOMPARE(r.unmatchedQuantized, std::vector<int>{1});
    }

    void pathWithDifferentShapeIsNotPaired() {
        const std::vector<TapRecord> o{rec("a", {8, 4, 4})};
        const std::vector<TapRecord> q{rec("a", {8, 2, 2})};
        const auto r = matchLayers(o, q);
        QVERIFY(r.pairs.empty());
        QCOMPARE(r.unmatchedOriginal.size(), std::size_t{1});
    }

    void repeatedCallsGetDistinctNames() {
        const std::vector<TapRecord> recs{rec("rpn.head.conv", {256, 8, 8}, 0), rec("rpn.head.conv", {256, 4, 4}, 1),
                                          rec("roi", {8, 1, 1}, 0)};
        const auto names = displayNames(recs);
        QCOMPARE(QString::fromStdString(names[0]), QStringLiteral("rpn.head.conv#0"));
        QCOMPARE(QString::fromStdString(names[1]), QStringLiteral("rpn.head.conv#1"));
        QCOMPARE(QString::fromStdString(names[2]), QStringLiteral("roi"));
        // per-level calls are matched call by call
        const auto r = matchLayers(recs, recs);
        QCOMPARE(r.pairs.size(), std::size_t{3});
        QVERIFY(r.pairs[1].method == MatchMethod::Path);
    }
};

QTEST_GUILESS_MAIN(TestMatching)
#include "test_matching.moc"
