#pragma once
// The layer tab: original, quantized, |difference| and relative difference as four
// heatmaps with synchronised zoom and pan, a read-out of all four values under the
// cursor, channel and colour-range controls, and the per-channel error chart.
// Reads happen on a worker thread; a newer request makes older results stale.

#include "layerdata.h"

#include <QFutureWatcher>
#include <QWidget>

#include <memory>

class QComboBox;
class QSpinBox;
class QDoubleSpinBox;
class QCheckBox;
class QLabel;
class QCustomPlot;

namespace qs {

class HeatmapPlot;

class LayerView : public QWidget {
    Q_OBJECT
public:
    explicit LayerView(QWidget* parent = nullptr);
    void setDump(std::shared_ptr<DumpReader> dump);
    void showLayer(int layer);
    int currentLayer() const { return m_layer; }
    QList<QCustomPlot*> figures() const;   // the four heatmaps, for export
    QCustomPlot* channelChart() const;
    bool isLoading() const { return m_loading; }
    void setImage(int image);
    int image() const;
    int channel() const; // the channel shown in one-channel mode, else -1

signals:
    void readout(const QString& text);
    void loaded(int layer);
    void imageChanged(int image);
    void failed(const QString& message);

private:
    void request();
    void present(const LayerMaps& maps);
    void applyRanges();
    void hover(int col, int row);

    std::shared_ptr<DumpReader> m_dump;
    int m_layer = -1;
    int m_generation = 0;        // bumped by setDump: results for an older dump are dropped
    int m_pendingGeneration = 0; // generation of the request being watched
    bool m_loading = false;
    bool m_syncing = false;
    bool m_overlayShown = false;
    LayerMaps m_maps;
    HeatmapPlot* m_plots[4] = {};
    QCustomPlot* m_channels = nullptr;
    QComboBox* m_channelMode = nullptr;
    QSpinBox* m_channel = nullptr;
    QSpinBox* m_image = nullptr;
    QComboBox* m_rangeMode = nullptr;
    QComboBox* m_scale = nullptr;
    QDoubleSpinBox* m_min = nullptr;
    QDoubleSpinBox* m_max = nullptr;
    QCheckBox* m_overlay = nullptr;
    QComboBox* m_channelMetric = nullptr;
    QLabel* m_status = nullptr;
    QLabel* m_rangeNote = nullptr; // why a setting does not apply to some maps
    QFutureWatcher<LayerMaps> m_watcher;
};

} // namespace qs
