#include "imagesview.h"

#include "layertablemodel.h"

#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <cmath>
#include <map>

namespace qs {

namespace {

// A table cell that sorts by a number (Qt::UserRole) rather than by its text.
class NumberItem : public QTableWidgetItem {
public:
    NumberItem(const QString& text, double value) : QTableWidgetItem(text) { setData(Qt::UserRole, value); }
    bool operator<(const QTableWidgetItem& other) const override {
        return data(Qt::UserRole).toDouble() < other.data(Qt::UserRole).toDouble();
    }
};

QString decibels(double v) {
    if (std::isinf(v))
        return v > 0 ? QStringLiteral("exact") : QStringLiteral("−∞");
    return std::isnan(v) ? QStringLiteral("–") : QString::number(v, 'f', 2);
}

} // namespace

ImageRows imageRows(const DumpReader& dump) {
    ImageRows r;
    const ImageMetrics& im = dump.imageMetrics();
    r.hasMetrics = !im.empty();
    try {
        // per-image mAP from /eval, found by file name (the dump keeps the path it read,
        // the annotations a name relative to their image folder)
        std::map<QString, std::size_t> evaluated;
        EvalData eval;
        if (dump.hasEval()) {
            eval = dump.eval();
            for (std::size_t k = 0; k < eval.perImageFiles.size(); ++k)
                evaluated[QFileInfo(QString::fromStdString(eval.perImageFiles[k])).fileName()] = k;
        }
        for (int i = 0; i < dump.imageCount(); ++i) {
            ImageRow row;
            row.image = i;
            const QString source = QString::fromStdString(dump.source(i));
            row.source = source.isEmpty() ? QObject::tr("image %1").arg(i) : QFileInfo(source).fileName();
            if (r.hasMetrics) {
                const ImageSummary s = summarizeImage(im, i);
                row.meanSqnrDb = s.meanSqnrDb;
                row.minSqnrDb = s.minSqnrDb;
                row.worstLayer = s.worstLayer;
            } else {
                row.meanSqnrDb = row.minSqnrDb = std::nan("");
            }
            const auto found = evaluated.find(QFileInfo(QString::fromStdString(dump.source(i))).fileName());
            if (found != evaluated.end())
                for (int side = 0; side < 2; ++side)
                    row.map[side] = eval.perImageMap[side][found->second];
            const OutputPair out = dump.outputs(i);
            if (out.kind == "detections") {
                const int n[2] = {static_cast<int>(out.original.size() / 6), static_cast<int>(out.quantized.size() / 6)};
                const int matched = static_cast<int>(out.matches.size() / 4);
                row.detections[0] = n[0];
                row.detections[1] = n[1];
                row.detectionsChanged = (n[0] - matched) + (n[1] - matched);
            }
            r.rows.push_back(row);
        }
    } catch (const std::exception& e) {
        r.error = QString::fromStdString(e.what());
    }
    return r;
}

ImagesView::ImagesView(QWidget* parent) : QWidget(parent) {
    m_table = new QTableWidget(0, ColumnCount);
    m_table->setObjectName(QStringLiteral("imagesTable"));
    m_table->setHorizontalHeaderLabels({tr("#"), tr("image"), tr("mean SQNR dB"), tr("worst SQNR dB"),
                                        tr("worst layer"), tr("detections changed"), tr("mAP change")});
    m_table->horizontalHeaderItem(MeanSqnr)->setToolTip(tr("Mean over layers of each layer's SQNR on this image"));
    m_table->horizontalHeaderItem(WorstSqnr)->setToolTip(tr("The lowest layer SQNR on this image"));
    m_table->horizontalHeaderItem(Changed)->setToolTip(
        tr("Detections without a partner (IoU ≥ 0.5, same label) on the other side"));
    m_table->horizontalHeaderItem(MapChange)->setToolTip(
        tr("Quantized − original mAP@[.5:.95] on this image, in points (stored by quantscope-cli eval --into)"));
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->hide();
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->setAlternatingRowColors(true);
    m_note = new QLabel;
    m_note->setWordWrap(true);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_table, 1);
    layout->addWidget(m_note);

    connect(&m_watcher, &QFutureWatcher<ImageRows>::finished, this, [this] {
        if (m_pendingGeneration == m_generation)
            present(m_watcher.result());
    });
    connect(m_table, &QTableWidget::currentCellChanged, this, [this](int row, int, int, int) {
        if (m_filling || row < 0)
            return;
        emit imageChosen(m_table->item(row, Index)->data(Qt::UserRole).toInt());
    });
    connect(m_table, &QTableWidget::cellDoubleClicked, this, [this](int row, int) {
        const QVariant layer = m_table->item(row, WorstLayer)->data(Qt::UserRole);
        if (layer.toInt() >= 0)
            emit layerChosen(layer.toInt());
    });
}

