#pragma once
// The main window wires the views together: layer browser (table, filter, SQNR-by-depth
// plot) on the left, the layer / output error / detections / summary tabs on the right.
// Opening a dump happens on a worker thread; errors reach the user as message boxes.

#include "dumpreader.h"

#include <QFutureWatcher>
#include <QMainWindow>

#include <memory>

class QLineEdit;
class QTableView;
class QTabWidget;
class QMenu;
class QSortFilterProxyModel;
class QCustomPlot;
class QLabel;
class QStackedWidget;

namespace qs {

class LayerTableModel;
class LayerView;
class OutputView;
class DetectionPanel;
class SummaryView;
class ImagesView;
class HistogramView;
class GraphView;

struct OpenResult {
    std::shared_ptr<DumpReader> dump;
    QString path, error;
};

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    void openDump(const QString& path);
    bool isOpening() const;
    QString currentPath() const { return m_path; }
    std::shared_ptr<DumpReader> dump() const { return m_dump; }
    LayerView* layerView() const { return m_layerView; }
    QTableView* layerTable() const { return m_table; }
    QLineEdit* filterEdit() const { return m_filter; }
    QSortFilterProxyModel* layerProxy() const { return m_proxy; }
    QCustomPlot* depthPlot() const { return m_depth; }
    QTabWidget* tabs() const { return m_tabs; }
    QTabWidget* browserTabs() const { return m_browserTabs; } // Layers | Images
    QWidget* welcomePage() const { return m_welcome; }        // shown until a dump opens
    ImagesView* imagesView() const { return m_images; }
    HistogramView* histogramView() const { return m_histogram; }
    GraphView* graphView() const { return m_graph; }
    // Shows this image in every view.
    void selectImage(int image);
    void selectLayer(int layerIndex);
    // Exports what the current tab shows; returns an error text or an empty string.
    QString exportCurrentFigure(const QString& fileName, QSize size, int dpi);

signals:
    void dumpOpened(const QString& path);
    void openFailed(const QString& message);

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;
    // Keeps the window's shortcuts (Ctrl+E) working while a text or spin field has focus,
    // and lets the arrow keys in the filter field move through the layer table.
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void buildMenus();
    void showError(const QString& title, const QString& message);
    void opened(const OpenResult& result);
    void updateRecent(const QString& path);
    void forgetRecent(const QString& path);
    void rebuildRecentMenu();
    void layerSelected();
    void fillDepthPlot();
    void newComparison();
    void exportFigureDialog();
    void exportAllDialog();

    std::shared_ptr<DumpReader> m_dump;
    QString m_path;
    LayerTableModel* m_model = nullptr;
    QSortFilterProxyModel* m_proxy = nullptr;
    QTableView* m_table = nullptr;
    QLineEdit* m_filter = nullptr;
    QCustomPlot* m_depth = nullptr;
    QTabWidget* m_tabs = nullptr;
    LayerView* m_layerView = nullptr;
    OutputView* m_outputView = nullptr;
    DetectionPanel* m_detections = nullptr;
    SummaryView* m_summary = nullptr;
    ImagesView* m_images = nullptr;
    HistogramView* m_histogram = nullptr;
    GraphView* m_graph = nullptr;
    QTabWidget* m_browserTabs = nullptr;
    QStackedWidget* m_views = nullptr; // a welcome page until a dump is open, then the tabs
    QWidget* m_welcome = nullptr;
    QMenu* m_recentMenu = nullptr;
    QAction* m_exportAction = nullptr;
    QLabel* m_readout = nullptr;
    QFutureWatcher<OpenResult> m_openWatcher;
};

} // namespace qs
