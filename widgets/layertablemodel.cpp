#include "layertablemodel.h"

#include <QColor>
#include <QLocale>

#include <cmath>

namespace qs {

LayerTableModel::LayerTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void LayerTableModel::setLayers(std::vector<LayerSummary> layers) {
    beginResetModel();
    m_layers = std::move(layers);
    endResetModel();
}

int LayerTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(m_layers.size());
}

int LayerTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

int LayerTableModel::severity(double sqnrDb) {
    if (std::isnan(sqnrDb))
        return 0;
    if (sqnrDb < 10)
        return 3;
    if (sqnrDb < 20)
        return 2;
    if (sqnrDb < 30)
        return 1;
    return 0;
}

QColor LayerTableModel::severityColor(int severity) {
    switch (severity) {
    case 3:
        return QColor(230, 90, 80);
    case 2:
        return QColor(240, 160, 80);
    case 1:
        return QColor(240, 220, 120);
    default:
        return QColor();
    }
}

namespace {
QString number(double v, int precision = 4) {
    if (std::isnan(v))
        return QStringLiteral("–");
    if (std::isinf(v))
        return v > 0 ? QStringLiteral("∞") : QStringLiteral("−∞");
    return QString::number(v, 'g', precision);
}

QString shapeText(const std::vector<std::int64_t>& shape) {
    QStringList parts;
    for (auto d : shape)
        parts << QString::number(d);
    return parts.join(QLatin1Char('x'));
}
} // namespace

// The value a column sorts by; also what it shows, unless data() formats it.
QVariant LayerTableModel::rawValue(const LayerSummary& l, int column) {
    const Metrics& m = l.metrics;
    switch (column) {
    case Index:
        return l.index;
    case Name:
        return QString::fromStdString(l.name);
    case Op:
        return QString::fromStdString(l.quantizedOp);
    case Shape: {
        double n = 1;
        for (auto d : l.shape)
            n *= static_cast<double>(d);
        return n;
    }
    case Sqnr:
        return m.sqnrDb;
    case Mse:
        return m.mse;
    case MaxAbs:
        return m.maxAbs;
    case MeanAbs:
        return m.meanAbs;
    case RelErr:
        return m.relErr;
    case Cosine:
        return m.cosine;
    case Match:
        return QString::fromStdString(l.match);
    default:
        return {};
    }
}

QVariant LayerTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const LayerSummary& l = m_layers[static_cast<std::size_t>(index.row())];
    const Metrics& m = l.metrics;
    if (role == LayerIndexRole)
        return l.index;
    if (role == SortRole)
        return rawValue(l, index.column());
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Shape:
            return shapeText(l.shape);
        case Sqnr:
            return std::isfinite(m.sqnrDb) ? QString::number(m.sqnrDb, 'f', 2) : number(m.sqnrDb);
        case Cosine:
            return std::isfinite(m.cosine) ? QString::number(m.cosine, 'f', 5) : number(m.cosine);
        case Mse:
        case MaxAbs:
        case MeanAbs:
        case RelErr:
            return number(rawValue(l, index.column()).toDouble());
        default:
            return rawValue(l, index.column());
        }
    }
    if (role == Qt::TextAlignmentRole && index.column() >= Sqnr && index.column() <= Cosine)
        return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::BackgroundRole && index.column() == Sqnr) {
        const QColor c = severityColor(severity(m.sqnrDb));
        return c.isValid() ? QVariant(c) : QVariant();
    }
    if (role == Qt::ToolTipRole) {
        return tr("%1\nmodule %2 (call %3), %4\nquantized: %5, %6\npaired by %7")
            .arg(QString::fromStdString(l.name), QString::fromStdString(l.module))
            .arg(l.call)
            .arg(QString::fromStdString(l.op), QString::fromStdString(l.quantizedName),
                 QString::fromStdString(l.quantizedOp), QString::fromStdString(l.match));
    }
    return {};
}

QVariant LayerTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case Index:
        return tr("#");
    case Name:
        return tr("Layer");
    case Op:
        return tr("Quantized op");
    case Shape:
        return tr("Shape");
    case Sqnr:
        return tr("SQNR dB");
    case Mse:
        return tr("MSE");
    case MaxAbs:
        return tr("max |e|");
    case MeanAbs:
        return tr("mean |e|");
    case RelErr:
        return tr("rel");
    case Cosine:
        return tr("cosine");
    case Match:
        return tr("Paired by");
    }
    return {};
}

} // namespace qs
