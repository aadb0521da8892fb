#pragma once
// "New comparison": pick the two models, the images and options, then run the comparison
// with progress and Cancel; emits the dump's path when it is written. The comparison runs
// as `quantscope-cli compare` in a child process: the GUI never loads LibTorch (whose
// Debian build brings Qt 5 along), and Cancel is the CLI's own clean interruption.

#include <QDialog>
#include <QList>

class QProcess;

class QLineEdit;
class QCheckBox;
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
    void remember() const;   // every option, for the next time the dialog opens
    QStringList arguments() const; // the compare command line the form describes
public:
    QStringList commandLine() const { return arguments(); } // for tests
private:

    QLineEdit* m_original = nullptr;
    QLineEdit* m_quantized = nullptr;
    QListWidget* m_images = nullptr;
    QLineEdit* m_out = nullptr;
    QComboBox* m_dtype = nullptr;
    QSpinBox* m_threads = nullptr;
    QLineEdit* m_size = nullptr;
    QLineEdit* m_mean = nullptr;
    QLineEdit* m_std = nullptr;
    QCheckBox* m_bgr = nullptr;
    QLineEdit* m_layers = nullptr;
    QComboBox* m_ops = nullptr;
    QComboBox* m_tapAt = nullptr;
    QComboBox* m_engine = nullptr;
    QComboBox* m_onnxInt8 = nullptr;
    QComboBox* m_decode = nullptr;
    QSpinBox* m_gzip = nullptr;
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
