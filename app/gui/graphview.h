#pragma once
// The graph tab: the data flow among the tapped layers (edges recorded by compare from
// the original model's graph), top to bottom, each node coloured by its SQNR. Module
// prefixes group into one node (coloured by its worst member) so that a 150-layer
// detector stays readable; a click selects a layer (or a group's worst layer) everywhere,
// a double-click expands a group. Fit, zoom (wheel), drag to pan, and a search field that
// selects the next layer whose name contains the text.

#include "dumpreader.h"

#include <QGraphicsView>
#include <QSet>
#include <QString>
#include <QWidget>

#include <memory>
#include <vector>

class QLineEdit;
class QCheckBox;
class QSpinBox;
class QLabel;
class QGraphicsScene;

namespace qs {

// The laid-out graph: a pure function of the layers and the grouping, testable without
// a window. Groups: layers sharing the first `depth` components of their name (depth 0:
// none) form one node unless the prefix is in `expanded`.
struct GraphNode {
    std::vector<int> layers;  // members, execution order
    QString label;            // layer name, or "prefix (n layers)"
    QString prefix;           // group prefix ("" for a single layer)
    double worstSqnrDb = 0;
    int rank = 0;             // row, top = 0
    double x = 0, y = 0;      // centre, scene coordinates
};
struct GraphLayout {
    std::vector<GraphNode> nodes;
    std::vector<std::pair<int, int>> edges; // node -> node, as drawn
    int impliedEdges = 0;                   // left out by reduce: a longer path implies them
    std::vector<int> nodeOfLayer;           // layer index -> node
    bool hasEdges = false;                  // false for dumps made before edges were recorded
};
// reduce: leave out an edge u -> v when v is reachable from u by a longer path (a skip
// connection, or the over-approximated inputs of an FPN's loop, docs/dump-format.md):
// the drawing keeps the structure, the dump keeps every edge.
GraphLayout layoutGraph(const std::vector<LayerSummary>& layers, int depth, const QSet<QString>& expanded,
                        bool reduce = false);
// 0 (no grouping) when the layers are at most `maxNodes`; else the finest grouping (the
// largest prefix depth) that leaves at most `maxNodes` nodes, or 1.
int autoGroupDepth(const std::vector<LayerSummary>& layers, int maxNodes);

class GraphCanvas : public QGraphicsView {
    Q_OBJECT
public:
    explicit GraphCanvas(QWidget* parent = nullptr);
signals:
    void nodeClicked(int node);
    void nodeDoubleClicked(int node);
protected:
    void wheelEvent(QWheelEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
};

class GraphView : public QWidget {
    Q_OBJECT
public:
    explicit GraphView(QWidget* parent = nullptr);
    void setDump(std::shared_ptr<DumpReader> dump);
    void showLayer(int layer);      // highlights it (expanding its group), no signal
    void fit();
    void readableView();
    int groupDepth() const;
    void setGroupDepth(int depth);
    void expand(const QString& prefix);
    const GraphLayout& graph() const { return m_layout; }
    GraphCanvas* canvas() const { return m_view; }
    QLineEdit* searchField() const { return m_search; }
    // Renders the whole graph (for export), fitted into the painter's target.
    void render(QPainter* painter, const QRectF& target);

signals:
    void layerChosen(int layer);

protected:
    void showEvent(QShowEvent* event) override;

private:
    void rebuild();
    void search();
    void nodeClicked(int node);

    std::shared_ptr<DumpReader> m_dump;
    GraphLayout m_layout;
    QSet<QString> m_expanded;
    int m_current = -1;
    bool m_viewPending = false; // set up the view when first shown (a hidden tab has no size)
    QGraphicsScene* m_scene = nullptr;
    GraphCanvas* m_view = nullptr;
    QSpinBox* m_depth = nullptr;
    QCheckBox* m_reduce = nullptr;
    QLineEdit* m_search = nullptr;
    QLabel* m_status = nullptr;
};

} // namespace qs