void ImagesView::setDump(std::shared_ptr<DumpReader> dump) {
    m_dump = std::move(dump);
    ++m_generation;
    m_table->setRowCount(0);
    m_note->setText(tr("Reading the images…"));
    if (!m_dump)
        return;
    m_pendingGeneration = m_generation;
    m_watcher.setFuture(QtConcurrent::run([dump = m_dump] { return imageRows(*dump); }));
}

void ImagesView::present(const ImageRows& r) {
    m_filling = true;
    m_table->setSortingEnabled(false);
    m_table->setRowCount(static_cast<int>(r.rows.size()));
    bool detector = false, evaluated = false;
    for (int row = 0; row < static_cast<int>(r.rows.size()); ++row) {
        const ImageRow& x = r.rows[static_cast<std::size_t>(row)];
        m_table->setItem(row, Index, new NumberItem(QString::number(x.image), x.image));
        auto* source = new QTableWidgetItem(x.source);
        source->setToolTip(QString::fromStdString(m_dump->source(x.image)));
        m_table->setItem(row, Source, source);
        // sorting puts "exact" (+inf) last and unknown (NaN) after it
        const auto key = [](double v) { return std::isnan(v) ? 1e300 : std::isinf(v) && v > 0 ? 1e299 : v; };
        // severity colours as in the layer table (none at 30 dB or better)
        auto colour = [](QTableWidgetItem* item, double db) {
            const QColor c = LayerTableModel::severityColor(LayerTableModel::severity(db));
            if (c.isValid())
                item->setBackground(c);
            return item;
        };
        m_table->setItem(row, MeanSqnr, colour(new NumberItem(decibels(x.meanSqnrDb), key(x.meanSqnrDb)), x.meanSqnrDb));
        m_table->setItem(row, WorstSqnr, colour(new NumberItem(decibels(x.minSqnrDb), key(x.minSqnrDb)), x.minSqnrDb));
        const QString layerName = x.worstLayer >= 0
                                      ? QString::fromStdString(m_dump->layers()[static_cast<std::size_t>(x.worstLayer)].name)
                                      : QStringLiteral("–");
        auto* layer = new QTableWidgetItem(layerName);
        layer->setData(Qt::UserRole, x.worstLayer);
        layer->setToolTip(tr("Double-click to show this layer"));
        m_table->setItem(row, WorstLayer, layer);
        detector = detector || x.detectionsChanged >= 0;
        auto* changed = new NumberItem(x.detectionsChanged >= 0 ? QString::number(x.detectionsChanged) : QStringLiteral("–"),
                                       x.detectionsChanged);
        if (x.detectionsChanged >= 0)
            changed->setToolTip(tr("%1 original, %2 quantized detections").arg(x.detections[0]).arg(x.detections[1]));
        m_table->setItem(row, Changed, changed);
        const bool hasMap = x.map[0] >= 0 && x.map[1] >= 0;
        evaluated = evaluated || hasMap;
        const double delta = hasMap ? 100.0 * (x.map[1] - x.map[0]) : 0.0;
        auto* map = new NumberItem(hasMap ? QString::number(delta, 'f', 2) : QStringLiteral("–"), hasMap ? delta : 1e300);
        if (hasMap)
            map->setToolTip(tr("mAP@[.5:.95] %1 → %2").arg(100 * x.map[0], 0, 'f', 2).arg(100 * x.map[1], 0, 'f', 2));
        m_table->setItem(row, MapChange, map);
    }
    m_table->setColumnHidden(Changed, !detector);
    m_table->setColumnHidden(MapChange, !evaluated);
    m_table->setSortingEnabled(true);
    m_table->sortByColumn(r.hasMetrics ? MeanSqnr : Index, Qt::AscendingOrder); // worst first
    m_table->resizeColumnsToContents();
    m_filling = false;
    if (!r.error.isEmpty())
        m_note->setText(tr("Could not read every image: %1").arg(r.error));
    else if (!r.hasMetrics)
        m_note->setText(tr("This dump has no per-image metrics (made by an older QuantScope): run compare again "
                           "to rank the images."));
    else
        m_note->setText(tr("%n image(s), worst first. Double-click a row to see its worst layer.", nullptr,
                           static_cast<int>(r.rows.size())));
    emit loaded();
}

void ImagesView::setImage(int image) {
    m_filling = true;
    for (int row = 0; row < m_table->rowCount(); ++row)
        if (m_table->item(row, Index)->data(Qt::UserRole).toInt() == image) {
            m_table->setCurrentCell(row, m_table->currentColumn() < 0 ? Source : m_table->currentColumn());
            break;
        }
    m_filling = false;
}

} // namespace qs
