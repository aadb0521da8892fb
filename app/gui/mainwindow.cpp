#include "mainwindow.h"

#include "comparisondialog.h"
#include "detectionpanel.h"
#include "detectionview.h"
#include "figureexport.h"
#include "graphview.h"
#include "histogramview.h"
#include "imagesview.h"
#include "layertablemodel.h"
#include "layerview.h"
#include "outputview.h"
#include "qcp.h"
#include "summaryview.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QKeyEvent>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProcess>
#include <QProgressDialog>
#include <QScreen>
#include <QSettings>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>

namespace qs {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setWindowTitle(tr("QuantScope"));
    setAcceptDrops(true);

    m_model = new LayerTableModel(this);
    m_proxy = new QSortFilterProxyModel(this);
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(LayerTableModel::SortRole);
    m_proxy->setFilterKeyColumn(LayerTableModel::Name);
    m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_filter = new QLineEdit;
    m_filter->setPlaceholderText(tr("Filter layers by name…"));
    m_filter->setClearButtonEnabled(true);
    connect(m_filter, &QLineEdit::textChanged, m_proxy, &QSortFilterProxyModel::setFilterFixedString);
    m_table = new QTableView;
    m_table->setModel(m_proxy);
    m_table->setSortingEnabled(true);
    m_table->sortByColumn(LayerTableModel::Index, Qt::AscendingOrder);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->hide();
    m_table->horizontalHeader()->setStretchLastSection(true);
    // SQNR, the headline, right after the name: visible without scrolling at 1280 px
    m_table->horizontalHeader()->moveSection(LayerTableModel::Sqnr, LayerTableModel::Name + 1);
    m_table->setAlternatingRowColors(true);
    connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this, &MainWindow::layerSelected);

    m_depth = new QCustomPlot;
    m_depth->setMinimumHeight(160);
    m_depth->xAxis->setLabel(tr("layer (execution order)"));
    m_depth->yAxis->setLabel(tr("SQNR dB"));
    auto* graph = m_depth->addGraph();
    graph->setLineStyle(QCPGraph::lsLine);
    graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
    graph->setSelectable(QCP::stSingleData);
    auto* marker = m_depth->addGraph();
    marker->setLineStyle(QCPGraph::lsNone);
    marker->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::red, 2), Qt::NoBrush, 11));
    m_depth->setInteractions(QCP::iSelectPlottables | QCP::iRangeDrag | QCP::iRangeZoom);
    m_depth->axisRect()->setRangeZoom(Qt::Horizontal);
    QSharedPointer<QCPAxisTickerFixed> integerTicks(new QCPAxisTickerFixed);
    integerTicks->setTickStep(1.0);
    integerTicks->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    m_depth->xAxis->setTicker(integerTicks);
    connect(m_depth, &QCustomPlot::plottableClick, this, [this](QCPAbstractPlottable* p, int dataIndex, QMouseEvent*) {
        if (p == m_depth->graph(0))
            selectLayer(static_cast<int>(std::lround(m_depth->graph(0)->data()->at(dataIndex)->key)));
    });

    auto* layersPage = new QWidget;
    auto* layersLayout = new QVBoxLayout(layersPage);
    layersLayout->setContentsMargins(0, 0, 0, 0);
    layersLayout->addWidget(m_filter);
    layersLayout->addWidget(m_table, 1);
    m_images = new ImagesView;
    m_browserTabs = new QTabWidget;
    m_browserTabs->setObjectName(QStringLiteral("browserTabs"));
    m_browserTabs->addTab(layersPage, tr("Layers"));
    m_browserTabs->addTab(m_images, tr("Images"));
    auto* left = new QWidget;
    auto* leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(0, 0, 0, 0);
    leftLayout->addWidget(m_browserTabs, 1);
    leftLayout->addWidget(m_depth);

    m_tabs = new QTabWidget;
    m_layerView = new LayerView;
    m_outputView = new OutputView;
    m_detections = new DetectionPanel;
    m_summary = new SummaryView;
    m_histogram = new HistogramView;
    m_graph = new GraphView;
    m_tabs->addTab(m_layerView, tr("Layer"));
    m_tabs->addTab(m_histogram, tr("Histogram"));
    m_tabs->addTab(m_graph, tr("Graph"));
    m_tabs->addTab(m_outputView, tr("Output error"));
    m_tabs->addTab(m_detections, tr("Detections"));
    m_tabs->addTab(m_summary, tr("Summary"));

    // before a dump is open: what to do, not empty plots with made-up axes
    m_welcome = new QLabel(tr("<h2>QuantScope</h2><p>Where INT8 quantization hurts a CNN, layer by layer.</p>"
                              "<p><b>File ▸ Open dump…</b> (Ctrl+O), or drop a dump here.<br>"
                              "<b>File ▸ New comparison…</b> (Ctrl+N) runs a float and a quantized model "
                              "on your images and opens the dump it writes.</p>"));
    m_welcome->setObjectName(QStringLiteral("welcome"));
    static_cast<QLabel*>(m_welcome)->setAlignment(Qt::AlignCenter);
    static_cast<QLabel*>(m_welcome)->setWordWrap(true);
    m_views = new QStackedWidget;
    m_views->addWidget(m_welcome);
    m_views->addWidget(m_tabs);
    m_depth->setVisible(false);

    auto* split = new QSplitter(Qt::Horizontal);
    split->setObjectName(QStringLiteral("mainSplitter"));
    split->addWidget(left);
    split->addWidget(m_views);
    split->setStretchFactor(0, 2);
    split->setStretchFactor(1, 3);
    setCentralWidget(split);

    m_readout = new QLabel;
    statusBar()->addPermanentWidget(m_readout, 1);
    connect(m_layerView, &LayerView::readout, m_readout, &QLabel::setText);
    connect(m_layerView, &LayerView::failed, this,
            [this](const QString& message) { showError(tr("Cannot show the layer"), message); });
    // one current image for every view: whichever view changes it, the others follow
    connect(m_layerView, &LayerView::imageChanged, this, &MainWindow::selectImage);
    connect(m_outputView, &OutputView::imageChanged, this, &MainWindow::selectImage);
    connect(m_detections, &DetectionPanel::imageChanged, this, &MainWindow::selectImage);
    connect(m_images, &ImagesView::imageChosen, this, &MainWindow::selectImage);
    connect(m_images, &ImagesView::layerChosen, this, &MainWindow::selectLayer);
    connect(m_graph, &GraphView::layerChosen, this, &MainWindow::selectLayer);
    connect(m_outputView, &OutputView::picked, this, [this](int image, int original, int quantized) {
        if (quantized < 0)
            return; // a tensor element: nothing to show elsewhere
        selectImage(image);
        m_detections->selectPair(original, quantized);
    });
    connect(&m_openWatcher, &QFutureWatcher<OpenResult>::finished, this, [this] { opened(m_openWatcher.result()); });

    buildMenus();
    qApp->installEventFilter(this); // see eventFilter: shortcuts over text fields
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
    const bool splitRestored = split->restoreState(settings.value(QStringLiteral("window/splitter")).toByteArray());
    if (!settings.contains(QStringLiteral("window/geometry"))) {
        // a first start: 1400x900, or 95 % of a smaller screen (a 1280x720 laptop)
        const QRect screen = this->screen() ? this->screen()->availableGeometry() : QRect(0, 0, 1400, 900);
        resize(QSize(1400, 900)
                   .boundedTo(QSize(screen.width() * 95 / 100, screen.height() * 95 / 100))
                   .expandedTo(minimumSizeHint()));
    }
    if (!splitRestored) { // the layer list gets room for whole names (~30 %, at least 380 px)
        const int left = std::max(380, width() * 3 / 10);
        split->setSizes({left, std::max(1, width() - left)});
    }
}

