#pragma once
// An input image with the original model's and the quantized model's detections drawn
// in distinct styles: matched pairs (solid green / dashed blue), missed by the quantized
// model (solid red), extra in the quantized model (dashed orange); labels with scores.

#include <QImage>
#include <QWidget>

#include <map>
#include <vector>

namespace qs {

struct DrawnBox {
    QRectF rect;   // image pixels
    float score = 0;
    int label = 0;
};

class DetectionView : public QWidget {
    Q_OBJECT
public:
    // From the dump's layouts: rows of (x1, y1, x2, y2, score, label) and of
    // (original index, quantized index, IoU, score delta).
    static std::vector<DrawnBox> boxesFromRows(const std::vector<float>& rows);
    static std::vector<std::pair<int, int>> pairsFromRows(const std::vector<float>& matches);

    explicit DetectionView(QWidget* parent = nullptr);
    // matches: (original index, quantized index) pairs
    void setContent(const QImage& image, std::vector<DrawnBox> original, std::vector<DrawnBox> quantized,
                    std::vector<std::pair<int, int>> matches);
    void setMinScore(float score);
    // Class names by label (labels without one are drawn as numbers).
    void setLabelNames(std::map<int, QString> names);
    QString labelText(int label) const;
    // Draws these boxes (-1: none) thick and on top, the others faded; shown whatever
    // their score.
    void setHighlight(int original, int quantized);
    std::pair<int, int> highlight() const { return {m_highlight[0], m_highlight[1]}; }
    void clear();
    QSize sizeHint() const override;
    QSize imageSize() const { return m_image.size(); }
    // Paints image and boxes into `target` (for PNG, SVG and PDF export).
    void paintTo(QPainter& painter, const QRectF& target) const;

protected:
    void paintEvent(QPaintEvent* event) override;

private:

    QImage m_image;
    std::vector<DrawnBox> m_original, m_quantized;
    std::vector<int> m_matchOfOriginal, m_matchOfQuantized;
    float m_minScore = 0.3f;
    std::map<int, QString> m_labelNames;
    int m_highlight[2] = {-1, -1};
};

} // namespace qs
