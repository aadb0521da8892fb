#include "heatmapplot.h"

#include <QSignalBlocker>

#include <algorithm>
#include <cmath>
#include <limits>

namespace qs {

namespace {

// Ticks on whole pixels (cells are centred on integers), only over the map itself: no
// negative or fractional pixel positions, however the view is zoomed or widened.
class PixelTicker : public QCPAxisTickerFixed {
public:
    explicit PixelTicker(const HeatmapPlot* plot, bool horizontal) : m_plot(plot), m_horizontal(horizontal) {
        setTickStep(1.0);
        setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    }

protected:
    QVector<double> createTickVector(double tickStep, const QCPRange& range) override {
        const double last = (m_horizontal ? m_plot->extent().width() : m_plot->extent().height()) - 1;
        QVector<double> ticks;
        for (double t : QCPAxisTickerFixed::createTickVector(std::max(1.0, std::round(tickStep)), range))
            if (t >= -1e-9 && t <= last + 1e-9)
                ticks << std::round(t);
        return ticks;
    }

private:
    const HeatmapPlot* m_plot;
    bool m_horizontal;
};

QCPColorGradient gradientFrom(std::initializer_list<std::pair<double, QColor>> stops) {
    QCPColorGradient g;
    g.clearColorStops();
    for (const auto& [at, colour] : stops)
        g.setColorStopAt(at, colour);
    g.setColorInterpolation(QCPColorGradient::ciRGB);
    g.setLevelCount(255); // odd: the middle level is exactly the middle stop (0 on a centred range)
    return g;
}

} // namespace

QCPColorGradient HeatmapPlot::divergingGradient() {
    // Moreland's cool-warm end points (2009), light grey in the middle
    return gradientFrom({{0.0, QColor(59, 76, 192)},
                         {0.25, QColor(124, 159, 249)},
                         {0.5, QColor(221, 221, 221)},
                         {0.75, QColor(246, 143, 111)},
                         {1.0, QColor(180, 4, 38)}});
}

QCPColorGradient HeatmapPlot::sequentialGradient() {
    // samples of matplotlib's viridis
    return gradientFrom({{0.0, QColor(0x44, 0x01, 0x54)},
                         {0.111, QColor(0x48, 0x28, 0x78)},
                         {0.222, QColor(0x3e, 0x4a, 0x89)},
                         {0.333, QColor(0x31, 0x68, 0x8e)},
                         {0.444, QColor(0x26, 0x82, 0x8e)},
                         {0.556, QColor(0x1f, 0x9e, 0x89)},
                         {0.667, QColor(0x35, 0xb7, 0x79)},
                         {0.778, QColor(0x6d, 0xcd, 0x59)},
                         {0.889, QColor(0xb4, 0xde, 0x2c)},
                         {1.0, QColor(0xfd, 0xe7, 0x25)}});
}

QCPRange HeatmapPlot::centredOnZero(const QCPRange& range) {
    const double m = std::max(std::fabs(range.lower), std::fabs(range.upper));
    return m > 0 ? QCPRange(-m, m) : QCPRange(-1, 1);
}

QSize HeatmapPlot::extent() const { return m_imageSize.isValid() ? m_imageSize : QSize(m_width, m_height); }

HeatmapPlot::HeatmapPlot(QWidget* parent) : QCustomPlot(parent) {
    setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    plotLayout()->insertRow(0);
    m_title = new QCPTextElement(this, QString(), QFont(font().family(), 10, QFont::Bold));
    plotLayout()->addElement(0, 0, m_title);
    m_map = new QCPColorMap(xAxis, yAxis);
    m_map->setInterpolate(false);
    m_scale = new QCPColorScale(this);
    plotLayout()->addElement(1, 1, m_scale);
    m_scale->setType(QCPAxis::atRight);
    m_map->setColorScale(m_scale);
    m_gradient = sequentialGradient();
    m_gradient.setNanHandling(QCPColorGradient::nhTransparent);
    m_map->setGradient(m_gradient);
    auto* margins = new QCPMarginGroup(this);
    axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    m_scale->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    // Fixed margins and a fixed colour-bar width: two heatmaps of the same widget size then
    // have axis rects of exactly the same size whatever their tick labels, so the ranges
    // that synchronised zoom copies between them are square in both (see keepSquareCells).
    axisRect()->setAutoMargins(QCP::msNone);
    axisRect()->setMargins(QMargins(58, 8, 12, 40));
    m_scale->setMinimumSize(QSize(92, 0));
    m_scale->setMaximumSize(QSize(92, QWIDGETSIZE_MAX));
    yAxis->setRangeReversed(true); // image rows grow downwards
    xAxis->setLabel(QStringLiteral("x (pixel)"));
    yAxis->setLabel(QStringLiteral("y (pixel)"));
    xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new PixelTicker(this, true)));
    yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new PixelTicker(this, false)));
    setMouseTracking(true);
    connect(this, &QCustomPlot::afterLayout, this, &HeatmapPlot::keepSquareCells);
    for (QCPAxis* axis : {xAxis, yAxis}) // a zoom or pan, here or synchronised from elsewhere
        connect(axis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] {
            if (!m_ownChange)
                m_atHome = false;
        });
}

