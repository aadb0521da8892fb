#include "histogramview.h"

#include "qcp.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSpinBox>
#include <QtConcurrent/QtConcurrentRun>

#include <cmath>

namespace qs {

namespace {

// Ticks on the quantization grid (value = scale * j), labelled with the integer code
// j + zero_point; the step grows by whole codes when zoomed out.
class CodeTicker : public QCPAxisTickerFixed {
public:
    CodeTicker(double scale, std::int64_t zeroPoint) : m_scale(scale), m_zeroPoint(zeroPoint) {
        setTickStep(scale);
        setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    }

protected:
    QString getTickLabel(double tick, const QLocale&, QChar, int) override {
        return QString::number(std::llround(tick / m_scale) + m_zeroPoint);
    }

private:
    double m_scale;
    std::int64_t m_zeroPoint;
};

const QColor kColours[2] = {QColor(31, 119, 180), QColor(230, 120, 20)};

} // namespace

HistogramData loadHistogram(const DumpReader& dump, int layer, int image, int channel) {
    HistogramData d;
    d.layer = layer;
    d.image = image;
    d.channel = channel;
    try {
        const Histogram stored = dump.histogram(layer);
        if (stored.empty()) {
            d.error = QObject::tr("This dump has no histograms (made by an older QuantScope): run compare again.");
            return d;
        }
        if (channel < 0) {
            d.histogram = stored;
        } else {
            const std::vector<float> values[2] = {dump.activationChannel(layer, Side::Original, image, channel),
                                                  dump.activationChannel(layer, Side::Quantized, image, channel)};
            ValueRange range;
            for (const auto& v : values)
                range.add(v.data(), v.size());
            d.histogram = planHistogram(range, stored.scale);
            d.histogram.zeroPoint = stored.zeroPoint;
            d.histogram.qmin = stored.qmin;
            d.histogram.qmax = stored.qmax;
            for (Side side : {Side::Original, Side::Quantized})
                d.histogram.add(side, values[static_cast<int>(side)].data(), values[static_cast<int>(side)].size());
        }
        const Histogram& h = d.histogram;
        if (std::isfinite(h.scale)) {
            double total = 0, below = 0, above = 0;
            const auto& c = h.counts[static_cast<int>(Side::Original)];
            for (int b = 0; b < h.bins(); ++b) {
                const double centre = h.low + (b + 0.5) * h.binWidth;
                const auto n = static_cast<double>(c[static_cast<std::size_t>(b)]);
                total += n;
                if (centre < h.clipLow() - h.binWidth / 2)
                    below += n;
                else if (centre > h.clipHigh() + h.binWidth / 2)
                    above += n;
            }
            if (total > 0) {
                d.beyond[0] = below / total;
                d.beyond[1] = above / total;
            }
        }
    } catch (const std::exception& e) {
        d.error = QString::fromStdString(e.what());
    }
    return d;
}

HistogramView::HistogramView(QWidget* parent) : QWidget(parent) {
    m_scope = new QComboBox;
    m_scope->setObjectName(QStringLiteral("histogramScope"));
    m_scope->addItems({tr("All images, all channels"), tr("This image, one channel")});
    m_channel = new QSpinBox;
    m_channel->setPrefix(tr("channel "));
    m_channel->setEnabled(false);
    m_yScale = new QComboBox;
    m_yScale->addItems({tr("Log counts"), tr("Linear counts")});
    auto* controls = new QHBoxLayout;
    for (QWidget* w : std::initializer_list<QWidget*>{m_scope, m_channel, m_yScale})
        controls->addWidget(w);
    controls->addStretch();

    m_plot = new QCustomPlot;
    m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_plot->axisRect()->setRangeZoom(Qt::Horizontal);
    m_plot->axisRect()->setRangeDrag(Qt::Horizontal);
    m_plot->plotLayout()->insertRow(0);
    m_plot->plotLayout()->addElement(0, 0, new QCPTextElement(m_plot, tr("Value distribution"),
                                                              QFont(font().family(), 10, QFont::Bold)));
    const QString names[2] = {tr("original (float)"), tr("quantized")};
    for (int side = 0; side < 2; ++side) {
        QCPGraph* g = m_plot->addGraph();
        g->setName(names[side]);
        g->setLineStyle(QCPGraph::lsStepCenter);
        g->setPen(QPen(kColours[side], side == 0 ? 1.5 : 1.2));
        QColor fill = kColours[side];
        fill.setAlpha(side == 0 ? 60 : 40);
        g->setBrush(fill);
    }
    for (int i = 0; i < 2; ++i) {
        m_clip[i] = new QCPItemStraightLine(m_plot);
        m_clip[i]->setObjectName(i == 0 ? QStringLiteral("clipLow") : QStringLiteral("clipHigh"));
        m_clip[i]->setPen(QPen(QColor(200, 30, 30), 1.5, Qt::DashLine));
        m_clip[i]->setVisible(false);
    }
    m_plot->legend->setVisible(true);
    m_plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    m_plot->xAxis->setLabel(tr("activation value"));
    m_plot->yAxis->setLabel(tr("count"));
    m_plot->xAxis2->setLabel(tr("quantized code (scale × (code − zero point))"));
    m_plot->xAxis2->grid()->setPen(QPen(QColor(0, 0, 0, 30), 0, Qt::SolidLine));
    connect(m_plot->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), m_plot->xAxis2,
            qOverload<const QCPRange&>(&QCPAxis::setRange));
    m_status = new QLabel;
    m_status->setObjectName(QStringLiteral("histogramStatus"));
    m_status->setWordWrap(true);
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addWidget(m_plot, 1);
    layout->addWidget(m_status);

