#pragma once
// The histogram tab: how the float and the INT8 values of the selected layer are
// distributed, on shared bins. The quantized tensor's grid is marked (a top axis of its
// integer codes, one grid line per code when zoomed in) and so is its clipping range, so
// saturation (float mass beyond the range) and rounding (spikes on the codes) show.
// Scope: the stored histogram (all images, all channels: written by compare, no scan of
// the activations) or one channel of the current image (read on demand).

#include "dumpreader.h"

#include <QFutureWatcher>
#include <QWidget>

#include <memory>

class QComboBox;
class QSpinBox;
class QLabel;
class QCustomPlot;
class QCPItemStraightLine;

namespace qs {

struct HistogramData {
    Histogram histogram;
    int layer = -1, image = 0, channel = -1; // channel -1: the stored, whole-layer histogram
    double beyond[2] = {0, 0};               // fraction of float values below / above the clip range
    QString error;
};
// channel < 0: the stored histogram; else one channel of one image, binned like it.
HistogramData loadHistogram(const DumpReader& dump, int layer, int image, int channel);

class HistogramView : public QWidget {
    Q_OBJECT
public:
    explicit HistogramView(QWidget* parent = nullptr);
    void setDump(std::shared_ptr<DumpReader> dump);
    void showLayer(int layer);
    void setImage(int image);
    QCustomPlot* figure() const { return m_plot; }
    bool isLoading() const { return m_watcher.isRunning(); }
    const HistogramData& shown() const { return m_data; }

signals:
    void loaded(int layer);

private:
    void request();
    void present(const HistogramData& data);

    std::shared_ptr<DumpReader> m_dump;
    int m_layer = -1, m_image = 0;
    int m_generation = 0, m_pendingGeneration = 0;
    HistogramData m_data;
    QComboBox* m_scope = nullptr;
    QSpinBox* m_channel = nullptr;
    QComboBox* m_yScale = nullptr;
    QLabel* m_status = nullptr;
    QCustomPlot* m_plot = nullptr;
    QCPItemStraightLine* m_clip[2] = {};
    QFutureWatcher<HistogramData> m_watcher;
};

} // namespace qs
