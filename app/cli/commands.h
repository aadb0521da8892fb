#pragma once
// Subcommands of quantscope-cli: options (CLI11) and what they run.

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace qs::cli {

struct CompareArgs {
    std::string original, quantized, out, imagesDir;
    std::vector<std::string> images, layers;
    std::string dtype = "f16", size, mean, std, engine = "onednn", ops = "conv", tapAt = "block", onnxInt8 = "auto";
    std::string decode = "auto", shard, keep = "all", keepWhich = "first";
    bool bgr = false, quiet = false, json = false;
    int threads = 0, gzip = 0;
    float conf = 0.05f, nmsIou = 0.6f;
};

struct MergeArgs {
    std::vector<std::string> shards;
    std::string out;
    int threads = 0;
    bool quiet = false;
};
void addMerge(CLI::App& app, MergeArgs& args);
int runMerge(const MergeArgs& args);
void addCompare(CLI::App& app, CompareArgs& args);
int runCompare(const CompareArgs& args);

struct InspectArgs {
    std::string dump, sort = "sqnr";
    int top = 0;
    bool json = false;
};
void addInspect(CLI::App& app, InspectArgs& args);
int runInspect(const InspectArgs& args);

struct EvalArgs {
    std::string original, quantized, coco, images, json, saveDetections, into, shard;
    std::string size, mean, std, engine = "onednn", decode = "auto", onnxInt8 = "auto";
    bool bgr = false, quiet = false;
    int threads = 0;
    float conf = 0.001f, nmsIou = 0.6f;
};
void addEval(CLI::App& app, EvalArgs& args);
int runEval(const EvalArgs& args);

struct BenchArgs {
    std::string original, quantized, baseline, image, size, batch = "1,2,4,32,64", json, into, engine = "onednn",
        onnxInt8 = "auto";
    int runs = 5, warmup = 3, threads = 0;
    long long memoryLimitMiB = 0;
    bool quiet = false;
};
void addBench(CLI::App& app, BenchArgs& args);
int runBench(const BenchArgs& args);

struct BenchChildArgs {
    std::string model, image, size, engine = "onednn", onnxInt8 = "auto";
    int batch = 1, threads = 0;
};
void addBenchChild(CLI::App& app, BenchChildArgs& args);
int runBenchChild(const BenchChildArgs& args);

struct QuantizeArgs {
    std::string model, out, calib, calibCoco, images, engine = "onednn", method = "percentile", rankBy = "sqnr", reduceRange = "auto",
        rankFrom, json, size, mean, std;
    std::vector<std::string> scope, exclude, floatLayers;
    int calibImages = 0, keepFloat = 0, rankImages = 4, threads = 0;
    double percentile = 99.99, maxDrop = -1;
    bool perTensor = false, perChannel = false, foldOnly = false, plainGraph = false, bgr = false, quiet = false;
};
void addQuantize(CLI::App& app, QuantizeArgs& args);
int runQuantize(const QuantizeArgs& args);

struct ExportArgs {
    std::string dump, kind = "abs", format = "png", out;
    std::vector<std::string> layers;
    bool all = false;
    int width = 1200, height = 900, dpi = 150;
};
void addExport(CLI::App& app, ExportArgs& args);
int runExport(const ExportArgs& args, const char* argv0);

} // namespace qs::cli
