#pragma once
// The summary tab: the dump, both models (sizes), the layer statistics and, when the dump
// holds them (quantscope-cli bench --into), latency and memory per batch size.

#include "dumpreader.h"

#include <QTextBrowser>

#include <memory>

namespace qs {

class SummaryView : public QTextBrowser {
    Q_OBJECT
public:
    explicit SummaryView(QWidget* parent = nullptr);
    void setDump(const std::shared_ptr<DumpReader>& dump);
    static QString html(const DumpReader& dump);
};

} // namespace qs