MainWindow::~MainWindow() { qApp->removeEventFilter(this); }

bool MainWindow::eventFilter(QObject* watched, QEvent* event) {
    auto* widget = qobject_cast<QWidget*>(watched);
    if (!widget || widget->window() != this)
        return QMainWindow::eventFilter(watched, event);
    if (event->type() == QEvent::ShortcutOverride) {
        // A line edit claims Ctrl+E ("end of line" on X11) before the menu sees it. Leaving
        // the override unaccepted lets the window's own shortcut fire.
        auto* key = static_cast<QKeyEvent*>(event);
        if (m_exportAction && QKeySequence(key->keyCombination()) == m_exportAction->shortcut())
            return true;
    }
    if (watched == m_filter && event->type() == QEvent::KeyPress) {
        auto* key = static_cast<QKeyEvent*>(event);
        switch (key->key()) {
        case Qt::Key_Up:
        case Qt::Key_Down:
        case Qt::Key_PageUp:
        case Qt::Key_PageDown: // browse the filtered list without leaving the field
            QCoreApplication::sendEvent(m_table, event);
            return true;
        default:
            break;
        }
    }
    return QMainWindow::eventFilter(watched, event);
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&New comparison…"), QKeySequence::New, this, &MainWindow::newComparison);
    file->addAction(tr("&Open dump…"), QKeySequence::Open, this, [this] {
        QSettings settings;
        const QString path = QFileDialog::getOpenFileName(this, tr("Open dump"), settings.value(QStringLiteral("lastDir")).toString(),
                                                          tr("QuantScope dumps (*.h5 *.hdf5);;All files (*)"));
        if (!path.isEmpty())
            openDump(path);
    });
    m_recentMenu = file->addMenu(tr("Open &recent"));
    rebuildRecentMenu();
    file->addSeparator();
    m_exportAction = file->addAction(tr("&Export figure…"), QKeySequence(tr("Ctrl+E")), this,
                                     &MainWindow::exportFigureDialog);
    file->addAction(tr("Export &all layers…"), this, &MainWindow::exportAllDialog);
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About QuantScope"), this, [this] {
        QMessageBox::about(this, tr("About QuantScope"),
                           tr("<b>QuantScope %1</b><p>Where INT8 quantization hurts a CNN, layer by layer.</p>")
                               .arg(QCoreApplication::applicationVersion()));
    });
}

