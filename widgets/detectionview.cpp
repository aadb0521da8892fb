#include "detectionview.h"

#include <QPainter>

namespace qs {

std::vector<DrawnBox> DetectionView::boxesFromRows(const std::vector<float>& rows) {
    std::vector<DrawnBox> boxes;
    for (std::size_t i = 0; 6 * i + 5 < rows.size(); ++i)
        boxes.push_back({QRectF(QPointF(rows[6 * i], rows[6 * i + 1]), QPointF(rows[6 * i + 2], rows[6 * i + 3])),
                         rows[6 * i + 4], static_cast<int>(rows[6 * i + 5])});
    return boxes;
}

std::vector<std::pair<int, int>> DetectionView::pairsFromRows(const std::vector<float>& matches) {
    std::vector<std::pair<int, int>> pairs;
    for (std::size_t m = 0; 4 * m + 3 < matches.size(); ++m)
        pairs.emplace_back(static_cast<int>(matches[4 * m]), static_cast<int>(matches[4 * m + 1]));
    return pairs;
}

DetectionView::DetectionView(QWidget* parent) : QWidget(parent) { setMinimumSize(200, 150); }

void DetectionView::setContent(const QImage& image, std::vector<DrawnBox> original, std::vector<DrawnBox> quantized,
                               std::vector<std::pair<int, int>> matches) {
    m_image = image;
    m_original = std::move(original);
    m_quantized = std::move(quantized);
    m_highlight[0] = m_highlight[1] = -1;
    m_matchOfOriginal.assign(m_original.size(), -1);
    m_matchOfQuantized.assign(m_quantized.size(), -1);
    for (const auto& [o, q] : matches) {
        if (o >= 0 && o < static_cast<int>(m_original.size()) && q >= 0 && q < static_cast<int>(m_quantized.size())) {
            m_matchOfOriginal[static_cast<std::size_t>(o)] = q;
            m_matchOfQuantized[static_cast<std::size_t>(q)] = o;
        }
    }
    update();
}

void DetectionView::setMinScore(float score) {
    m_minScore = score;
    update();
}

void DetectionView::setLabelNames(std::map<int, QString> names) {
    m_labelNames = std::move(names);
    update();
}

QString DetectionView::labelText(int label) const {
    const auto it = m_labelNames.find(label);
    return it != m_labelNames.end() ? it->second : QString::number(label);
}

void DetectionView::setHighlight(int original, int quantized) {
    m_highlight[0] = original;
    m_highlight[1] = quantized;
    update();
}

void DetectionView::clear() { setContent(QImage(), {}, {}, {}); }

QSize DetectionView::sizeHint() const { return m_image.isNull() ? QSize(480, 360) : m_image.size(); }

void DetectionView::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    p.fillRect(rect(), palette().window());
    if (m_image.isNull()) {
        p.drawText(rect(), Qt::AlignCenter, tr("No detections in this dump"));
        return;
    }
    QSizeF size = QSizeF(m_image.size()).scaled(QSizeF(this->size()), Qt::KeepAspectRatio);
    QRectF target(QPointF((width() - size.width()) / 2, (height() - size.height()) / 2), size);
    paintTo(p, target);
}

void DetectionView::paintTo(QPainter& p, const QRectF& target) const {
    if (m_image.isNull())
        return;
    p.drawImage(target, m_image);
    const double s = target.width() / m_image.width();
    auto map = [&](const QRectF& r) {
        return QRectF(target.left() + r.left() * s, target.top() + r.top() * s, r.width() * s, r.height() * s);
    };
    const bool focused = m_highlight[0] >= 0 || m_highlight[1] >= 0;
    auto drawBox = [&](const DrawnBox& b, QColor color, Qt::PenStyle style, bool labelBelow, bool highlighted) {
        if (focused && !highlighted)
            color.setAlpha(70); // the chosen pair stands out
        QPen pen(color, highlighted ? 4 : 2, style);
        p.setPen(pen);
        p.setBrush(Qt::NoBrush);
        const QRectF r = map(b.rect);
        p.drawRect(r);
        const QString text = QStringLiteral("%1: %2").arg(labelText(b.label)).arg(b.score, 0, 'f', 2);
        QFont f = p.font();
        f.setPointSizeF(8);
        p.setFont(f);
        const QRectF tr = p.fontMetrics().boundingRect(text).adjusted(-2, 0, 2, 0);
        const QPointF at = labelBelow ? r.bottomLeft() : r.topLeft() - QPointF(0, tr.height());
        p.fillRect(QRectF(at, tr.size()), color);
        p.setPen(Qt::white);
        p.drawText(QRectF(at, tr.size()), Qt::AlignCenter, text);
    };
    for (int pass = 0; pass < 2; ++pass) { // the highlighted boxes last, on top
        for (std::size_t i = 0; i < m_original.size(); ++i) {
            const bool highlighted = static_cast<int>(i) == m_highlight[0];
            if (highlighted != (pass == 1) || (!highlighted && m_original[i].score < m_minScore))
                continue;
            const bool matched = m_matchOfOriginal[i] >= 0;
            drawBox(m_original[i], matched ? QColor(40, 160, 60) : QColor(210, 40, 40), Qt::SolidLine, false, highlighted);
        }
        for (std::size_t i = 0; i < m_quantized.size(); ++i) {
            const bool highlighted = static_cast<int>(i) == m_highlight[1];
            if (highlighted != (pass == 1) || (!highlighted && m_quantized[i].score < m_minScore))
                continue;
            const bool matched = m_matchOfQuantized[i] >= 0;
            drawBox(m_quantized[i], matched ? QColor(40, 90, 200) : QColor(240, 140, 0), Qt::DashLine, true, highlighted);
        }
    }
}

} // namespace qs
