#include "progressbar.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

namespace qs::cli {

namespace {
std::atomic<bool> g_interrupted{false};

extern "C" void onSignal(int) {
    g_interrupted.store(true);
    // a second Ctrl-C ends the process at once (the dump stays under its .partial name)
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
}
} // namespace

void installSignalHandlers() {
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    std::signal(SIGXFSZ, SIG_IGN);
}

bool interrupted() { return g_interrupted.load(); }

ProgressBar::ProgressBar(bool quiet)
    : m_terminal(::isatty(STDERR_FILENO) == 1), m_quiet(quiet),
      m_start(std::chrono::steady_clock::now()), m_stageStart(m_start), m_lastDraw() {}

ProgressBar::~ProgressBar() { finish(); }

bool ProgressBar::update(const Progress& p) {
    if (interrupted())
        return false;
    if (m_quiet)
        return true;
    const auto now = std::chrono::steady_clock::now();
    if (p.imagesTotal > 0 && p.images == 0 && !m_imagesStarted) {
        m_imagesStarted = true;
        m_firstImage = now;
    }
    const bool newStage = p.stage != m_stage;
    if (newStage) {
        m_stage = p.stage;
        m_stageStart = now;
        m_lastDecile = -1;
    }
    const double fraction = p.total > 0 ? static_cast<double>(p.done) / static_cast<double>(p.total) : 0.0;
    if (m_terminal) {
        if (!newStage && now - m_lastDraw < std::chrono::milliseconds(100) && p.done != p.total)
            return true;
        m_lastDraw = now;
        const int width = 30;
        const int filled = static_cast<int>(fraction * width);
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(width, '.');
        const double elapsed = std::chrono::duration<double>(now - m_stageStart).count();
        char eta[32] = "";
        if (fraction > 0.02 && fraction < 1.0)
            std::snprintf(eta, sizeof eta, " ~%.0fs left", elapsed * (1.0 - fraction) / fraction);
        std::string detail = p.detail;
        if (detail.size() > 30)
            detail = "..." + detail.substr(detail.size() - 27);
        std::fprintf(stderr, "\r\033[K%-10s [%s] %3.0f%%%s%s %s", p.stage.c_str(), bar.c_str(),
                     fraction * 100.0, eta, imageRate(p, now).c_str(), detail.c_str());
        std::fflush(stderr);
        m_drawn = true;
    } else {
        const int decile = static_cast<int>(fraction * 10.0);
        if (newStage || decile > m_lastDecile) {
            m_lastDecile = decile;
            std::fprintf(stderr, "%s: %lld/%lld (%.0f%%)%s%s%s\n", p.stage.c_str(),
                         static_cast<long long>(p.done), static_cast<long long>(p.total),
                         fraction * 100.0, p.detail.empty() ? "" : " ", p.detail.c_str(), imageRate(p, now).c_str());
        }
    }
    return true;
}

std::string ProgressBar::imageRate(const Progress& p, std::chrono::steady_clock::time_point now) const {
    if (p.imagesTotal <= 0)
        return {};
    const double elapsed = std::chrono::duration<double>(now - m_firstImage).count(); // loading left out
    char text[64];
    if (p.images > 0 && elapsed > 0)
        std::snprintf(text, sizeof text, " [image %lld/%lld, %.2f images/s]", static_cast<long long>(p.images + 1),
                      static_cast<long long>(p.imagesTotal), static_cast<double>(p.images) / elapsed);
    else
        std::snprintf(text, sizeof text, " [image %lld/%lld]", static_cast<long long>(p.images + 1),
                      static_cast<long long>(p.imagesTotal));
    return text;
}

void ProgressBar::finish() {
    if (m_terminal && m_drawn) {
        std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
        m_drawn = false;
    }
}

} // namespace qs::cli