void HeatmapPlot::squareByWidening() {
    const int w = axisRect()->width(), h = axisRect()->height();
    const double xPerPixel = xAxis->range().size() / w;
    const double yPerPixel = yAxis->range().size() / h;
    if (std::fabs(xPerPixel - yPerPixel) <= 1e-9 * std::max(xPerPixel, yPerPixel))
        return;
    const double perPixel = std::max(xPerPixel, yPerPixel); // widen, never crop what is shown
    QCPAxis* axis = xPerPixel < yPerPixel ? xAxis : yAxis;
    const double centre = axis->range().center();
    const double half = perPixel * (axis == xAxis ? w : h) / 2;
    axis->setRange(centre - half, centre + half);
}

void HeatmapPlot::keepSquareCells() {
    const QSize size = axisRect()->rect().size();
    if (m_width <= 0 || m_height <= 0 || size.width() < 16 || size.height() < 16)
        return;
    // adjustingView() is true meanwhile: synchronised plots do not copy this adjustment
    // (each squares itself for its own size; copying would make plots a pixel apart in
    // size widen each other without end)
    m_ownChange = true;
    if (m_atHome)
        setHomeRanges(); // not zoomed by the user: the whole map, fitted anew
    squareByWidening();
    m_ownChange = false;
}

void HeatmapPlot::setTitle(const QString& title) { m_title->setText(title); }
QString HeatmapPlot::title() const { return m_title->text(); }
void HeatmapPlot::setColorLabel(const QString& label) { m_scale->axis()->setLabel(label); }

void HeatmapPlot::setMatrix(int width, int height, std::vector<float> values) {
    m_width = width;
    m_height = height;
    m_values = std::move(values);
    m_map->data()->setSize(width, height);
    for (int r = 0; r < height; ++r)
        for (int c = 0; c < width; ++c)
            m_map->data()->setCell(c, r, m_values[static_cast<std::size_t>(r) * width + c]);
    updateGeometry();
}

void HeatmapPlot::clearMatrix() {
    m_values.clear();
    m_width = m_height = 0;
    m_map->data()->clear();
}

void HeatmapPlot::updateGeometry() {
    // cells centred on integer coordinates; with an underlay, stretched over the image
    if (m_imageSize.isValid() && m_width > 0 && m_height > 0) {
        const double sx = static_cast<double>(m_imageSize.width()) / m_width;
        const double sy = static_cast<double>(m_imageSize.height()) / m_height;
        m_map->data()->setRange(QCPRange(sx / 2, m_imageSize.width() - sx / 2),
                                 QCPRange(sy / 2, m_imageSize.height() - sy / 2));
    } else {
        m_map->data()->setRange(QCPRange(0, std::max(0, m_width - 1)), QCPRange(0, std::max(0, m_height - 1)));
    }
}

float HeatmapPlot::valueAt(int col, int row) const {
    if (col < 0 || row < 0 || col >= m_width || row >= m_height)
        return std::numeric_limits<float>::quiet_NaN();
    return m_values[static_cast<std::size_t>(row) * m_width + col];
}

