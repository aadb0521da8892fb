#pragma once
// Progress on stderr: a redrawn bar with an estimate of the time left on a terminal,
// plain lines (one per stage and per 10 %) otherwise. Redraws are throttled.

#include "progress.h"

#include <chrono>
#include <string>

namespace qs::cli {

class ProgressBar {
public:
    explicit ProgressBar(bool quiet = false);
    ~ProgressBar();
    // Shows p; returns false once the user asked to stop (SIGINT/SIGTERM).
    bool update(const Progress& p);
    void finish();

private:
    // " [image 12/300, 1.35 images/s]" for jobs over images, else ""
    std::string imageRate(const Progress& p, std::chrono::steady_clock::time_point now) const;
    bool m_terminal;
    bool m_quiet;
    bool m_drawn = false;
    std::string m_stage;
    int m_lastDecile = -1;
    std::chrono::steady_clock::time_point m_start, m_stageStart, m_lastDraw;
    bool m_imagesStarted = false;
    std::chrono::steady_clock::time_point m_firstImage; // the first image's first progress
};

// Installs SIGINT/SIGTERM handlers that set a flag read by ProgressBar::update, and
// ignores SIGXFSZ so that a file-size limit surfaces as a write error.
void installSignalHandlers();
bool interrupted();

} // namespace qs::cli
