#pragma once
// Writes one or more QCustomPlot figures, laid out in a grid, to PNG, SVG or PDF at a
// chosen size and resolution. The format follows the file name's extension.

#include <QList>
#include <QRectF>
#include <QSize>
#include <QString>

#include <functional>

class QCustomPlot;
class QCPPainter;

namespace qs {

struct FigureFormat {
    QSize size{1600, 1200}; // pixels; SVG and PDF pages get the same size at 96 DPI
    int dpi = 150;          // recorded in PNG files (their print size)
};

// Returns an empty string on success, otherwise what went wrong (naming the file).
QString exportFigure(const QList<QCustomPlot*>& plots, int columns, const QString& fileName,
                     const FigureFormat& format);

// The same for any painting: paint(painter, size) draws the whole figure of format.size
// (white background in PNG), which goes to PNG, SVG or PDF as exportFigure's plots do.
QString exportPainting(const std::function<void(QCPPainter&, QSize)>& paint, const QString& fileName,
                       const FigureFormat& format);

// The largest rectangle of `content`'s aspect ratio centred in `into` (for images).
QRectF fitted(QSizeF content, QSize into);

} // namespace qs
