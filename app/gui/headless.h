#pragma once
// What `quantscope` does without showing a window: export figures of a dump (the
// renderer behind `quantscope-cli export` and File > Export all layers), and the
// screenshot of the main window used for the README.

#include <QString>
#include <QStringList>

namespace qs {

struct ExportRequest {
    QString dump, outDir, kind = QStringLiteral("abs"), format = QStringLiteral("png");
    QStringList layers; // names; empty with all = every layer
    bool all = false;
    int width = 1200, height = 900, dpi = 150;
};

// Writes the figures, printing "exported k/N: file" per figure on stdout.
// Returns 0, or 1 with a message on stderr (2 for a malformed request).
int runExport(const ExportRequest& request);

} // namespace qs
