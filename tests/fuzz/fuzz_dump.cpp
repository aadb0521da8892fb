// libFuzzer target over dump reading: whatever bytes arrive are written to a file and
// opened the way the CLI and GUI open a dump (openDump: validated in a child process,
// then read here), then every read the views make is made. A crash, hang, leak or
// out-of-memory here is a bug of ours (docs/robustness.md).
//
// QS_FUZZ_INPROCESS=1 skips the child-process validation, so that the validation code
// itself runs under the fuzzer's eyes (libhdf5's own crashes then show up as well).
//
// openDump's child process is where libhdf5 is expected to crash on damaged metadata
// (that is what the child is for); the product turns its death into an error. So in the
// child the fuzzer's crash reporting is switched off (pthread_atfork below): what the
// fuzzer reports is what would take the reading process down.
//
// Build and run: see docs/robustness.md (CMake preset "fuzz").

#include "dumpreader.h"
#include "error.h"
#include "h5util.h"

#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

namespace {

const std::string& scratchPath() {
    static const std::string path = [] {
        const char* dir = std::getenv("TMPDIR");
        return std::string(dir ? dir : "/tmp") + "/qs-fuzz-" + std::to_string(::getpid()) + ".h5";
    }();
    return path;
}

void readEverything(const qs::DumpReader& dump) {
    dump.readAllMetadata();
    const int images = std::min(dump.imageCount(), 4);
    for (const auto& layer : dump.layers()) {
        for (qs::Side side : {qs::Side::Original, qs::Side::Quantized}) {
            for (int i = 0; i < images; ++i) {
                try { dump.activation(layer.index, side, i); } catch (const qs::Error&) {}
                try { dump.activationChannel(layer.index, side, i, 0); } catch (const qs::Error&) {}
                try { dump.meanMap(layer.index, side, i); } catch (const qs::Error&) {}
            }
        }
        for (int i = 0; i < images; ++i)
            for (bool relative : {false, true})
                try { dump.diffMap(layer.index, relative, i); } catch (const qs::Error&) {}
        for (const char* metric : {"sqnr_db", "mse", "max_abs", "mean_abs", "rel_err", "cosine"})
            try { dump.channelMetric(layer.index, metric); } catch (const qs::Error&) {}
    }
    for (int i = 0; i < images; ++i) {
        try { dump.input(i); } catch (const qs::Error&) {}
        try { dump.outputs(i); } catch (const qs::Error&) {}
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    qs::h5::prepareLibrary();
    pthread_atfork(nullptr, nullptr, [] { __sanitizer_set_death_callback(nullptr); });
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string& path = scratchPath();
    {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        if (!f)
            std::abort();
        if (size && std::fwrite(data, 1, size, f) != size)
            std::abort();
        std::fclose(f);
    }
    static const bool inProcess = std::getenv("QS_FUZZ_INPROCESS") != nullptr;
    try {
        std::unique_ptr<qs::DumpReader> dump =
            inProcess ? std::make_unique<qs::DumpReader>(path) : qs::openDump(path, 5);
        readEverything(*dump);
    } catch (const qs::Error&) {
        // an orderly refusal is the expected outcome for most inputs
    }
    return 0;
}
