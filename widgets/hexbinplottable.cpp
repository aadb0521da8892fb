#include "hexbinplottable.h"

#include <cmath>

namespace qs {

HexbinPlottable::HexbinPlottable(QCPAxis* keyAxis, QCPAxis* valueAxis)
    : QCPAbstractPlottable(keyAxis, valueAxis) {
    setPen(Qt::NoPen);
    setSelectable(QCP::stNone);
}

void HexbinPlottable::setBins(HexBins bins) {
    m_bins = std::move(bins);
    if (m_scale)
        m_scale->setDataRange(countRange());
}

void HexbinPlottable::setGradient(const QCPColorGradient& gradient) {
    m_gradient = gradient;
    if (m_scale)
        m_scale->setGradient(gradient);
}

void HexbinPlottable::setLogCounts(bool log) {
    m_log = log;
    configureScale();
}

void HexbinPlottable::setColorScale(QCPColorScale* scale) {
    m_scale = scale;
    if (m_scale)
        m_scale->setGradient(m_gradient);
    configureScale();
}

void HexbinPlottable::configureScale() {
    if (!m_scale)
        return;
    m_scale->setDataScaleType(m_log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    // counts are whole numbers: 1, 10, 100 on a log scale, integer steps on a linear one
    if (m_log) {
        m_scale->axis()->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog));
    } else {
        QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
        ticker->setTickStep(1.0);
        ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
        m_scale->axis()->setTicker(ticker);
    }
    m_scale->axis()->setNumberFormat(QStringLiteral("gb"));
    m_scale->setDataRange(countRange());
}

QCPRange HexbinPlottable::countRange() const { return QCPRange(1, std::max(2, m_bins.maxCount())); }

QPolygonF HexbinPlottable::polygon(int bin) const {
    QPolygonF poly;
    for (int c = 0; c < 6; ++c) {
        double dx = 0, dy = 0;
        m_bins.corner(c, dx, dy);
        poly << coordsToPixels(m_bins.centerX[static_cast<std::size_t>(bin)] + dx,
                               m_bins.centerY[static_cast<std::size_t>(bin)] + dy);
    }
    return poly;
}

void HexbinPlottable::draw(QCPPainter* painter) {
    if (m_bins.counts.empty() || !mKeyAxis || !mValueAxis)
        return;
    const QCPRange range = countRange();
    painter->setPen(Qt::NoPen);
    for (int b = 0; b < static_cast<int>(m_bins.counts.size()); ++b) {
        const QRgb color = m_gradient.color(m_bins.counts[static_cast<std::size_t>(b)], range, m_log);
        painter->setBrush(QColor::fromRgb(color));
        painter->drawPolygon(polygon(b));
    }
}

void HexbinPlottable::drawLegendIcon(QCPPainter* painter, const QRectF& rect) const {
    QCPColorGradient gradient = m_gradient; // color() is not const
    painter->setBrush(QColor::fromRgb(gradient.color(0.7, QCPRange(0, 1))));
    painter->setPen(Qt::NoPen);
    painter->drawRect(rect);
}

int HexbinPlottable::binAt(const QPointF& pixel) const {
    for (int b = 0; b < static_cast<int>(m_bins.counts.size()); ++b)
        if (polygon(b).containsPoint(pixel, Qt::OddEvenFill))
            return b;
    return -1;
}

double HexbinPlottable::selectTest(const QPointF& pos, bool onlySelectable, QVariant* details) const {
    Q_UNUSED(details)
    if (onlySelectable && !mSelectable)
        return -1;
    return binAt(pos) >= 0 ? 0 : -1;
}

QCPRange HexbinPlottable::getKeyRange(bool& foundRange, QCP::SignDomain) const {
    foundRange = !m_bins.counts.empty();
    return QCPRange(m_bins.xMin - m_bins.cellWidth, m_bins.xMax + m_bins.cellWidth);
}

QCPRange HexbinPlottable::getValueRange(bool& foundRange, QCP::SignDomain, const QCPRange&) const {
    foundRange = !m_bins.counts.empty();
    return QCPRange(m_bins.yMin - m_bins.cellHeight, m_bins.yMax + m_bins.cellHeight);
}

} // namespace qs
