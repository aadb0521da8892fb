#pragma once
// The detections tab: the input image with both models' detections, and the table of
// matched pairs (IoU, score change) plus the unmatched ones.

#include "dumpreader.h"

#include <QWidget>

#include <memory>

class QSpinBox;
class QDoubleSpinBox;
class QTableWidget;
class QLabel;

namespace qs {

class DetectionView;

class DetectionPanel : public QWidget {
    Q_OBJECT
public:
    explicit DetectionPanel(QWidget* parent = nullptr);
    void setDump(std::shared_ptr<DumpReader> dump);
    DetectionView* view() const { return m_view; }
    QTableWidget* table() const { return m_table; }
    enum Column { OriginalIndex, QuantizedIndex, Label, ScoreOriginal, ScoreQuantized, ScoreDelta, Iou, Status, ColumnCount };
    void setImage(int image);
    int image() const;
    // Selects the table row of this pair (either index may be -1) and highlights it.
    void selectPair(int original, int quantized);

signals:
    void imageChanged(int image);

private:
    void showImage(int image);
    void rowChosen(int row);

    std::shared_ptr<DumpReader> m_dump;
    DetectionView* m_view = nullptr;
    QTableWidget* m_table = nullptr;
    QSpinBox* m_image = nullptr;
    QDoubleSpinBox* m_minScore = nullptr;
    QLabel* m_summary = nullptr;
};

} // namespace qs