void MainWindow::openDump(const QString& path) {
    statusBar()->showMessage(tr("Opening %1…").arg(path));
    m_openWatcher.setFuture(QtConcurrent::run([path] {
        OpenResult r;
        r.path = path;
        try {
            r.dump = qs::openDump(path.toStdString()); // validated in a child process first
        } catch (const std::exception& e) {
            r.error = QString::fromStdString(e.what());
        }
        return r;
    }));
}

bool MainWindow::isOpening() const { return m_openWatcher.isRunning(); }

void MainWindow::opened(const OpenResult& result) {
    statusBar()->clearMessage();
    if (!result.error.isEmpty()) {
        if (!QFileInfo::exists(result.path))
            forgetRecent(result.path); // gone: no point offering it again
        showError(tr("Cannot open dump"), result.error);
        emit openFailed(result.error);
        return;
    }
    m_dump = result.dump;
    m_path = result.path;
    m_views->setCurrentWidget(m_tabs);
    m_depth->setVisible(true);
    setWindowTitle(tr("%1 — QuantScope").arg(QFileInfo(m_path).fileName()));
    m_model->setLayers(m_dump->layers());
    m_layerView->setDump(m_dump);
    m_outputView->setDump(m_dump);
    m_detections->setDump(m_dump);
    m_summary->setDump(m_dump);
    m_images->setDump(m_dump);
    m_histogram->setDump(m_dump);
    m_graph->setDump(m_dump);
    fillDepthPlot();
    m_table->resizeColumnsToContents();
    updateRecent(m_path);
    if (!m_dump->layers().empty()) {
        // start on the worst layer: that is what the user came for
        int worst = 0;
        for (const auto& l : m_dump->layers())
            if (l.metrics.sqnrDb < m_dump->layers()[static_cast<std::size_t>(worst)].metrics.sqnrDb)
                worst = l.index;
        selectLayer(worst);
    }
    emit dumpOpened(m_path);
}

void MainWindow::fillDepthPlot() {
    QVector<double> x, y;
    for (const auto& l : m_dump->layers()) {
        x << l.index;
        y << (std::isfinite(l.metrics.sqnrDb) ? l.metrics.sqnrDb : qQNaN());
    }
    m_depth->graph(0)->setData(x, y, true);
    m_depth->graph(0)->setSelection(QCPDataSelection());
    m_depth->graph(1)->data()->clear();
    m_depth->rescaleAxes();
    // keep the extreme points inside the frame, where they can be clicked
    m_depth->xAxis->setRange(-0.5, std::max(0.5, x.isEmpty() ? 0.5 : x.last() + 0.5));
    m_depth->yAxis->scaleRange(1.2, m_depth->yAxis->range().center());
    m_depth->replot();
}

