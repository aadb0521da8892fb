#include "outputview.h"

#include "hexbinplottable.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSpinBox>
#include <QStringList>
#include <QtConcurrent/QtConcurrentRun>

namespace qs {

OutputView::OutputView(QWidget* parent) : QWidget(parent) {
    m_quantity = new QComboBox;
    m_quantity->setObjectName(QStringLiteral("quantity"));
    fillQuantities(std::string());
    m_yMode = new QComboBox;
    m_yMode->addItems({tr("y = quantized"), tr("y = quantized − original")});
    m_scope = new QComboBox;
    m_scope->addItems({tr("All images"), tr("One image")});
    m_image = new QSpinBox;
    m_image->setPrefix(tr("image "));
    m_image->setEnabled(false);
    m_grid = new QSpinBox;
    m_grid->setRange(5, 200);
    m_grid->setValue(40);
    m_grid->setPrefix(tr("hexagons across: "));
    auto* controls = new QHBoxLayout;
    for (QWidget* w : std::initializer_list<QWidget*>{m_quantity, m_yMode, m_scope, m_image, m_grid})
        controls->addWidget(w);
    controls->addStretch();

    m_plot = new QCustomPlot;
    m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_plot->plotLayout()->insertRow(0);
    m_plot->plotLayout()->addElement(0, 0, new QCPTextElement(m_plot, tr("Output error"), QFont(font().family(), 10, QFont::Bold)));
    m_hex = new HexbinPlottable(m_plot->xAxis, m_plot->yAxis);
    m_identity = new QCPItemStraightLine(m_plot);
    m_identity->setObjectName(QStringLiteral("identity"));
    m_identity->setPen(QPen(QColor(60, 60, 60), 1, Qt::DashLine));
    m_identity->point1->setCoords(0, 0);
    m_identity->point2->setCoords(1, 1);
    auto* scale = new QCPColorScale(m_plot);
    scale->axis()->setLabel(tr("count"));
    m_plot->plotLayout()->addElement(1, 1, scale);
    m_hex->setColorScale(scale);
    auto* margins = new QCPMarginGroup(m_plot);
    m_plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    scale->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    m_status = new QLabel;

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addWidget(m_plot, 1);
    layout->addWidget(m_status);

    connect(&m_watcher, &QFutureWatcher<OutputSamples>::finished, this, [this] {
        if (m_pendingGeneration == m_generation)
            present(m_watcher.result());
    });
    for (auto* c : {m_quantity, m_yMode, m_scope})
        connect(c, qOverload<int>(&QComboBox::currentIndexChanged), this, &OutputView::request);
    connect(m_scope, qOverload<int>(&QComboBox::currentIndexChanged), this,
            [this](int i) { m_image->setEnabled(i == 1); });
    connect(m_image, qOverload<int>(&QSpinBox::valueChanged), this, [this](int image) {
        if (m_scope->currentIndex() == 1)
            request();
        emit imageChanged(image);
    });
    connect(m_grid, qOverload<int>(&QSpinBox::valueChanged), this, &OutputView::request);
    connect(m_plot, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        if (e->button() == Qt::LeftButton)
            pick(e->position());
    });
}

void OutputView::fillQuantities(const std::string& kind) {
    // what can be plotted depends on what the model outputs: the items name only that
    m_quantity->blockSignals(true);
    m_quantity->clear();
    if (kind == "detections") {
        m_quantity->addItem(tr("Scores of matched detections"), static_cast<int>(OutputQuantity::Scores));
        m_quantity->addItem(tr("Box coordinates of matched detections"), static_cast<int>(OutputQuantity::Boxes));
        m_quantity->addItem(tr("IoU of matched detections vs score"), static_cast<int>(OutputQuantity::IouVsScore));
    } else if (kind == "logits") {
        m_quantity->addItem(tr("Logits, every class"), static_cast<int>(OutputQuantity::Values));
    } else {
        m_quantity->addItem(tr("Output values"), static_cast<int>(OutputQuantity::Values));
    }
    m_quantity->blockSignals(false);
}

void OutputView::setDump(std::shared_ptr<DumpReader> dump) {
    ++m_generation;
    m_dump = std::move(dump);
    std::string kind;
    try {
        kind = m_dump ? m_dump->outputs(0).kind : std::string();
    } catch (const std::exception&) { // a damaged output shows in the status line on request
    }
    fillQuantities(kind);
    m_image->blockSignals(true);
    m_image->setRange(0, m_dump ? std::max(0, m_dump->imageCount() - 1) : 0);
    m_image->blockSignals(false);
    request();
}

