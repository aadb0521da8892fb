#include "layerview.h"

#include "heatmapplot.h"
#include "qcp.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QGridLayout>
#include <QLabel>
#include <QSpinBox>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>
#include <limits>

namespace qs {

LayerView::LayerView(QWidget* parent) : QWidget(parent) {
    auto* controls = new QHBoxLayout;
    m_image = new QSpinBox;
    m_image->setPrefix(tr("image "));
    m_channelMode = new QComboBox;
    m_channelMode->addItems({tr("Mean over channels"), tr("Max over channels"), tr("One channel")});
    m_channel = new QSpinBox;
    m_channel->setPrefix(tr("channel "));
    m_channel->setEnabled(false);
    m_rangeMode = new QComboBox;
    m_rangeMode->addItems({tr("Auto range (each map)"), tr("Shared range (original = quantized)"),
                           tr("Manual range (original, quantized)")});
    m_min = new QDoubleSpinBox;
    m_max = new QDoubleSpinBox;
    for (auto* s : {m_min, m_max}) {
        s->setRange(-1e9, 1e9);
        s->setDecimals(4);
        s->setEnabled(false);
        s->setMaximumWidth(120); // the ±1e9 range would size it for ten digits
    }
    m_scale = new QComboBox;
    m_scale->addItems({tr("Linear"), tr("Log")});
    m_overlay = new QCheckBox(tr("Overlay on input"));
    m_rangeNote = new QLabel;
    m_rangeNote->setObjectName(QStringLiteral("rangeNote"));
    m_rangeNote->setStyleSheet(QStringLiteral("color: #a05a00"));
    // two rows, so that the maps' side fits next to a readable layer list at 1280x720:
    // what is shown (image, channels, overlay), then how it is coloured (range, scale)
    for (QWidget* w : std::initializer_list<QWidget*>{m_image, m_channelMode, m_channel, m_overlay})
        controls->addWidget(w);
    controls->addStretch();
    auto* colourControls = new QHBoxLayout;
    for (QWidget* w : std::initializer_list<QWidget*>{m_rangeMode, m_min, m_max, m_scale, m_rangeNote})
        colourControls->addWidget(w);
    colourControls->addStretch();

    auto* grid = new QGridLayout;
    const QString titles[4] = {tr("Original"), tr("Quantized"), tr("|Quantized − original|"),
                               tr("Relative difference")};
    for (int i = 0; i < 4; ++i) {
        m_plots[i] = new HeatmapPlot;
        m_plots[i]->setTitle(titles[i]);
        m_plots[i]->setMinimumSize(240, 150);
        grid->addWidget(m_plots[i], i / 2, i % 2);
        connect(m_plots[i], &HeatmapPlot::cellHovered, this, &LayerView::hover);
        connect(m_plots[i], &HeatmapPlot::hoverLeft, this, [this] { emit readout(QString()); });
        connect(m_plots[i], &HeatmapPlot::viewReset, this, [this] { // zoom reset: all four together
            for (auto* p : m_plots) {
                p->resetView();
                p->replot();
            }
        });
        // synchronised zoom and pan: a range change on one plot's axis goes to the others'
        for (QCPAxis* QCustomPlot::*axis : {&QCustomPlot::xAxis, &QCustomPlot::yAxis})
            connect(m_plots[i]->*axis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this,
                    [this, i, axis](const QCPRange& r) {
                        if (m_syncing || m_plots[i]->adjustingView()) // its own fit, not a user's zoom
                            return;
                        m_syncing = true;
                        for (int k = 0; k < 4; ++k)
                            if (k != i) {
                                (m_plots[k]->*axis)->setRange(r);
                                m_plots[k]->replot(QCustomPlot::rpQueuedReplot);
                            }
                        m_syncing = false;
                    });
    }

    m_channels = new QCustomPlot;
    m_channels->setMinimumHeight(110);
    m_channels->setMaximumHeight(200);
    m_channels->xAxis->setLabel(tr("channel"));
    QSharedPointer<QCPAxisTickerFixed> integerTicks(new QCPAxisTickerFixed);
    integerTicks->setTickStep(1.0);
    integerTicks->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    m_channels->xAxis->setTicker(integerTicks);
    m_channelMetric = new QComboBox;
    m_channelMetric->addItems({tr("SQNR dB per channel (low = hurt)"), tr("MSE per channel (high = hurt)")});
    auto* bars = new QCPBars(m_channels->xAxis, m_channels->yAxis);
    bars->setWidth(0.8);
    bars->setPen(Qt::NoPen);
    bars->setBrush(QColor(70, 110, 180));
    bars->setSelectable(QCP::stSingleData);
    connect(m_channels, &QCustomPlot::plottableClick, this, [this](QCPAbstractPlottable*, int dataIndex, QMouseEvent*) {
        m_channelMode->setCurrentIndex(2);
        m_channel->setValue(dataIndex);
    });

    m_status = new QLabel;
    m_status->setWordWrap(true); // a long message wraps instead of widening the window's right side
    auto* chartRow = new QHBoxLayout;
    chartRow->addWidget(m_channels, 1);
    chartRow->addWidget(m_channelMetric, 0, Qt::AlignTop);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addLayout(colourControls);
    layout->addLayout(grid, 1);
    layout->addLayout(chartRow);
    layout->addWidget(m_status);

    connect(&m_watcher, &QFutureWatcher<LayerMaps>::finished, this, [this] {
        m_loading = false;
        if (m_pendingGeneration == m_generation) // not for a dump that has been replaced
            present(m_watcher.result());
    });
    connect(m_image, qOverload<int>(&QSpinBox::valueChanged), this, [this](int image) {
        request();
        emit imageChanged(image);
    });
    connect(m_channelMode, qOverload<int>(&QComboBox::currentIndexChanged), this, [this](int mode) {
        m_channel->setEnabled(mode == 2);
        request();
    });
    connect(m_channel, qOverload<int>(&QSpinBox::valueChanged), this, [this] {
        if (m_channelMode->currentIndex() == 2)
            request();
    });
    connect(m_rangeMode, qOverload<int>(&QComboBox::currentIndexChanged), this, [this](int mode) {
        m_min->setEnabled(mode == 2);
        m_max->setEnabled(mode == 2);
        applyRanges();
    });
    // min never above max: each field bounds the other
    connect(m_min, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [this](double v) {
        m_max->setMinimum(v);
        applyRanges();
    });
    connect(m_max, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [this](double v) {
        m_min->setMaximum(v);
        applyRanges();
    });
    connect(m_scale, qOverload<int>(&QComboBox::currentIndexChanged), this, &LayerView::applyRanges);
    connect(m_overlay, &QCheckBox::toggled, this, [this] { present(m_maps); });
    connect(m_channelMetric, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] { present(m_maps); });
}

