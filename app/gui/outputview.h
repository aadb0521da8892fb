#pragma once
// The output-error tab: a hexbin of original vs quantized outputs (logits, raw outputs,
// or for detections the scores, box coordinates or IoU of matched pairs), over one image
// or all, with a colour scale of counts. Samples are read on a worker thread.

#include "layerdata.h"

#include <QFutureWatcher>
#include <QWidget>

#include <memory>
#include <string>

class QComboBox;
class QSpinBox;
class QLabel;
class QCustomPlot;

class QCPItemStraightLine;

namespace qs {

class HexbinPlottable;

class OutputView : public QWidget {
    Q_OBJECT
public:
    explicit OutputView(QWidget* parent = nullptr);
    void setDump(std::shared_ptr<DumpReader> dump);
    QCustomPlot* figure() const { return m_plot; }
    void setImage(int image); // the image shown in one-image scope

    // The samples in the hexagon under a pixel of the plot, described in the status line;
    // returns how many.
    int pick(const QPointF& pixel);

signals:
    void imageChanged(int image);
    // A hexagon was clicked: its first matched pair of detections, or (tensor outputs)
    // its first element with quantized = -1.
    void picked(int image, int original, int quantized);

private:
    void fillQuantities(const std::string& kind); // "detections", "logits", "raw" or unknown
    void request();
    void present(const OutputSamples& samples);

    std::shared_ptr<DumpReader> m_dump;
    int m_generation = 0, m_pendingGeneration = 0; // see LayerView
    QComboBox* m_quantity = nullptr;
    QComboBox* m_yMode = nullptr;
    QComboBox* m_scope = nullptr;
    QSpinBox* m_image = nullptr;
    QSpinBox* m_grid = nullptr;
    QLabel* m_status = nullptr;
    QCustomPlot* m_plot = nullptr;
    HexbinPlottable* m_hex = nullptr;
    QCPItemStraightLine* m_identity = nullptr; // y = x: where unchanged outputs lie
    QFutureWatcher<OutputSamples> m_watcher;
    OutputSamples m_samples;   // as shown
    std::vector<double> m_shownY; // y as binned (the error, in that mode)
};

} // namespace qs
