// bench_gui: opening a large dump to the first painted layer, switching layers and
// images, and opening the graph view of a many-layer dump, in the real main window
// (offscreen platform). Prints figures; asserts nothing.
//   bench_gui DUMP [SWITCHES] [GRAPH_DUMP]

#include "graphview.h"
#include "histogramview.h"
#include "layerview.h"
#include "mainwindow.h"
#include "qcp.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QSignalSpy>
#include <QTest>

#include <algorithm>
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_gui DUMP [SWITCHES] [GRAPH_DUMP]\n");
        return 2;
    }
    const QString dump = QString::fromLocal8Bit(argv[1]);
    const int switches = argc > 2 ? std::atoi(argv[2]) : 20;
    qs::MainWindow w;
    w.resize(1440, 900);
    w.show();
    if (!QTest::qWaitForWindowExposed(&w)) {
        std::fprintf(stderr, "bench_gui: the window was never shown\n");
        return 1;
    }

    QElapsedTimer t;
    QSignalSpy loaded(w.layerView(), &qs::LayerView::loaded);
    t.start();
    w.openDump(dump);
    if (!loaded.wait(60000)) {
        std::fprintf(stderr, "bench_gui: the first layer never loaded\n");
        return 1;
    }
    for (auto* p : w.layerView()->figures())
        p->replot(); // painted
    const double first = t.nsecsElapsed() / 1e6;
    const auto& layers = w.dump()->layers();
    std::vector<double> ms;
    for (int i = 0; i < switches; ++i) {
        const int layer = (i * 7 + 3) % static_cast<int>(layers.size());
        if (layer == w.layerView()->currentLayer())
            continue;
        loaded.clear();
        t.restart();
        w.selectLayer(layer);
        if (!loaded.wait(30000)) {
            std::fprintf(stderr, "bench_gui: layer %d never loaded\n", layer);
            return 1;
        }
        for (auto* p : w.layerView()->figures())
            p->replot();
        ms.push_back(t.nsecsElapsed() / 1e6);
    }
    std::sort(ms.begin(), ms.end());
    // switching image: the layer view (4 maps) and the histogram tab's one-channel scope
    // read that image; measured to the repainted maps
    std::vector<double> imageMs;
    for (int i = 1; w.dump()->imageCount() > 1 && i <= switches; ++i) {
        loaded.clear();
        t.restart();
        w.selectImage(i % w.dump()->imageCount());
        if (!loaded.wait(30000)) {
            std::fprintf(stderr, "bench_gui: image %d never loaded\n", i);
            return 1;
        }
        for (auto* p : w.layerView()->figures())
            p->replot();
        imageMs.push_back(t.nsecsElapsed() / 1e6);
    }
    std::sort(imageMs.begin(), imageMs.end());
    // the graph view of another dump (150 layers): layout, scene and first paint
    double graphMs = -1, flatMs = -1;
    std::size_t graphLayers = 0, graphNodes = 0;
    if (argc > 3) {
        qs::MainWindow g;
        g.resize(1440, 900);
        g.show();
        QSignalSpy opened(&g, &qs::MainWindow::dumpOpened);
        g.openDump(QString::fromLocal8Bit(argv[3]));
        if (!opened.wait(60000)) {
            std::fprintf(stderr, "bench_gui: %s never opened\n", argv[3]);
            return 1;
        }
        t.restart();
        g.graphView()->setDump(g.dump());
        g.tabs()->setCurrentWidget(g.graphView());
        g.graphView()->canvas()->viewport()->repaint();
        graphMs = t.nsecsElapsed() / 1e6;
        graphLayers = g.dump()->layers().size();
        graphNodes = g.graphView()->graph().nodes.size();
        t.restart(); // every layer a node
        g.graphView()->setGroupDepth(0);
        g.graphView()->canvas()->viewport()->repaint();
        flatMs = t.nsecsElapsed() / 1e6;
    }
    const auto& l = layers.front();
    std::printf("bench_gui: %s, %.2f GB, %zu layers of %lldx%lldx%lld\n", qPrintable(dump),
                QFileInfo(dump).size() / 1e9, layers.size(), static_cast<long long>(l.shape[0]),
                static_cast<long long>(l.shape[1]), static_cast<long long>(l.shape[2]));
    std::printf("  open to first painted layer: %.0f ms (target < 1000)\n", first);
    std::printf("  switch layer, mean over channels (4 stored maps, 4 heatmaps): median %.0f ms, min %.0f, max %.0f "
                "over %zu switches (target < 100)\n",
                ms[ms.size() / 2], ms.front(), ms.back(), ms.size());
    if (!imageMs.empty())
        std::printf("  switch image (4 stored maps, 4 heatmaps): median %.0f ms, min %.0f, max %.0f over %zu switches "
                    "(target < 100)\n",
                    imageMs[imageMs.size() / 2], imageMs.front(), imageMs.back(), imageMs.size());
    if (graphMs >= 0)
        std::printf("  open the graph view of %zu layers (%zu nodes shown): %.0f ms (target < 300); all %zu layers "
                    "as nodes: %.0f ms\n",
                    graphLayers, graphNodes, graphMs, graphLayers, flatMs);
    return 0;
}
