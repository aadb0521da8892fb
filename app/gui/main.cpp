// quantscope: the desktop application, plus its headless modes
//   quantscope [run.h5]                      open a dump
//   quantscope --screenshot out.png [run.h5] render the main window to a PNG and exit
//   quantscope --export run.h5 ...           figures without a window (see headless.h)

#include "h5util.h"
#include "headless.h"
#include "detectionpanel.h"
#include "graphview.h"
#include "histogramview.h"
#include "imagesview.h"
#include "layerview.h"
#include "outputview.h"
#include "summaryview.h"
#include "mainwindow.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QMessageBox>
#include <QTabWidget>
#include <QTimer>

#include <cstdio>
#include <cstdlib>

namespace {

bool wantsHeadless(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const QByteArray a(argv[i]);
        // --help and --version print and exit: they need no display either
        if (a == "--export" || a == "--screenshot" || a == "--help" || a == "-h" || a == "--help-all" ||
            a == "--version" || a == "-v")
            return true;
    }
    return false;
}

int screenshot(qs::MainWindow& window, const QString& out, const QString& dump, QSize size) {
    window.resize(size);
    window.show();
    auto save = [&window, out] {
        // let queued replots land before grabbing
        QTimer::singleShot(300, &window, [&window, out] {
            const QPixmap shot = window.grab();
            if (!shot.save(out)) {
                std::fprintf(stderr, "quantscope: %s: cannot write the screenshot\n", qPrintable(out));
                QCoreApplication::exit(1);
                return;
            }
            std::printf("wrote %s (%dx%d)\n", qPrintable(out), shot.width(), shot.height());
            QCoreApplication::exit(0);
        });
    };
    if (dump.isEmpty()) {
        QTimer::singleShot(0, &window, save);
    } else {
        QObject::connect(window.layerView(), &qs::LayerView::loaded, &window, save, Qt::SingleShotConnection);
        auto fail = [](const QString& error) {
            std::fprintf(stderr, "quantscope: %s\n", qPrintable(error));
            QCoreApplication::exit(1);
        };
        QObject::connect(&window, &qs::MainWindow::openFailed, &window, fail);
        QObject::connect(window.layerView(), &qs::LayerView::failed, &window, fail, Qt::SingleShotConnection);
        window.openDump(dump);
    }
    QTimer::singleShot(120000, &window, [] {
        std::fprintf(stderr, "quantscope: screenshot timed out\n");
        QCoreApplication::exit(1);
    });
    return QApplication::exec();
}

} // namespace

