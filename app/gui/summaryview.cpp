#include "summaryview.h"

#include "layertablemodel.h"

#include <QFileInfo>
#include <QStringList>

#include <algorithm>
#include <cmath>

namespace qs {

SummaryView::SummaryView(QWidget* parent) : QTextBrowser(parent) { setOpenLinks(false); }

void SummaryView::setDump(const std::shared_ptr<DumpReader>& dump) {
    try {
        setHtml(dump ? html(*dump) : QString());
    } catch (const std::exception& e) { // a damaged /bench or /eval: say so in place
        setHtml(QObject::tr("<p><b>Cannot show this dump's summary:</b> %1</p>")
                    .arg(QString::fromStdString(e.what()).toHtmlEscaped()));
    }
}

namespace {
QString mb(std::int64_t bytes) { return QString::number(static_cast<double>(bytes) / 1e6, 'f', 2); }
QString change(double o, double q) {
    return o > 0 ? QString::asprintf("%+.1f %%", 100.0 * (q - o) / o) : QStringLiteral("–");
}
} // namespace

QString SummaryView::html(const DumpReader& dump) {
    QString h;
    h += QStringLiteral("<h2>%1</h2>").arg(QFileInfo(QString::fromStdString(dump.path())).fileName().toHtmlEscaped());
    h += QObject::tr("<p>Format v%1, %2 image(s), %3 paired layers, activations %4, created %5 by %6.</p>")
             .arg(dump.version())
             .arg(dump.imageCount())
             .arg(dump.layers().size())
             .arg(QString::fromStdString(dump.dtype()), QString::fromStdString(dump.created()),
                  QString::fromStdString(dump.producer()).toHtmlEscaped());
    const auto& o = dump.model(Side::Original);
    const auto& q = dump.model(Side::Quantized);
    h += QObject::tr("<h3>Models</h3><table border=1 cellspacing=0 cellpadding=4>"
                     "<tr><th></th><th>original</th><th>quantized</th><th>change</th></tr>");
    h += QStringLiteral("<tr><td>%1</td><td>%2</td><td>%3</td><td></td></tr>")
             .arg(QObject::tr("file"), QString::fromStdString(o.path).toHtmlEscaped(), QString::fromStdString(q.path).toHtmlEscaped());
    h += QStringLiteral("<tr><td>%1</td><td>%2</td><td>%3</td><td>%4</td></tr>")
             .arg(QObject::tr("file size (MB)"), mb(o.fileBytes), mb(q.fileBytes),
                  change(static_cast<double>(o.fileBytes), static_cast<double>(q.fileBytes)));
    h += QStringLiteral("<tr><td>%1</td><td>%2</td><td>%3</td><td>%4</td></tr>")
             .arg(QObject::tr("parameters (MB)"), mb(o.parameterBytes), mb(q.parameterBytes),
                  change(static_cast<double>(o.parameterBytes), static_cast<double>(q.parameterBytes)));
    h += QStringLiteral("<tr><td>%1</td><td>%2</td><td>%3</td><td></td></tr></table>")
             .arg(QObject::tr("tap calls per image")).arg(o.tappedCalls).arg(q.tappedCalls);

    int severity[4] = {0, 0, 0, 0};
    double worst = INFINITY;
    QString worstName;
    for (const auto& l : dump.layers()) {
        ++severity[LayerTableModel::severity(l.metrics.sqnrDb)];
        if (l.metrics.sqnrDb < worst) {
            worst = l.metrics.sqnrDb;
            worstName = QString::fromStdString(l.name);
        }
    }
    h += QObject::tr("<h3>Layers</h3><p>SQNR ≥ 30 dB: %1, 20–30 dB: %2, 10–20 dB: %3, below 10 dB: %4. "
                     "Worst: %5 (%6 dB).</p>")
             .arg(severity[0]).arg(severity[1]).arg(severity[2]).arg(severity[3])
             .arg(worstName.toHtmlEscaped()).arg(worst, 0, 'f', 2);
    // the five worst layers, and (several images) the five worst images: where to look first
    std::vector<const LayerSummary*> byError;
    for (const auto& l : dump.layers())
        byError.push_back(&l);
    std::stable_sort(byError.begin(), byError.end(),
                     [](const LayerSummary* a, const LayerSummary* b) { return a->metrics.sqnrDb < b->metrics.sqnrDb; });
    byError.resize(std::min<std::size_t>(5, byError.size()));
    h += QObject::tr("<table border=1 cellspacing=0 cellpadding=4><tr><th>worst layers</th><th>op (quantized)</th>"
                     "<th>shape</th><th>SQNR dB</th><th>cosine</th><th>max |error|</th></tr>");
    for (const LayerSummary* l : byError) {
        QStringList shape;
        for (auto d : l->shape)
            shape << QString::number(d);
        h += QStringLiteral("<tr><td>%1</td><td>%2</td><td>%3</td><td>%4</td><td>%5</td><td>%6</td></tr>")
                 .arg(QString::fromStdString(l->name).toHtmlEscaped(), QString::fromStdString(l->quantizedOp).toHtmlEscaped(),
                      shape.join(QStringLiteral("×")))
                 .arg(l->metrics.sqnrDb, 0, 'f', 2)
                 .arg(l->metrics.cosine, 0, 'f', 5)
                 .arg(l->metrics.maxAbs, 0, 'g', 4);
    }
    h += QStringLiteral("</table>");
    const ImageMetrics& im = dump.imageMetrics();
    if (im.images > 1) {
        const std::vector<ImageSummary> images = worstImages(im, 5);
        h += QObject::tr("<p></p><table border=1 cellspacing=0 cellpadding=4><tr><th>worst images</th>"
                         "<th>mean SQNR dB over layers</th><th>worst layer there</th></tr>");
        for (const auto& s : images)
            h += QStringLiteral("<tr><td>%1</td><td>%2</td><td>%3 (%4 dB)</td></tr>")
                     .arg(QFileInfo(QString::fromStdString(dump.source(s.image))).fileName().toHtmlEscaped())
                     .arg(s.meanSqnrDb, 0, 'f', 2)
                     .arg(s.worstLayer >= 0 ? QString::fromStdString(dump.layers()[static_cast<std::size_t>(s.worstLayer)].name).toHtmlEscaped()
                                            : QStringLiteral("–"))
                     .arg(s.minSqnrDb, 0, 'f', 2);
        h += QStringLiteral("</table>");
    }
    if (dump.hasEval()) {
        const EvalData e = dump.eval();
        h += QObject::tr("<h3>Accuracy</h3><p>COCO evaluation on %1 images (%2).</p>"
                         "<table border=1 cellspacing=0 cellpadding=4><tr><th></th><th>original</th><th>quantized</th><th>drop</th></tr>"
                         "<tr><td>mAP@[.5:.95]</td><td>%3</td><td>%4</td><td>%5</td></tr>"
                         "<tr><td>mAP@.5</td><td>%6</td><td>%7</td><td>%8</td></tr></table>"
                         "<p>Per-image change of mAP@[.5:.95]: %9 ± %10 points.</p>")
                 .arg(e.images)
                 .arg(QString::fromStdString(e.annotations).toHtmlEscaped())
                 .arg(100 * e.map[0], 0, 'f', 2).arg(100 * e.map[1], 0, 'f', 2).arg(100 * (e.map[0] - e.map[1]), 0, 'f', 2)
                 .arg(100 * e.map50[0], 0, 'f', 2).arg(100 * e.map50[1], 0, 'f', 2).arg(100 * (e.map50[0] - e.map50[1]), 0, 'f', 2)
                 .arg(e.deltaMean, 0, 'f', 2).arg(e.deltaStd, 0, 'f', 2);
    } else {
        h += QObject::tr("<p>No accuracy figures in this dump (add them with "
                         "<code>quantscope-cli eval … --into this.h5</code>).</p>");
    }
    if (dump.hasBench()) {
        const BenchData b = dump.bench();
        h += QObject::tr("<h3>Latency and memory</h3><p>Input %1×%2, %3 threads.</p>"
                         "<table border=1 cellspacing=0 cellpadding=4><tr><th>batch</th><th>original ms</th>"
                         "<th>quantized ms</th><th>time</th><th>peak MiB original</th><th>peak MiB quantized</th></tr>")
                 .arg(b.width).arg(b.height).arg(b.threads);
        for (std::size_t i = 0; i < b.batch.size(); ++i) {
            const double mo = b.medianMs[0][i], mq = b.medianMs[1][i];
            h += QStringLiteral("<tr><td>%1</td><td>%2</td><td>%3</td><td>%4</td><td>%5</td><td>%6</td></tr>")
                     .arg(b.batch[i])
                     .arg(std::isnan(mo) ? QObject::tr("skipped") : QString::number(mo, 'f', 1))
                     .arg(std::isnan(mq) ? QObject::tr("skipped") : QString::number(mq, 'f', 1))
                     .arg(std::isnan(mo) ? QString() : change(mo, mq))
                     .arg(b.peakMiB[0][i], 0, 'f', 0)
                     .arg(b.peakMiB[1][i], 0, 'f', 0);
        }
        h += QStringLiteral("</table>");
    } else {
        h += QObject::tr("<p>No latency or memory figures in this dump (add them with "
                         "<code>quantscope-cli bench … --into this.h5</code>).</p>");
    }
    return h;
}

} // namespace qs
