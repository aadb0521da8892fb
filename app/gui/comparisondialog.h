#pragma once
// "New comparison": pick the two models, the images and options, then run the comparison
// on a worker thread with progress and Cancel; emits the dump's path when it is written.

#include <QDialog>

#include <atomic>
#include <memory>

class QLineEdit;
class QListWidget;
class QComboBox;
class QSpinBox;
class QProgressBar;
class QLabel;
class QPushButton;
class QDialogButtonBox;

namespace qs {

class ComparisonDialog : public QDialog {
    Q_OBJECT
public:
    explicit ComparisonDialog(QWidget* parent = nullptr);
    ~ComparisonDialog() override;
    bool isRunning() const { return m_running; }

signals:
    void dumpWritten(const QString& path);

protected:
    void reject() override;

private:
    void start();
    void setRunning(bool running);
    QString browse(QLineEdit* edit, const QString& filter, bool save);

    QLineEdit* m_original = nullptr;
    QLineEdit* m_quantized = nullptr;
    QListWidget* m_images = nullptr;
    QLineEdit* m_out = nullptr;
    QComboBox* m_dtype = nullptr;
    QSpinBox* m_threads = nullptr;
    QLineEdit* m_size = nullptr;
    QProgressBar* m_progress = nullptr;
    QLabel* m_stage = nullptr;
    QDialogButtonBox* m_buttons = nullptr;
    QPushButton* m_run = nullptr;
    bool m_running = false;
    std::shared_ptr<std::atomic<bool>> m_cancel;
};

} // namespace qs