QCPRange HeatmapPlot::dataBounds() const {
    float lo = std::numeric_limits<float>::max(), hi = std::numeric_limits<float>::lowest();
    for (float v : m_values)
        if (std::isfinite(v)) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    if (lo > hi)
        return QCPRange(0, 1);
    if (lo == hi)
        return QCPRange(lo - 0.5, hi + 0.5);
    return QCPRange(lo, hi);
}

void HeatmapPlot::setColorRange(const QCPRange& range) { m_map->setDataRange(range); }
QCPRange HeatmapPlot::colorRange() const { return m_map->dataRange(); }

void HeatmapPlot::setLogScale(bool log) {
    m_map->setDataScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
}

bool HeatmapPlot::logScale() const { return m_map->dataScaleType() == QCPAxis::stLogarithmic; }

void HeatmapPlot::setGradient(const QCPColorGradient& gradient) {
    m_gradient = gradient;
    m_gradient.setNanHandling(QCPColorGradient::nhTransparent);
    // the colour bar first: QCPColorScale::setGradient also sets it on its colour maps,
    // which must then get their own (translucent over an image) gradient after it
    m_scale->setGradient(m_gradient);
    if (m_underlay) { // translucent over the image
        QCPColorGradient g = m_gradient;
        QMap<double, QColor> stops = g.colorStops();
        for (auto it = stops.begin(); it != stops.end(); ++it)
            it.value().setAlpha(150);
        g.setColorStops(stops);
        const QSignalBlocker quiet(m_map); // the map tells its colour bar of a new gradient: not this one
        m_map->setGradient(g);
    } else {
        m_map->setGradient(m_gradient);
    }
}

void HeatmapPlot::setUnderlay(const QImage& image) {
    if (!m_underlay) {
        m_underlay = new QCPItemPixmap(this);
        m_underlay->setLayer(QStringLiteral("background"));
        m_underlay->setScaled(true, Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
    }
    m_underlay->setPixmap(QPixmap::fromImage(image));
    m_underlay->topLeft->setCoords(0, 0);
    m_underlay->bottomRight->setCoords(image.width(), image.height());
    m_imageSize = image.size();
    updateGeometry();
    setGradient(m_gradient);
}

void HeatmapPlot::clearUnderlay() {
    if (m_underlay) {
        removeItem(m_underlay);
        m_underlay = nullptr;
    }
    m_imageSize = QSize();
    updateGeometry();
    setGradient(m_gradient);
}

void HeatmapPlot::setHomeRanges() {
    if (m_imageSize.isValid()) {
        xAxis->setRange(0, m_imageSize.width());
        yAxis->setRange(0, m_imageSize.height());
    } else {
        xAxis->setRange(-0.5, m_width - 0.5);
        yAxis->setRange(-0.5, m_height - 0.5);
    }
}

void HeatmapPlot::resetView() {
    m_ownChange = true;
    m_atHome = true;
    setHomeRanges();
    // square cells: widen whichever axis has room to spare (again after every layout)
    if (axisRect()->width() >= 16 && axisRect()->height() >= 16)
        squareByWidening();
    m_ownChange = false;
}

void HeatmapPlot::mouseMoveEvent(QMouseEvent* event) {
    QCustomPlot::mouseMoveEvent(event);
    if (m_width == 0 || !axisRect()->rect().contains(event->pos())) {
        emit hoverLeft();
        return;
    }
    int col = 0, row = 0;
    m_map->data()->coordToCell(xAxis->pixelToCoord(event->pos().x()), yAxis->pixelToCoord(event->pos().y()), &col,
                               &row);
    if (col >= 0 && row >= 0 && col < m_width && row < m_height)
        emit cellHovered(col, row);
    else
        emit hoverLeft();
}

void HeatmapPlot::mouseDoubleClickEvent(QMouseEvent* event) {
    QCustomPlot::mouseDoubleClickEvent(event);
    resetView();
    replot();
    emit viewReset();
}

void HeatmapPlot::leaveEvent(QEvent* event) {
    QCustomPlot::leaveEvent(event);
    emit hoverLeft();
}

} // namespace qs
