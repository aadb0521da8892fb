#include "comparisondialog.h"

#include <QApplication>
#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QProcess>
#include <QRegularExpression>
#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>

namespace qs {

ComparisonDialog::ComparisonDialog(QWidget* parent) : QDialog(parent) {
    setWindowTitle(tr("New comparison"));
    QSettings settings;
    auto fileRow = [this](QLineEdit*& edit, const QString& key, const QString& filter, bool save) {
        edit = new QLineEdit(QSettings().value(key).toString());
        auto* button = new QPushButton(tr("Browse…"));
        connect(button, &QPushButton::clicked, this, [this, edit, filter, save] { browse(edit, filter, save); });
        m_inputs << edit << button;
        auto* row = new QHBoxLayout;
        row->addWidget(edit, 1);
        row->addWidget(button);
        return row;
    };
    const QString models = tr("Models (*.pt *.pth *.torchscript *.onnx);;TorchScript models (*.pt *.pth *.torchscript);;ONNX models (*.onnx);;All files (*)");
    auto* form = new QFormLayout;
    form->addRow(tr("Original model"), fileRow(m_original, QStringLiteral("compare/original"), models, false));
    form->addRow(tr("Quantized model"), fileRow(m_quantized, QStringLiteral("compare/quantized"), models, false));
    m_images = new QListWidget;
    m_images->addItems(settings.value(QStringLiteral("compare/images")).toStringList());
    auto* addImages = new QPushButton(tr("Add images…"));
    auto* clearImages = new QPushButton(tr("Clear"));
    connect(addImages, &QPushButton::clicked, this, [this] {
        const QStringList files = QFileDialog::getOpenFileNames(this, tr("Input images"), QString(),
                                                                tr("Images (*.png *.jpg *.jpeg *.bmp)"));
        m_images->addItems(files);
    });
    connect(clearImages, &QPushButton::clicked, m_images, &QListWidget::clear);
    m_inputs << m_images << addImages << clearImages;
    auto* imageButtons = new QVBoxLayout;
    imageButtons->addWidget(addImages);
    imageButtons->addWidget(clearImages);
    imageButtons->addStretch();
    auto* imageRow = new QHBoxLayout;
    imageRow->addWidget(m_images, 1);
    imageRow->addLayout(imageButtons);
    form->addRow(tr("Images"), imageRow);
    form->addRow(tr("Output dump"), fileRow(m_out, QStringLiteral("compare/out"), tr("Dumps (*.h5)"), true));
    // options, each remembered from the last run (QSettings "compare/<name>")
    auto combo = [&settings](const QString& key, const QStringList& items, const QString& fallback) {
        auto* c = new QComboBox;
        c->addItems(items);
        c->setCurrentText(settings.value(QStringLiteral("compare/") + key, fallback).toString());
        c->setObjectName(key);
        return c;
    };
    auto text = [&settings](const QString& key, const QString& placeholder) {
        auto* e = new QLineEdit(settings.value(QStringLiteral("compare/") + key).toString());
        e->setObjectName(key);
        e->setPlaceholderText(placeholder);
        return e;
    };
    m_dtype = combo(QStringLiteral("dtype"), {QStringLiteral("f16"), QStringLiteral("f32")}, QStringLiteral("f16"));
    m_dtype->setToolTip(tr("How activations are stored: f16 halves the dump, f32 keeps every bit"));
    m_gzip = new QSpinBox;
    m_gzip->setRange(0, 9);
    m_gzip->setSpecialValueText(tr("no compression"));
    m_gzip->setPrefix(tr("gzip level "));
    m_gzip->setObjectName(QStringLiteral("gzip"));
    m_gzip->setValue(settings.value(QStringLiteral("compare/gzip"), 0).toInt());
    auto* storageRow = new QHBoxLayout;
    storageRow->addWidget(m_dtype);
    storageRow->addWidget(m_gzip);
    storageRow->addStretch();
    form->addRow(tr("Stored as"), storageRow);
    m_threads = new QSpinBox;
    m_threads->setRange(0, 256);
    m_threads->setSpecialValueText(tr("LibTorch default"));
    m_threads->setValue(settings.value(QStringLiteral("compare/threads"), 0).toInt());
    m_engine = combo(QStringLiteral("engine"), {QStringLiteral("onednn"), QStringLiteral("qnnpack")}, QStringLiteral("onednn"));
    m_engine->setToolTip(tr("The quantized engine the INT8 model runs on"));
    m_onnxInt8 = combo(QStringLiteral("onnxInt8"), {QStringLiteral("auto"), QStringLiteral("kernels"), QStringLiteral("simulated")},
                       QStringLiteral("auto"));
    m_onnxInt8->setToolTip(tr("INT8 ONNX models: auto runs a convolution or matrix product as an INT8 kernel where it "
                              "gives ONNX's numbers on this CPU, kernels wherever the QDQ pattern allows, simulated "
                              "ONNX's formulas in float everywhere"));
    auto* runRow = new QHBoxLayout;
    runRow->addWidget(m_threads);
    runRow->addWidget(new QLabel(tr("engine")));
    runRow->addWidget(m_engine);
    runRow->addWidget(new QLabel(tr("ONNX INT8")));
    runRow->addWidget(m_onnxInt8);
    runRow->addStretch();
    form->addRow(tr("Threads"), runRow);
    m_size = text(QStringLiteral("size"), tr("WxH, empty: the first image's size"));
    m_original->setObjectName(QStringLiteral("original"));
    m_quantized->setObjectName(QStringLiteral("quantized"));
    m_out->setObjectName(QStringLiteral("out"));
    form->addRow(tr("Input size"), m_size);
    m_mean = text(QStringLiteral("mean"), tr("r,g,b subtracted from pixels in [0,1] (ImageNet: 0.485,0.456,0.406)"));
    m_std = text(QStringLiteral("std"), tr("r,g,b dividing after the mean (ImageNet: 0.229,0.224,0.225)"));
    m_bgr = new QCheckBox(tr("Feed channels as B, G, R"));
    m_bgr->setObjectName(QStringLiteral("bgr"));
    m_bgr->setChecked(settings.value(QStringLiteral("compare/bgr"), false).toBool());
    form->addRow(tr("Mean"), m_mean);
    form->addRow(tr("Std"), m_std);
    form->addRow(QString(), m_bgr);
    m_layers = text(QStringLiteral("layers"), tr("only layers matching these globs, comma-separated (e.g. backbone.*)"));
    form->addRow(tr("Layers"), m_layers);
    m_ops = combo(QStringLiteral("ops"), {QStringLiteral("conv"), QStringLiteral("conv,linear")}, QStringLiteral("conv"));
    m_tapAt = combo(QStringLiteral("tapAt"), {QStringLiteral("block"), QStringLiteral("output")}, QStringLiteral("block"));
    m_tapAt->setToolTip(tr("block: after the convolution's batch norm and activation (what INT8 kernels fuse); "
                           "output: the convolution's own output"));
    auto* tapRow = new QHBoxLayout;
    tapRow->addWidget(m_ops);
    tapRow->addWidget(new QLabel(tr("recorded at")));
    tapRow->addWidget(m_tapAt);
    tapRow->addStretch();
    form->addRow(tr("Tap"), tapRow);
    m_decode = combo(QStringLiteral("decode"),
                     {QStringLiteral("auto"), QStringLiteral("none"), QStringLiteral("torchvision"), QStringLiteral("yolov5"),
                      QStringLiteral("yolov8")},
                     QStringLiteral("auto"));
    m_decode->setToolTip(tr("How outputs are stored: auto decodes raw YOLO tensors into detections"));
    form->addRow(tr("Outputs"), m_decode);
    m_inputs << m_dtype << m_gzip << m_threads << m_engine << m_onnxInt8 << m_size << m_mean << m_std << m_bgr << m_layers << m_ops
             << m_tapAt << m_decode;

    m_progress = new QProgressBar;
    m_progress->setVisible(false);
    m_stage = new QLabel;
    m_stage->setObjectName(QStringLiteral("stage"));
    m_buttons = new QDialogButtonBox(QDialogButtonBox::Cancel);
    m_run = m_buttons->addButton(tr("Run"), QDialogButtonBox::AcceptRole);
    connect(m_run, &QPushButton::clicked, this, &ComparisonDialog::start);
    connect(m_buttons, &QDialogButtonBox::rejected, this, &ComparisonDialog::reject);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(m_stage);
    layout->addWidget(m_progress);
    layout->addWidget(m_buttons);
    resize(680, 640);
}

ComparisonDialog::~ComparisonDialog() {
    if (m_process && m_process->state() != QProcess::NotRunning) {
        m_process->terminate(); // the CLI removes its partial file on SIGTERM
        m_process->waitForFinished(10000);
    }
}

QString ComparisonDialog::cliProgram() {
    const QString env = qEnvironmentVariable("QS_CLI");
    if (!env.isEmpty())
        return env;
    const QDir here(QCoreApplication::applicationDirPath());
    for (const QString& candidate : {here.filePath(QStringLiteral("quantscope-cli")),
                                     here.filePath(QStringLiteral("../cli/quantscope-cli")),
                                     here.filePath(QStringLiteral("../app/cli/quantscope-cli"))})
        if (QFileInfo(candidate).isExecutable())
            return QFileInfo(candidate).canonicalFilePath();
    return QStringLiteral("quantscope-cli"); // from PATH
}

QString ComparisonDialog::browse(QLineEdit* edit, const QString& filter, bool save) {
    const QString path = save ? QFileDialog::getSaveFileName(this, tr("Save dump as"), edit->text(), filter)
                              : QFileDialog::getOpenFileName(this, tr("Model"), edit->text(), filter);
    if (!path.isEmpty())
        edit->setText(path);
    return path;
}

void ComparisonDialog::setRunning(bool running) {
    m_running = running;
    m_run->setEnabled(!running);
    m_progress->setVisible(running);
    for (QWidget* w : m_inputs) // nothing the running job reads may change under it
        w->setEnabled(!running);
}

void ComparisonDialog::start() {
    if (m_original->text().isEmpty() || m_quantized->text().isEmpty() || m_out->text().isEmpty() ||
        m_images->count() == 0) {
        QMessageBox::warning(this, tr("New comparison"), tr("Give both models, at least one image and the output dump."));
        return;
    }
    const QFileInfo out(m_out->text());
    if (out.exists()) { // never replace a file the user has without asking
        auto* ask = new QMessageBox(QMessageBox::Question, tr("New comparison"),
                                    tr("%1 already exists. Replace it with the new comparison?").arg(out.filePath()),
                                    QMessageBox::Yes | QMessageBox::No, this);
        ask->setObjectName(QStringLiteral("overwriteBox"));
        ask->setDefaultButton(QMessageBox::No);
        ask->setAttribute(Qt::WA_DeleteOnClose);
        connect(ask, &QMessageBox::buttonClicked, this, [this, ask](QAbstractButton* button) {
            if (ask->standardButton(button) == QMessageBox::Yes)
                launch();
        });
        ask->open(); // window-modal, not blocking
        return;
    }
    launch();
}

QStringList ComparisonDialog::arguments() const {
    QStringList args = {QStringLiteral("compare"), QStringLiteral("--original"), m_original->text(),
                        QStringLiteral("--quantized"), m_quantized->text(), QStringLiteral("--out"), m_out->text(),
                        QStringLiteral("--dtype"), m_dtype->currentText(), QStringLiteral("--threads"),
                        QString::number(m_threads->value()), QStringLiteral("--engine"), m_engine->currentText(),
                        QStringLiteral("--onnx-int8"), m_onnxInt8->currentText(),
                        QStringLiteral("--ops"), m_ops->currentText(), QStringLiteral("--tap-at"), m_tapAt->currentText(),
                        QStringLiteral("--decode"), m_decode->currentText()};
    for (int i = 0; i < m_images->count(); ++i)
        args << QStringLiteral("--image") << m_images->item(i)->text();
    if (m_gzip->value() > 0)
        args << QStringLiteral("--gzip") << QString::number(m_gzip->value());
    const std::pair<const char*, QLineEdit*> optional[] = {{"--size", m_size}, {"--mean", m_mean}, {"--std", m_std}};
    for (const auto& [option, edit] : optional)
        if (!edit->text().trimmed().isEmpty())
            args << QLatin1String(option) << edit->text().trimmed();
    if (m_bgr->isChecked())
        args << QStringLiteral("--bgr");
    for (const QString& glob : m_layers->text().split(QLatin1Char(','), Qt::SkipEmptyParts))
        if (!glob.trimmed().isEmpty())
            args << QStringLiteral("--layers") << glob.trimmed();
    return args;
}

void ComparisonDialog::remember() const {
    QSettings settings;
    QStringList images;
    for (int i = 0; i < m_images->count(); ++i)
        images << m_images->item(i)->text();
    settings.setValue(QStringLiteral("compare/original"), m_original->text());
    settings.setValue(QStringLiteral("compare/quantized"), m_quantized->text());
    settings.setValue(QStringLiteral("compare/out"), m_out->text());
    settings.setValue(QStringLiteral("compare/images"), images);
    const std::pair<const char*, QComboBox*> combos[] = {{"dtype", m_dtype},   {"engine", m_engine}, {"onnxInt8", m_onnxInt8},
                                                         {"ops", m_ops},       {"tapAt", m_tapAt},   {"decode", m_decode}};
    for (const auto& [key, c] : combos)
        settings.setValue(QStringLiteral("compare/") + QLatin1String(key), c->currentText());
    const std::pair<const char*, QLineEdit*> edits[] = {{"size", m_size}, {"mean", m_mean}, {"std", m_std}, {"layers", m_layers}};
    for (const auto& [key, e] : edits)
        settings.setValue(QStringLiteral("compare/") + QLatin1String(key), e->text());
    settings.setValue(QStringLiteral("compare/threads"), m_threads->value());
    settings.setValue(QStringLiteral("compare/gzip"), m_gzip->value());
    settings.setValue(QStringLiteral("compare/bgr"), m_bgr->isChecked());
}

void ComparisonDialog::launch() {
    const QStringList args = arguments();
    remember();

    setRunning(true);
    m_cancelled = false;
    m_errors.clear();
    m_stage->setText(tr("Starting…"));
    m_process = new QProcess(this);
    // progress arrives as plain lines on stderr: "stage: done/total (pct%) detail"
    static const QRegularExpression progressLine(QStringLiteral("^(\\w+): (\\d+)/(\\d+) \\(\\d+%\\) ?(.*)$"));
    connect(m_process, &QProcess::readyReadStandardError, this, [this] {
        while (m_process->canReadLine()) {
            const QString line = QString::fromUtf8(m_process->readLine()).trimmed();
            const auto match = progressLine.match(line);
            if (match.hasMatch()) {
                m_stage->setText(match.captured(1) + QLatin1Char(' ') + match.captured(4));
                m_progress->setMaximum(std::max(1, match.captured(3).toInt()));
                m_progress->setValue(match.captured(2).toInt());
            } else if (!line.isEmpty()) {
                m_errors += line + QLatin1Char('\n');
            }
        }
    });
    connect(m_process, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
        if (error != QProcess::FailedToStart)
            return;
        setRunning(false);
        QMessageBox::critical(this, tr("Comparison failed"), tr("Cannot run %1").arg(cliProgram()));
    });
    connect(m_process, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
        m_process->setReadChannel(QProcess::StandardError);
        m_errors += QString::fromUtf8(m_process->readAllStandardError());
        m_process->deleteLater();
        m_process = nullptr;
        setRunning(false);
        if (m_cancelled) {
            m_stage->setText(tr("Cancelled; nothing was written."));
            return;
        }
        if (status != QProcess::NormalExit || code != 0) {
            QString message;
            for (const QString& line : m_errors.split(QLatin1Char('\n'), Qt::SkipEmptyParts))
                if (line.contains(QLatin1String("error")))
                    message = line;
            message.remove(QStringLiteral("quantscope-cli: error: "));
            if (message.isEmpty())
                message = m_errors.trimmed().isEmpty() ? tr("quantscope-cli exited with code %1").arg(code) : m_errors.trimmed();
            QMessageBox::critical(this, tr("Comparison failed"), message);
            m_stage->setText(message);
            return;
        }
        emit dumpWritten(m_out->text());
        accept();
    });
    m_process->setReadChannel(QProcess::StandardError);
    m_process->start(cliProgram(), args);
}

void ComparisonDialog::reject() {
    if (m_running && m_process) {
        m_cancelled = true;
        m_process->terminate(); // SIGTERM: the CLI stops at its next step and removes its partial file
        m_stage->setText(tr("Cancelling…"));
        return;
    }
    QDialog::reject();
}

} // namespace qs
