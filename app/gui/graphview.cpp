#include "graphview.h"

#include "layertablemodel.h"

#include <QCheckBox>
#include <QGraphicsRectItem>
#include <QGraphicsScene>
#include <QGraphicsSimpleTextItem>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMouseEvent>
#include <QPainterPath>
#include <QPushButton>
#include <QSpinBox>
#include <QStringList>
#include <QVBoxLayout>
#include <QWheelEvent>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

namespace qs {

namespace {

constexpr double kNodeWidth = 230, kNodeHeight = 40, kStepX = 250, kStepY = 80;

// The first `depth` dot-separated components of a layer name, when it has more.
QString prefixOf(const QString& name, int depth) {
    if (depth <= 0)
        return {};
    const QStringList parts = name.split(QLatin1Char('.'));
    if (parts.size() <= depth)
        return {};
    return parts.mid(0, depth).join(QLatin1Char('.'));
}

QString decibels(double v) {
    if (std::isinf(v) && v > 0)
        return QStringLiteral("exact");
    return std::isnan(v) ? QStringLiteral("–") : QStringLiteral("%1 dB").arg(v, 0, 'f', 1);
}

// The layer table's severity colours; layers at 30 dB or better (or exact) light green.
QColor nodeColour(double sqnrDb) {
    const QColor c = LayerTableModel::severityColor(LayerTableModel::severity(sqnrDb));
    return c.isValid() ? c : QColor(205, 235, 205);
}

} // namespace

int autoGroupDepth(const std::vector<LayerSummary>& layers, int maxNodes) {
    if (static_cast<int>(layers.size()) <= maxNodes)
        return 0;
    int best = 1;
    for (int depth = 8; depth >= 1; --depth) { // deepest grouping that is small enough
        const GraphLayout g = layoutGraph(layers, depth, {});
        if (static_cast<int>(g.nodes.size()) <= maxNodes) {
            best = depth;
            break;
        }
    }
    return best;
}

GraphLayout layoutGraph(const std::vector<LayerSummary>& layers, int depth, const QSet<QString>& expanded,
                        bool reduce) {
    GraphLayout g;
    g.nodeOfLayer.assign(layers.size(), -1);
    std::map<QString, int> groupNode;
    for (const auto& l : layers) {
        const QString name = QString::fromStdString(l.name);
        QString prefix = prefixOf(name, depth);
        if (!prefix.isEmpty()) // an expanded group (or one inside it) shows its layers
            for (const QString& e : expanded)
                if (prefix == e || prefix.startsWith(e + QLatin1Char('.')))
                    prefix.clear();
        int node;
        const auto it = prefix.isEmpty() ? groupNode.end() : groupNode.find(prefix);
        if (it != groupNode.end()) {
            node = it->second;
        } else {
            node = static_cast<int>(g.nodes.size());
            g.nodes.push_back({});
            g.nodes.back().prefix = prefix;
            g.nodes.back().worstSqnrDb = std::numeric_limits<double>::infinity();
            if (!prefix.isEmpty())
                groupNode[prefix] = node;
        }
        GraphNode& n = g.nodes[static_cast<std::size_t>(node)];
        n.layers.push_back(l.index);
        if (!std::isnan(l.metrics.sqnrDb))
            n.worstSqnrDb = std::min(n.worstSqnrDb, l.metrics.sqnrDb);
        g.nodeOfLayer[static_cast<std::size_t>(l.index)] = node;
        g.hasEdges = g.hasEdges || !l.inputs.empty();
    }
    for (auto& n : g.nodes) {
        if (n.layers.size() == 1) { // a group of one is just that layer
            n.prefix.clear();
            n.label = QString::fromStdString(layers[static_cast<std::size_t>(n.layers.front())].name);
        } else {
            n.label = QObject::tr("%1 (%2 layers)").arg(n.prefix).arg(n.layers.size());
        }
    }
    // edges among nodes; without recorded edges, execution order is the best guess
    std::set<std::pair<int, int>> edges;
    for (const auto& l : layers) {
        const int to = g.nodeOfLayer[static_cast<std::size_t>(l.index)];
        if (g.hasEdges) {
            for (auto from : l.inputs) {
                const int f = g.nodeOfLayer[static_cast<std::size_t>(from)];
                if (f != to)
                    edges.insert({f, to});
            }
        } else if (l.index > 0) {
            const int f = g.nodeOfLayer[static_cast<std::size_t>(l.index - 1)];
            if (f != to)
                edges.insert({f, to});
        }
    }
    g.edges.assign(edges.begin(), edges.end());
    if (reduce) {
        // transitive reduction over the forward edges (nodes are numbered in execution
        // order): reach[u] = nodes reachable from u, filled from the last node backwards
        const std::size_t n = g.nodes.size();
        std::vector<std::vector<int>> next(n);
        for (const auto& [from, to] : g.edges)
            if (from < to)
                next[static_cast<std::size_t>(from)].push_back(to);
        std::vector<std::vector<bool>> reach(n, std::vector<bool>(n, false));
        for (std::size_t u = n; u-- > 0;)
            for (int v : next[u]) {
                reach[u][static_cast<std::size_t>(v)] = true;
                for (std::size_t w = 0; w < n; ++w)
                    if (reach[static_cast<std::size_t>(v)][w])
                        reach[u][w] = true;
            }
        std::vector<std::pair<int, int>> kept;
        for (const auto& [from, to] : g.edges) {
            bool implied = false;
            if (from < to)
                for (int v : next[static_cast<std::size_t>(from)])
                    if (v != to && reach[static_cast<std::size_t>(v)][static_cast<std::size_t>(to)])
                        implied = true;
            if (implied)
                ++g.impliedEdges;
            else
                kept.push_back({from, to});
        }
        g.edges = std::move(kept);
    }
    // ranks: longest path from the sources, over edges that go forward in execution order
    // (nodes are numbered in the order of their first layer)
    std::vector<std::vector<int>> preds(g.nodes.size());
    for (const auto& [from, to] : g.edges)
        if (from < to)
            preds[static_cast<std::size_t>(to)].push_back(from);
    int ranks = 0;
    for (std::size_t n = 0; n < g.nodes.size(); ++n) {
        int r = 0;
        for (int p : preds[n])
            r = std::max(r, g.nodes[static_cast<std::size_t>(p)].rank + 1);
        g.nodes[n].rank = r;
        ranks = std::max(ranks, r + 1);
    }
    // rows: ordered by the mean x of their predecessors, placed there as far as the
    // spacing allows, then centred on those means
    std::vector<std::vector<int>> rows(static_cast<std::size_t>(ranks));
    for (std::size_t n = 0; n < g.nodes.size(); ++n)
        rows[static_cast<std::size_t>(g.nodes[n].rank)].push_back(static_cast<int>(n));
    for (std::size_t r = 0; r < rows.size(); ++r) {
        auto& row = rows[r];
        std::vector<double> want(g.nodes.size(), 0);
        for (std::size_t i = 0; i < row.size(); ++i) {
            const int n = row[i];
            const auto& p = preds[static_cast<std::size_t>(n)];
            double sum = 0;
            for (int q : p)
                sum += g.nodes[static_cast<std::size_t>(q)].x;
            want[static_cast<std::size_t>(n)] =
                p.empty() ? (static_cast<double>(i) - (static_cast<double>(row.size()) - 1) / 2) * kStepX
                          : sum / static_cast<double>(p.size());
        }
        std::stable_sort(row.begin(), row.end(), [&](int a, int b) {
            return want[static_cast<std::size_t>(a)] < want[static_cast<std::size_t>(b)];
        });
        double wantMean = 0, placedMean = 0, next = -1e300;
        for (int n : row) {
            const double x = std::max(want[static_cast<std::size_t>(n)], next);
            g.nodes[static_cast<std::size_t>(n)].x = x;
            next = x + kStepX;
            wantMean += want[static_cast<std::size_t>(n)];
            placedMean += x;
        }
        const double shift = (wantMean - placedMean) / static_cast<double>(row.size());
        for (int n : row) {
            g.nodes[static_cast<std::size_t>(n)].x += shift;
            g.nodes[static_cast<std::size_t>(n)].y = static_cast<double>(r) * kStepY;
        }
    }
    return g;
}

GraphCanvas::GraphCanvas(QWidget* parent) : QGraphicsView(parent) {
    setDragMode(QGraphicsView::ScrollHandDrag);
    setRenderHint(QPainter::Antialiasing);
    setTransformationAnchor(QGraphicsView::AnchorUnderMouse);
}

void GraphCanvas::wheelEvent(QWheelEvent* event) {
    const double factor = std::pow(1.15, event->angleDelta().y() / 120.0);
    scale(factor, factor);
    event->accept();
}

namespace {
int nodeAt(const QGraphicsView* view, QPoint pos) {
    for (QGraphicsItem* item : view->items(pos)) {
        for (QGraphicsItem* i = item; i; i = i->parentItem())
            if (i->data(0).isValid())
                return i->data(0).toInt();
    }
    return -1;
}
} // namespace

void GraphCanvas::mousePressEvent(QMouseEvent* event) {
    const int node = event->button() == Qt::LeftButton ? nodeAt(this, event->pos()) : -1;
    if (node >= 0)
        emit nodeClicked(node);
    QGraphicsView::mousePressEvent(event);
}

void GraphCanvas::mouseDoubleClickEvent(QMouseEvent* event) {
    const int node = nodeAt(this, event->pos());
    if (node >= 0)
        emit nodeDoubleClicked(node);
    QGraphicsView::mouseDoubleClickEvent(event);
}

GraphView::GraphView(QWidget* parent) : QWidget(parent) {
    m_depth = new QSpinBox;
    m_depth->setObjectName(QStringLiteral("groupDepth"));
    m_depth->setRange(0, 8);
    m_depth->setPrefix(tr("group by module, depth "));
    m_depth->setSpecialValueText(tr("no grouping"));
    m_search = new QLineEdit;
    m_search->setObjectName(QStringLiteral("graphSearch"));
    m_search->setPlaceholderText(tr("Find layer… (Enter: next)"));
    m_search->setClearButtonEnabled(true);
    auto* fitButton = new QPushButton(tr("Fit"));
    auto* collapseAll = new QPushButton(tr("Collapse all"));
    m_reduce = new QCheckBox(tr("Hide implied edges"));
    m_reduce->setObjectName(QStringLiteral("hideImplied"));
    m_reduce->setChecked(true);
    m_reduce->setToolTip(tr("Leave out an edge when a longer path links the same layers (skip connections, "
                            "and the approximate inputs of loops over feature lists); the dump keeps them all"));
    m_status = new QLabel;
    m_status->setObjectName(QStringLiteral("graphStatus"));
    auto* controls = new QHBoxLayout;
    controls->addWidget(m_depth);
    controls->addWidget(collapseAll);
    controls->addWidget(m_reduce);
    controls->addWidget(fitButton);
    controls->addWidget(m_search, 1);
    m_scene = new QGraphicsScene(this);
    m_view = new GraphCanvas;
    m_view->setScene(m_scene);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addWidget(m_view, 1);
    layout->addWidget(m_status);

    connect(m_depth, qOverload<int>(&QSpinBox::valueChanged), this, [this] {
        m_expanded.clear();
        rebuild();
        fit();
    });
    connect(collapseAll, &QPushButton::clicked, this, [this] {
        m_expanded.clear();
        rebuild();
        fit();
    });
    connect(fitButton, &QPushButton::clicked, this, &GraphView::fit);
    connect(m_reduce, &QCheckBox::toggled, this, [this] { rebuild(); });
    connect(m_search, &QLineEdit::returnPressed, this, &GraphView::search);
    connect(m_view, &GraphCanvas::nodeClicked, this, &GraphView::nodeClicked);
    connect(m_view, &GraphCanvas::nodeDoubleClicked, this, [this](int node) {
        const GraphNode& n = m_layout.nodes.at(static_cast<std::size_t>(node));
        if (!n.prefix.isEmpty())
            expand(n.prefix);
    });
}

void GraphView::setDump(std::shared_ptr<DumpReader> dump) {
    m_dump = std::move(dump);
    m_expanded.clear();
    m_current = -1;
    m_depth->blockSignals(true);
    m_depth->setValue(m_dump ? autoGroupDepth(m_dump->layers(), 60) : 0);
    m_depth->blockSignals(false);
    rebuild();
    m_viewPending = !isVisible();
    if (!m_viewPending)
        readableView();
}

void GraphView::showEvent(QShowEvent* event) {
    QWidget::showEvent(event);
    if (m_viewPending) {
        m_viewPending = false;
        readableView();
    }
}

int GraphView::groupDepth() const { return m_depth->value(); }

void GraphView::setGroupDepth(int depth) { m_depth->setValue(depth); }

void GraphView::expand(const QString& prefix) {
    m_expanded.insert(prefix);
    rebuild();
}

void GraphView::fit() {
    if (!m_scene->items().isEmpty())
        m_view->fitInView(m_scene->itemsBoundingRect().adjusted(-20, -20, 20, 20), Qt::KeepAspectRatio);
}

void GraphView::readableView() {
    // the whole graph when its labels stay readable, else readable size around the
    // current layer (Fit shows everything)
    fit();
    if (m_view->transform().m11() < 0.75) {
        m_view->resetTransform();
        m_view->scale(0.75, 0.75);
        if (m_current >= 0 && static_cast<std::size_t>(m_current) < m_layout.nodeOfLayer.size()) {
            const GraphNode& n = m_layout.nodes[static_cast<std::size_t>(m_layout.nodeOfLayer[static_cast<std::size_t>(m_current)])];
            m_view->centerOn(n.x, n.y);
        } else if (!m_layout.nodes.empty()) {
            m_view->centerOn(m_layout.nodes.front().x, m_layout.nodes.front().y);
        }
    }
}

void GraphView::rebuild() {
    m_scene->clear();
    if (!m_dump) {
        m_layout = GraphLayout();
        return;
    }
    m_layout = layoutGraph(m_dump->layers(), m_depth->value(), m_expanded, m_reduce->isChecked());
    const int currentNode = m_current >= 0 && static_cast<std::size_t>(m_current) < m_layout.nodeOfLayer.size()
                                ? m_layout.nodeOfLayer[static_cast<std::size_t>(m_current)]
                                : -1;
    const QPen edgePen(QColor(110, 110, 110), 1.2);
    for (const auto& [from, to] : m_layout.edges) {
        const GraphNode& a = m_layout.nodes[static_cast<std::size_t>(from)];
        const GraphNode& b = m_layout.nodes[static_cast<std::size_t>(to)];
        QPainterPath path(QPointF(a.x, a.y + kNodeHeight / 2));
        const QPointF end(b.x, b.y - kNodeHeight / 2);
        const double bend = std::max(20.0, (end.y() - path.currentPosition().y()) / 2);
        path.cubicTo(QPointF(a.x, a.y + kNodeHeight / 2 + bend), QPointF(b.x, end.y() - bend), end);
        m_scene->addPath(path, edgePen)->setZValue(-1);
        // arrow head
        QPolygonF head;
        head << end << end + QPointF(-4, -8) << end + QPointF(4, -8);
        m_scene->addPolygon(head, edgePen, QBrush(edgePen.color()))->setZValue(-1);
    }
    for (std::size_t i = 0; i < m_layout.nodes.size(); ++i) {
        const GraphNode& n = m_layout.nodes[i];
        const bool group = !n.prefix.isEmpty();
        const QRectF rect(n.x - kNodeWidth / 2, n.y - kNodeHeight / 2, kNodeWidth, kNodeHeight);
        auto* box = m_scene->addRect(rect, QPen(static_cast<int>(i) == currentNode ? QColor(200, 0, 0) : QColor(60, 60, 60),
                                                static_cast<int>(i) == currentNode ? 3.5 : (group ? 2 : 1),
                                                group ? Qt::DashLine : Qt::SolidLine),
                                     QBrush(nodeColour(n.worstSqnrDb)));
        box->setData(0, static_cast<int>(i));
        QString label = n.label;
        QFont font = m_view->font();
        font.setPointSizeF(8);
        const QFontMetricsF metrics(font);
        label = metrics.elidedText(label, Qt::ElideMiddle, kNodeWidth - 10);
        auto* text = new QGraphicsSimpleTextItem(label + QLatin1Char('\n') +
                                                     (group ? tr("worst %1").arg(decibels(n.worstSqnrDb))
                                                            : decibels(n.worstSqnrDb)),
                                                 box);
        text->setFont(font);
        text->setPos(rect.left() + 5, rect.top() + 3);
        box->setToolTip(group ? tr("%1\nworst layer SQNR %2\ndouble-click to expand").arg(n.label, decibels(n.worstSqnrDb))
                              : tr("%1\nSQNR %2").arg(n.label, decibels(n.worstSqnrDb)));
    }
    m_scene->setSceneRect(m_scene->itemsBoundingRect().adjusted(-40, -40, 40, 40));
    m_status->setText(m_layout.hasEdges
                          ? tr("%1 layers as %2 nodes, %3 edges (%4 implied ones hidden). Click: select; "
                               "double-click a dashed group: expand; wheel: zoom.")
                                .arg(m_dump->layers().size()).arg(m_layout.nodes.size()).arg(m_layout.edges.size())
                                .arg(m_layout.impliedEdges)
                          : tr("This dump records no data flow (made by an older QuantScope): layers are chained in "
                               "execution order."));
}

void GraphView::showLayer(int layer) {
    // highlights the node holding the layer (a collapsed group stays collapsed)
    m_current = layer;
    if (!m_dump || layer < 0 || static_cast<std::size_t>(layer) >= m_layout.nodeOfLayer.size())
        return;
    rebuild();
    const GraphNode& shown = m_layout.nodes[static_cast<std::size_t>(m_layout.nodeOfLayer[static_cast<std::size_t>(layer)])];
    m_view->centerOn(shown.x, shown.y);
}

void GraphView::nodeClicked(int node) {
    const GraphNode& n = m_layout.nodes.at(static_cast<std::size_t>(node));
    int chosen = n.layers.front(); // a group stands for its worst member
    for (int l : n.layers)
        if (m_dump->layers()[static_cast<std::size_t>(l)].metrics.sqnrDb <
            m_dump->layers()[static_cast<std::size_t>(chosen)].metrics.sqnrDb)
            chosen = l;
    emit layerChosen(chosen);
}

void GraphView::search() {
    if (!m_dump || m_search->text().isEmpty())
        return;
    const auto& layers = m_dump->layers();
    const int n = static_cast<int>(layers.size());
    for (int step = 1; step <= n; ++step) {
        const int k = ((m_current < 0 ? -1 : m_current) + step) % n;
        if (QString::fromStdString(layers[static_cast<std::size_t>(k)].name).contains(m_search->text(), Qt::CaseInsensitive)) {
            const GraphNode& node = m_layout.nodes[static_cast<std::size_t>(m_layout.nodeOfLayer[static_cast<std::size_t>(k)])];
            if (!node.prefix.isEmpty()) // found inside a group: open it
                m_expanded.insert(node.prefix);
            emit layerChosen(k);
            return;
        }
    }
    m_status->setText(tr("No layer name contains “%1”.").arg(m_search->text()));
}

void GraphView::render(QPainter* painter, const QRectF& target) {
    m_scene->render(painter, target, m_scene->itemsBoundingRect().adjusted(-20, -20, 20, 20), Qt::KeepAspectRatio);
}

} // namespace qs
