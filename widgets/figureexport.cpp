#include "figureexport.h"

#include "qcp.h"

#include <QFileInfo>
#include <QPdfWriter>
#include <QSvgGenerator>

namespace qs {

namespace {

constexpr int kLayoutDpi = 96;

void paintGrid(QCPPainter& painter, const QList<QCustomPlot*>& plots, int columns, QSize size) {
    const int n = static_cast<int>(plots.size());
    const int cols = std::max(1, std::min(columns, n));
    const int rows = (n + cols - 1) / cols;
    const int w = size.width() / cols, h = size.height() / std::max(1, rows);
    for (int i = 0; i < n; ++i) {
        painter.save();
        painter.translate((i % cols) * w, (i / cols) * h);
        plots[i]->toPainter(&painter, w, h);
        painter.restore();
    }
}

} // namespace

QString exportPainting(const std::function<void(QCPPainter&, QSize)>& paint, const QString& fileName,
                       const FigureFormat& format) {
    const QString suffix = QFileInfo(fileName).suffix().toLower();
    const QSize size = format.size;
    if (suffix == QLatin1String("png")) {
        QImage image(size, QImage::Format_ARGB32_Premultiplied);
        image.fill(Qt::white);
        {
            QCPPainter painter(&image);
            painter.setRenderHint(QPainter::Antialiasing);
            paint(painter, size);
        }
        // the resolution is metadata (print size): set after painting, so that text is laid
        // out and drawn at the same size QCustomPlot measured it
        image.setDotsPerMeterX(static_cast<int>(format.dpi / 0.0254));
        image.setDotsPerMeterY(static_cast<int>(format.dpi / 0.0254));
        if (!image.save(fileName))
            return QObject::tr("%1: cannot write the PNG file").arg(fileName);
        return {};
    }
    if (suffix == QLatin1String("svg")) {
        QSvgGenerator svg;
        svg.setFileName(fileName);
        svg.setSize(size);
        svg.setViewBox(QRect(QPoint(0, 0), size));
        svg.setResolution(kLayoutDpi);
        svg.setTitle(QFileInfo(fileName).baseName());
        QCPPainter painter;
        if (!painter.begin(&svg))
            return QObject::tr("%1: cannot write the SVG file").arg(fileName);
        paint(painter, size);
        painter.end();
        return QFileInfo(fileName).size() > 0 ? QString() : QObject::tr("%1: cannot write the SVG file").arg(fileName);
    }
    if (suffix == QLatin1String("pdf")) {
        // vector output: laid out at the screen resolution QCustomPlot measures text with
        QPdfWriter pdf(fileName);
        pdf.setResolution(kLayoutDpi);
        pdf.setPageSize(QPageSize(QSizeF(size.width() * 72.0 / kLayoutDpi, size.height() * 72.0 / kLayoutDpi),
                                  QPageSize::Point));
        pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
        pdf.setCreator(QStringLiteral("QuantScope"));
        QCPPainter painter;
        if (!painter.begin(&pdf))
            return QObject::tr("%1: cannot write the PDF file").arg(fileName);
        painter.setMode(QCPPainter::pmVectorized);
        painter.setMode(QCPPainter::pmNoCaching);
        paint(painter, size);
        painter.end();
        return {};
    }
    return QObject::tr("%1: unknown figure format (use .png, .svg or .pdf)").arg(fileName);
}

QString exportFigure(const QList<QCustomPlot*>& plots, int columns, const QString& fileName,
                     const FigureFormat& format) {
    if (plots.isEmpty())
        return QObject::tr("Nothing to export");
    return exportPainting([&](QCPPainter& painter, QSize size) { paintGrid(painter, plots, columns, size); },
                          fileName, format);
}

QRectF fitted(QSizeF content, QSize into) {
    if (content.isEmpty())
        return QRectF(QPointF(0, 0), QSizeF(into));
    const QSizeF scaled = content.scaled(QSizeF(into), Qt::KeepAspectRatio);
    return QRectF(QPointF((into.width() - scaled.width()) / 2, (into.height() - scaled.height()) / 2), scaled);
}

} // namespace qs
