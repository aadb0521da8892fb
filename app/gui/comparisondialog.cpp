#include "comparisondialog.h"

#include "compare.h"
#include "error.h"

#include <QApplication>
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
#include <QtConcurrent/QtConcurrentRun>

namespace qs {

ComparisonDialog::ComparisonDialog(QWidget* parent) : QDialog(parent) {
    setWindowTitle(tr("New comparison"));
    QSettings settings;
    auto fileRow = [this](QLineEdit*& edit, const QString& key, const QString& filter, bool save) {
        edit = new QLineEdit(QSettings().value(key).toString());
        auto* button = new QPushButton(tr("Browse…"));
        connect(button, &QPushButton::clicked, this, [this, edit, filter, save] { browse(edit, filter, save); });
        auto* row = new QHBoxLayout;
        row->addWidget(edit, 1);
        row->addWidget(button);
        return row;
    };
    const QString models = tr("TorchScript models (*.pt *.pth *.torchscript);;All files (*)");
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
    auto* imageButtons = new QVBoxLayout;
    imageButtons->addWidget(addImages);
    imageButtons->addWidget(clearImages);
    imageButtons->addStretch();
    auto* imageRow = new QHBoxLayout;
    imageRow->addWidget(m_images, 1);
    imageRow->addLayout(imageButtons);
    form->addRow(tr("Images"), imageRow);
    form->addRow(tr("Output dump"), fileRow(m_out, QStringLiteral("compare/out"), tr("Dumps (*.h5)"), true));
    m_dtype = new QComboBox;
    m_dtype->addItems({QStringLiteral("f16"), QStringLiteral("f32")});
    form->addRow(tr("Stored as"), m_dtype);
    m_threads = new QSpinBox;
    m_threads->setRange(0, 256);
    m_threads->setSpecialValueText(tr("LibTorch default"));
    form->addRow(tr("Threads"), m_threads);
    m_size = new QLineEdit;
    m_size->setPlaceholderText(tr("WxH, empty: the first image's size"));
    form->addRow(tr("Input size"), m_size);

    m_progress = new QProgressBar;
    m_progress->setVisible(false);
    m_stage = new QLabel;
    m_buttons = new QDialogButtonBox(QDialogButtonBox::Cancel);
    m_run = m_buttons->addButton(tr("Run"), QDialogButtonBox::AcceptRole);
    connect(m_run, &QPushButton::clicked, this, &ComparisonDialog::start);
    connect(m_buttons, &QDialogButtonBox::rejected, this, &ComparisonDialog::reject);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(m_stage);
    layout->addWidget(m_progress);
    layout->addWidget(m_buttons);
    resize(640, 480);
}

ComparisonDialog::~ComparisonDialog() {
    if (m_cancel)
        m_cancel->store(true); // a running job stops at its next progress report
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
    for (QWidget* w : std::initializer_list<QWidget*>{m_original, m_quantized, m_images, m_out, m_dtype, m_threads, m_size})
        w->setEnabled(!running);
}

void ComparisonDialog::start() {
    CompareOptions o;
    o.originalPath = m_original->text().toStdString();
    o.quantizedPath = m_quantized->text().toStdString();
    o.outPath = m_out->text().toStdString();
    for (int i = 0; i < m_images->count(); ++i)
        o.images.push_back(m_images->item(i)->text().toStdString());
    o.model.storage = m_dtype->currentIndex() == 1 ? StorageType::F32 : StorageType::F16;
    o.model.threads = m_threads->value();
    try {
        if (o.originalPath.empty() || o.quantizedPath.empty() || o.outPath.empty() || o.images.empty())
            throw Error(ErrorKind::Usage, tr("Give both models, at least one image and the output dump.").toStdString());
        if (!m_size->text().trimmed().isEmpty())
            o.preprocess.size = parseSize(m_size->text().trimmed().toStdString());
    } catch (const Error& e) {
        QMessageBox::warning(this, tr("New comparison"), QString::fromStdString(e.what()));
        return;
    }
    QSettings settings;
    settings.setValue(QStringLiteral("compare/original"), m_original->text());
    settings.setValue(QStringLiteral("compare/quantized"), m_quantized->text());
    settings.setValue(QStringLiteral("compare/out"), m_out->text());
    QStringList images;
    for (const auto& i : o.images)
        images << QString::fromStdString(i);
    settings.setValue(QStringLiteral("compare/images"), images);

    setRunning(true);
    m_cancel = std::make_shared<std::atomic<bool>>(false);
    QPointer<ComparisonDialog> self(this);
    auto cancel = m_cancel;
    // Runs on a worker thread; talks back only through queued calls.
    (void)QtConcurrent::run([o, cancel, self] {
        QString error;
        bool cancelled = false;
        try {
            compare(o, [cancel, self](const Progress& p) {
                if (self)
                    QMetaObject::invokeMethod(self, [self, p] {
                        if (!self)
                            return;
                        self->m_stage->setText(tr("%1 %2").arg(QString::fromStdString(p.stage), QString::fromStdString(p.detail)));
                        self->m_progress->setMaximum(static_cast<int>(std::max<std::int64_t>(1, p.total)));
                        self->m_progress->setValue(static_cast<int>(std::min(p.done, p.total)));
                    }, Qt::QueuedConnection);
                return !cancel->load();
            });
        } catch (const Error& e) {
            cancelled = e.kind() == ErrorKind::Cancelled;
            error = QString::fromStdString(e.what());
        } catch (const std::exception& e) {
            error = QString::fromStdString(e.what());
        }
        const QString out = QString::fromStdString(o.outPath);
        QMetaObject::invokeMethod(qApp, [self, error, cancelled, out] {
            if (!self)
                return;
            self->setRunning(false);
            self->m_cancel.reset();
            if (cancelled) {
                self->m_stage->setText(tr("Cancelled; nothing was written."));
                return;
            }
            if (!error.isEmpty()) {
                QMessageBox::critical(self, tr("Comparison failed"), error);
                self->m_stage->setText(error);
                return;
            }
            emit self->dumpWritten(out);
            self->accept();
        }, Qt::QueuedConnection);
    });
}

void ComparisonDialog::reject() {
    if (m_running && m_cancel) {
        m_cancel->store(true); // the job reports back, then the dialog can close
        m_stage->setText(tr("Cancelling…"));
        return;
    }
    QDialog::reject();
}

} // namespace qs