    connect(&m_watcher, &QFutureWatcher<HistogramData>::finished, this, [this] {
        if (m_pendingGeneration == m_generation)
            present(m_watcher.result());
    });
    connect(m_scope, qOverload<int>(&QComboBox::currentIndexChanged), this, [this](int i) {
        m_channel->setEnabled(i == 1);
        request();
    });
    connect(m_channel, qOverload<int>(&QSpinBox::valueChanged), this, &HistogramView::request);
    connect(m_yScale, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] { present(m_data); });
}

void HistogramView::setDump(std::shared_ptr<DumpReader> dump) {
    m_dump = std::move(dump);
    ++m_generation;
    m_layer = -1;
    m_image = 0;
    m_data = HistogramData();
    for (int i = 0; i < 2; ++i)
        m_plot->graph(i)->data()->clear();
    m_plot->replot();
}

void HistogramView::showLayer(int layer) {
    m_layer = layer;
    if (m_dump && layer >= 0) {
        const auto& shape = m_dump->layers().at(static_cast<std::size_t>(layer)).shape;
        m_channel->setRange(0, shape.empty() ? 0 : static_cast<int>(shape[0]) - 1);
    }
    request();
}

void HistogramView::setImage(int image) {
    if (image == m_image)
        return;
    m_image = image;
    if (m_scope->currentIndex() == 1)
        request();
}

void HistogramView::request() {
    if (!m_dump || m_layer < 0)
        return;
    const int channel = m_scope->currentIndex() == 1 ? m_channel->value() : -1;
    m_pendingGeneration = m_generation;
    m_status->setText(tr("Reading…"));
    m_watcher.setFuture(QtConcurrent::run([dump = m_dump, layer = m_layer, image = m_image, channel] {
        return loadHistogram(*dump, layer, image, channel);
    }));
}

