#pragma once
// "New comparison": pick the two models, the images and options, then run the comparison
// with progress and Cancel; emits the dump's path when it is written. The comparison runs
// as `quantscope-cli compare` in a child process: the GUI never loads LibTorch (whose
// Debian build brings Qt 5 along), and Cancel is the CLI's own clean interruption.

#include <QDialog>
#include <QList>

class QProcess;

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
    // The quantscope-cli used: QS_CLI, else next to this program, else the build tree's.
    static QString cliProgram();

signals:
    void dumpWritten(const QString& path);

protected:
    void reject() override;

private:
    void start();
    void launch(); // runs the CLI on what the form holds (after start() checked it)
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
    QList<QWidget*> m_inputs; // every control that edits the form: disabled while running
    bool m_running = false;
    bool m_cancelled = false;
    QProcess* m_process = nullptr;
    QString m_errors; // the child's stderr lines that are not progress
};

} // namespace qs