void LayerView::setDump(std::shared_ptr<DumpReader> dump) {
    ++m_generation;
    m_dump = std::move(dump);
    m_layer = -1;
    m_maps = LayerMaps();
    for (auto* p : m_plots) {
        p->clearMatrix();
        p->clearUnderlay();
        p->replot();
    }
    m_image->blockSignals(true);
    m_image->setRange(0, m_dump ? std::max(0, m_dump->imageCount() - 1) : 0);
    m_image->setValue(0);
    m_image->setVisible(m_dump && m_dump->imageCount() > 1);
    m_image->blockSignals(false);
}

void LayerView::setImage(int image) { m_image->setValue(image); }

int LayerView::image() const { return m_image->value(); }

int LayerView::channel() const { return m_channelMode->currentIndex() == 2 ? m_channel->value() : -1; }

void LayerView::showLayer(int layer) {
    if (layer == m_layer)
        return;
    m_layer = layer;
    request();
}

void LayerView::request() {
    if (!m_dump || m_layer < 0)
        return;
    m_loading = true;
    m_pendingGeneration = m_generation;
    m_status->setText(tr("Loading layer %1…").arg(m_layer));
    const auto mode = static_cast<ChannelMode>(m_channelMode->currentIndex());
    m_watcher.setFuture(QtConcurrent::run([dump = m_dump, layer = m_layer, image = m_image->value(), mode,
                                           channel = m_channel->value()] {
        return loadLayerMaps(*dump, layer, image, mode, channel);
    }));
}