void MainWindow::selectLayer(int layerIndex) {
    for (int row = 0; row < m_proxy->rowCount(); ++row) {
        const QModelIndex idx = m_proxy->index(row, LayerTableModel::Index);
        if (idx.data(LayerTableModel::LayerIndexRole).toInt() == layerIndex) {
            m_table->setCurrentIndex(idx);
            m_table->scrollTo(idx);
            return;
        }
    }
}

void MainWindow::layerSelected() {
    const QModelIndex current = m_table->currentIndex();
    if (!current.isValid() || !m_dump)
        return;
    const int layer = current.data(LayerTableModel::LayerIndexRole).toInt();
    m_layerView->showLayer(layer);
    m_histogram->showLayer(layer);
    m_graph->showLayer(layer);
    const auto& l = m_dump->layers().at(static_cast<std::size_t>(layer));
    m_depth->graph(1)->setData(QVector<double>{static_cast<double>(layer)}, QVector<double>{l.metrics.sqnrDb});
    m_depth->graph(0)->setSelection(QCPDataSelection()); // the marker shows the layer; no second highlight
    m_depth->replot();
}

void MainWindow::selectImage(int image) {
    if (!m_dump || image < 0 || image >= m_dump->imageCount())
        return;
    m_layerView->setImage(image); // each ignores a value it already has, so this ends
    m_outputView->setImage(image);
    m_detections->setImage(image);
    m_histogram->setImage(image);
    m_images->setImage(image);
}

void MainWindow::updateRecent(const QString& path) {
    QSettings settings;
    QStringList recent = settings.value(QStringLiteral("recentFiles")).toStringList();
    const QString absolute = QFileInfo(path).absoluteFilePath();
    recent.removeAll(absolute);
    recent.prepend(absolute);
    while (recent.size() > 8)
        recent.removeLast();
    settings.setValue(QStringLiteral("recentFiles"), recent);
    settings.setValue(QStringLiteral("lastDir"), QFileInfo(path).absolutePath());
    rebuildRecentMenu();
}

void MainWindow::forgetRecent(const QString& path) {
    QSettings settings;
    QStringList recent = settings.value(QStringLiteral("recentFiles")).toStringList();
    recent.removeAll(QFileInfo(path).absoluteFilePath());
    settings.setValue(QStringLiteral("recentFiles"), recent);
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
    m_recentMenu->clear();
    const QStringList recent = QSettings().value(QStringLiteral("recentFiles")).toStringList();
    for (const QString& path : recent) {
        // "run.h5 — /home/me/experiments": the same name in two folders stays tellable apart
        const QFileInfo info(path);
        const QString dir = QDir::toNativeSeparators(info.absolutePath()).replace(QDir::homePath(), QStringLiteral("~"));
        m_recentMenu->addAction(tr("%1 — %2").arg(info.fileName(), dir), this, [this, path] { openDump(path); })
            ->setToolTip(path);
    }
    m_recentMenu->setEnabled(!recent.isEmpty());
}

void MainWindow::newComparison() {
    auto* dialog = new ComparisonDialog(this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &ComparisonDialog::dumpWritten, this, &MainWindow::openDump);
    dialog->open();
}

QString MainWindow::exportCurrentFigure(const QString& fileName, QSize size, int dpi) {
    FigureFormat format;
    format.size = size;
    format.dpi = dpi;
    QWidget* tab = m_tabs->currentWidget();
    if (tab == m_layerView)
        return exportFigure(m_layerView->figures(), 2, fileName, format);
    if (tab == m_outputView)
        return exportFigure({m_outputView->figure()}, 1, fileName, format);
    if (tab == m_histogram)
        return exportFigure({m_histogram->figure()}, 1, fileName, format);
    if (tab == m_graph)
        return exportPainting([this](QCPPainter& p, QSize into) { m_graph->render(&p, QRectF(QPointF(0, 0), QSizeF(into))); },
                              fileName, format);
    if (tab == m_detections) { // the image fitted into the size asked for, in any format
        const DetectionView* view = m_detections->view();
        const QSizeF content = view->imageSize().isEmpty() ? QSizeF(size) : QSizeF(view->imageSize());
        return exportPainting([view, content](QCPPainter& p, QSize into) { view->paintTo(p, fitted(content, into)); },
                              fileName, format);
    }
    return exportFigure({m_depth}, 1, fileName, format);
}

