#pragma once
// What quantization buys and costs: model size, latency per batch size (both models
// interleaved in one process, so their ratio holds on a noisy machine) and peak memory
// per batch size, each (model, batch) measured in a child process of its own.

#include "image.h"
#include "model.h"
#include "progress.h"

#include <string>
#include <vector>

namespace qs {

struct BenchOptions {
    std::string originalPath, quantizedPath;
    std::string baselinePath;          // optional third model (e.g. the --fold-only float one)
    std::string imagePath;             // or, when empty, a mid-grey image of `size`
    Size2 size{640, 480};
    std::vector<int> batches{1, 2, 4, 32, 64};
    int runs = 5;                      // timed runs per model and batch
    int warmup = 3;                    // untimed runs before (TorchScript optimises on run 2)
    ModelOptions model;
    std::string childExecutable;       // program that runs `_bench-child` (memory probes)
    long long memoryLimitMiB = 0;      // per child; 0 = 85 % of MemAvailable
};

struct BatchResult {
    int batch = 0;
    bool measured = false;             // false: skipped, see skipped
    std::string skipped;               // why (out of memory, ...)
    // [0] original, [1] quantized, [2] the baseline when given
    double medianMs[3] = {0, 0, 0}, minMs[3] = {0, 0, 0}, maxMs[3] = {0, 0, 0};
    double peakMiB[3] = {0, 0, 0};     // child's peak RSS
    double modelMiB[3] = {0, 0, 0};    // child's RSS after loading, before running
};

struct BenchReport {
    int models = 2;                    // 3 with a baseline
    std::string paths[3];
    std::int64_t fileBytes[3] = {0, 0, 0}, parameterBytes[3] = {0, 0, 0};
    int width = 0, height = 0, threads = 0;
    std::string engine;
    double memoryLimitMiB = 0;
    std::vector<BatchResult> batches;
    double mibPerImage[3] = {0, 0, 0}; // slope of peak memory over batch size (least squares)
};

// Everything readable from a descriptor until end of file; closes it.
std::string readAllAndClose(int fd);

// Resident set size of this process now, in KiB (from /proc/self/status).
long long residentKiB();

BenchReport runBenchmark(const BenchOptions& options, const ProgressFn& progress);

// The child side of a memory probe: loads one model, runs `batch` once untimed and once
// more, prints {"model_kib":..,"peak_kib":..} on stdout. Exit codes: 0 ok, 3 out of memory,
// 1 other failure (message on stderr).
int benchChild(const std::string& modelPath, int batch, const std::string& imagePath, Size2 size,
               const ModelOptions& options);

// Adds a /bench group with the report to a complete dump (copy, write, rename).
void storeBenchmark(const std::string& dumpPath, const BenchReport& report);

} // namespace qs