void LayerView::present(const LayerMaps& maps) {
    if (maps.notKept) { // a metrics-only image: say so in place, no error box
        m_maps = LayerMaps();
        const QString name = m_dump && maps.layer >= 0 && maps.layer < static_cast<int>(m_dump->layers().size())
                                 ? QString::fromStdString(m_dump->layers()[static_cast<std::size_t>(maps.layer)].name)
                                 : QString();
        const QString context = tr("image %1: activations not kept").arg(maps.image);
        const QString titles[4] = {tr("Original — %1\n%2").arg(name, context), tr("Quantized — %1\n%2").arg(name, context),
                                   tr("|Quantized − original|\n%1").arg(context),
                                   tr("Relative difference\n%1").arg(context)};
        for (int i = 0; i < 4; ++i) { // no stale titles of the image shown before
            m_plots[i]->setTitle(titles[i]);
            m_plots[i]->clearMatrix();
            m_plots[i]->clearUnderlay();
            m_plots[i]->replot();
        }
        m_status->setText(tr("Image %1's activations were not kept (compare --keep-activations %2%3): its metrics "
                             "are in the Images list, the histogram and the graph; the maps show kept images only.")
                              .arg(maps.image)
                              .arg(m_dump ? m_dump->keptImages() : 0)
                              .arg(m_dump && m_dump->keptSelection() == "worst" ? QStringLiteral(" --keep worst") : QString()));
        emit loaded(maps.layer);
        return;
    }
    if (!maps.error.isEmpty()) {
        m_status->setText(maps.error);
        emit failed(maps.error);
        return;
    }
    if (maps.layer < 0 || !m_dump || maps.layer >= static_cast<int>(m_dump->layers().size()))
        return;
    const bool newLayer = maps.layer != m_maps.layer;
    m_maps = maps;
    const auto& summary = m_dump->layers().at(static_cast<std::size_t>(maps.layer));
    const QString name = QString::fromStdString(summary.name);
    const std::vector<float>* data[4] = {&maps.original, &maps.quantized, &maps.absDiff, &maps.relDiff};
    // what a figure shows, in its own titles (an exported figure stands alone)
    const QString reduction = maps.mode == ChannelMode::Mean ? tr("mean over channels")
                              : maps.mode == ChannelMode::Max ? tr("max over channels")
                                                              : tr("channel %1").arg(maps.channel);
    const QString context = m_dump->imageCount() > 1 ? tr("image %1, %2").arg(maps.image).arg(reduction) : reduction;
    // two lines: the map and layer, then what of it is shown (one line is clipped at 1280 px)
    const QString titles[4] = {tr("Original — %1\n%2").arg(name, context),
                               tr("Quantized — %1\n%2").arg(QString::fromStdString(summary.quantizedName), context),
                               tr("|Quantized − original|\n%1").arg(context), tr("Relative difference\n%1").arg(context)};
    const bool overlay = m_overlay->isChecked() && !maps.input.isNull() && maps.height > 1;
    for (int i = 0; i < 4; ++i) {
        m_plots[i]->setTitle(titles[i]);
        m_plots[i]->setMatrix(maps.width, maps.height, *data[i]);
        if (overlay)
            m_plots[i]->setUnderlay(maps.input);
        else
            m_plots[i]->clearUnderlay();
        if (newLayer || overlay != m_overlayShown)
            m_plots[i]->resetView();
    }
    m_overlayShown = overlay;
    m_channel->blockSignals(true);
    m_channel->setRange(0, std::max(0, maps.channels - 1));
    m_channel->blockSignals(false);
    // per-channel chart
    auto* bars = static_cast<QCPBars*>(m_channels->plottable(0));
    const bool sqnr = m_channelMetric->currentIndex() == 0;
    const auto& values = sqnr ? maps.channelSqnr : maps.channelMse;
    // SQNR: the axis starts just below the worst finite channel, not at 0 dB (the bars,
    // drawn from 0, rise from the bottom of the plot), so a 20 dB channel next to 30 dB
    // ones looks different; an exact channel (+inf) is a full bar, -inf an empty one
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (float v : values)
        if (std::isfinite(v)) {
            lo = std::min(lo, static_cast<double>(v));
            hi = std::max(hi, static_cast<double>(v));
        }
    const bool anyFinite = lo <= hi;
    const double margin = anyFinite ? std::max(1.0, 0.1 * (hi - lo)) : 1.0;
    QVector<double> keys, vals;
    for (std::size_t c = 0; c < values.size(); ++c) {
        keys << static_cast<double>(c);
        const double v = values[c];
        vals << (std::isfinite(v) ? v
                 : sqnr && anyFinite && v > 0 ? hi + margin
                 : sqnr && anyFinite && v < 0 ? lo - margin
                                              : 0.0);
    }
    bars->setData(keys, vals, true);
    m_channels->yAxis->setLabel(sqnr ? tr("SQNR dB") : tr("MSE"));
    m_channels->rescaleAxes();
    if (sqnr && anyFinite)
        m_channels->yAxis->setRange(lo - margin, hi + margin);
    m_channels->replot();
    applyRanges();
    QString where = tr("%1 — %2×%3, %4 channels").arg(name).arg(maps.width).arg(maps.height).arg(maps.channels);
    if (m_dump->imageCount() > 1 || !m_dump->source(maps.image).empty())
        where += tr("; image %1 (%2)").arg(maps.image).arg(QFileInfo(QString::fromStdString(m_dump->source(maps.image))).fileName());
    if (!std::isnan(summary.metrics.sqnrDb))
        where += tr(", SQNR %1 dB").arg(summary.metrics.sqnrDb, 0, 'f', 2);
    m_status->setText(where);
    emit loaded(maps.layer);
}