void HistogramView::present(const HistogramData& d) {
    m_data = d;
    if (!d.error.isEmpty() || d.histogram.empty()) {
        for (int i = 0; i < 2; ++i)
            m_plot->graph(i)->data()->clear();
        for (auto* line : m_clip)
            line->setVisible(false);
        m_plot->replot();
        m_status->setText(d.error);
        emit loaded(d.layer);
        return;
    }
    const Histogram& h = d.histogram;
    const bool logScale = m_yScale->currentIndex() == 0;
    double top = 1;
    for (int side = 0; side < 2; ++side) {
        QVector<double> x, y;
        const auto& c = h.counts[side];
        for (int b = 0; b < h.bins(); ++b) {
            const double n = static_cast<double>(c[static_cast<std::size_t>(b)]);
            x << h.low + (b + 0.5) * h.binWidth;
            y << (logScale && n <= 0 ? qQNaN() : n); // empty bins are gaps on a log axis
            top = std::max(top, n);
        }
        m_plot->graph(side)->setData(x, y, true);
        QColor fill = kColours[side];
        fill.setAlpha(side == 0 ? 70 : 50);
        m_plot->graph(side)->setBrush(logScale ? QBrush(Qt::NoBrush) : QBrush(fill)); // fills hide a log axis' gaps
    }
    if (logScale) {
        m_plot->yAxis->setScaleType(QCPAxis::stLogarithmic);
        m_plot->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
        m_plot->yAxis->setRange(0.5, top * 2);
    } else {
        m_plot->yAxis->setScaleType(QCPAxis::stLinear);
        m_plot->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
        m_plot->yAxis->setRange(0, top * 1.05);
    }
    const double lo = h.low, hi = h.low + h.bins() * h.binWidth;
    const bool grid = std::isfinite(h.scale);
    double plotLo = lo, plotHi = hi;
    if (grid) {
        plotLo = std::min(lo, h.clipLow() - h.scale);
        plotHi = std::max(hi, h.clipHigh() + h.scale);
        // the clip range can be far wider than the values (a ReLU layer never goes below 0):
        // show the values, and the clip lines only where they fall near them
        plotLo = std::max(plotLo, lo - 0.1 * (hi - lo));
        plotHi = std::min(plotHi, hi + 0.1 * (hi - lo));
    }
    m_plot->xAxis->setRange(plotLo, plotHi);
    m_plot->xAxis2->setVisible(grid);
    m_plot->xAxis2->grid()->setVisible(grid);
    if (grid)
        m_plot->xAxis2->setTicker(QSharedPointer<QCPAxisTicker>(new CodeTicker(h.scale, h.zeroPoint)));
    m_clip[0]->setVisible(grid);
    m_clip[1]->setVisible(grid);
    if (grid) {
        m_clip[0]->point1->setCoords(h.clipLow(), 0);
        m_clip[0]->point2->setCoords(h.clipLow(), 1);
        m_clip[1]->point1->setCoords(h.clipHigh(), 0);
        m_clip[1]->point2->setCoords(h.clipHigh(), 1);
    }
    m_plot->replot();

    std::int64_t n[2] = {0, 0};
    for (int side = 0; side < 2; ++side)
        for (auto c : h.counts[side])
            n[side] += c;
    const auto& layer = m_dump->layers().at(static_cast<std::size_t>(d.layer));
    QString scope = d.channel < 0 ? tr("all images, all channels")
                                  : tr("image %1, channel %2").arg(d.image).arg(d.channel);
    QString text = tr("<b>%1</b> (%2): %3 float and %4 quantized values, %5 bins of %6.")
                       .arg(QString::fromStdString(layer.name).toHtmlEscaped(), scope)
                       .arg(n[0]).arg(n[1]).arg(h.bins()).arg(h.binWidth, 0, 'g', 4);
    if (grid)
        text += tr(" Quantized grid: scale %1, zero point %2, codes %3..%4, so values in [%5, %6] "
                   "(<span style='color:#c81e1e'>dashed</span>); float values beyond it, saturated: "
                   "%7 % below, %8 % above; rounding moves a value by at most %9.")
                    .arg(h.scale, 0, 'g', 5).arg(h.zeroPoint).arg(h.qmin).arg(h.qmax)
                    .arg(h.clipLow(), 0, 'g', 5).arg(h.clipHigh(), 0, 'g', 5)
                    .arg(100 * d.beyond[0], 0, 'f', 3).arg(100 * d.beyond[1], 0, 'f', 3)
                    .arg(h.scale / 2, 0, 'g', 4);
    else
        text += tr(" The quantized side has no per-tensor scale (float, or per-channel): no grid to mark.");
    m_status->setText(text);
    emit loaded(d.layer);
}

} // namespace qs
