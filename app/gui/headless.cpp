#include "headless.h"

#include <algorithm>

#include "detectionview.h"
#include "figureexport.h"
#include "heatmapplot.h"
#include "hexbinplottable.h"
#include "layerdata.h"
#include "qcp.h"

#include <QDir>
#include <QPainter>

#include <cmath>
#include <cstdio>

namespace qs {

namespace {

QString safeName(const QString& name) {
    QString s = name;
    for (QChar& c : s)
        if (!c.isLetterOrNumber() && c != QLatin1Char('.') && c != QLatin1Char('_') && c != QLatin1Char('-'))
            c = QLatin1Char('_');
    return s;
}

QString exportHeatmap(const DumpReader& dump, int layer, const ExportRequest& r, const QString& file) {
    const LayerMaps maps = loadLayerMaps(dump, layer, 0, ChannelMode::Mean, 0);
    if (!maps.error.isEmpty())
        return maps.error;
    HeatmapPlot plot;
    plot.resize(r.width, r.height);
    const auto& l = dump.layers().at(static_cast<std::size_t>(layer));
    const std::vector<float>* data = r.kind == QLatin1String("original")    ? &maps.original
                                     : r.kind == QLatin1String("quantized") ? &maps.quantized
                                     : r.kind == QLatin1String("rel")       ? &maps.relDiff
                                                                            : &maps.absDiff;
    const QString what = r.kind == QLatin1String("original")    ? QObject::tr("original, mean over channels")
                         : r.kind == QLatin1String("quantized") ? QObject::tr("quantized, mean over channels")
                         : r.kind == QLatin1String("rel")       ? QObject::tr("relative difference")
                                                                : QObject::tr("|quantized − original|");
    const QString image = dump.imageCount() > 1 ? QObject::tr(", image 0 of %1").arg(dump.imageCount()) : QString();
    plot.setTitle(QStringLiteral("%1 — %2 (SQNR %3 dB%4)")
                      .arg(QString::fromStdString(l.name), what)
                      .arg(l.metrics.sqnrDb, 0, 'f', 2)
                      .arg(image));
    plot.setColorLabel(what);
    plot.setMatrix(maps.width, maps.height, *data);
    // signed activations: diverging colours centred on 0 (as the GUI does)
    const bool activation = r.kind == QLatin1String("original") || r.kind == QLatin1String("quantized");
    QCPRange bounds = plot.dataBounds();
    for (const auto* side : {&maps.original, &maps.quantized})
        for (float v : *side)
            if (activation && v < 0)
                bounds.lower = std::min(bounds.lower, static_cast<double>(v));
    const bool diverging = activation && bounds.lower < 0;
    plot.setGradient(diverging ? HeatmapPlot::divergingGradient() : HeatmapPlot::sequentialGradient());
    plot.setColorRange(diverging ? HeatmapPlot::centredOnZero(plot.dataBounds()) : plot.dataBounds());
    plot.replot(); // lay out once at the figure size, so that margins fit the labels
    plot.resetView();
    FigureFormat f;
    f.size = QSize(r.width, r.height);
    f.dpi = r.dpi;
    return exportFigure({&plot}, 1, file, f);
}

QString exportHexbin(const DumpReader& dump, const ExportRequest& r, const QString& file) {
    OutputSamples s = loadOutputSamples(dump, OutputQuantity::Scores, -1);
    if (!s.error.isEmpty())
        return s.error;
    QCustomPlot plot;
    plot.resize(r.width, r.height);
    plot.plotLayout()->insertRow(0);
    plot.plotLayout()->addElement(0, 0, new QCPTextElement(&plot, QObject::tr("Output error, all images")));
    auto* hex = new HexbinPlottable(plot.xAxis, plot.yAxis);
    auto* scale = new QCPColorScale(&plot);
    scale->axis()->setLabel(QObject::tr("count"));
    plot.plotLayout()->addElement(1, 1, scale);
    hex->setColorScale(scale);
    HexBins bins = hexbin(s.x, s.y, 40);
    hex->setBins(hexbin(s.x, s.y, 40, bins.xMin, bins.xMax, bins.yMin, bins.yMax, static_cast<double>(r.height) / r.width));
    plot.xAxis->setLabel(s.xLabel);
    plot.yAxis->setLabel(s.yLabel);
    plot.rescaleAxes();
    plot.replot();
    FigureFormat f;
    f.size = QSize(r.width, r.height);
    f.dpi = r.dpi;
    return exportFigure({&plot}, 1, file, f);
}

QString exportDetections(const DumpReader& dump, int image, const ExportRequest& r, const QString& file) {
    const OutputPair out = dump.outputs(image);
    if (out.kind != "detections")
        return QObject::tr("%1: image %2 has no detections").arg(QString::fromStdString(dump.path())).arg(image);
    DetectionView view;
    const QImage input = inputImage(dump, image);
    view.setContent(input, DetectionView::boxesFromRows(out.original), DetectionView::boxesFromRows(out.quantized),
                    DetectionView::pairsFromRows(out.matches));
    // the requested width; the height follows the image's aspect ratio
    FigureFormat f;
    f.size = QSize(r.width, static_cast<int>(std::lround(
                                r.width * (input.isNull() ? 0.75 : static_cast<double>(input.height()) / input.width()))));
    f.dpi = r.dpi;
    return exportPainting([&view](QCPPainter& p, QSize size) { view.paintTo(p, QRectF(QPointF(0, 0), QSizeF(size))); },
                          file, f);
}

} // namespace

int runExport(const ExportRequest& r) {
    static const QStringList kinds = {QStringLiteral("abs"), QStringLiteral("rel"), QStringLiteral("original"),
                                      QStringLiteral("quantized"), QStringLiteral("hexbin"), QStringLiteral("detections")};
    static const QStringList formats = {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")};
    if (!kinds.contains(r.kind) || !formats.contains(r.format) || r.outDir.isEmpty() ||
        (r.layers.isEmpty() && !r.all && r.kind != QLatin1String("hexbin") && r.kind != QLatin1String("detections"))) {
        std::fprintf(stderr, "quantscope: export: give --out DIR, --layer NAME or --all, --kind %s, --format png|svg|pdf\n",
                     qPrintable(kinds.join(QLatin1Char('|'))));
        return 2;
    }
    if (!QDir().mkpath(r.outDir)) {
        std::fprintf(stderr, "quantscope: %s: cannot create the output directory\n", qPrintable(r.outDir));
        return 1;
    }
    try {
        const std::unique_ptr<DumpReader> opened = openDump(r.dump.toStdString());
        DumpReader& dump = *opened;
        std::vector<QString> files;
        std::vector<int> targets;
        if (r.kind == QLatin1String("hexbin")) {
            targets.push_back(-1);
        } else if (r.kind == QLatin1String("detections")) {
            for (int i = 0; i < dump.imageCount(); ++i)
                targets.push_back(i);
        } else {
            for (const auto& l : dump.layers())
                if (r.all || r.layers.contains(QString::fromStdString(l.name)))
                    targets.push_back(l.index);
            if (targets.empty()) {
                std::fprintf(stderr, "quantscope: %s: no layer named %s\n", qPrintable(r.dump), qPrintable(r.layers.join(QStringLiteral(", "))));
                return 1;
            }
        }
        int k = 0;
        for (int t : targets) {
            QString file;
            QString error;
            if (r.kind == QLatin1String("hexbin")) {
                file = QDir(r.outDir).filePath(QStringLiteral("hexbin.") + r.format);
                error = exportHexbin(dump, r, file);
            } else if (r.kind == QLatin1String("detections")) {
                file = QDir(r.outDir).filePath(QStringLiteral("detections_%1.%2").arg(t, 4, 10, QLatin1Char('0')).arg(r.format));
                error = exportDetections(dump, t, r, file);
            } else {
                const auto& l = dump.layers().at(static_cast<std::size_t>(t));
                file = QDir(r.outDir).filePath(QStringLiteral("%1_%2_%3.%4")
                                                   .arg(t, 4, 10, QLatin1Char('0'))
                                                   .arg(safeName(QString::fromStdString(l.name)), r.kind, r.format));
                error = exportHeatmap(dump, t, r, file);
            }
            if (!error.isEmpty()) {
                std::fprintf(stderr, "quantscope: %s\n", qPrintable(error));
                return 1;
            }
            std::printf("exported %d/%zu: %s\n", ++k, targets.size(), qPrintable(file));
            std::fflush(stdout);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "quantscope: %s\n", e.what());
        return 1;
    }
    return 0;
}

} // namespace qs
