#pragma once
// Writes one or more QCustomPlot figures, laid out in a grid, to PNG, SVG or PDF at a
// chosen size and resolution. The format follows the file name's extension.

#include <QList>
#include <QSize>
#include <QString>

class QCustomPlot;

namespace qs {

struct FigureFormat {
    QSize size{1600, 1200}; // pixels; SVG and PDF pages get the same size at 96 DPI
    int dpi = 150;          // recorded in PNG files (their print size)
};

// Returns an empty string on success, otherwise what went wrong (naming the file).
QString exportFigure(const QList<QCustomPlot*>& plots, int columns, const QString& fileName,
                     const FigureFormat& format);

} // namespace qs
