// The real main window on the offscreen platform, over a real dump written by
// quantscope-cli (the gui_dump fixture): opening, browsing with keys and clicks,
// filtering, hover read-out, export, and what a bad dump does.

#include "comparisondialog.h"
#include "detectionpanel.h"
#include "detectionview.h"
#include "graphview.h"
#include "hexbinplottable.h"
#include "histogramview.h"
#include "imagesview.h"
#include "outputview.h"
#include "dumpupdate.h"
#include "error.h"
#include "sections.h"
#include "summaryview.h"
#include "h5util.h"
#include "layertablemodel.h"
#include "layerview.h"
#include "heatmapplot.h"
#include "layerdata.h"
#include "mainwindow.h"
#include "qcp.h"

#include <QDialogButtonBox>
#include <QDir>
#include <QFile>
#include <QCheckBox>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QSettings>
#include <QTabWidget>
#include <QTableWidget>
#include <QMessageBox>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QTemporaryDir>
#include <QMenu>
#include <QTimer>
#include <QApplication>
#include <QListWidget>
#include <QProcess>
#include <QPushButton>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QtTest>

using namespace qs;

namespace {
QString dumpPath() { return qEnvironmentVariable("QS_TEST_DUMP"); }

QMessageBox* errorBox(QWidget* window) { return window->findChild<QMessageBox*>(QStringLiteral("errorBox")); }

// Fills New comparison's form with two test models, one demo image and the output (and
// the input size when given), then clicks Run. False when the form is not as expected.
bool startComparison(ComparisonDialog& dialog, const QString& original, const QString& quantized,
                     const QString& out, const QString& size = QString()) {
    const QString models = qEnvironmentVariable("QS_TEST_MODELS");
    auto edit = [&dialog](const char* name) { return dialog.findChild<QLineEdit*>(QLatin1String(name)); };
    if (!edit("original") || !edit("quantized") || !edit("out") || !edit("size"))
        return false;
    edit("original")->setText(models + QLatin1Char('/') + original);
    edit("quantized")->setText(models + QLatin1Char('/') + quantized);
    edit("out")->setText(out);
    edit("size")->setText(size);
    auto* images = dialog.findChild<QListWidget*>();
    images->clear();
    images->addItem(models + QStringLiteral("/images/demo_0.png"));
    QPushButton* run = nullptr;
    for (auto* b : dialog.findChildren<QPushButton*>())
        if (b->text() == QStringLiteral("Run"))
            run = b;
    if (!run)
        return false;
    QTest::mouseClick(run, Qt::LeftButton);
    return true;
}
} // namespace

