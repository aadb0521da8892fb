#pragma once
// The images of a dump as a sortable table, worst first: file name, mean and worst SQNR
// over layers (from /image_metrics), the worst layer, for detectors how many detections
// changed (unmatched on either side) and, when `eval --into` stored it for an image of the
// same file name, the change of its mAP. Choosing a row switches every view to
// that image; double-clicking also selects its worst layer. Rows are computed on a
// worker thread (one read of each image's outputs).

#include "dumpreader.h"

#include <QFutureWatcher>
#include <QWidget>

#include <memory>
#include <vector>

class QTableWidget;
class QLabel;

namespace qs {

struct ImageRow {
    int image = 0;
    QString source;            // file name, or "image N"
    double meanSqnrDb = 0, minSqnrDb = 0;
    int worstLayer = -1;
    int detectionsChanged = -1; // -1: not a detector (or no outputs)
    int detections[2] = {0, 0};
    double map[2] = {-1, -1};   // mAP@[.5:.95] of each model on this image (eval --into), -1: none
};
struct ImageRows {
    std::vector<ImageRow> rows;
    bool hasMetrics = false;
    QString error;
};
ImageRows imageRows(const DumpReader& dump);

class ImagesView : public QWidget {
    Q_OBJECT
public:
    enum Column { Index, Source, MeanSqnr, WorstSqnr, WorstLayer, Changed, MapChange, ColumnCount };

    explicit ImagesView(QWidget* parent = nullptr);
    void setDump(std::shared_ptr<DumpReader> dump);
    void setImage(int image); // selects its row without emitting imageChosen
    QTableWidget* table() const { return m_table; }
    bool isLoading() const { return m_watcher.isRunning(); }

signals:
    void imageChosen(int image);
    void layerChosen(int layer);
    void loaded();

private:
    void present(const ImageRows& rows);

    std::shared_ptr<DumpReader> m_dump;
    int m_generation = 0, m_pendingGeneration = 0;
    bool m_filling = false;
    QTableWidget* m_table = nullptr;
    QLabel* m_note = nullptr;
    QFutureWatcher<ImageRows> m_watcher;
};

} // namespace qs