void LayerView::applyRanges() {
    if (m_maps.layer < 0)
        return;
    const int mode = m_rangeMode->currentIndex();
    const bool log = m_scale->currentIndex() == 1;
    QCPRange shared = m_plots[0]->dataBounds();
    shared.expand(m_plots[1]->dataBounds());
    bool signedLinear = false;
    // original and quantized share one colour map: diverging, centred on 0, when either
    // has negative values; the differences are never negative: sequential
    const bool signedActivations = shared.lower < 0;
    const QString scaleText = log ? tr(", log scale") : QString();
    const QString colourLabels[4] = {tr("activation"), tr("activation"), tr("|q − o|"), tr("|q − o| / max(|o|, τ)")};
    for (int i = 0; i < 4; ++i) {
        QCPRange r = m_plots[i]->dataBounds();
        // shared and manual ranges are for the two activation maps; the difference maps
        // keep their own, or a range chosen for activations would flatten them
        if (mode == 1 && i < 2)
            r = shared;
        else if (mode == 2 && i < 2)
            r = QCPRange(m_min->value(), m_max->value());
        const bool diverging = i < 2 && signedActivations;
        if (diverging && mode != 2)
            r = HeatmapPlot::centredOnZero(r);
        m_plots[i]->setGradient(diverging ? HeatmapPlot::divergingGradient() : HeatmapPlot::sequentialGradient());
        // a log scale cannot show negative values: signed maps stay linear, and say so
        const bool signedMap = m_plots[i]->dataBounds().lower < 0;
        m_plots[i]->setColorLabel(colourLabels[i] + (log && !signedMap ? scaleText : QString()));
        const bool logHere = log && !signedMap;
        signedLinear |= log && signedMap;
        if (logHere && r.lower <= 0)
            r.lower = r.upper > 0 ? r.upper * 1e-4 : 1e-6;
        if (r.upper <= r.lower)
            r.upper = r.lower + (logHere ? r.lower : 1e-9);
        m_plots[i]->setLogScale(logHere);
        m_plots[i]->setColorRange(r);
        m_plots[i]->replot();
    }
    m_rangeNote->setText(signedLinear ? tr("Log scale: maps with negative values stay linear") : QString());
    if (mode != 2) { // seed the manual fields with what is shown
        for (QDoubleSpinBox* s : {m_min, m_max}) {
            s->blockSignals(true);
            s->setRange(-1e9, 1e9);
        }
        m_min->setValue(shared.lower);
        m_max->setValue(shared.upper);
        m_min->setMaximum(shared.upper);
        m_max->setMinimum(shared.lower);
        for (QDoubleSpinBox* s : {m_min, m_max})
            s->blockSignals(false);
    }
}

void LayerView::hover(int col, int row) {
    float v[4];
    for (int i = 0; i < 4; ++i)
        v[i] = m_plots[i]->valueAt(col, row);
    emit readout(tr("x %1, y %2: original %3, quantized %4, |diff| %5, relative %6")
                     .arg(col)
                     .arg(row)
                     .arg(v[0], 0, 'g', 5)
                     .arg(v[1], 0, 'g', 5)
                     .arg(v[2], 0, 'g', 5)
                     .arg(v[3], 0, 'g', 5));
}

QList<QCustomPlot*> LayerView::figures() const { return {m_plots[0], m_plots[1], m_plots[2], m_plots[3]}; }

QCustomPlot* LayerView::channelChart() const { return m_channels; }

} // namespace qs
