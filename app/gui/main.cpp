// quantscope: the desktop application, plus its headless modes
//   quantscope [run.h5]                      open a dump
//   quantscope --screenshot out.png [run.h5] render the main window to a PNG and exit
//   quantscope --export run.h5 ...           figures without a window (see headless.h)

#include "h5util.h"
#include "headless.h"
#include "layerview.h"
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

int screenshot(qs::MainWindow& window, const QString& out, const QString& dump) {
    window.resize(1440, 900);
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
    QCommandLineOption tabOpt(QStringLiteral("tab"), QStringLiteral("Start on this tab: layer, output, detections, summary"), QStringLiteral("TAB"), QStringLiteral("layer"));
    QCommandLineOption dpiOpt(QStringLiteral("dpi"), QStringLiteral("Resolution"), QStringLiteral("DPI"), QStringLiteral("150"));
    parser.addOptions({screenshotOpt, exportOpt, layerOpt, allOpt, kindOpt, formatOpt, outOpt, widthOpt, heightOpt, dpiOpt, tabOpt});
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
    static const QStringList tabs = {QStringLiteral("layer"), QStringLiteral("output"), QStringLiteral("detections"), QStringLiteral("summary")};
    if (!tabs.contains(parser.value(tabOpt))) {
        std::fprintf(stderr, "quantscope: --tab: one of layer, output, detections, summary\n");
        return 2;
    }
    window.tabs()->setCurrentIndex(static_cast<int>(tabs.indexOf(parser.value(tabOpt))));
    const QStringList args = parser.positionalArguments();
    const QString dump = args.isEmpty() ? QString() : args.first();
    if (parser.isSet(screenshotOpt))
        return screenshot(window, parser.value(screenshotOpt), dump);
    window.show();
    if (!dump.isEmpty())
        window.openDump(dump);
    return QApplication::exec();
}
