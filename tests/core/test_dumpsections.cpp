// The dump's typed sections (core/dump/sections.cpp) read back what they wrote, and the
// reader refuses what contradicts itself: a real HDF5 file each time, and a real dump
// written by the CLI (QS_TEST_DUMP) for the damage cases.

#include "dumpreader.h"
#include "error.h"
#include "h5util.h"
#include "halffloat.h"
#include "layout.h"
#include "sections.h"

#include <QtTest>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace qs;

namespace {

// Runs fn and returns the message of the Error it throws ("" if none).
template <typename Fn>
QString errorOf(Fn fn) {
    try {
        fn();
    } catch (const Error& e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

// A copy of the CLI-written test dump, to damage.
QString copyOfTestDump(const QTemporaryDir& dir, const char* name) {
    const QString source = qEnvironmentVariable("QS_TEST_DUMP"); // empty: the copy fails the test
    const QString copy = dir.filePath(QString::fromLatin1(name));
    std::filesystem::copy_file(source.toStdString(), copy.toStdString());
    return copy;
}

} // namespace

class TestDumpSections : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() { h5::prepareLibrary(); }

    void sectionsReadBackWhatTheyWrote() {
        QTemporaryDir dir;
        const std::string path = dir.filePath(QStringLiteral("s.h5")).toStdString();
        BenchData bench;
        bench.path[0] = "a.pt";
        bench.path[1] = "b.pt";
        bench.fileBytes[0] = 123456789012;
        bench.parameterBytes[1] = 42;
        bench.mibPerImage[0] = 1.5;
        bench.width = 640;
        bench.height = 480;
        bench.threads = 2;
        bench.engine = "fbgemm";
        bench.batch = {1, 2, 64};
        for (int s = 0; s < 2; ++s) {
            bench.medianMs[s] = {10.f + s, 20.f, std::nanf("")};
            bench.minMs[s] = bench.maxMs[s] = bench.medianMs[s];
            bench.peakMiB[s] = {100.f, 200.f, 300.f + s};
            bench.modelMiB[s] = {50.f, 50.f, 50.f};
        }
        EvalData eval;
        eval.annotations = "val.json";
        eval.images = 7;
        eval.deltaMean = -0.25;
        eval.map[0] = 0.5;
        eval.map[1] = 0.45;
        eval.categoryIds = {1, 3};
        eval.categoryNames = "car,sign";
        eval.classAp[0] = {0.5f, 0.25f};
        eval.classAp[1] = {0.4f, 0.2f};
        ModelSummary model;
        model.path = "q.pt";
        model.quantized = true;
        model.tapSites = 12;
        model.engine = "onednn";
        InputImage input{"img.png", 7, 3, 2, std::vector<std::uint8_t>(18)};
        for (std::size_t i = 0; i < input.rgb.size(); ++i)
            input.rgb[i] = static_cast<std::uint8_t>(i * 7);
        ModelOutput o, q;
        o.kind = q.kind = OutputKind::Detections;
        o.detections = {{0, 0, 10, 10, 0.9f, 1}, {20, 20, 30, 30, 0.8f, 2}};
        q.detections = {{1, 0, 10, 10, 0.85f, 1}};
        {
            h5::Lock lock(h5::libraryMutex());
            H5::H5File file(path, H5F_ACC_TRUNC);
            writeBench(file, bench);
            writeEval(file, eval);
            writeModel(file, Side::Quantized, model);
            writeInput(file, 0, input);
            writeOutputs(file, 0, o, q);
        }
        h5::Lock lock(h5::libraryMutex());
        H5::H5File file(path, H5F_ACC_RDONLY);
        const BenchData b = readBench(file, path);
        QCOMPARE(b.path[1], std::string("b.pt"));
        QCOMPARE(b.fileBytes[0], std::int64_t{123456789012});
        QCOMPARE(b.parameterBytes[1], std::int64_t{42});
        QCOMPARE(b.engine, std::string("fbgemm"));
        QCOMPARE(b.batch, bench.batch);
        QCOMPARE(b.medianMs[1][0], 11.f);
        QVERIFY(std::isnan(b.medianMs[0][2]));
        QCOMPARE(b.peakMiB[1][2], 301.f);
        const EvalData e = readEval(file, path);
        QCOMPARE(e.images, 7);
        QCOMPARE(e.deltaMean, -0.25);
        QCOMPARE(e.map[1], 0.45);
        QCOMPARE(e.categoryNames, std::string("car,sign"));
        QCOMPARE(e.classAp[1], eval.classAp[1]);
        const ModelSummary m = readModel(file, Side::Quantized);
        QCOMPARE(m.path, std::string("q.pt"));
        QCOMPARE(m.tapSites, std::int64_t{12});
        QVERIFY(m.quantized);
        QVERIFY(readModel(file, Side::Original).path.empty());
        const InputImage in = readInput(file, path, 0);
        QCOMPARE(in.width, 3);
        QCOMPARE(in.height, 2);
        QCOMPARE(in.rgb, input.rgb);
        QCOMPARE(in.index, std::int64_t{7}); // its place in the whole list (sharded runs)
        QCOMPARE(readInputIndex(file, 0), std::int64_t{7});
        const OutputPair out = readOutputs(file, path, 0);
        QCOMPARE(out.kind, std::string("detections"));
        QCOMPARE(out.original.size(), std::size_t{12});
        QCOMPARE(out.matches.size(), std::size_t{4}); // one match: box 0 with box 0
        QCOMPARE(out.matches[0], 0.f);
        QCOMPARE(out.matches[1], 0.f);
        // every dataset written carries HDF5's Fletcher32 checksum
        for (const char* ds : {"/bench/median_ms_original", "/inputs/0000/image", "/outputs/0000/original"}) {
            const H5::DSetCreatPropList props = file.openDataSet(ds).getCreatePlist();
            QVERIFY2(props.getNfilters() == 1, ds);
            unsigned flags = 0, config = 0;
            std::size_t values = 0;
            char name[64];
            QCOMPARE(props.getFilter(0, flags, values, nullptr, sizeof name, name, config), H5Z_FILTER_FLETCHER32);
        }
    }

    void damagedActivationChunkIsAnErrorNamingTheLayer() {
        QVERIFY2(QFile::exists(qEnvironmentVariable("QS_TEST_DUMP")), "QS_TEST_DUMP must name a dump (fixture gui_dump)");
        QTemporaryDir dir;
        const QString copy = copyOfTestDump(dir, "corrupt.h5");
        haddr_t offset = 0;
        {
            h5::Lock lock(h5::libraryMutex());
            H5::H5File file(copy.toStdString(), H5F_ACC_RDONLY);
            H5::DataSet ds = file.openDataSet("/layers/0000/original");
            hsize_t size = 0;
            QVERIFY(H5Dget_chunk_info(ds.getId(), ds.getSpace().getId(), 0, nullptr, nullptr, &offset, &size) >= 0);
        }
        {
            std::fstream f(copy.toStdString(), std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(static_cast<std::streamoff>(offset));
            const std::string junk(64, '\xff');
            f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
        }
        DumpReader dump(copy.toStdString()); // metadata is intact: opens
        const QString error = errorOf([&] { dump.activation(0, Side::Original, 0); });
        QVERIFY2(error.contains(QStringLiteral("layer 0000")) && error.contains(QStringLiteral("checksum mismatch")),
                 qPrintable(error));
        QVERIFY(errorOf([&] { dump.activation(0, Side::Quantized, 0); }).isEmpty()); // the other side is fine
        // a channel read touches only its chunk: channel 0 is in the damaged one, the last
        // channel in another (chunks hold ~64 KiB: this layer's 16 channels of 64x64
        // float16 make two)
        QVERIFY(errorOf([&] { dump.activationChannel(0, Side::Original, 0, 0); }).contains(QStringLiteral("checksum")));
        QCOMPARE(dump.layers()[0].shape, (std::vector<std::int64_t>{16, 64, 64}));
        QVERIFY(errorOf([&] { dump.activationChannel(0, Side::Original, 0, 15); }).isEmpty());
    }

    void histogramBulkEqualsOneAtATime() {
        // bulk adds bin eight values at a time (AVX2, where the CPU has it); one value at a
        // time takes the scalar path: the counts must agree on every kind of value, with
        // and without the quantization grid, on one thread and two
        std::mt19937 rng(11);
        std::normal_distribution<float> dist(1.0f, 3.0f);
        std::vector<float> values(100003);
        for (auto& v : values)
            v = dist(rng);
        const float specials[] = {std::nanf(""), std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(), 0.0f, -0.0f, 1e30f, -1e30f,
                                  0.05f, -0.05f, 0.15f, -0.25f, 10.2f, std::numeric_limits<float>::max(),
                                  std::numeric_limits<float>::denorm_min()};
        for (std::size_t i = 0; i < values.size(); i += 97)
            values[i] = specials[(i / 97) % (sizeof specials / sizeof specials[0])];
        ValueRange range;
        const float ends[2] = {-4.0f, 10.2f};
        range.add(ends, 2);
        for (const double scale : {0.1, std::nan("")}) {
            Histogram bulk = planHistogram(range, scale), two = bulk, single = bulk;
            QCOMPARE(std::isfinite(bulk.scale), std::isfinite(scale));
            for (int side = 0; side < 2; ++side) {
                bulk.add(Side(side), values.data(), values.size(), 1);
                two.add(Side(side), values.data(), values.size(), 2);
                for (const float v : values)
                    single.add(Side(side), &v, 1);
                QCOMPARE(bulk.counts[side], single.counts[side]);
                QCOMPARE(two.counts[side], single.counts[side]);
            }
            std::int64_t counted = 0;
            for (const auto c : single.counts[1])
                counted += c;
            std::int64_t finite = 0;
            for (const float v : values)
                finite += std::isfinite(v) ? 1 : 0;
            QCOMPARE(counted, finite); // NaN and infinities are not counted, everything else is
        }
    }

    void histogramBinsSitOnTheQuantizationGrid() {
        // 103 levels of 0.1 in [0, 10.2]: 9 bins per level (1024 / 103), each level the
        // centre of a bin, so values between levels fall beside the quantized spikes
        ValueRange range;
        const float ends[2] = {0.0f, 10.2f};
        range.add(ends, 2);
        Histogram h = planHistogram(range, 0.1);
        QCOMPARE(h.bins(), 102 * 9 + 1);
        QCOMPARE(h.binWidth, 0.1 / 9);
        for (int level = 0; level <= 102; ++level) {
            const float v = static_cast<float>(level * 0.1);
            h.add(Side::Quantized, &v, 1);
            h.add(Side::Original, &v, 1);
        }
        for (int b = 0; b < h.bins(); ++b) {
            QCOMPARE(h.counts[1][static_cast<std::size_t>(b)], b % 9 == 0 ? 1 : 0);
            QCOMPARE(h.counts[0][static_cast<std::size_t>(b)], b % 9 == 0 ? 1 : 0);
        }
        // an f16-rounded quantized value goes back onto its level; a float one does not
        const float off = 10.2f * (1 + 1.0f / 2048);
        h.add(Side::Quantized, &off, 1);
        h.add(Side::Original, &off, 1);
        QCOMPARE(h.counts[1].back(), std::int64_t{2});
        QCOMPARE(h.counts[0].back(), std::int64_t{2}); // in the last bin too...
        const float between = 5.05f;                   // ...but a float value between levels
        h.add(Side::Original, &between, 1);
        QCOMPARE(h.counts[0][50 * 9 + 4] + h.counts[0][50 * 9 + 5], std::int64_t{1});
        // the clip range follows the integer range
        h.zeroPoint = 0;
        h.qmin = 0;
        h.qmax = 255;
        QCOMPARE(h.clipHigh(), 25.5);
        // without a grid: 256 equal bins over the values; a NaN is not counted
        Histogram plain = planHistogram(range, std::nan(""));
        QCOMPARE(plain.bins(), 256);
        const float values[3] = {0.0f, 10.2f, std::nanf("")};
        plain.add(Side::Original, values, 3);
        QCOMPARE(plain.counts[0].front() + plain.counts[0].back(), std::int64_t{2});
        // too many levels for a readable grid: plain bins
        QVERIFY(!std::isfinite(planHistogram(range, 1e-4).scale));
        // an empty range still gives a usable layout
        QCOMPARE(planHistogram(ValueRange{}, 0.5).bins() > 0, true);
        // f16 input gives the same range as its float values
        const std::uint16_t half[3] = {0x3c00 /* 1 */, 0xc000 /* -2 */, 0x7e00 /* NaN */};
        ValueRange r16;
        r16.add(half, 3);
        QCOMPARE(r16.low, -2.0);
        QCOMPARE(r16.high, 1.0);
        // the range on the bits (eight at a time, then the tail) against the float values,
        // over all 65536 half patterns (zeros, denormals, infinities and NaNs included) in
        // a shuffled order: runs of 1, 7, 8, 9, 17 and 40 values at offsets spread over
        // the whole array, and the whole array at once
        std::vector<std::uint16_t> all(65536);
        for (std::size_t i = 0; i < all.size(); ++i)
            all[i] = static_cast<std::uint16_t>((i * 40503u) & 0xffffu); // a permutation
        std::vector<float> asFloat(all.size());
        halfToFloat(all.data(), asFloat.data(), all.size());
        for (std::size_t length : {std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{9}, std::size_t{17},
                                   std::size_t{40}, all.size()})
            for (std::size_t start = 0; start + length <= all.size(); start += length * 97 + 1) {
                ValueRange bits, floats;
                bits.add(all.data() + start, length);
                floats.add(asFloat.data() + start, length);
                QVERIFY2(bits.low == floats.low && bits.high == floats.high && bits.empty() == floats.empty(),
                         qPrintable(QStringLiteral("start %1 length %2").arg(start).arg(length)));
            }
        const std::uint16_t onlyNonFinite[4] = {0x7c00, 0xfc00, 0x7e00, 0xfe01};
        ValueRange none;
        none.add(onlyNonFinite, 4);
        QVERIFY(none.empty());
    }

    void imageMetricsAndHistogramsReadBack() {
        QTemporaryDir dir;
        const std::string path = dir.filePath(QStringLiteral("m.h5")).toStdString();
        std::vector<std::vector<Metrics>> byLayer(3, std::vector<Metrics>(2));
        for (int k = 0; k < 3; ++k)
            for (int i = 0; i < 2; ++i) {
                Metrics& m = byLayer[static_cast<std::size_t>(k)][static_cast<std::size_t>(i)];
                m.sqnrDb = 10 * k + i;
                m.cosine = 0.5 + 0.01 * k;
            }
        byLayer[2][1].sqnrDb = std::numeric_limits<double>::infinity(); // an exact layer
        {
            h5::Lock lock(h5::libraryMutex());
            H5::H5File file(path, H5F_ACC_TRUNC);
            writeImageMetrics(file, byLayer);
        }
        h5::Lock lock(h5::libraryMutex());
        H5::H5File file(path, H5F_ACC_RDONLY);
        const ImageMetrics im = readImageMetrics(file, path, 2, 3);
        QCOMPARE(im.images, 2);
        QCOMPARE(im.at(1, 2).sqnrDb, std::numeric_limits<double>::infinity());
        QCOMPARE(im.at(0, 1).sqnrDb, 10.0);
        QCOMPARE(im.at(1, 0).cosine, 0.5);
        // image 1: layers 1, 11, exact: mean of the finite ones, worst = layer 0
        const ImageSummary s = summarizeImage(im, 1);
        QCOMPARE(s.meanSqnrDb, 6.0);
        QCOMPARE(s.minSqnrDb, 1.0);
        QCOMPARE(s.worstLayer, 0);
        // a dump whose [N, L] disagrees with its image or layer count is refused by name
        const QString e = errorOf([&] { readImageMetrics(file, path, 3, 3); });
        QVERIFY2(e.contains(QStringLiteral("image_metrics")) && e.contains(QStringLiteral("[3x3]")), qPrintable(e));
    }

    void inconsistentLayerIsRefusedAtOpen() {
        QVERIFY2(QFile::exists(qEnvironmentVariable("QS_TEST_DUMP")), "QS_TEST_DUMP must name a dump (fixture gui_dump)");
        QTemporaryDir dir;
        const QString copy = copyOfTestDump(dir, "scalar.h5");
        {
            h5::Lock lock(h5::libraryMutex());
            H5::H5File file(copy.toStdString(), H5F_ACC_RDWR);
            H5Ldelete(file.getId(), "/layers/0001/abs_diff", H5P_DEFAULT);
            file.openGroup("/layers/0001").createDataSet("abs_diff", H5::PredType::IEEE_F32LE, H5::DataSpace(H5S_SCALAR));
        }
        const QString error = errorOf([&] { DumpReader dump(copy.toStdString()); });
        QVERIFY2(error.startsWith(copy) && error.contains(QStringLiteral("layer 0001: abs_diff has shape [] but the layer is")),
                 qPrintable(error));
    }

    void openDumpSurvivesWhatTheReaderRefuses() {
        QTemporaryDir dir;
        const QString copy = dir.filePath(QStringLiteral("garbage.h5"));
        {
            std::ofstream f(copy.toStdString(), std::ios::binary);
            f << "\x89HDF\r\n\x1a\n" << std::string(4096, '\x07');
        }
        const QString error = errorOf([&] { openDump(copy.toStdString()); });
        QVERIFY2(error.startsWith(copy), qPrintable(error));
    }
};

QTEST_GUILESS_MAIN(TestDumpSections)
#include "test_dumpsections.moc"
