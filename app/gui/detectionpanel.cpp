#include "detectionpanel.h"

#include "detectionview.h"
#include "layerdata.h"

#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>

namespace qs {

DetectionPanel::DetectionPanel(QWidget* parent) : QWidget(parent) {
    m_image = new QSpinBox;
    m_image->setPrefix(tr("image "));
    m_minScore = new QDoubleSpinBox;
    m_minScore->setRange(0, 1);
    m_minScore->setSingleStep(0.05);
    m_minScore->setValue(0.3);
    m_minScore->setPrefix(tr("draw score ≥ "));
    m_summary = new QLabel;
    auto* legend = new QLabel(tr("<span style='color:#28a03c'>■</span> original, matched &nbsp; "
                                 "<span style='color:#285ac8'>▭</span> quantized, matched &nbsp; "
                                 "<span style='color:#d22828'>■</span> missed by quantized &nbsp; "
                                 "<span style='color:#f08c00'>▭</span> extra in quantized"));
    auto* controls = new QHBoxLayout;
    controls->addWidget(m_image);
    controls->addWidget(m_minScore);
    controls->addWidget(legend);
    controls->addStretch();
    controls->addWidget(m_summary);

    m_view = new DetectionView;
    m_table = new QTableWidget(0, 7);
    m_table->setHorizontalHeaderLabels({tr("original #"), tr("quantized #"), tr("label"), tr("score original"),
                                        tr("score quantized"), tr("Δ score"), tr("IoU")});
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSortingEnabled(true);
    auto* split = new QSplitter(Qt::Horizontal);
    split->addWidget(m_view);
    split->addWidget(m_table);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addWidget(split, 1);

    connect(m_image, qOverload<int>(&QSpinBox::valueChanged), this, &DetectionPanel::showImage);
    connect(m_minScore, qOverload<double>(&QDoubleSpinBox::valueChanged), this,
            [this](double v) { m_view->setMinScore(static_cast<float>(v)); });
}

void DetectionPanel::setDump(std::shared_ptr<DumpReader> dump) {
    m_dump = std::move(dump);
    m_image->blockSignals(true);
    m_image->setRange(0, m_dump ? std::max(0, m_dump->imageCount() - 1) : 0);
    m_image->setValue(0);
    m_image->blockSignals(false);
    showImage(0);
}

void DetectionPanel::showImage(int image) {
    m_table->setSortingEnabled(false);
    m_table->setRowCount(0);
    if (!m_dump) {
        m_view->clear();
        return;
    }
    OutputPair out;
    QImage input;
    try { // small reads (one image, a few hundred boxes): done here
        out = m_dump->outputs(image);
        input = inputImage(*m_dump, image);
    } catch (const std::exception& e) {
        m_summary->setText(QString::fromStdString(e.what()));
        return;
    }
    if (out.kind != "detections") {
        m_view->clear();
        m_summary->setText(out.kind.empty() ? tr("No outputs stored") : tr("Outputs are %1, not detections").arg(QString::fromStdString(out.kind)));
        return;
    }
    auto original = DetectionView::boxesFromRows(out.original);
    auto quantized = DetectionView::boxesFromRows(out.quantized);
    auto matches = DetectionView::pairsFromRows(out.matches);
    auto num = [](double v) {
        auto* item = new QTableWidgetItem;
        item->setData(Qt::DisplayRole, v);
        return item;
    };
    for (std::size_t m = 0; m < matches.size(); ++m) {
        const auto [o, q] = matches[m];
        if (o < 0 || q < 0 || o >= static_cast<int>(original.size()) || q >= static_cast<int>(quantized.size()))
            continue;
        const int row = m_table->rowCount();
        m_table->insertRow(row);
        m_table->setItem(row, 0, num(o));
        m_table->setItem(row, 1, num(q));
        m_table->setItem(row, 2, num(original[static_cast<std::size_t>(o)].label));
        m_table->setItem(row, 3, num(original[static_cast<std::size_t>(o)].score));
        m_table->setItem(row, 4, num(quantized[static_cast<std::size_t>(q)].score));
        m_table->setItem(row, 5, num(out.matches[4 * m + 3]));
        m_table->setItem(row, 6, num(out.matches[4 * m + 2]));
    }
    m_table->setSortingEnabled(true);
    m_summary->setText(tr("%1 original, %2 quantized, %3 matched (IoU ≥ 0.5, same label)")
                           .arg(original.size())
                           .arg(quantized.size())
                           .arg(matches.size()));
    m_view->setContent(input, std::move(original), std::move(quantized), std::move(matches));
}

} // namespace qs
