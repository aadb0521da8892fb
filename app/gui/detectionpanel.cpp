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

#include <map>

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
    legend->setWordWrap(true);
    m_summary->setWordWrap(true);
    // two rows, and labels that wrap: the tab must not force the layer list narrower
    auto* controls = new QHBoxLayout;
    controls->addWidget(m_image);
    controls->addWidget(m_minScore);
    controls->addWidget(m_summary, 1);

    m_view = new DetectionView;
    m_table = new QTableWidget(0, ColumnCount);
    m_table->setHorizontalHeaderLabels({tr("original #"), tr("quantized #"), tr("class"), tr("score original"),
                                        tr("score quantized"), tr("Δ score"), tr("IoU"), tr("status")});
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->hide();
    m_table->setSortingEnabled(true);
    connect(m_table, &QTableWidget::currentCellChanged, this, [this](int row, int, int, int) { rowChosen(row); });
    auto* split = new QSplitter(Qt::Horizontal);
    split->addWidget(m_view);
    split->addWidget(m_table);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addWidget(legend);
    layout->addWidget(split, 1);

    connect(m_image, qOverload<int>(&QSpinBox::valueChanged), this, [this](int image) {
        showImage(image);
        emit imageChanged(image);
    });
    connect(m_minScore, qOverload<double>(&QDoubleSpinBox::valueChanged), this,
            [this](double v) {
                m_view->setMinScore(static_cast<float>(v));
                showImage(m_image->value());
            });
}

void DetectionPanel::setDump(std::shared_ptr<DumpReader> dump) {
    m_dump = std::move(dump);
    m_minScore->blockSignals(true); // a threshold chosen for one dump does not carry over to the next
    m_minScore->setValue(0.3);
    m_minScore->blockSignals(false);
    m_view->setMinScore(0.3f);
    std::map<int, QString> names; // class names from /eval, when the dump has them
    try {
        if (m_dump && m_dump->hasEval()) {
            const EvalData e = m_dump->eval();
            const QStringList list = QString::fromStdString(e.categoryNames).split(QLatin1Char(','));
            for (std::size_t k = 0; k < e.categoryIds.size() && static_cast<int>(k) < list.size(); ++k)
                names[static_cast<int>(e.categoryIds[k])] = list[static_cast<int>(k)];
        }
    } catch (const std::exception&) { // the summary tab reports a damaged /eval
    }
    m_view->setLabelNames(std::move(names));
    m_image->blockSignals(true);
    m_image->setRange(0, m_dump ? std::max(0, m_dump->imageCount() - 1) : 0);
    m_image->setValue(0);
    m_image->blockSignals(false);
    showImage(0);
}

void DetectionPanel::setImage(int image) { m_image->setValue(image); }

int DetectionPanel::image() const { return m_image->value(); }

void DetectionPanel::selectPair(int original, int quantized) {
    for (int row = 0; row < m_table->rowCount(); ++row)
        if (m_table->item(row, OriginalIndex)->data(Qt::UserRole).toInt() == original &&
            m_table->item(row, QuantizedIndex)->data(Qt::UserRole).toInt() == quantized) {
            m_table->setCurrentCell(row, OriginalIndex);
            return;
        }
    m_view->setHighlight(original, quantized); // below the drawing threshold: no row, still shown
}

void DetectionPanel::rowChosen(int row) {
    if (row < 0 || !m_table->item(row, OriginalIndex)) {
        m_view->setHighlight(-1, -1);
        return;
    }
    const QVariant o = m_table->item(row, OriginalIndex)->data(Qt::UserRole);
    const QVariant q = m_table->item(row, QuantizedIndex)->data(Qt::UserRole);
    m_view->setHighlight(o.toInt(), q.toInt());
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
    auto none = [] { return new QTableWidgetItem(QStringLiteral("–")); };
    const double minScore = m_minScore->value();
    auto addRow = [&](int o, int q, double iou, const QString& status) {
        const double best = std::max(o >= 0 ? original[static_cast<std::size_t>(o)].score : 0.0f,
                                     q >= 0 ? quantized[static_cast<std::size_t>(q)].score : 0.0f);
        if (best < minScore) // the table lists what the image shows
            return;
        const int row = m_table->rowCount();
        m_table->insertRow(row);
        const DrawnBox* a = o >= 0 ? &original[static_cast<std::size_t>(o)] : nullptr;
        const DrawnBox* b = q >= 0 ? &quantized[static_cast<std::size_t>(q)] : nullptr;
        m_table->setItem(row, OriginalIndex, a ? num(o) : none());
        m_table->setItem(row, QuantizedIndex, b ? num(q) : none());
        m_table->item(row, OriginalIndex)->setData(Qt::UserRole, o);
        m_table->item(row, QuantizedIndex)->setData(Qt::UserRole, q);
        m_table->setItem(row, Label, new QTableWidgetItem(m_view->labelText((a ? a : b)->label)));
        m_table->setItem(row, ScoreOriginal, a ? num(a->score) : none());
        m_table->setItem(row, ScoreQuantized, b ? num(b->score) : none());
        m_table->setItem(row, ScoreDelta, num((b ? b->score : 0.0) - (a ? a->score : 0.0)));
        m_table->setItem(row, Iou, iou >= 0 ? num(iou) : none());
        m_table->setItem(row, Status, new QTableWidgetItem(status));
    };
    std::vector<bool> matchedO(original.size(), false), matchedQ(quantized.size(), false);
    for (std::size_t m = 0; m < matches.size(); ++m) {
        const auto [o, q] = matches[m];
        if (o < 0 || q < 0 || o >= static_cast<int>(original.size()) || q >= static_cast<int>(quantized.size()))
            continue;
        matchedO[static_cast<std::size_t>(o)] = matchedQ[static_cast<std::size_t>(q)] = true;
        addRow(o, q, out.matches[4 * m + 2], tr("matched"));
    }
    for (std::size_t o = 0; o < original.size(); ++o)
        if (!matchedO[o])
            addRow(static_cast<int>(o), -1, -1, tr("missed by quantized"));
    for (std::size_t q = 0; q < quantized.size(); ++q)
        if (!matchedQ[q])
            addRow(-1, static_cast<int>(q), -1, tr("extra in quantized"));
    m_table->setSortingEnabled(true);
    m_summary->setText(tr("%1 original, %2 quantized, %3 matched (IoU ≥ 0.5, same label)")
                           .arg(original.size())
                           .arg(quantized.size())
                           .arg(matches.size()));
    m_view->setContent(input, std::move(original), std::move(quantized), std::move(matches));
}

} // namespace qs