void MainWindow::exportFigureDialog() {
    QSettings settings;
    const QString path = QFileDialog::getSaveFileName(this, tr("Export figure"), settings.value(QStringLiteral("lastExport")).toString(),
                                                      tr("PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)"));
    if (path.isEmpty())
        return;
    QDialog ask(this);
    ask.setWindowTitle(tr("Figure size"));
    auto* form = new QFormLayout(&ask);
    auto* width = new QSpinBox;
    auto* height = new QSpinBox;
    auto* dpi = new QSpinBox;
    width->setRange(200, 10000);
    height->setRange(200, 10000);
    dpi->setRange(50, 1200);
    width->setValue(settings.value(QStringLiteral("export/width"), 1600).toInt());
    height->setValue(settings.value(QStringLiteral("export/height"), 1200).toInt());
    dpi->setValue(settings.value(QStringLiteral("export/dpi"), 150).toInt());
    form->addRow(tr("Width (px)"), width);
    form->addRow(tr("Height (px)"), height);
    form->addRow(tr("Resolution (DPI)"), dpi);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    form->addRow(buttons);
    connect(buttons, &QDialogButtonBox::accepted, &ask, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, &ask, &QDialog::reject);
    if (ask.exec() != QDialog::Accepted)
        return;
    settings.setValue(QStringLiteral("export/width"), width->value());
    settings.setValue(QStringLiteral("export/height"), height->value());
    settings.setValue(QStringLiteral("export/dpi"), dpi->value());
    settings.setValue(QStringLiteral("lastExport"), path);
    const QString error = exportCurrentFigure(path, QSize(width->value(), height->value()), dpi->value());
    if (!error.isEmpty())
        showError(tr("Export failed"), error);
    else
        statusBar()->showMessage(tr("Exported %1").arg(path), 5000);
}

void MainWindow::exportAllDialog() {
    if (!m_dump) {
        QMessageBox::information(this, tr("Export all layers"), tr("Open a dump first."));
        return;
    }
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Export every layer into"));
    if (dir.isEmpty())
        return;
    // The same headless renderer as `quantscope-cli export`, in a child process: the GUI
    // stays responsive and Cancel simply ends the child.
    auto* process = new QProcess(this);
    auto* progress = new QProgressDialog(tr("Exporting layers…"), tr("Cancel"), 0,
                                         static_cast<int>(m_dump->layers().size()), this);
    progress->setWindowModality(Qt::WindowModal);
    progress->setMinimumDuration(0);
    connect(process, &QProcess::readyReadStandardOutput, this, [process, progress] {
        while (process->canReadLine()) {
            const QString line = QString::fromUtf8(process->readLine());
            if (line.startsWith(QLatin1String("exported ")))
                progress->setValue(progress->value() + 1);
        }
    });
    connect(progress, &QProgressDialog::canceled, process, &QProcess::kill);
    connect(process, &QProcess::finished, this, [this, process, progress, dir](int code, QProcess::ExitStatus status) {
        progress->deleteLater();
        const QString err = QString::fromUtf8(process->readAllStandardError());
        process->deleteLater();
        if (status != QProcess::NormalExit)
            statusBar()->showMessage(tr("Export cancelled"), 5000);
        else if (code != 0)
            showError(tr("Export failed"), err);
        else
            statusBar()->showMessage(tr("Exported every layer into %1").arg(dir), 5000);
    });
    process->start(QCoreApplication::applicationFilePath(),
                   {QStringLiteral("--export"), m_path, QStringLiteral("--all"), QStringLiteral("--kind"),
                    QStringLiteral("abs"), QStringLiteral("--format"), QStringLiteral("png"), QStringLiteral("--out"), dir});
}

void MainWindow::showError(const QString& title, const QString& message) {
    // window-modal but not blocking: the event loop (and any test driving it) goes on
    auto* box = new QMessageBox(QMessageBox::Critical, title, message, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setObjectName(QStringLiteral("errorBox"));
    box->open();
}

void MainWindow::closeEvent(QCloseEvent* event) {
    QSettings settings;
    settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("window/state"), saveState());
    if (auto* split = findChild<QSplitter*>(QStringLiteral("mainSplitter")))
        settings.setValue(QStringLiteral("window/splitter"), split->saveState());
    event->accept();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    if (event->mimeData()->hasUrls())
        event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
    const auto urls = event->mimeData()->urls();
    if (!urls.isEmpty() && urls.first().isLocalFile())
        openDump(urls.first().toLocalFile());
}

} // namespace qs
