#pragma once
// A QCustomPlot plottable drawing hexagonal bins coloured by count (QCustomPlot has no
// hexbin). Binning is done by qs::hexbin; this class only draws and reports ranges.

#include "hexbin.h"
#include "qcp.h"

namespace qs {

class HexbinPlottable : public QCPAbstractPlottable {
    Q_OBJECT
public:
    HexbinPlottable(QCPAxis* keyAxis, QCPAxis* valueAxis);

    void setBins(HexBins bins);
    const HexBins& bins() const { return m_bins; }
    void setGradient(const QCPColorGradient& gradient);
    void setLogCounts(bool log);   // colour by log(1 + count)
    void setColorScale(QCPColorScale* scale);
    QCPRange countRange() const;

    double selectTest(const QPointF& pos, bool onlySelectable, QVariant* details = nullptr) const override;
    QCPRange getKeyRange(bool& foundRange, QCP::SignDomain inSignDomain = QCP::sdBoth) const override;
    QCPRange getValueRange(bool& foundRange, QCP::SignDomain inSignDomain = QCP::sdBoth,
                           const QCPRange& inKeyRange = QCPRange()) const override;
    // Index of the bin under a pixel position, or -1.
    int binAt(const QPointF& pixel) const;

protected:
    void draw(QCPPainter* painter) override;
    void drawLegendIcon(QCPPainter* painter, const QRectF& rect) const override;

private:
    QPolygonF polygon(int bin) const;
    void configureScale();

    HexBins m_bins;
    QCPColorGradient m_gradient{QCPColorGradient::gpThermal};
    bool m_log = true;
    QPointer<QCPColorScale> m_scale;
};

} // namespace qs