class TestMainWindow : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() {
        QVERIFY2(QFile::exists(dumpPath()), "QS_TEST_DUMP must name a dump (CTest fixture gui_dump)");
        QCoreApplication::setOrganizationName(QStringLiteral("QuantScopeTests"));
        QStandardPaths::setTestModeEnabled(true); // QSettings away from the user's
    }

    void opensAndShowsWorstLayer() {
        MainWindow w;
        w.show();
        // before a dump is open: a page saying what to do, no plots with made-up axes
        QVERIFY(w.welcomePage()->isVisible());
        QVERIFY(!w.tabs()->isVisible());
        QVERIFY(!w.depthPlot()->isVisible());
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        w.openDump(dumpPath());
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QCOMPARE(w.layerTable()->model()->rowCount(), static_cast<int>(w.dump()->layers().size()));
        QTRY_VERIFY_WITH_TIMEOUT(loaded.count() >= 1, 60000);
        int worst = 0;
        for (const auto& l : w.dump()->layers())
            if (l.metrics.sqnrDb < w.dump()->layers()[static_cast<std::size_t>(worst)].metrics.sqnrDb)
                worst = l.index;
        QCOMPARE(w.layerView()->currentLayer(), worst);
        QVERIFY(w.windowTitle().contains(QFileInfo(dumpPath()).fileName()));
        QVERIFY(w.tabs()->isVisible() && w.depthPlot()->isVisible() && !w.welcomePage()->isVisible());
    }

    void keyboardAndClickNavigation() {
        MainWindow w;
        w.resize(1400, 900);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(dumpPath());
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        w.selectLayer(0);
        QTRY_COMPARE(w.layerView()->currentLayer(), 0);
        w.layerTable()->setFocus();
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        QTest::keyClick(w.layerTable(), Qt::Key_Down);
        QTRY_COMPARE(w.layerView()->currentLayer(), 1);
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty() && loaded.last().at(0).toInt() == 1, 60000);
        // a click on the SQNR-by-depth plot selects that layer
        QCustomPlot* depth = w.depthPlot();
        depth->replot();
        const auto point = depth->graph(0)->coordsToPixels(2, depth->graph(0)->data()->at(2)->value);
        QTest::mouseClick(depth, Qt::LeftButton, Qt::NoModifier, point.toPoint());
        QTRY_COMPARE(w.layerView()->currentLayer(), 2);
    }

    void filterAndSort() {
        MainWindow w;
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(dumpPath());
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QTest::keyClicks(w.filterEdit(), QStringLiteral("features.1"));
        QCOMPARE(w.layerProxy()->rowCount(), 1); // features.11 only
        w.filterEdit()->clear();
        QCOMPARE(w.layerProxy()->rowCount(), static_cast<int>(w.dump()->layers().size()));
        w.layerTable()->sortByColumn(LayerTableModel::Sqnr, Qt::AscendingOrder);
        const double first = w.layerProxy()->index(0, LayerTableModel::Sqnr).data(LayerTableModel::SortRole).toDouble();
        for (const auto& l : w.dump()->layers())
            QVERIFY(first <= l.metrics.sqnrDb);
    }

    void hoverReadout() {
        MainWindow w;
        w.resize(1400, 900);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        w.openDump(dumpPath());
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
        QSignalSpy readout(w.layerView(), &LayerView::readout);
        QCustomPlot* plot = w.layerView()->figures().first();
        plot->replot();
        const QPoint centre = plot->axisRect()->rect().center();
        QMouseEvent move(QEvent::MouseMove, centre, plot->mapToGlobal(centre), Qt::NoButton, Qt::NoButton, Qt::NoModifier);
        QCoreApplication::sendEvent(plot, &move);
        QTRY_VERIFY(!readout.isEmpty());
        const QString text = readout.last().at(0).toString();
        QVERIFY2(text.contains(QStringLiteral("original")) && text.contains(QStringLiteral("relative")), qPrintable(text));
    }

    void exportFigures_data() {
        QTest::addColumn<QString>("suffix");
        QTest::addRow("png") << QStringLiteral("png");
        QTest::addRow("svg") << QStringLiteral("svg");
        QTest::addRow("pdf") << QStringLiteral("pdf");
    }
    void exportFigures() {
        QFETCH(QString, suffix);
        MainWindow w;
        w.show();
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        w.openDump(dumpPath());
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
        QTemporaryDir dir;
        const QString file = dir.filePath(QStringLiteral("figure.") + suffix);
        QCOMPARE(w.exportCurrentFigure(file, QSize(1000, 800), 120), QString());
        QVERIFY(QFileInfo(file).size() > 1000);
        if (suffix == QLatin1String("png")) {
            const QImage image(file);
            QCOMPARE(image.size(), QSize(1000, 800));
        } else {
            QFile f(file);
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QByteArray head = f.read(64);
            QVERIFY(suffix == QLatin1String("pdf") ? head.startsWith("%PDF") : head.contains("<?xml"));
        }
        QVERIFY(!w.exportCurrentFigure(dir.filePath(QStringLiteral("figure.bmpx")), QSize(100, 100), 100).isEmpty());
    }

    void reopeningWhileLoadingIsSafe() {
        // a layer read for the first dump may finish after the second is open: what is
        // shown must come from the second (a different model: other layers and sizes)
        const QString second = qEnvironmentVariable("QS_TEST_DETECTOR_DUMP");
        MainWindow w;
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(dumpPath());
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        w.selectLayer(3);
        w.openDump(second); // immediately, while layer 3 of the first may still be loading
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 2, 60000);
        QCOMPARE(w.currentPath(), second);
        QTRY_VERIFY(w.layerView()->currentLayer() >= 0);
        const int next = (w.layerView()->currentLayer() + 1) % static_cast<int>(w.dump()->layers().size());
        loaded.clear();
        w.selectLayer(next);
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty() && loaded.last().at(0).toInt() == next, 60000);
        const auto& shape = w.dump()->layers()[static_cast<std::size_t>(next)].shape;
        auto* plot = static_cast<HeatmapPlot*>(w.layerView()->figures().first());
        QCOMPARE(plot->matrixWidth(), static_cast<int>(shape[2]));
        QCOMPARE(plot->matrixHeight(), static_cast<int>(shape[1]));
        QVERIFY(plot->title().contains(QString::fromStdString(w.dump()->layers()[static_cast<std::size_t>(next)].name)));
    }

    void overlayPutsTheInputUnderTheMaps() {
        MainWindow w;
        w.show();
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        w.openDump(dumpPath());
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
        auto* overlay = w.layerView()->findChild<QCheckBox*>();
        QVERIFY(overlay);
        QCustomPlot* plot = w.layerView()->figures().first();
        QCOMPARE(plot->itemCount(), 0);
        overlay->setChecked(true);
        QCOMPARE(plot->itemCount(), 1); // the input image, as a pixmap item under the map
        // under: on a layer drawn before the map's, and the map's colours translucent
        QCPAbstractItem* image = plot->item(0);
        QCPAbstractPlottable* map = plot->plottable(0);
        QVERIFY(image->layer()->index() < map->layer()->index());
        const auto* colourMap = qobject_cast<QCPColorMap*>(map);
        QVERIFY(QColor::fromRgba(colourMap->gradient().color(0.5, QCPRange(0, 1))).alpha() < 255);
        QCOMPARE(QColor::fromRgba(colourMap->colorScale()->gradient().color(0.5, QCPRange(0, 1))).alpha(), 255);
        // the map now spans the input image's pixels, not the feature map's cells
        const auto input = w.dump()->input(0);
        QVERIFY(plot->xAxis->range().upper >= input.width - 1);
        overlay->setChecked(false);
        QCOMPARE(plot->itemCount(), 0);
    }

    void zoomAndPanAreSynchronised() {
        MainWindow w;
        w.show();
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        w.openDump(dumpPath());
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
        const auto plots = w.layerView()->figures();
        QCOMPARE(plots.size(), 4);
        plots[1]->xAxis->setRange(2.0, 7.5);
        plots[2]->yAxis->setRange(1.0, 4.0);
        for (QCustomPlot* plot : plots) {
            QCOMPARE(plot->xAxis->range().lower, 2.0);
            QCOMPARE(plot->xAxis->range().upper, 7.5);
            QCOMPARE(plot->yAxis->range().lower, 1.0);
            QCOMPARE(plot->yAxis->range().upper, 4.0);
        }
        // a double-click on any map shows every map whole again
        auto* heat = qobject_cast<HeatmapPlot*>(plots[3]);
        QVERIFY(heat);
        QTest::mouseDClick(heat, Qt::LeftButton, Qt::NoModifier, heat->axisRect()->rect().center());
        for (QCustomPlot* plot : plots) {
            auto* h = qobject_cast<HeatmapPlot*>(plot);
            QVERIFY2(plot->xAxis->range().lower <= -0.5 && plot->xAxis->range().upper >= h->matrixWidth() - 0.5 &&
                         plot->yAxis->range().lower <= -0.5 && plot->yAxis->range().upper >= h->matrixHeight() - 0.5,
                     qPrintable(QStringLiteral("x %1..%2, y %3..%4").arg(plot->xAxis->range().lower).arg(plot->xAxis->range().upper)
                                    .arg(plot->yAxis->range().lower).arg(plot->yAxis->range().upper)));
        }
    }

    void outputErrorDrawsTheLineOfNoChange() {
        MainWindow w;
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(dumpPath());
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QCPItemStraightLine* identity = nullptr;
        for (QCustomPlot* p : w.findChildren<QCustomPlot*>())
            for (int i = 0; i < p->itemCount(); ++i)
                if (p->item(i)->objectName() == QStringLiteral("identity"))
                    identity = qobject_cast<QCPItemStraightLine*>(p->item(i));
        QVERIFY(identity);
        QVERIFY(identity->visible());
        QCOMPARE(identity->point1->coords(), QPointF(0, 0));
        QCOMPARE(identity->point2->coords(), QPointF(1, 1)); // y = x
    }

    void detectionsTabListsEveryDetectionAndHighlightsTheChosenOne() {
        const QString detector = qEnvironmentVariable("QS_TEST_DETECTOR_DUMP");
        QVERIFY2(QFile::exists(detector), "QS_TEST_DETECTOR_DUMP must name a detector dump");
        MainWindow w;
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(detector);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        auto* panel = w.findChild<DetectionPanel*>();
        QVERIFY(panel);
        const OutputPair out = w.dump()->outputs(0);
        QCOMPARE(QString::fromStdString(out.kind), QStringLiteral("detections"));
        QVERIFY(!out.matches.empty());
        // expected rows, from the stored outputs: every matched pair, every unmatched
        // detection, each when its higher score reaches the drawing threshold
        auto score = [](const std::vector<float>& rows, int i) { return rows[6 * static_cast<std::size_t>(i) + 4]; };
        const int n[2] = {static_cast<int>(out.original.size() / 6), static_cast<int>(out.quantized.size() / 6)};
        auto expectedRows = [&](float threshold, int* firstMatch) {
            std::vector<bool> matched[2] = {std::vector<bool>(n[0]), std::vector<bool>(n[1])};
            int rows = 0;
            for (std::size_t m = 0; 4 * m + 3 < out.matches.size(); ++m) {
                const int o = static_cast<int>(out.matches[4 * m]), q = static_cast<int>(out.matches[4 * m + 1]);
                matched[0][o] = matched[1][q] = true;
                if (std::max(score(out.original, o), score(out.quantized, q)) >= threshold) {
                    ++rows;
                    if (firstMatch && *firstMatch < 0)
                        *firstMatch = static_cast<int>(m);
                }
            }
            for (int side = 0; side < 2; ++side)
                for (int i = 0; i < n[side]; ++i)
                    if (!matched[side][i] && score(side == 0 ? out.original : out.quantized, i) >= threshold)
                        ++rows;
            return rows;
        };
        int firstMatch = -1;
        const int expected = expectedRows(0.3f, &firstMatch);
        QVERIFY(firstMatch >= 0);
        QCOMPARE(panel->table()->rowCount(), expected);
        // the row of the first match holds its stored IoU; choosing it highlights its boxes
        const int o = static_cast<int>(out.matches[4 * firstMatch]), q = static_cast<int>(out.matches[4 * firstMatch + 1]);
        int row = -1;
        for (int r = 0; r < panel->table()->rowCount(); ++r)
            if (panel->table()->item(r, DetectionPanel::OriginalIndex)->data(Qt::UserRole).toInt() == o &&
                panel->table()->item(r, DetectionPanel::QuantizedIndex)->data(Qt::UserRole).toInt() == q)
                row = r;
        QVERIFY(row >= 0);
        QCOMPARE(panel->table()->item(row, DetectionPanel::Iou)->data(Qt::DisplayRole).toDouble(),
                 static_cast<double>(out.matches[4 * firstMatch + 2]));
        QCOMPARE(panel->table()->item(row, DetectionPanel::Status)->text(), QStringLiteral("matched"));
        QCOMPARE(panel->view()->highlight(), std::make_pair(-1, -1));
        panel->table()->setCurrentCell(row, DetectionPanel::Label);
        QCOMPARE(panel->view()->highlight(), std::make_pair(o, q));
        // a threshold chosen for this dump does not carry over to the next one
        auto* threshold = panel->findChild<QDoubleSpinBox*>();
        threshold->setValue(1.0);
        QCOMPARE(panel->table()->rowCount(), expectedRows(1.0f, nullptr)); // the table lists what is drawn
        QVERIFY(expectedRows(1.0f, nullptr) < expected);
        w.openDump(detector);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 2, 60000);
        QCOMPARE(threshold->value(), 0.3);
        QCOMPARE(panel->table()->rowCount(), expected);

        // unmatched detections are rows too: a copy of the dump whose first match is
        // removed leaves that original and that quantized detection without a partner
        QTemporaryDir dir;
        const QString copy = dir.filePath(QStringLiteral("unmatched.h5"));
        QVERIFY(QFile::copy(detector, copy));
        {
            h5::Lock lock(h5::libraryMutex());
            H5::H5File file(copy.toStdString(), H5F_ACC_RDWR);
            H5::Group g = file.openGroup("/outputs/0000");
            std::vector<float> rest(out.matches.begin() + 4, out.matches.end());
            H5Ldelete(g.getId(), "matches", H5P_DEFAULT);
            h5::writeFloats(g, "matches", rest, {rest.size() / 4, 4});
        }
        w.openDump(copy);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 3, 60000);
        const int o0 = static_cast<int>(out.matches[0]), q0 = static_cast<int>(out.matches[1]);
        int missed = -1, extra = -1;
        for (int r = 0; r < panel->table()->rowCount(); ++r) {
            const QString status = panel->table()->item(r, DetectionPanel::Status)->text();
            const int ro = panel->table()->item(r, DetectionPanel::OriginalIndex)->data(Qt::UserRole).toInt();
            const int rq = panel->table()->item(r, DetectionPanel::QuantizedIndex)->data(Qt::UserRole).toInt();
            if (status == QStringLiteral("missed by quantized") && ro == o0 && rq == -1)
                missed = r;
            if (status == QStringLiteral("extra in quantized") && ro == -1 && rq == q0)
                extra = r;
        }
        QVERIFY(missed >= 0 && extra >= 0);
        QCOMPARE(panel->table()->rowCount(), expected + 1); // one pair became two rows
        QCOMPARE(panel->table()->item(missed, DetectionPanel::ScoreQuantized)->text(), QStringLiteral("–"));
        panel->table()->setCurrentCell(extra, DetectionPanel::Label);
        QCOMPARE(panel->view()->highlight(), std::make_pair(-1, q0));
    }

    // per-image view: ranked by the per-image metrics compare stored, worst first;
    // choosing an image switches every view
    void imagesTableRanksWorstFirstAndSwitchesEveryView() {
        MainWindow w;
        w.resize(1400, 900);
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(dumpPath());
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        const std::shared_ptr<DumpReader> keep = w.dump(); // stays valid when another dump opens
        const auto& dump = *keep;
        const ImageMetrics& im = dump.imageMetrics();
        QVERIFY(dump.imageCount() > 1);
        QCOMPARE(im.images, dump.imageCount());
        QCOMPARE(im.layers, static_cast<int>(dump.layers().size()));
        QTableWidget* table = w.imagesView()->table();
        QTRY_COMPARE_WITH_TIMEOUT(table->rowCount(), dump.imageCount(), 60000);
        // the mean over layers of each image's SQNR, computed here from the stored [N, L]
        std::vector<double> mean(static_cast<std::size_t>(im.images));
        for (int i = 0; i < im.images; ++i) {
            double sum = 0;
            int finite = 0;
            for (int k = 0; k < im.layers; ++k)
                if (std::isfinite(im.at(i, k).sqnrDb)) {
                    sum += im.at(i, k).sqnrDb;
                    ++finite;
                }
            mean[static_cast<std::size_t>(i)] = sum / finite;
        }
        const int worst = static_cast<int>(std::min_element(mean.begin(), mean.end()) - mean.begin());
        QCOMPARE(table->item(0, ImagesView::Index)->data(Qt::UserRole).toInt(), worst);
        for (int r = 0; r < table->rowCount(); ++r) {
            const int image = table->item(r, ImagesView::Index)->data(Qt::UserRole).toInt();
            QCOMPARE(table->item(r, ImagesView::Source)->text(), QFileInfo(QString::fromStdString(dump.source(image))).fileName());
            QVERIFY(std::fabs(table->item(r, ImagesView::MeanSqnr)->text().toDouble() - mean[static_cast<std::size_t>(image)]) < 0.006);
            // readable: a cell is either uncoloured or in a severity colour, never black
            const QBrush background = table->item(r, ImagesView::MeanSqnr)->background();
            QVERIFY(background.style() == Qt::NoBrush || background.color().lightness() > 150);
            if (r > 0)
                QVERIFY(mean[static_cast<std::size_t>(image)] >=
                        mean[static_cast<std::size_t>(table->item(r - 1, ImagesView::Index)->data(Qt::UserRole).toInt())]);
        }
        // choose the last row: every view shows that image
        const int chosen = table->item(table->rowCount() - 1, ImagesView::Index)->data(Qt::UserRole).toInt();
        QVERIFY(chosen != w.layerView()->image());
        table->setCurrentCell(table->rowCount() - 1, ImagesView::Source);
        QCOMPARE(w.layerView()->image(), chosen);
        QCOMPARE(w.findChild<DetectionPanel*>()->image(), chosen);
        // and the other way round: the layer view's image selects the table's row
        const int other = chosen == 0 ? 1 : 0;
        w.layerView()->setImage(other);
        QCOMPARE(table->item(table->currentRow(), ImagesView::Index)->data(Qt::UserRole).toInt(), other);
        QCOMPARE(w.findChild<DetectionPanel*>()->image(), other);
        // a double-click goes to that image's worst layer
        const int row = table->currentRow();
        const int worstLayer = table->item(row, ImagesView::WorstLayer)->data(Qt::UserRole).toInt();
        int expectedLayer = 0;
        for (int k = 0; k < im.layers; ++k)
            if (im.at(other, k).sqnrDb < im.at(other, expectedLayer).sqnrDb)
                expectedLayer = k;
        QCOMPARE(worstLayer, expectedLayer);
        emit table->cellDoubleClicked(row, ImagesView::WorstLayer);
        QTRY_COMPARE(w.layerView()->currentLayer(), expectedLayer);
        QVERIFY(table->isColumnHidden(ImagesView::MapChange)); // no eval in this dump

        // with per-image mAP stored by eval --into for an image of the same file name,
        // the table shows its change in points
        QTemporaryDir dir;
        const QString copy = dir.filePath(QStringLiteral("evaluated.h5"));
        QVERIFY(QFile::copy(dumpPath(), copy));
        EvalData eval;
        eval.images = 2;
        eval.perImageFiles = {"elsewhere.png", QFileInfo(QString::fromStdString(dump.source(1))).fileName().toStdString()};
        eval.perImageMap[0] = {0.5f, 0.625f};
        eval.perImageMap[1] = {0.5f, 0.5f};
        updateDump(copy.toStdString(), [&eval](H5::H5File& file) { writeEval(file, eval); });
        QSignalSpy opened2(&w, &MainWindow::dumpOpened);
        w.openDump(copy);
        QTRY_COMPARE_WITH_TIMEOUT(opened2.count(), 1, 60000);
        QTRY_VERIFY_WITH_TIMEOUT(!w.imagesView()->isLoading() && table->rowCount() == dump.imageCount(), 60000);
        QVERIFY(!table->isColumnHidden(ImagesView::MapChange));
        for (int r = 0; r < table->rowCount(); ++r) {
            const int image = table->item(r, ImagesView::Index)->data(Qt::UserRole).toInt();
            QCOMPARE(table->item(r, ImagesView::MapChange)->text(), image == 1 ? QStringLiteral("-12.50") : QStringLiteral("–"));
        }
    }

    void histogramShowsStoredCountsGridAndClipRange() {
        MainWindow w;
        w.resize(1400, 900);
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(dumpPath());
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        HistogramView* view = w.histogramView();
        w.tabs()->setCurrentWidget(view);
        w.selectLayer(1);
        QTRY_VERIFY_WITH_TIMEOUT(view->shown().layer == 1 && !view->isLoading(), 60000);
        const Histogram stored = w.dump()->histogram(1);
        QVERIFY(!stored.empty());
        QVERIFY(std::isfinite(stored.scale)); // the demo's INT8 layer is per-tensor quantized
        QCOMPARE(view->shown().histogram.counts[0], stored.counts[0]);
        QCOMPARE(view->shown().histogram.counts[1], stored.counts[1]);
        QCustomPlot* plot = view->figure();
        QCOMPARE(plot->graph(0)->dataCount(), stored.bins());
        QCOMPARE(plot->graph(1)->dataCount(), stored.bins());
        // the clip range is marked where the quantized tensor's integer range ends
        QCPItemStraightLine* clip[2] = {};
        for (int i = 0; i < plot->itemCount(); ++i) {
            if (plot->item(i)->objectName() == QStringLiteral("clipLow"))
                clip[0] = qobject_cast<QCPItemStraightLine*>(plot->item(i));
            if (plot->item(i)->objectName() == QStringLiteral("clipHigh"))
                clip[1] = qobject_cast<QCPItemStraightLine*>(plot->item(i));
        }
        QVERIFY(clip[0] && clip[1] && clip[0]->visible());
        QCOMPARE(clip[0]->point1->coords().x(), stored.scale * static_cast<double>(stored.qmin - stored.zeroPoint));
        QCOMPARE(clip[1]->point1->coords().x(), stored.scale * static_cast<double>(stored.qmax - stored.zeroPoint));
        QVERIFY(view->findChild<QLabel*>(QStringLiteral("histogramStatus"))->text().contains(QStringLiteral("scale")));
        // the top axis counts quantization codes: its ticks sit on multiples of the scale
        QVERIFY(plot->xAxis2->visible());
        plot->replot();
        for (double tick : plot->xAxis2->tickVector())
            QVERIFY(std::fabs(tick / stored.scale - std::round(tick / stored.scale)) < 1e-6);
        // one channel of the current image: every value of that channel, binned on the grid
        auto* scope = view->findChild<QComboBox*>(QStringLiteral("histogramScope"));
        scope->setCurrentIndex(1);
        QTRY_VERIFY_WITH_TIMEOUT(view->shown().channel == 0 && !view->isLoading(), 60000);
        const auto& shape = w.dump()->layers()[1].shape;
        std::int64_t total = 0;
        for (auto c : view->shown().histogram.counts[1])
            total += c;
        QCOMPARE(total, shape[1] * shape[2]);
        // quantized values fill only the bins centred on a level (rounding shows as spikes)
        const Histogram& h = view->shown().histogram;
        const long perLevel = std::lround(h.scale / h.binWidth);
        QVERIFY(perLevel >= 1);
        for (std::size_t b = 0; b < h.counts[1].size(); ++b)
            if (h.counts[1][b] > 0) {
                const double centre = h.low + (static_cast<double>(b) + 0.5) * h.binWidth;
                QVERIFY(std::fabs(centre / h.scale - std::round(centre / h.scale)) < 1e-6);
            }
    }

    void graphViewFollowsTheSelectionClicksAndSearch() {
        MainWindow w;
        w.resize(1400, 900);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(dumpPath());
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        GraphView* graph = w.graphView();
        w.tabs()->setCurrentWidget(graph);
        const GraphLayout& g = graph->graph();
        QVERIFY(g.hasEdges);
        QCOMPARE(g.nodeOfLayer.size(), w.dump()->layers().size());
        // the demo CNN is a chain: every layer after the first takes the one before
        for (const auto& l : w.dump()->layers())
            if (l.index > 0)
                QCOMPARE(l.inputs, std::vector<std::int64_t>{l.index - 1});
        // top to bottom in that order
        for (std::size_t n = 1; n < g.nodes.size(); ++n)
            QVERIFY(g.nodes[n].y > g.nodes[n - 1].y);
        // a click on a node selects its layer everywhere
        const int target = static_cast<int>(g.nodes.size()) - 1;
        graph->canvas()->centerOn(g.nodes[static_cast<std::size_t>(target)].x, g.nodes[static_cast<std::size_t>(target)].y);
        const QPoint at = graph->canvas()->mapFromScene(QPointF(g.nodes[static_cast<std::size_t>(target)].x,
                                                                g.nodes[static_cast<std::size_t>(target)].y));
        QTest::mouseClick(graph->canvas()->viewport(), Qt::LeftButton, Qt::NoModifier, at);
        QTRY_COMPARE(w.layerView()->currentLayer(), g.nodes[static_cast<std::size_t>(target)].layers.front());
        // search: Enter selects the next layer whose name holds the text
        const QString name = QString::fromStdString(w.dump()->layers()[1].name);
        graph->searchField()->setText(name);
        QTest::keyClick(graph->searchField(), Qt::Key_Return);
        QTRY_COMPARE(w.layerView()->currentLayer(), 1);
    }

    void imagesWithoutActivationsSaySoInPlace() {
        // compare --keep-activations 2 --keep worst over the four demo images, by the real
        // CLI: the two kept are the two the Images view ranks worst
        QTemporaryDir dir;
        const QString dump = dir.filePath(QStringLiteral("kept2.h5"));
        const QString models = qEnvironmentVariable("QS_TEST_MODELS");
        QProcess cli;
        cli.start(qEnvironmentVariable("QS_CLI"),
                  {QStringLiteral("compare"), QStringLiteral("--original"), models + QStringLiteral("/demo_cnn_float.pt"),
                   QStringLiteral("--quantized"), models + QStringLiteral("/demo_cnn_int8.pt"), QStringLiteral("--images"),
                   models + QStringLiteral("/images"), QStringLiteral("--keep-activations"), QStringLiteral("2"),
                   QStringLiteral("--keep"), QStringLiteral("worst"), QStringLiteral("--out"), dump,
                   QStringLiteral("--quiet")});
        QVERIFY(cli.waitForFinished(120000));
        QCOMPARE(cli.exitCode(), 0);
        MainWindow w;
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        w.openDump(dump);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QCOMPARE(w.dump()->keptImages(), 2);
        QCOMPARE(w.dump()->keptSelection(), std::string("worst"));
        QCOMPARE(w.dump()->imageCount(), 4);
        QTRY_COMPARE_WITH_TIMEOUT(w.imagesView()->table()->rowCount(), 4, 60000); // every image ranked
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
        const auto ranked = worstImages(w.dump()->imageMetrics(), 4);
        QVERIFY(w.dump()->isKept(ranked[0].image) && w.dump()->isKept(ranked[1].image));
        QVERIFY(!w.dump()->isKept(ranked[2].image) && !w.dump()->isKept(ranked[3].image));
        const int notKept = ranked[3].image, kept = ranked[0].image;
        loaded.clear();
        w.selectImage(notKept); // said in place, no error box
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
        QTest::qWait(50);
        QVERIFY(!errorBox(&w));
        const auto labels = w.layerView()->findChildren<QLabel*>();
        QVERIFY(std::any_of(labels.begin(), labels.end(), [](QLabel* l) {
            return l->text().contains(QStringLiteral("not kept")) && l->text().contains(QStringLiteral("worst"));
        }));
        QCOMPARE(static_cast<HeatmapPlot*>(w.layerView()->figures().first())->matrixWidth(), 0);
        // the titles say so too (not those of the image shown before), and the long status
        // line wraps instead of widening the view (it squeezed the layer list at 1280 px)
        QVERIFY(static_cast<HeatmapPlot*>(w.layerView()->figures().first())
                    ->title()
                    .contains(QStringLiteral("image %1: activations not kept").arg(notKept)));
        const auto statusLabels = w.layerView()->findChildren<QLabel*>();
        QVERIFY(std::all_of(statusLabels.begin(), statusLabels.end(), [](QLabel* l) {
            return !l->text().contains(QStringLiteral("not kept")) || l->wordWrap();
        }));
        // its pixels were not stored: the source file is read again, at the input size
        QVERIFY(!w.dump()->isKept(notKept));
        const QImage again = inputImage(*w.dump(), notKept);
        QVERIFY(!again.isNull());
        QCOMPARE(again.size(), QSize(w.dump()->inputWidth(), w.dump()->inputHeight()));
        // a kept image draws again, from its row
        loaded.clear();
        w.selectImage(kept);
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
        QVERIFY(static_cast<HeatmapPlot*>(w.layerView()->figures().first())->matrixWidth() > 0);
        // the reader refuses the activations it does not have, by name
        bool refused = false;
        try {
            w.dump()->activation(0, Side::Original, notKept);
        } catch (const Error& e) {
            refused = QString::fromUtf8(e.what()).contains(QStringLiteral("--keep-activations 2"));
        }
        QVERIFY(refused);
    }

    void graphLayoutGroupsALargeModel() {
        // 150 layers in 10 blocks of 15 chained convolutions with a skip per block: the
        // automatic grouping keeps the graph at most 60 nodes; expanding a group shows
        // its layers, edges between groups stay
        std::vector<LayerSummary> layers;
        for (int b = 0; b < 10; ++b)
            for (int i = 0; i < 15; ++i) {
                LayerSummary l;
                l.index = static_cast<int>(layers.size());
                l.name = "backbone.stage" + std::to_string(b) + ".block" + std::to_string(i / 5) + ".conv" + std::to_string(i % 5);
                l.metrics.sqnrDb = 40.0 - l.index * 0.2;
                if (l.index > 0)
                    l.inputs.push_back(l.index - 1);
                if (i == 0 && b > 0)
                    l.inputs.push_back(l.index - 15); // skip
                layers.push_back(l);
            }
        const int depth = autoGroupDepth(layers, 60);
        QVERIFY(depth > 0);
        const GraphLayout grouped = layoutGraph(layers, depth, {});
        QVERIFY(grouped.nodes.size() <= 60);
        QVERIFY(grouped.nodes.size() > 1);
        for (const auto& n : grouped.nodes) // a group is coloured by its worst member
            if (n.layers.size() > 1)
                QCOMPARE(n.worstSqnrDb, 40.0 - n.layers.back() * 0.2);
        QVERIFY(!grouped.edges.empty());
        const QString prefix = grouped.nodes.front().prefix;
        QVERIFY(!prefix.isEmpty());
        const GraphLayout expanded = layoutGraph(layers, depth, {prefix});
        QCOMPARE(expanded.nodes.size(), grouped.nodes.size() - 1 + grouped.nodes.front().layers.size());
        // ranks follow the data flow: a layer sits below every layer feeding it
        const GraphLayout flat = layoutGraph(layers, 0, {});
        QCOMPARE(flat.nodes.size(), layers.size());
        QCOMPARE(flat.edges.size(), std::size_t{149 + 9}); // the chain and 9 skips
        // hiding implied edges drops exactly the skips (the chain links their ends too)
        const GraphLayout reduced = layoutGraph(layers, 0, {}, true);
        QCOMPARE(reduced.edges.size(), std::size_t{149});
        QCOMPARE(reduced.impliedEdges, 9);
        for (const auto& [from, to] : reduced.edges)
            QCOMPARE(to, from + 1);
        for (const auto& l : layers)
            for (auto from : l.inputs)
                QVERIFY(flat.nodes[static_cast<std::size_t>(flat.nodeOfLayer[static_cast<std::size_t>(from)])].rank <
                        flat.nodes[static_cast<std::size_t>(flat.nodeOfLayer[static_cast<std::size_t>(l.index)])].rank);
    }

    void hexagonClickNamesItsSamplesAndShowsTheDetection() {
        const QString detector = qEnvironmentVariable("QS_TEST_DETECTOR_DUMP");
        MainWindow w;
        w.resize(1400, 900);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(detector);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        auto* output = w.findChild<OutputView*>();
        w.tabs()->setCurrentWidget(output);
        auto* hex = qobject_cast<HexbinPlottable*>(output->figure()->plottable(0));
        QVERIFY(hex);
        QTRY_VERIFY_WITH_TIMEOUT(!hex->bins().counts.empty(), 60000);
        output->figure()->replot();
        const HexBins& bins = hex->bins();
        const auto fullest = static_cast<std::size_t>(std::max_element(bins.counts.begin(), bins.counts.end()) - bins.counts.begin());
        const QPointF pixel(output->figure()->xAxis->coordToPixel(bins.centerX[fullest]),
                            output->figure()->yAxis->coordToPixel(bins.centerY[fullest]));
        QSignalSpy picked(output, &OutputView::picked);
        QCOMPARE(output->pick(pixel), bins.counts[fullest]);
        QCOMPARE(picked.count(), 1);
        const int o = picked.first().at(1).toInt(), q = picked.first().at(2).toInt();
        QCOMPARE(w.findChild<DetectionPanel*>()->view()->highlight(), std::make_pair(o, q));
    }

    void signedMapsDivergeFromZeroAndTicksArePixels() {
        const QString detector = qEnvironmentVariable("QS_TEST_DETECTOR_DUMP");
        MainWindow w;
        w.resize(1400, 900);
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(detector);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        // a layer whose mean map has negative values, and one whose has none
        int signedLayer = -1, positiveLayer = -1;
        for (const auto& l : w.dump()->layers()) {
            if (l.shape.size() != 3)
                continue;
            const auto m = w.dump()->meanMap(l.index, Side::Original, 0);
            const auto n = w.dump()->meanMap(l.index, Side::Quantized, 0);
            const bool negative = std::any_of(m.begin(), m.end(), [](float v) { return v < 0; }) ||
                                  std::any_of(n.begin(), n.end(), [](float v) { return v < 0; });
            (negative ? signedLayer : positiveLayer) = l.index;
        }
        QVERIFY(signedLayer >= 0 && positiveLayer >= 0);
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        auto colourMap = [](QCustomPlot* p) { return qobject_cast<QCPColorMap*>(p->plottable(0)); };
        w.selectLayer(signedLayer);
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty() && loaded.last().at(0).toInt() == signedLayer, 60000);
        const auto figures = w.layerView()->figures();
        for (int i = 0; i < 2; ++i) { // centred on 0, 0 drawn in the diverging map's grey
            const QCPRange r = colourMap(figures[i])->dataRange();
            QCOMPARE(r.lower, -r.upper);
            QCOMPARE(QColor(colourMap(figures[i])->gradient().color(0.0, r)), QColor(221, 221, 221));
            // and the colour bar shows those colours
            QCOMPARE(QColor(colourMap(figures[i])->colorScale()->gradient().color(0.0, r)), QColor(221, 221, 221));
            QCOMPARE(QColor(colourMap(figures[i])->colorScale()->gradient().color(r.upper, r)),
                     QColor(colourMap(figures[i])->gradient().color(r.upper, r)));
        }
        const QCPRange diff = colourMap(figures[2])->dataRange();
        QVERIFY(diff.lower >= 0); // |diff| is never negative: sequential, from its minimum
        for (QCustomPlot* p : figures) {
            p->replot();
            auto* heat = static_cast<HeatmapPlot*>(p);
            for (QCPAxis* axis : {p->xAxis, p->yAxis}) {
                const double last = (axis == p->xAxis ? heat->extent().width() : heat->extent().height()) - 1;
                QVERIFY(!axis->tickVector().isEmpty());
                for (double t : axis->tickVector())
                    QVERIFY2(t >= 0 && t <= last && t == std::round(t), qPrintable(QString::number(t)));
            }
            QVERIFY(!colourMap(p)->colorScale()->axis()->label().isEmpty()); // labelled colour bar
        }
        w.selectLayer(positiveLayer);
        QTRY_VERIFY_WITH_TIMEOUT(loaded.last().at(0).toInt() == positiveLayer, 60000);
        QVERIFY(colourMap(w.layerView()->figures()[0])->dataRange().lower >= 0);
        // the per-channel SQNR axis starts just below the worst channel, not at 0 dB
        // (finite channels only: an exact channel, +inf, is drawn as a full bar)
        const auto sqnr = w.dump()->channelMetric(positiveLayer, "sqnr_db");
        double lo = 1e300, hi = -1e300;
        for (float v : sqnr)
            if (std::isfinite(v)) {
                lo = std::min(lo, static_cast<double>(v));
                hi = std::max(hi, static_cast<double>(v));
            }
        QVERIFY(lo < hi);
        const QCPRange axis = w.layerView()->channelChart()->yAxis->range();
        QCOMPARE(axis.lower, lo - std::max(1.0, 0.1 * (hi - lo)));
        QVERIFY(axis.lower > 0);
    }

    void settingsPersist() {
        {
            MainWindow w;
            w.show();
            QSignalSpy opened(&w, &MainWindow::dumpOpened);
            w.openDump(dumpPath());
            QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
            w.resize(1234, 789);
            w.close();
        }
        QSettings settings;
        QVERIFY(settings.value(QStringLiteral("recentFiles")).toStringList().contains(QFileInfo(dumpPath()).absoluteFilePath()));
        MainWindow again;
        QCOMPARE(again.size(), QSize(1234, 789)); // geometry restored
    }

    void corruptDumpShowsMessage() {
        QTemporaryDir dir;
        const QString bad = dir.filePath(QStringLiteral("broken.h5"));
        QFile src(dumpPath());
        QVERIFY(src.open(QIODevice::ReadOnly));
        QFile dst(bad);
        QVERIFY(dst.open(QIODevice::WriteOnly));
        dst.write(src.read(3000)); // truncated
        dst.close();
        MainWindow w;
        w.show();
        QSignalSpy failed(&w, &MainWindow::openFailed);
        w.openDump(bad);
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 60000);
        QMessageBox* box = errorBox(&w);
        QVERIFY(box);
        QTRY_VERIFY(box->isVisible());
        QVERIFY2(box->text().contains(bad), qPrintable(box->text()));
        QVERIFY(!w.dump()); // nothing half-open
    }

    void newerVersionIsRefused() {
        QTemporaryDir dir;
        const QString newer = dir.filePath(QStringLiteral("newer.h5"));
        QVERIFY(QFile::copy(dumpPath(), newer));
        {
            h5::Lock lock(h5::libraryMutex());
            H5::H5File f(newer.toStdString(), H5F_ACC_RDWR);
            H5::Group root = f.openGroup("/");
            h5::setAttr(root, "version", std::int64_t{99});
        }
        MainWindow w;
        w.show();
        QSignalSpy failed(&w, &MainWindow::openFailed);
        w.openDump(newer);
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 60000);
        QVERIFY2(failed.first().at(0).toString().contains(QStringLiteral("newer")), qPrintable(failed.first().at(0).toString()));
    }

    void summaryShowsStoredFigures() {
        QTemporaryDir dir;
        const QString copy = dir.filePath(QStringLiteral("with-eval.h5"));
        QVERIFY(QFile::copy(dumpPath(), copy));
        {
            DumpReader plain(copy.toStdString());
            const QString html = SummaryView::html(plain);
            QVERIFY(html.contains(QStringLiteral("No accuracy figures")));
            QVERIFY(html.contains(QStringLiteral("No latency or memory figures")));
            // the worst layer and the worst image (lowest mean SQNR over layers) are named
            int worstLayer = 0;
            for (const auto& l : plain.layers())
                if (l.metrics.sqnrDb < plain.layers()[static_cast<std::size_t>(worstLayer)].metrics.sqnrDb)
                    worstLayer = l.index;
            QVERIFY(html.contains(QStringLiteral("worst layers")));
            QVERIFY(html.contains(QString::fromStdString(plain.layers()[static_cast<std::size_t>(worstLayer)].name)));
            int worstImage = 0;
            for (int i = 1; i < plain.imageCount(); ++i)
                if (summarizeImage(plain.imageMetrics(), i).meanSqnrDb < summarizeImage(plain.imageMetrics(), worstImage).meanSqnrDb)
                    worstImage = i;
            const QString worstFile = QFileInfo(QString::fromStdString(plain.source(worstImage))).fileName();
            QVERIFY(html.indexOf(worstFile) > html.indexOf(QStringLiteral("worst images")));
            QVERIFY(html.indexOf(QStringLiteral("worst images")) > 0);
        }
        updateDump(copy.toStdString(), [](H5::H5File& f) {
            H5::Group g = f.createGroup("/eval");
            h5::setAttr(g, "original_map", 0.8123);
            h5::setAttr(g, "quantized_map", 0.7901);
            h5::setAttr(g, "original_map50", 0.97);
            h5::setAttr(g, "quantized_map50", 0.96);
            h5::setAttr(g, "images", std::int64_t{300});
        });
        DumpReader withEval(copy.toStdString());
        QVERIFY(withEval.hasEval());
        const QString html = SummaryView::html(withEval);
        QVERIFY2(html.contains(QStringLiteral("81.23")) && html.contains(QStringLiteral("79.01")) &&
                     html.contains(QStringLiteral("2.22")),
                 qPrintable(html));
    }

    // Issue "GUI a quantization engineer reaches for", bugs 1, 2, 3, 4, 9, 10.
    void exportShortcutAndArrowsWorkFromTheFilterField() {
        MainWindow w;
        w.resize(1400, 900);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(dumpPath());
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        w.selectLayer(0);
        QTRY_COMPARE(w.layerView()->currentLayer(), 0);
        w.activateWindow();
        w.filterEdit()->setFocus();
        QTRY_VERIFY(w.filterEdit()->hasFocus());
        // arrow keys in the filter field browse the layer list
        QTest::keyClick(w.filterEdit(), Qt::Key_Down);
        QTRY_COMPARE(w.layerView()->currentLayer(), 1);
        QVERIFY(w.filterEdit()->hasFocus());
        // Ctrl+E opens the export dialog although a line edit has focus (it would take
        // Ctrl+E as "end of line"); the file dialog is closed again as soon as it shows
        QAction* exportAction = nullptr;
        for (QAction* a : w.findChildren<QAction*>())
            if (a->shortcut() == QKeySequence(QStringLiteral("Ctrl+E")))
                exportAction = a;
        QVERIFY(exportAction);
        QSignalSpy triggered(exportAction, &QAction::triggered);
        bool dialogSeen = false;
        QTimer closer;
        connect(&closer, &QTimer::timeout, [&] {
            if (QWidget* modal = QApplication::activeModalWidget()) {
                dialogSeen = true;
                if (auto* d = qobject_cast<QDialog*>(modal))
                    d->reject();
            }
        });
        closer.start(50);
        QTest::keyClick(w.filterEdit(), Qt::Key_E, Qt::ControlModifier);
        QTRY_COMPARE(triggered.count(), 1);
        QVERIFY(dialogSeen);
        QCOMPARE(w.filterEdit()->text(), QString()); // and nothing typed into the filter
    }

    void detectionsExportInEveryFormatAtTheSizeAsked() {
        const QString detector = qEnvironmentVariable("QS_TEST_DETECTOR_DUMP");
        QVERIFY2(QFile::exists(detector), "QS_TEST_DETECTOR_DUMP must name a detector dump");
        MainWindow w;
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(detector);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        w.tabs()->setCurrentWidget(w.findChild<DetectionPanel*>());
        QTemporaryDir dir;
        for (const char* suffix : {"png", "svg", "pdf"}) {
            const QString file = dir.filePath(QStringLiteral("detections.") + QLatin1String(suffix));
            QCOMPARE(w.exportCurrentFigure(file, QSize(1600, 1200), 150), QString());
            QVERIFY2(QFileInfo(file).size() > 1000, suffix);
        }
        QCOMPARE(QImage(dir.filePath(QStringLiteral("detections.png"))).size(), QSize(1600, 1200));
        QFile svg(dir.filePath(QStringLiteral("detections.svg")));
        QVERIFY(svg.open(QIODevice::ReadOnly));
        QVERIFY(svg.readAll().contains("<image")); // the input image is in the drawing
    }

    void depthPlotHighlightsOnlyTheCurrentLayer() {
        MainWindow w;
        w.resize(1400, 900);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(dumpPath());
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QCustomPlot* depth = w.depthPlot();
        depth->replot();
        const auto point = depth->graph(0)->coordsToPixels(2, depth->graph(0)->data()->at(2)->value);
        QTest::mouseClick(depth, Qt::LeftButton, Qt::NoModifier, point.toPoint());
        QTRY_COMPARE(w.layerView()->currentLayer(), 2);
        w.selectLayer(0); // from the table: the clicked point must not stay highlighted
        QTRY_COMPARE(w.layerView()->currentLayer(), 0);
        QVERIFY(depth->graph(0)->selection().isEmpty());
        QCOMPARE(depth->graph(1)->data()->size(), 1);
        QCOMPARE(depth->graph(1)->data()->at(0)->key, 0.0);
    }

    void recentFilesShowTheFolderAndForgetDeletedFiles() {
        QTemporaryDir dir;
        const QString copy = dir.filePath(QStringLiteral("recent-test.h5"));
        QVERIFY(QFile::copy(dumpPath(), copy));
        MainWindow w;
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(copy);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        const QString absolute = QFileInfo(copy).absoluteFilePath();
        QVERIFY(QSettings().value(QStringLiteral("recentFiles")).toStringList().contains(absolute));
        QMenu* recent = nullptr;
        for (QMenu* m : w.findChildren<QMenu*>())
            if (m->title() == QStringLiteral("Open &recent"))
                recent = m;
        QVERIFY(recent);
        bool withFolder = false;
        for (QAction* a : recent->actions())
            withFolder |= a->text().startsWith(QStringLiteral("recent-test.h5")) &&
                          a->text().contains(QFileInfo(dir.path()).fileName());
        QVERIFY(withFolder);
        QVERIFY(QFile::remove(copy));
        QSignalSpy failed(&w, &MainWindow::openFailed);
        w.openDump(copy);
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 60000);
        QVERIFY(!QSettings().value(QStringLiteral("recentFiles")).toStringList().contains(absolute));
        for (QAction* a : recent->actions())
            QVERIFY(!a->text().startsWith(QStringLiteral("recent-test.h5")));
        if (auto* box = errorBox(&w))
            box->close();
    }

    void newComparisonLocksTheFormAndAsksBeforeReplacing() {
        QTemporaryDir dir;
        const QString out = dir.filePath(QStringLiteral("existing.h5"));
        {
            QFile f(out);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("a result the user saved");
        }
        ComparisonDialog dialog;
        dialog.show();
        QSignalSpy written(&dialog, &ComparisonDialog::dumpWritten);
        QVERIFY(startComparison(dialog, QStringLiteral("demo_cnn_float.pt"), QStringLiteral("demo_cnn_int8.pt"), out));
        QMessageBox* ask = nullptr;
        QTRY_VERIFY((ask = dialog.findChild<QMessageBox*>(QStringLiteral("overwriteBox"))) != nullptr);
        QVERIFY(!dialog.isRunning()); // nothing starts before the answer
        QTest::mouseClick(ask->button(QMessageBox::No), Qt::LeftButton);
        QTRY_VERIFY(dialog.findChild<QMessageBox*>(QStringLiteral("overwriteBox")) == nullptr);
        QVERIFY(!dialog.isRunning());
        QFile kept(out);
        QVERIFY(kept.open(QIODevice::ReadOnly));
        QCOMPARE(kept.readAll(), QByteArray("a result the user saved"));
        kept.close();
        QVERIFY(startComparison(dialog, QStringLiteral("demo_cnn_float.pt"), QStringLiteral("demo_cnn_int8.pt"), out));
        QTRY_VERIFY((ask = dialog.findChild<QMessageBox*>(QStringLiteral("overwriteBox"))) != nullptr);
        QTest::mouseClick(ask->button(QMessageBox::Yes), Qt::LeftButton);
        QTRY_VERIFY(dialog.isRunning());
        // while it runs, nothing that edits the form may be used (Clear would empty the
        // list under the running job); Cancel stays available
        auto* buttons = dialog.findChild<QDialogButtonBox*>();
        for (QPushButton* b : dialog.findChildren<QPushButton*>())
            if (b->window() == &dialog && b != buttons->button(QDialogButtonBox::Cancel)) // not the closed question's
                QVERIFY2(!b->isEnabled(), qPrintable(b->text()));
        for (QLineEdit* e : dialog.findChildren<QLineEdit*>())
            QVERIFY(!e->isEnabled());
        QVERIFY(!dialog.findChild<QListWidget*>()->isEnabled());
        QTRY_COMPARE_WITH_TIMEOUT(written.count(), 1, 60000);
        QVERIFY(QFileInfo(out).size() > 1000); // replaced by the new dump
    }

    // bugs 6, 7, 8: log scale on signed maps, manual range, output quantities by kind
    void logScaleAndManualRangeRespectWhatEachMapHolds() {
        const QString detector = qEnvironmentVariable("QS_TEST_DETECTOR_DUMP");
        QVERIFY2(QFile::exists(detector), "QS_TEST_DETECTOR_DUMP must name a detector dump");
        MainWindow w;
        w.resize(1400, 900);
        w.show();
        QSignalSpy opened(&w, &MainWindow::dumpOpened);
        w.openDump(detector);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QList<HeatmapPlot*> plots;
        for (QCustomPlot* p : w.layerView()->figures())
            plots << qobject_cast<HeatmapPlot*>(p);
        QVERIFY(plots.size() == 4 && plots[0]);
        // an FPN layer: convolution output without ReLU, so its mean map is signed
        int signedLayer = -1;
        for (const auto& l : w.dump()->layers())
            if (signedLayer < 0 && QString::fromStdString(l.name).contains(QStringLiteral("fpn.layer_blocks")))
                signedLayer = l.index;
        QVERIFY(signedLayer >= 0);
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        w.selectLayer(signedLayer);
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty() && loaded.last().at(0).toInt() == signedLayer, 60000);
        QVERIFY2(plots[0]->dataBounds().lower < 0, "the chosen layer should hold negative values");
        QComboBox* scale = nullptr;
        QComboBox* range = nullptr;
        for (QComboBox* c : w.layerView()->findChildren<QComboBox*>()) {
            if (c->findText(QStringLiteral("Log")) >= 0)
                scale = c;
            if (c->itemText(0).startsWith(QStringLiteral("Auto range")))
                range = c;
        }
        QVERIFY(scale && range);
        scale->setCurrentIndex(scale->findText(QStringLiteral("Log")));
        QVERIFY(!plots[0]->logScale()); // negative values cannot be shown on a log scale
        QVERIFY(plots[2]->logScale());  // |diff| is never negative
        QVERIFY(plots[3]->logScale());
        auto* note = w.layerView()->findChild<QLabel*>(QStringLiteral("rangeNote"));
        QVERIFY(note && note->text().contains(QStringLiteral("negative")));
        scale->setCurrentIndex(0);
        QVERIFY(note->text().isEmpty());
        // manual range: min can never pass max, and it applies to the activation maps only
        range->setCurrentIndex(2);
        auto spins = w.layerView()->findChildren<QDoubleSpinBox*>();
        QCOMPARE(spins.size(), 2);
        QDoubleSpinBox* min = spins[0];
        QDoubleSpinBox* max = spins[1];
        max->setValue(1.0);
        min->setValue(5.0); // typed above max: held at max
        QVERIFY(min->value() <= max->value());
        min->setValue(0.25);
        QCOMPARE(plots[0]->colorRange().lower, 0.25);
        QCOMPARE(plots[0]->colorRange().upper, 1.0);
        QCOMPARE(plots[1]->colorRange().lower, 0.25);
        QCOMPARE(plots[2]->colorRange().lower, plots[2]->dataBounds().lower);
        QCOMPARE(plots[2]->colorRange().upper, plots[2]->dataBounds().upper);
    }

    void outputErrorOffersWhatTheModelOutputs() {
        const QString detector = qEnvironmentVariable("QS_TEST_DETECTOR_DUMP");
        for (const QString& path : {dumpPath(), detector}) {
            MainWindow w;
            w.show();
            QSignalSpy opened(&w, &MainWindow::dumpOpened);
            w.openDump(path);
            QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
            auto* quantity = w.findChild<QComboBox*>(QStringLiteral("quantity"));
            QVERIFY(quantity);
            QStringList items;
            for (int i = 0; i < quantity->count(); ++i)
                items << quantity->itemText(i);
            const bool detections = w.dump()->outputs(0).kind == "detections";
            if (detections) {
                QCOMPARE(items.size(), 3);
                for (const QString& item : items)
                    QVERIFY2(item.contains(QStringLiteral("detections")), qPrintable(item));
            } else { // the classifier: logits, nothing about detections
                QCOMPARE(items, QStringList{QStringLiteral("Logits, every class")});
            }
        }
    }

    // bug 5: square heatmap cells after a resize and in exports
    void heatmapCellsStaySquare() {
        MainWindow w;
        w.resize(1280, 720);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        w.openDump(dumpPath());
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
        auto cellRatio = [](QCustomPlot* p) { // width / height of one cell, in pixels
            const double x = std::fabs(p->xAxis->coordToPixel(1) - p->xAxis->coordToPixel(0));
            const double y = std::fabs(p->yAxis->coordToPixel(1) - p->yAxis->coordToPixel(0));
            return x / y;
        };
        for (const QSize size : {QSize(1280, 720), QSize(1920, 1080), QSize(1000, 1000)}) {
            w.resize(size);
            QTest::qWait(0);
            for (QCustomPlot* p : w.layerView()->figures()) {
                p->replot(QCustomPlot::rpImmediateRefresh);
                QVERIFY2(std::fabs(cellRatio(p) - 1.0) < 0.01,
                         qPrintable(QStringLiteral("%1x%2: cell ratio %3, axis rect %4x%5, widget %6x%7")
                                        .arg(size.width()).arg(size.height()).arg(cellRatio(p))
                                        .arg(p->axisRect()->width()).arg(p->axisRect()->height())
                                        .arg(p->width()).arg(p->height())));
            }
        }
        // in an export: each plot is laid out again for its 800x600 cell of the figure;
        // the ratio is taken right after that layout (this connection runs after the
        // plot's own), while the export draws
        QList<double> exported;
        QList<QMetaObject::Connection> taps;
        for (QCustomPlot* p : w.layerView()->figures())
            taps << connect(p, &QCustomPlot::afterLayout, p, [&, p] {
                if (p->viewport().size() == QSize(800, 600))
                    exported << cellRatio(p);
            });
        QTemporaryDir dir;
        QCOMPARE(w.exportCurrentFigure(dir.filePath(QStringLiteral("maps.png")), QSize(1600, 1200), 100), QString());
        for (const auto& c : taps)
            disconnect(c);
        QVERIFY(exported.size() >= 4);
        for (double r : exported)
            QVERIFY2(std::fabs(r - 1.0) < 0.01, qPrintable(QString::number(r)));
    }

    // usability: the window fits a 1280x720 screen, with readable layer names
    void fitsA1280x720Screen() {
        QSettings().remove(QStringLiteral("window")); // a first start: no saved geometry or splitter
        MainWindow w;
        w.resize(1280, 720);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QSignalSpy loaded(w.layerView(), &LayerView::loaded);
        w.openDump(qEnvironmentVariable("QS_TEST_DETECTOR_DUMP")); // long layer names
        QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
        const QSize min = w.minimumSizeHint();
        qInfo("minimum size hint %dx%d, window %dx%d", min.width(), min.height(), w.width(), w.height());
        QVERIFY2(min.width() <= 1280 && min.height() <= 720,
                 qPrintable(QStringLiteral("minimum %1x%2").arg(min.width()).arg(min.height())));
        QCOMPARE(w.size(), QSize(1280, 720));
        // the layer list shows whole names: "backbone.fpn.layer_blocks.0.0" and the like
        const int nameWidth = w.layerTable()->columnWidth(LayerTableModel::Name);
        qInfo("layer name column %d px, table viewport %d px", nameWidth, w.layerTable()->viewport()->width());
        const QFontMetrics metrics(w.layerTable()->font());
        int longest = 0;
        for (const auto& l : w.dump()->layers())
            longest = std::max(longest, metrics.horizontalAdvance(QString::fromStdString(l.name)));
        QVERIFY2(nameWidth >= longest, // no name cut short
                 qPrintable(QStringLiteral("column %1 px, longest name %2 px").arg(nameWidth).arg(longest)));
        QVERIFY2(w.layerTable()->viewport()->width() >= 300, // name and quantized op side by side
                 qPrintable(QString::number(w.layerTable()->viewport()->width())));
        // the headline metric, SQNR, is in view without scrolling
        const QHeaderView* header = w.layerTable()->horizontalHeader();
        const int sqnrRight = header->sectionViewportPosition(LayerTableModel::Sqnr) + header->sectionSize(LayerTableModel::Sqnr);
        QVERIFY2(header->sectionSize(LayerTableModel::Sqnr) >= metrics.horizontalAdvance(QStringLiteral("SQNR dB")) &&
                     sqnrRight <= w.layerTable()->viewport()->width(),
                 qPrintable(QStringLiteral("SQNR column ends at %1 px of %2").arg(sqnrRight).arg(w.layerTable()->viewport()->width())));
        // the four maps keep a usable size
        for (QCustomPlot* p : w.layerView()->figures())
            QVERIFY2(p->width() >= 240 && p->height() >= 150, qPrintable(QStringLiteral("%1x%2").arg(p->width()).arg(p->height())));
        // and so do the histogram and the graph
        w.tabs()->setCurrentWidget(w.histogramView());
        QVERIFY(w.histogramView()->figure()->width() >= 600 && w.histogramView()->figure()->height() >= 350);
        w.tabs()->setCurrentWidget(w.graphView());
        QVERIFY(w.graphView()->canvas()->width() >= 600 && w.graphView()->canvas()->height() >= 350);
    }

    void newComparisonRunsOnAWorker() {
        QTemporaryDir dir;
        const QString out = dir.filePath(QStringLiteral("fromgui.h5"));
        {
            ComparisonDialog dialog;
            dialog.show();
            // the options a classifier needs, and the others compare has
            dialog.findChild<QLineEdit*>(QStringLiteral("mean"))->setText(QStringLiteral("0.485,0.456,0.406"));
            dialog.findChild<QLineEdit*>(QStringLiteral("std"))->setText(QStringLiteral("0.229,0.224,0.225"));
            dialog.findChild<QLineEdit*>(QStringLiteral("layers"))->setText(QStringLiteral("features.*, classifier"));
            dialog.findChild<QComboBox*>(QStringLiteral("ops"))->setCurrentText(QStringLiteral("conv,linear"));
            dialog.findChild<QComboBox*>(QStringLiteral("decode"))->setCurrentText(QStringLiteral("none"));
            dialog.findChild<QComboBox*>(QStringLiteral("onnxInt8"))->setCurrentText(QStringLiteral("simulated"));
            dialog.findChild<QCheckBox*>(QStringLiteral("bgr"))->setChecked(true);
            QSignalSpy written(&dialog, &ComparisonDialog::dumpWritten);
            QVERIFY(startComparison(dialog, QStringLiteral("demo_cnn_float.pt"), QStringLiteral("demo_cnn_int8.pt"), out));
            const QStringList args = dialog.commandLine();
            for (const QStringList& pair : {QStringList{QStringLiteral("--mean"), QStringLiteral("0.485,0.456,0.406")},
                                            QStringList{QStringLiteral("--std"), QStringLiteral("0.229,0.224,0.225")},
                                            QStringList{QStringLiteral("--layers"), QStringLiteral("features.*")},
                                            QStringList{QStringLiteral("--layers"), QStringLiteral("classifier")},
                                            QStringList{QStringLiteral("--ops"), QStringLiteral("conv,linear")},
                                            QStringList{QStringLiteral("--decode"), QStringLiteral("none")},
                                            QStringList{QStringLiteral("--onnx-int8"), QStringLiteral("simulated")}}) {
                const auto value = args.indexOf(pair[1]); // each value right after its option
                QVERIFY2(value > 0 && args[value - 1] == pair[0], qPrintable(pair.join(QLatin1Char(' '))));
            }
            QVERIFY(args.contains(QStringLiteral("--bgr")));
            QVERIFY(dialog.isRunning());
            QTRY_COMPARE_WITH_TIMEOUT(written.count(), 1, 60000);
            QCOMPARE(written.first().at(0).toString(), out);
            QVERIFY(QFile::exists(out));
        }
        // what the run used is offered again next time
        DumpReader made(out.toStdString());
        QCOMPARE(made.layers().size(), std::size_t{5}); // four convolutions and the classifier
        {
            ComparisonDialog again;
            QCOMPARE(again.findChild<QLineEdit*>(QStringLiteral("mean"))->text(), QStringLiteral("0.485,0.456,0.406"));
            QCOMPARE(again.findChild<QLineEdit*>(QStringLiteral("layers"))->text(), QStringLiteral("features.*, classifier"));
            QCOMPARE(again.findChild<QComboBox*>(QStringLiteral("ops"))->currentText(), QStringLiteral("conv,linear"));
            QCOMPARE(again.findChild<QComboBox*>(QStringLiteral("decode"))->currentText(), QStringLiteral("none"));
            QCOMPARE(again.findChild<QComboBox*>(QStringLiteral("onnxInt8"))->currentText(), QStringLiteral("simulated"));
            QVERIFY(again.findChild<QCheckBox*>(QStringLiteral("bgr"))->isChecked());
        }
        QSettings settings; // the other tests start from the defaults
        for (const char* key : {"mean", "std", "layers", "ops", "decode", "onnxInt8", "bgr"})
            settings.remove(QStringLiteral("compare/") + QLatin1String(key));
    }

    void newComparisonCancels() {
        QTemporaryDir dir;
        const QString out = dir.filePath(QStringLiteral("cancelled.h5"));
        ComparisonDialog dialog;
        dialog.show();
        QSignalSpy written(&dialog, &ComparisonDialog::dumpWritten);
        QVERIFY(startComparison(dialog, QStringLiteral("frcnn_r50_fpn.pt"), QStringLiteral("frcnn_r50_fpn.pt"), out,
                                QStringLiteral("640x480")));
        QVERIFY(dialog.isRunning());
        // cancel once the first forward pass is running (its progress line has arrived)
        auto* stage = dialog.findChild<QLabel*>(QStringLiteral("stage"));
        QVERIFY(stage);
        QTRY_VERIFY_WITH_TIMEOUT(stage->text().startsWith(QStringLiteral("original")), 120000);
        QVERIFY(dialog.isRunning());
        auto* buttons = dialog.findChild<QDialogButtonBox*>();
        QTest::mouseClick(buttons->button(QDialogButtonBox::Cancel), Qt::LeftButton); // while it runs
        QVERIFY(dialog.isVisible()); // the dialog waits for the job to stop
        QTRY_VERIFY_WITH_TIMEOUT(!dialog.isRunning(), 60000);
        QCOMPARE(written.count(), 0);
        QVERIFY(!QFile::exists(out));
        QVERIFY(QDir(dir.path()).entryList(QDir::Files).isEmpty()); // no partial file either
    }
};

QTEST_MAIN(TestMainWindow)
#include "test_mainwindow.moc"
