#pragma once
// Writes one or more QCustomPlot figures, laid out in a grid, to PNG, SVG or PDF at a
// chosen size and resolution. The format follows the file name's extension.

#include <QList>
#include <QSize>
#include <QString>

class QCustomPlot;

namespace qs {

struct FigureFormat {
    QSize size{1600, 1200}; // pixels (PNG) or points at `dpi` (SVG/PDF)
    int dpi = 150;
};

// Returns an empty string on success, otherwise what went wrong (naming the file).
QString exportFigure(const QList<QCustomPlot*>& plots, int columns, const QString& fileName,
                     const FigureFormat& format);

} // namespace qs
