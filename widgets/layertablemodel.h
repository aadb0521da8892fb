#pragma once
// The layers of a dump as a table: one row per paired layer, metrics as sortable columns
// (Qt::UserRole holds the raw number), severity colouring by SQNR.

#include "dumpreader.h"

#include <QAbstractTableModel>

#include <vector>

namespace qs {

class LayerTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Index, Name, Op, Shape, Sqnr, Mse, MaxAbs, MeanAbs, RelErr, Cosine, Match, ColumnCount };
    static constexpr int SortRole = Qt::UserRole;
    static constexpr int LayerIndexRole = Qt::UserRole + 1;

    explicit LayerTableModel(QObject* parent = nullptr);
    void setLayers(std::vector<LayerSummary> layers);
    const std::vector<LayerSummary>& layers() const { return m_layers; }

    int rowCount(const QModelIndex& parent = QModelIndex()) const override;
    int columnCount(const QModelIndex& parent = QModelIndex()) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    // Severity of a layer's SQNR: 0 fine (>= 30 dB), 1 watch (20-30), 2 poor (10-20), 3 bad (< 10).
    static int severity(double sqnrDb);
    static QColor severityColor(int severity);

private:
    static QVariant rawValue(const LayerSummary& layer, int column);

    std::vector<LayerSummary> m_layers;
};

} // namespace qs
