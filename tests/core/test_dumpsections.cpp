// The dump's typed sections (core/dump/sections.cpp) read back what they wrote, and the
// reader refuses what contradicts itself: a real HDF5 file each time, and a real dump
// written by the CLI (QS_TEST_DUMP) for the damage cases.

#include "dumpreader.h"
#include "error.h"
#include "h5util.h"
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
        InputImage input{"img.png", 3, 2, std::vector<std::uint8_t>(18)};
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