int main(int argc, char** argv) {
    qs::h5::prepareLibrary();
    if (wantsHeadless(argc, argv) && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM") &&
        qEnvironmentVariableIsEmpty("DISPLAY") && qEnvironmentVariableIsEmpty("WAYLAND_DISPLAY"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("QuantScope"));
    QApplication::setOrganizationName(QStringLiteral("QuantScope"));
    QApplication::setApplicationVersion(QStringLiteral(QS_VERSION));
    QApplication::setWindowIcon(QIcon(QStringLiteral(":/quantscope.svg")));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("QuantScope: where INT8 quantization hurts a CNN, layer by layer"));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("dump"), QStringLiteral("A dump to open (.h5)"), QStringLiteral("[run.h5]"));
    QCommandLineOption screenshotOpt(QStringLiteral("screenshot"), QStringLiteral("Render the main window to FILE and exit"), QStringLiteral("FILE"));
    QCommandLineOption exportOpt(QStringLiteral("export"), QStringLiteral("Export figures of DUMP without a window"), QStringLiteral("DUMP"));
    QCommandLineOption layerOpt(QStringLiteral("layer"), QStringLiteral("Export this layer (repeatable)"), QStringLiteral("NAME"));
    QCommandLineOption allOpt(QStringLiteral("all"), QStringLiteral("Export every layer"));
    QCommandLineOption kindOpt(QStringLiteral("kind"), QStringLiteral("abs|rel|original|quantized|hexbin|detections"), QStringLiteral("KIND"), QStringLiteral("abs"));
    QCommandLineOption formatOpt(QStringLiteral("format"), QStringLiteral("png|svg|pdf"), QStringLiteral("FORMAT"), QStringLiteral("png"));
    QCommandLineOption outOpt(QStringLiteral("out"), QStringLiteral("Output directory"), QStringLiteral("DIR"));
    QCommandLineOption widthOpt(QStringLiteral("width"), QStringLiteral("Figure width (px)"), QStringLiteral("W"), QStringLiteral("1200"));
    QCommandLineOption heightOpt(QStringLiteral("height"), QStringLiteral("Figure height (px)"), QStringLiteral("H"), QStringLiteral("900"));
    QCommandLineOption tabOpt(QStringLiteral("tab"),
                              QStringLiteral("Start on this tab: layer, histogram, graph, output, detections, summary, "
                                             "or images (the browser's Images list)"),
                              QStringLiteral("TAB"), QStringLiteral("layer"));
    QCommandLineOption windowSizeOpt(QStringLiteral("window-size"), QStringLiteral("With --screenshot: the window's size"),
                                     QStringLiteral("WxH"), QStringLiteral("1440x900"));
    QCommandLineOption dpiOpt(QStringLiteral("dpi"), QStringLiteral("Resolution"), QStringLiteral("DPI"), QStringLiteral("150"));
    parser.addOptions({screenshotOpt, exportOpt, layerOpt, allOpt, kindOpt, formatOpt, outOpt, widthOpt, heightOpt, dpiOpt, tabOpt, windowSizeOpt});
    parser.process(app);

    if (parser.isSet(exportOpt)) {
        qs::ExportRequest r;
        r.dump = parser.value(exportOpt);
        r.outDir = parser.value(outOpt);
        r.layers = parser.values(layerOpt);
        r.all = parser.isSet(allOpt);
        r.kind = parser.value(kindOpt);
        r.format = parser.value(formatOpt);
        r.width = parser.value(widthOpt).toInt();
        r.height = parser.value(heightOpt).toInt();
        r.dpi = parser.value(dpiOpt).toInt();
        if (r.width < 100 || r.height < 100 || r.dpi < 30) {
            std::fprintf(stderr, "quantscope: export: --width/--height at least 100, --dpi at least 30\n");
            return 2;
        }
        return qs::runExport(r);
    }

    qs::MainWindow window;
    const QString tab = parser.value(tabOpt);
    const std::pair<QString, QWidget*> tabs[] = {
        {QStringLiteral("layer"), window.layerView()},        {QStringLiteral("histogram"), window.histogramView()},
        {QStringLiteral("graph"), window.graphView()},        {QStringLiteral("output"), window.findChild<qs::OutputView*>()},
        {QStringLiteral("detections"), window.findChild<qs::DetectionPanel*>()},
        {QStringLiteral("summary"), window.findChild<qs::SummaryView*>()}};
    bool known = tab == QLatin1String("images");
    for (const auto& [name, widget] : tabs)
        if (name == tab) {
            window.tabs()->setCurrentWidget(widget);
            known = true;
        }
    if (tab == QLatin1String("images"))
        window.browserTabs()->setCurrentWidget(window.imagesView());
    if (!known) {
        std::fprintf(stderr, "quantscope: --tab: one of layer, histogram, graph, output, detections, summary, images\n");
        return 2;
    }
    QSize windowSize;
    {
        const QStringList wh = parser.value(windowSizeOpt).split(QLatin1Char('x'));
        windowSize = wh.size() == 2 ? QSize(wh[0].toInt(), wh[1].toInt()) : QSize();
        if (windowSize.width() < 320 || windowSize.height() < 240) {
            std::fprintf(stderr, "quantscope: --window-size: WxH, at least 320x240\n");
            return 2;
        }
    }
    const QStringList args = parser.positionalArguments();
    const QString dump = args.isEmpty() ? QString() : args.first();
    if (parser.isSet(screenshotOpt))
        return screenshot(window, parser.value(screenshotOpt), dump, windowSize);
    window.show();
    if (!dump.isEmpty())
        window.openDump(dump);
    return QApplication::exec();
}
