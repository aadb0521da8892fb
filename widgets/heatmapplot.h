#pragma once
// One heatmap: a QCustomPlot colour map with a colour scale, image orientation (row 0 at
// the top), drag and wheel zoom, and the cell under the mouse reported as a signal.

#include "qcp.h"

#include <QImage>

#include <vector>

namespace qs {

class HeatmapPlot : public QCustomPlot {
    Q_OBJECT
public:
    explicit HeatmapPlot(QWidget* parent = nullptr);

    // Colour maps: a diverging one for signed values (blue - light grey - red, the grey at
    // the middle of the range, which views centre on 0) and a sequential one (dark violet
    // to yellow, monotonic in lightness) for non-negative values.
    static QCPColorGradient divergingGradient();
    static QCPColorGradient sequentialGradient();
    // For signed data: a range symmetric about 0 that holds `range`.
    static QCPRange centredOnZero(const QCPRange& range);

    void setTitle(const QString& title);
    QString title() const;
    // values: row-major [height][width]; NaN cells are drawn transparent.
    void setMatrix(int width, int height, std::vector<float> values);
    void clearMatrix();
    int matrixWidth() const { return m_width; }
    int matrixHeight() const { return m_height; }
    // What the axes span: the underlay image's size, else the matrix size (cells).
    QSize extent() const;
    float valueAt(int col, int row) const; // NaN outside
    QCPRange dataBounds() const;           // finite min and max (0..1 when empty)
    void setColorRange(const QCPRange& range);
    QCPRange colorRange() const;
    void setLogScale(bool log);
    bool logScale() const;
    void setGradient(const QCPColorGradient& gradient);
    void setColorLabel(const QString& label);
    // Draws `image` under the map, which then covers the image's extent translucently.
    void setUnderlay(const QImage& image);
    void clearUnderlay();
    void resetView();
    // True while this plot sets its own ranges (fitting, squaring): views that synchronise
    // zoom between plots must not pass those changes on.
    bool adjustingView() const { return m_ownChange; }

signals:
    void cellHovered(int col, int row);
    void viewReset(); // by a double-click: synchronised plots follow
    void hoverLeft();

protected:
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override; // back to the whole map
    void leaveEvent(QEvent* event) override;

private:
    void updateGeometry();
    // After every layout (a resize, an export at another size): widens whichever axis has
    // room to spare so that cells stay square.
    void keepSquareCells();
    void squareByWidening();
    void setHomeRanges();

    QCPColorMap* m_map = nullptr;
    QCPColorScale* m_scale = nullptr;
    QCPTextElement* m_title = nullptr;
    QCPItemPixmap* m_underlay = nullptr;
    QCPColorGradient m_gradient;
    std::vector<float> m_values;
    int m_width = 0, m_height = 0;
    QSize m_imageSize; // underlay size, or empty
    bool m_atHome = true;    // showing the whole map (not zoomed or panned by the user)
    bool m_ownChange = false; // ranges being set by this class, not by the user
};

} // namespace qs
