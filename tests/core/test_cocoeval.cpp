// COCO evaluation: known-answer cases worked by hand, YOLO decoding and NMS.

#include "cocoeval.h"
#include "detection.h"
#include "error.h"

#include <QtTest>

#include <cmath>

using namespace qs;

namespace {
CocoBox box(std::int64_t image, std::int64_t cat, double x, double y, double w, double h, double score = 1,
            bool crowd = false) {
    CocoBox b;
    b.imageId = image;
    b.categoryId = cat;
    b.x = x;
    b.y = y;
    b.w = w;
    b.h = h;
    b.score = score;
    b.crowd = crowd;
    b.area = w * h;
    return b;
}

CocoDataset dataset(std::vector<CocoBox> annotations) {
    CocoDataset ds;
    ds.images = {{1, "a.png", 100, 100}, {2, "b.png", 100, 100}};
    ds.categories = {{1, "car"}, {2, "sign"}};
    ds.annotations = std::move(annotations);
    return ds;
}

bool near(double a, double b) { return std::fabs(a - b) < 1e-9; }
} // namespace

class TestCocoEval : public QObject {
    Q_OBJECT

private slots:
    void perfectDetection() {
        const auto gt = dataset({box(1, 1, 10, 10, 20, 20)});
        const auto r = evaluateCoco(gt, {box(1, 1, 10, 10, 20, 20, 0.9)});
        QVERIFY(near(r.map, 1.0));
        QVERIFY(near(r.map50, 1.0));
        QVERIFY(near(r.recall, 1.0));
        QCOMPARE(r.classes[1].ap, -1.0); // no ground truth for "sign": undefined, left out
    }

    void iouBetweenThresholds() {
        // IoU = 0.62 (shift by a box of 10x... worked below): matched at .50 .55 .60 only
        // gt [0,0,100,50], det [0,0,100,31]: inter 3100, union 5000 -> 0.62
        const auto gt = dataset({box(1, 1, 0, 0, 100, 50)});
        const auto r = evaluateCoco(gt, {box(1, 1, 0, 0, 100, 31, 0.8)});
        QVERIFY(near(r.map, 0.3));
        QVERIFY(near(r.map50, 1.0));
        QVERIFY(near(r.map75, 0.0));
        QVERIFY(near(r.recall, 0.3));
    }

    void rankingWithFalsePositive() {
        // two objects; ranked TP (0.9), FP (0.8), TP (0.7):
        // P/R = (1, .5), (.5, .5), (2/3, 1); envelope 1 up to R .5, 2/3 above
        // 101-point AP = (51 * 1 + 50 * 2/3) / 101
        const auto gt = dataset({box(1, 1, 0, 0, 10, 10), box(2, 1, 50, 50, 10, 10)});
        const auto r = evaluateCoco(gt, {box(1, 1, 0, 0, 10, 10, 0.9), box(1, 1, 70, 70, 10, 10, 0.8),
                                         box(2, 1, 50, 50, 10, 10, 0.7)});
        const double expected = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
        QVERIFY2(near(r.map, expected), qPrintable(QString::number(r.map, 'g', 12)));
        QVERIFY(near(r.recall, 1.0));
    }

    void noDetections() {
        const auto gt = dataset({box(1, 1, 0, 0, 10, 10)});
        const auto r = evaluateCoco(gt, {});
        QVERIFY(near(r.map, 0.0));
        QVERIFY(near(r.recall, 0.0));
    }

    void crowdRegionIsIgnored() {
        // a detection inside a crowd region is neither TP nor FP
        const auto gt = dataset({box(1, 1, 0, 0, 10, 10), box(1, 1, 50, 50, 40, 40, 1, true)});
        const auto with = evaluateCoco(gt, {box(1, 1, 0, 0, 10, 10, 0.5), box(1, 1, 55, 55, 10, 10, 0.9)});
        QVERIFY(near(with.map, 1.0));
        QCOMPARE(with.classes[0].groundTruth, 1);
    }