void OutputView::setImage(int image) { m_image->setValue(image); }

int OutputView::pick(const QPointF& pixel) {
    const int bin = m_hex->binAt(pixel);
    if (bin < 0)
        return 0;
    // the samples drawn into that hexagon: those whose own pixel falls in it
    std::vector<std::size_t> members;
    for (std::size_t i = 0; i < m_samples.x.size() && i < m_shownY.size(); ++i) {
        const QPointF p(m_plot->xAxis->coordToPixel(m_samples.x[i]), m_plot->yAxis->coordToPixel(m_shownY[i]));
        if (m_hex->binAt(p) == bin)
            members.push_back(i);
    }
    if (members.empty())
        return 0;
    const bool detections = m_samples.second[members.front()] >= 0;
    QStringList items;
    for (std::size_t k = 0; k < members.size() && k < 6; ++k) {
        const std::size_t i = members[k];
        items << (detections ? tr("image %1: detection %2 ↔ %3 (%4 → %5)")
                                   .arg(m_samples.image[i]).arg(m_samples.first[i]).arg(m_samples.second[i])
                                   .arg(m_samples.x[i], 0, 'g', 4).arg(m_samples.y[i], 0, 'g', 4)
                             : tr("image %1: element %2 (%3 → %4)")
                                   .arg(m_samples.image[i]).arg(m_samples.first[i])
                                   .arg(m_samples.x[i], 0, 'g', 4).arg(m_samples.y[i], 0, 'g', 4));
    }
    m_status->setText(tr("Hexagon of %1 sample(s): %2%3")
                          .arg(members.size())
                          .arg(items.join(QStringLiteral("; ")))
                          .arg(members.size() > 6 ? tr("; …") : QString()));
    const std::size_t first = members.front();
    emit picked(m_samples.image[first], m_samples.first[first], m_samples.second[first]);
    return static_cast<int>(members.size());
}

void OutputView::request() {
    if (!m_dump)
        return;
    m_status->setText(tr("Reading outputs…"));
    m_pendingGeneration = m_generation;
    const auto quantity = static_cast<OutputQuantity>(m_quantity->currentData().toInt());
    const int image = m_scope->currentIndex() == 0 ? -1 : m_image->value();
    m_watcher.setFuture(QtConcurrent::run([dump = m_dump, quantity, image] { return loadOutputSamples(*dump, quantity, image); }));
}

void OutputView::present(const OutputSamples& samples) {
    if (!samples.error.isEmpty()) {
        m_status->setText(samples.error);
        return;
    }
    std::vector<double> y = samples.y;
    const bool error = m_yMode->currentIndex() == 1;
    if (error)
        for (std::size_t i = 0; i < y.size() && i < samples.x.size(); ++i)
            y[i] -= samples.x[i];
    const double aspect = m_plot->axisRect()->height() > 0
                              ? static_cast<double>(m_plot->axisRect()->height()) / std::max(1, m_plot->axisRect()->width())
                              : 0.75;
    HexBins bins = hexbin(samples.x, y, m_grid->value());
    if (!samples.x.empty())
        bins = hexbin(samples.x, y, m_grid->value(), bins.xMin, bins.xMax, bins.yMin, bins.yMax, aspect);
    m_hex->setBins(bins);
    m_samples = samples;
    m_shownY = y;
    m_plot->xAxis->setLabel(samples.xLabel);
    m_plot->yAxis->setLabel(error ? tr("quantized − original") : samples.yLabel);
    // the reference a reader looks for: y = x (quantized equals original), or y = 0 for the
    // error; IoU against score has none
    const bool iou = static_cast<OutputQuantity>(m_quantity->currentData().toInt()) == OutputQuantity::IouVsScore;
    m_identity->setVisible(!iou);
    m_identity->point2->setCoords(1, error ? 0 : 1);
    m_plot->rescaleAxes();
    m_plot->replot();
    m_status->setText(samples.x.empty() ? tr("No output pairs in this dump")
                                        : tr("%1 samples in %2 bins, at most %3 per bin")
                                              .arg(samples.x.size())
                                              .arg(bins.counts.size())
                                              .arg(bins.maxCount()));
}

} // namespace qs