    void subsetOfImages() {
        const auto gt = dataset({box(1, 1, 0, 0, 10, 10), box(2, 1, 0, 0, 10, 10)});
        const std::vector<CocoBox> dets{box(1, 1, 0, 0, 10, 10, 0.9)};
        QVERIFY(near(evaluateCoco(gt, dets, {1}).map, 1.0));
        QVERIFY(near(evaluateCoco(gt, dets, {2}).map, 0.0));
        QVERIFY(near(evaluateCoco(gt, dets).recall, 0.5));
    }

    void yoloV5AndV8Agree() {
        // two classes, three boxes; v5 rows: cx cy w h obj c0 c1
        ModelOutput v5;
        v5.kind = OutputKind::Raw;
        v5.shape = {3, 7};
        v5.values = {50, 50, 20, 20, 0.9f, 0.1f, 0.8f,  // label 2, score 0.72
                     51, 50, 20, 20, 0.8f, 0.2f, 0.7f,  // overlaps the first: suppressed
                     10, 10, 4,  4,  0.5f, 0.9f, 0.1f}; // label 1, score 0.45
        YoloDecode as5;
        as5.layout = YoloLayout::V5;
        const ModelOutput d5 = decodeYolo(v5, as5);
        QCOMPARE(d5.detections.size(), std::size_t{2});
        QCOMPARE(d5.detections[0].label, std::int64_t{2});
        QVERIFY(std::fabs(d5.detections[0].score - 0.72f) < 1e-6f);
        QVERIFY(std::fabs(d5.detections[0].x1 - 40.0f) < 1e-6f);
        QVERIFY(std::fabs(d5.detections[1].score - 0.45f) < 1e-6f);
        // v8: [4 + C, boxes], class probabilities without objectness
        ModelOutput v8;
        v8.kind = OutputKind::Raw;
        v8.shape = {6, 3};
        v8.values = {50, 51, 10, 50, 50, 10, 20, 20, 4, 20, 20, 4, 0.09f, 0.16f, 0.45f, 0.72f, 0.56f, 0.05f};
        YoloDecode as8;
        as8.layout = YoloLayout::V8;
        const ModelOutput d8 = decodeYolo(v8, as8);
        QCOMPARE(d8.detections.size(), std::size_t{2});
        QCOMPARE(d8.detections[0].label, d5.detections[0].label);
        QCOMPARE(d8.detections[1].label, d5.detections[1].label);
        QVERIFY(std::fabs(d8.detections[0].score - 0.72f) < 1e-6f);
    }

    void yoloAutoLayoutByLongerAxis() {
        // realistic outputs have far more boxes than fields per box
        ModelOutput v5;
        v5.kind = OutputKind::Raw;
        v5.shape = {100, 7};
        v5.values.assign(700, 0.f);
        v5.values[0 * 7 + 0] = 30; // box 0: cx 30, cy 30, 10x10, obj 1, class 1
        v5.values[0 * 7 + 1] = 30;
        v5.values[0 * 7 + 2] = 10;
        v5.values[0 * 7 + 3] = 10;
        v5.values[0 * 7 + 4] = 1;
        v5.values[0 * 7 + 6] = 0.9f;
        const ModelOutput d = decodeYolo(v5, {});
        QCOMPARE(d.detections.size(), std::size_t{1});
        QCOMPARE(d.detections[0].label, std::int64_t{2});
        ModelOutput v8 = v5;
        v8.shape = {6, 100};
        v8.values.assign(600, 0.f);
        v8.values[0 * 100 + 7] = 30; // box 7
        v8.values[1 * 100 + 7] = 30;
        v8.values[2 * 100 + 7] = 10;
        v8.values[3 * 100 + 7] = 10;
        v8.values[4 * 100 + 7] = 0.9f;
        const ModelOutput e = decodeYolo(v8, {});
        QCOMPARE(e.detections.size(), std::size_t{1});
        QCOMPARE(e.detections[0].label, std::int64_t{1});
    }

    void yoloRejectsOtherShapes() {
        ModelOutput bad;
        bad.kind = OutputKind::Raw;
        bad.shape = {10};
        bad.values.assign(10, 0.f);
        QVERIFY_THROWS_EXCEPTION(Error, decodeYolo(bad, {}));
    }
};

QTEST_GUILESS_MAIN(TestCocoEval)
#include "test_cocoeval.moc"
