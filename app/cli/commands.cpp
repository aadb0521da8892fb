#include "commands.h"

#include "merge.h"
#include "jsonnumber.h"

#include "benchmark.h"
#include "compare.h"
#include "dumpreader.h"
#include "error.h"
#include "evaluate.h"
#include "progressbar.h"
#include "quantize.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <thread>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <tuple>
#include <utility>

namespace qs::cli {

namespace {

nlohmann::json number(double v) {
    return jsonNumber(v);
}

std::string shapeText(const std::vector<std::int64_t>& shape) {
    std::string s;
    for (std::size_t i = 0; i < shape.size(); ++i)
        s += (i ? "x" : "") + std::to_string(shape[i]);
    return s;
}

nlohmann::json layerJson(const LayerSummary& l) {
    return {{"index", l.index},          {"name", l.name},
            {"module", l.module},        {"call", l.call},
            {"op", l.op},                {"quantized_name", l.quantizedName},
            {"quantized_op", l.quantizedOp}, {"match", l.match},
            {"shape", l.shape},          {"sqnr_db", number(l.metrics.sqnrDb)},
            {"mse", number(l.metrics.mse)}, {"max_abs", number(l.metrics.maxAbs)},
            {"mean_abs", number(l.metrics.meanAbs)}, {"rel_err", number(l.metrics.relErr)},
            {"cosine", number(l.metrics.cosine)}};
}

void printTable(const std::vector<LayerSummary>& layers) {
    std::size_t nameWidth = 5;
    for (const auto& l : layers)
        nameWidth = std::max(nameWidth, l.name.size());
    nameWidth = std::min<std::size_t>(nameWidth, 48);
    std::printf("%5s  %-*s  %-16s %9s %11s %10s %10s %9s %8s  %s\n", "#", static_cast<int>(nameWidth),
                "layer", "shape", "SQNR dB", "MSE", "max|e|", "mean|e|", "rel", "cosine", "match");
    for (const auto& l : layers) {
        std::string name = l.name;
        if (name.size() > nameWidth)
            name = "..." + name.substr(name.size() - nameWidth + 3);
        std::printf("%5d  %-*s  %-16s %9.2f %11.4g %10.4g %10.4g %9.4f %8.5f  %s\n", l.index,
                    static_cast<int>(nameWidth), name.c_str(), shapeText(l.shape).c_str(),
                    l.metrics.sqnrDb, l.metrics.mse, l.metrics.maxAbs, l.metrics.meanAbs,
                    l.metrics.relErr, l.metrics.cosine, l.match.c_str());
    }
}

// Worst first: lowest SQNR, or highest MSE / max abs error. NaN (no metric) goes last.
std::vector<LayerSummary> sorted(std::vector<LayerSummary> layers, const std::string& key) {
    auto value = [&](const LayerSummary& l) {
        if (key == "mse")
            return -l.metrics.mse;
        if (key == "max_abs")
            return -l.metrics.maxAbs;
        if (key == "index")
            return static_cast<double>(l.index);
        return l.metrics.sqnrDb;
    };
    std::stable_sort(layers.begin(), layers.end(), [&](const LayerSummary& a, const LayerSummary& b) {
        const double x = value(a), y = value(b);
        if (std::isnan(x) != std::isnan(y))
            return std::isnan(y);
        return x < y;
    });
    return layers;
}

// Runs a long core job with the progress bar; the bar is cleared whatever happens.
// Cancellation (Ctrl-C) surfaces as Error(Cancelled), reported by main().
template <typename Job>
auto withProgress(bool quiet, Job&& job) {
    ProgressBar bar(quiet);
    try {
        auto result = job([&](const Progress& p) { return bar.update(p); });
        bar.finish();
        return result;
    } catch (...) {
        bar.finish();
        throw;
    }
}

// withProgress for a job that writes `out` only when complete: a cancel says so.
template <typename Job>
auto writingWithProgress(bool quiet, const std::string& out, Job&& job) {
    try {
        return withProgress(quiet, std::forward<Job>(job));
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Cancelled)
            throw Error(ErrorKind::Cancelled, "cancelled; " + out + " was not written");
        throw;
    }
}

// --size/--mean/--std/--bgr, shared by compare and eval
// The command-line forms "WxH" and "r,g,b" (the CLI's syntax, not the engine's).
Size2 parseSize(const std::string& text) {
    Size2 s;
    char x = 0;
    std::istringstream in(text);
    if (!(in >> s.width >> x >> s.height) || (x != 'x' && x != 'X') || !in.eof() ||
        s.width <= 0 || s.height <= 0 || s.width > 16384 || s.height > 16384)
        throw Error(ErrorKind::Usage, "--size: expected WxH with positive integers, got '" + text + "'");
    return s;
}

std::array<float, 3> parseTriple(const std::string& text, const std::string& option) {
    std::array<float, 3> v{};
    std::istringstream in(text);
    char c1 = 0, c2 = 0;
    if (!(in >> v[0] >> c1 >> v[1] >> c2 >> v[2]) || c1 != ',' || c2 != ',' || !in.eof())
        throw Error(ErrorKind::Usage, option + ": expected three numbers r,g,b, got '" + text + "'");
    return v;
}

Preprocess parsePreprocess(const std::string& size, const std::string& mean, const std::string& stdev, bool bgr) {
    Preprocess p;
    if (!size.empty())
        p.size = parseSize(size);
    if (!mean.empty())
        p.mean = parseTriple(mean, "--mean");
    if (!stdev.empty()) {
        p.std = parseTriple(stdev, "--std");
        for (float v : *p.std)
            if (!(v > 0))
                throw Error(ErrorKind::Usage, "--std: every value must be positive");
    }
    p.bgr = bgr;
    return p;
}

void addPreprocessOptions(CLI::App* c, std::string& size, std::string& mean, std::string& stdev, bool& bgr) {
    c->add_option("--size", size, "Resize inputs to WxH (default: the first image's size)");
    c->add_option("--mean", mean, "Per-channel mean r,g,b subtracted from pixels in [0,1]");
    c->add_option("--std", stdev, "Per-channel std r,g,b dividing pixels after the mean");
    c->add_flag("--bgr", bgr, "Feed channels in B,G,R order");
}

std::string percent(double fraction) {
    if (fraction < 0)
        return "n/a";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", 100.0 * fraction);
    return buf;
}

nlohmann::json cocoJson(const CocoResult& r) {
    nlohmann::json classes = nlohmann::json::array();
    for (const auto& c : r.classes)
        classes.push_back({{"category_id", c.categoryId}, {"name", c.name}, {"ground_truth", c.groundTruth},
                           {"ap", c.ap}, {"ap50", c.ap50}, {"recall", c.recall}});
    return {{"map", r.map}, {"map50", r.map50}, {"map75", r.map75}, {"recall", r.recall}, {"classes", classes}};
}

void addOnnxInt8Option(CLI::App* c, std::string& mode) {
    c->add_option("--onnx-int8", mode, "INT8 ONNX models: auto (LibTorch's INT8 kernels where the QDQ/QOperator "
                                       "pattern allows and they give ONNX's numbers: with VNNI, or on 7-bit "
                                       "inputs; default), kernels (wherever the pattern allows), simulated (ONNX's "
                                       "formulas in float everywhere)")
        ->check(CLI::IsMember({"auto", "kernels", "simulated"}));
}

} // namespace

void addCompare(CLI::App& app, CompareArgs& a) {
    CLI::App* c = app.add_subcommand("compare", "Run images through both models with taps on every "
                                                "convolution and write a dump (HDF5)");
    c->add_option("--original", a.original, "Original (float) TorchScript model")->required();
    c->add_option("--quantized", a.quantized, "Quantized TorchScript model")->required();
    auto* img = c->add_option("--image", a.images, "Input image (repeatable)");
    auto* dir = c->add_option("--images", a.imagesDir, "Directory of input images (.jpg .png .bmp)");
    img->excludes(dir);
    dir->excludes(img);
    c->add_option("--out", a.out, "Output dump (.h5); written under a temporary name, renamed when complete")
        ->required();
    c->add_option("--layers", a.layers, "Keep only layers whose name matches this glob (repeatable)");
    c->add_option("--dtype", a.dtype, "Storage type of activations")->check(CLI::IsMember({"f16", "f32"}));
    c->add_option("--gzip", a.gzip, "Deflate level 1-9 (0: no compression)")->check(CLI::Range(0, 9));
    c->add_option("--threads", a.threads, "Intra-op threads (0: LibTorch default)")->check(CLI::Range(0, 256));
    c->add_option("--engine", a.engine, "Quantized engine: onednn or qnnpack");
    addOnnxInt8Option(c, a.onnxInt8);
    c->add_option("--ops", a.ops, "What to tap: conv, or conv,linear")
        ->check(CLI::IsMember({"conv", "conv,linear", "linear,conv"}));
    c->add_option("--tap-at", a.tapAt, "block: after the conv's batch norm and activation (default), "
                                       "output: the conv's own output")
        ->check(CLI::IsMember({"block", "output"}));
    c->add_option("--decode", a.decode, "How outputs are stored: auto (torchvision dicts as detections; a raw "
                                        "tensor with a YOLO layout decoded, other raw tensors kept), none, "
                                        "torchvision, yolov5, yolov8")
        ->check(CLI::IsMember({"auto", "none", "torchvision", "yolov5", "yolov8"}));
    c->add_option("--conf", a.conf, "YOLO: minimum box score kept (default 0.05, as torchvision detectors)");
    c->add_option("--keep-activations", a.keep, "all (default), none, or K: store the activations and maps of "
                                                "K images only (see --keep); every image's metrics are computed as "
                                                "the run goes");
    c->add_option("--keep", a.keepWhich, "With --keep-activations K: first (the first K images, default) or "
                                         "worst (the K of lowest mean SQNR over the layers)")
        ->check(CLI::IsMember({"first", "worst"}));
    c->add_option("--shard", a.shard, "I/N: process every N-th image of the list, from the I-th (0-based), "
                                      "for a run split over N jobs; quantscope-cli merge joins the N dumps");
    c->add_option("--nms-iou", a.nmsIou, "YOLO: IoU above which NMS drops a box (default 0.6)");
    addPreprocessOptions(c, a.size, a.mean, a.std, a.bgr);
    c->add_flag("--quiet", a.quiet, "No progress output");
    c->add_flag("--json", a.json, "Print the summary as JSON on stdout");
}

// "I/N" with 0 <= I < N
std::pair<int, int> parseShard(const std::string& text) {
    int index = -1, count = 0;
    char slash = 0, extra = 0;
    if (std::sscanf(text.c_str(), "%d %c %d %c", &index, &slash, &count, &extra) != 3 || slash != '/' || count < 1 ||
        index < 0 || index >= count)
        throw Error(ErrorKind::Usage, "--shard " + text + ": give I/N with 0 <= I < N, e.g. 0/4");
    return {index, count};
}

DecodeKind parseDecode(const std::string& text) {
    return text == "none"          ? DecodeKind::None
           : text == "torchvision" ? DecodeKind::Torchvision
           : text == "yolov5"      ? DecodeKind::YoloV5
           : text == "yolov8"      ? DecodeKind::YoloV8
                                   : DecodeKind::Auto;
}

int runCompare(const CompareArgs& a) {
    CompareOptions o;
    o.originalPath = a.original;
    o.quantizedPath = a.quantized;
    o.outPath = a.out;
    o.images = a.images;
    int skipped = 0;
    if (!a.imagesDir.empty()) // in a directory, a damaged image is skipped (and said so), not fatal
        for (const auto& path : listImages(a.imagesDir)) {
            try {
                checkImageFile(path);
                o.images.push_back(path);
            } catch (const Error& e) {
                std::fprintf(stderr, "quantscope-cli: warning: skipping %s\n", e.what());
                ++skipped;
            }
        }
    if (o.images.empty())
        throw Error(ErrorKind::Usage, "compare: give --image FILE (repeatable) or --images DIR");
    o.planImage = o.images.front();
    if (!a.shard.empty()) {
        const auto [index, count] = parseShard(a.shard);
        std::vector<std::string> mine;
        for (std::size_t i = static_cast<std::size_t>(index); i < o.images.size(); i += static_cast<std::size_t>(count)) {
            mine.push_back(o.images[i]);
            o.listIndex.push_back(static_cast<std::int64_t>(i));
        }
        if (mine.empty())
            throw Error(ErrorKind::Usage, "--shard " + a.shard + ": no image falls in this shard (the list has " +
                                              std::to_string(o.images.size()) + ")");
        o.imagesTotal = static_cast<std::int64_t>(o.images.size());
        o.shardIndex = index;
        o.shardCount = count;
        o.images = std::move(mine);
    }
    o.preprocess = parsePreprocess(a.size, a.mean, a.std, a.bgr);
    o.model.threads = a.threads;
    o.model.engine = a.engine;
    o.model.onnxInt8 = parseOnnxInt8(a.onnxInt8);
    o.model.storage = a.dtype == "f32" ? StorageType::F32 : StorageType::F16;
    o.model.tapOps = static_cast<unsigned>(TapOps::Conv) |
                     (a.ops.find("linear") != std::string::npos ? static_cast<unsigned>(TapOps::Linear) : 0u);
    o.model.tapPoint = a.tapAt == "output" ? TapPoint::Output : TapPoint::Block;
    o.layerGlobs = a.layers;
    o.gzip = a.gzip;
    o.decode = parseDecode(a.decode);
    o.yolo.confidence = a.conf;
    o.yolo.nmsIou = a.nmsIou;
    if (a.keep == "none") {
        o.keepActivations = 0;
    } else if (a.keep != "all") {
        char* end = nullptr;
        const long k = std::strtol(a.keep.c_str(), &end, 10);
        if (a.keep.empty() || *end != '\0' || k < 0 || k > 10000000)
            throw Error(ErrorKind::Usage, "--keep-activations " + a.keep + ": give all, none, or a number of images");
        o.keepActivations = static_cast<int>(k);
    }
    o.keepWorst = a.keepWhich == "worst";
    if (o.keepWorst && o.keepActivations < 0)
        throw Error(ErrorKind::Usage, "--keep worst: give --keep-activations K as well (how many to keep)");

    const CompareSummary s =
        writingWithProgress(a.quiet, a.out, [&](const ProgressFn& progress) { return compare(o, progress); });

    DumpReader dump(s.outPath);
    if (a.json) {
        nlohmann::json j = {{"dump", s.outPath},
                            {"images", s.images},
                            {"layers", s.layers},
                            {"original_calls", s.originalCalls},
                            {"quantized_calls", s.quantizedCalls},
                            {"skipped_images", skipped},
                            {"unmatched", s.unmatchedNames},
                            {"load_seconds", s.loadSeconds}};
        std::cout << jsonText(j, 2) << "\n";
        return 0;
    }
    std::printf("wrote %s: %d image(s)%s, %d layers paired (%d original and %d quantized tap calls per image)\n",
                s.outPath.c_str(), s.images,
                skipped ? (" (" + std::to_string(skipped) + " damaged skipped)").c_str() : "", s.layers,
                s.originalCalls, s.quantizedCalls);
    if (!s.unmatchedNames.empty()) {
        std::printf("unmatched (%zu), not compared:\n", s.unmatchedNames.size());
        for (const auto& n : s.unmatchedNames)
            std::printf("  %s\n", n.c_str());
    }
    auto worst = sorted(dump.layers(), "sqnr");
    if (worst.size() > 5)
        worst.resize(5);
    std::printf("worst layers by SQNR:\n");
    printTable(worst);
    return 0;
}

const std::pair<const char*, double Metrics::*> kImageMetricFields[] = {
    {"sqnr_db", &Metrics::sqnrDb}, {"mse", &Metrics::mse},         {"max_abs", &Metrics::maxAbs},
    {"mean_abs", &Metrics::meanAbs}, {"rel_err", &Metrics::relErr}, {"cosine", &Metrics::cosine}};

// The images with the lowest mean SQNR over layers, when the dump has several.
void printWorstImages(const DumpReader& dump, std::size_t top) {
    const ImageMetrics& im = dump.imageMetrics();
    if (im.images < 2)
        return;
    const std::vector<ImageSummary> images = worstImages(im, top);
    std::printf("worst images (mean SQNR over layers; worst layer):\n");
    for (const auto& s : images) {
        const std::string& source = dump.source(s.image);
        std::printf("  image %-4d %-32s %8.2f dB  %8.2f dB at %s\n", s.image,
                    (source.empty() ? "image " + std::to_string(s.image) : source).c_str(), s.meanSqnrDb,
                    s.minSqnrDb, s.worstLayer >= 0 ? dump.layers()[static_cast<std::size_t>(s.worstLayer)].name.c_str() : "-");
    }
}

void addInspect(CLI::App& app, InspectArgs& a) {
    CLI::App* c = app.add_subcommand("inspect", "Print the layer table of a dump, worst layers first");
    c->add_option("dump", a.dump, "Dump file written by compare")->required();
    c->add_option("--sort", a.sort, "Sort key: sqnr (lowest first), mse, max_abs (highest first), index")
        ->check(CLI::IsMember({"sqnr", "mse", "max_abs", "index"}));
    c->add_option("--top", a.top, "Show only the K worst layers")->check(CLI::NonNegativeNumber);
    c->add_flag("--json", a.json, "Machine-readable output on stdout");
}

void addMerge(CLI::App& app, MergeArgs& a) {
    CLI::App* c = app.add_subcommand("merge", "Join the dumps of compare --shard I/N (every shard once) into the "
                                              "dump the unsharded run writes");
    c->add_option("shards", a.shards, "The shard dumps, in any order")->required();
    c->add_option("--out", a.out, "The merged dump; written under a temporary name, renamed when complete")->required();
    c->add_option("--threads", a.threads, "Threads for re-binning the histograms (0: all cores)")->check(CLI::Range(0, 256));
    c->add_flag("--quiet", a.quiet, "No progress output");
}

int runMerge(const MergeArgs& a) {
    const int threads = a.threads > 0 ? a.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const MergeReport r = writingWithProgress(a.quiet, a.out, [&](const ProgressFn& progress) {
        return mergeDumps(a.shards, a.out, threads, progress);
    });
    for (const auto& d : r.dropped)
        std::fprintf(stderr, "quantscope-cli: note: not merged: %s\n", d.c_str());
    std::printf("wrote %s: %d shards, %d image(s), %d layers\n", a.out.c_str(), r.shards, r.images, r.layers);
    return 0;
}

int runInspect(const InspectArgs& a) {
    const std::unique_ptr<DumpReader> opened = openDump(a.dump, 10, interrupted);
    const DumpReader& dump = *opened;
    auto layers = sorted(dump.layers(), a.sort);
    if (a.top > 0 && static_cast<std::size_t>(a.top) < layers.size())
        layers.resize(static_cast<std::size_t>(a.top));
    const auto unmatchedO = dump.unmatched(Side::Original);
    const auto unmatchedQ = dump.unmatched(Side::Quantized);
    if (a.json) {
        nlohmann::json models = nlohmann::json::object();
        for (int side = 0; side < 2; ++side) {
            const auto& m = dump.model(Side(side));
            models[toString(Side(side))] = {{"path", m.path},         {"sha256", m.sha256},
                                            {"file_bytes", m.fileBytes}, {"parameter_bytes", m.parameterBytes},
                                            {"quantized", m.quantized}, {"tapped_calls", m.tappedCalls},
                                            {"input", m.input}};
        }
        nlohmann::json rows = nlohmann::json::array();
        for (const auto& l : layers)
            rows.push_back(layerJson(l));
        nlohmann::json perImage = nlohmann::json::array(); // [N] objects, each with [L] per metric
        const ImageMetrics& im = dump.imageMetrics();
        for (int i = 0; i < im.images; ++i) {
            const ImageSummary s = summarizeImage(im, i);
            nlohmann::json metrics = nlohmann::json::object();
            for (const auto& [key, field] : kImageMetricFields) {
                nlohmann::json values = nlohmann::json::array();
                for (int k = 0; k < im.layers; ++k)
                    values.push_back(number(im.at(i, k).*field));
                metrics[key] = values;
            }
            perImage.push_back({{"index", i},
                                {"source", dump.source(i)},
                                {"sqnr_db_mean", number(s.meanSqnrDb)},
                                {"sqnr_db_min", number(s.minSqnrDb)},
                                {"worst_layer", s.worstLayer >= 0 ? dump.layers()[static_cast<std::size_t>(s.worstLayer)].name : ""},
                                {"layers", metrics}});
        }
        nlohmann::json j = {{"dump", a.dump},
                            {"format_version", dump.version()},
                            {"created", dump.created()},
                            {"producer", dump.producer()},
                            {"images", dump.imageCount()},
                            {"dtype", dump.dtype()},
                            {"layer_count", dump.layers().size()},
                            {"sort", a.sort},
                            {"models", models},
                            {"layers", rows},
                            {"per_image", perImage},
                            {"unmatched", {{"original", unmatchedO}, {"quantized", unmatchedQ}}}};
        std::cout << jsonText(j, 2) << "\n";
        return 0;
    }
    std::printf("%s: format v%d, %d image(s), %zu layers, activations %s, created %s\n", a.dump.c_str(),
                dump.version(), dump.imageCount(), dump.layers().size(), dump.dtype().c_str(),
                dump.created().c_str());
    for (int side = 0; side < 2; ++side) {
        const auto& m = dump.model(Side(side));
        std::printf("  %-9s %s (%.2f MB file, %.2f MB parameters, %lld tap calls)\n", toString(Side(side)),
                    m.path.c_str(), static_cast<double>(m.fileBytes) / 1e6,
                    static_cast<double>(m.parameterBytes) / 1e6, static_cast<long long>(m.tappedCalls));
    }
    printTable(layers);
    printWorstImages(dump, 5);
    if (dump.hasEval()) {
        const EvalData e = dump.eval();
        std::printf("accuracy (%d images): mAP@[.5:.95] %.2f -> %.2f, mAP@.5 %.2f -> %.2f; per image %+.2f +/- %.2f points\n",
                    e.images, 100 * e.map[0], 100 * e.map[1], 100 * e.map50[0], 100 * e.map50[1], e.deltaMean,
                    e.deltaStd);
    }
    if (dump.hasBench()) {
        const BenchData b = dump.bench();
        for (std::size_t i = 0; i < b.batch.size(); ++i)
            std::printf("batch %-4lld latency %s ms -> %s ms, peak %.0f -> %.0f MiB\n", static_cast<long long>(b.batch[i]),
                        std::isnan(b.medianMs[0][i]) ? "skipped" : std::to_string(static_cast<int>(b.medianMs[0][i] + 0.5)).c_str(),
                        std::isnan(b.medianMs[1][i]) ? "skipped" : std::to_string(static_cast<int>(b.medianMs[1][i] + 0.5)).c_str(),
                        b.peakMiB[0][i], b.peakMiB[1][i]);
    }
    if (!unmatchedO.empty() || !unmatchedQ.empty()) {
        std::printf("unmatched: %zu original, %zu quantized\n", unmatchedO.size(), unmatchedQ.size());
        for (const auto& n : unmatchedO)
            std::printf("  original: %s\n", n.c_str());
        for (const auto& n : unmatchedQ)
            std::printf("  quantized: %s\n", n.c_str());
    }
    return 0;
}

void addEval(CLI::App& app, EvalArgs& a) {
    CLI::App* c = app.add_subcommand("eval", "COCO detection accuracy of both models on an annotated image set");
    c->add_option("--original", a.original, "Original (float) TorchScript detector")->required();
    c->add_option("--quantized", a.quantized, "Quantized TorchScript detector")->required();
    c->add_option("--coco", a.coco, "COCO annotation JSON")->required();
    c->add_option("--images", a.images, "Directory the annotation's file_name entries are relative to")->required();
    c->add_option("--json", a.json, "Also write the results as JSON to this file");
    c->add_option("--into", a.into, "Also store the results in this dump (/eval), for the GUI");
    c->add_option("--save-detections", a.saveDetections,
                  "Write original.json and quantized.json (COCO results format) into this directory");
    c->add_option("--decode", a.decode, "How outputs become detections: auto (torchvision dicts, or YOLO "
                                        "when the output is a raw [boxes, fields] tensor), torchvision, yolov5, yolov8")
        ->check(CLI::IsMember({"auto", "torchvision", "yolov5", "yolov8"}));
    c->add_option("--conf", a.conf, "YOLO: minimum box score (default 0.001, as for mAP)");
    c->add_option("--shard", a.shard, "I/N: evaluate images I, I+N, ... of the annotation file only (scored among "
                                      "themselves); quantscope-cli merge scores the N shards' detections together");
    c->add_option("--nms-iou", a.nmsIou, "YOLO: IoU above which NMS drops a box (default 0.6)");
    c->add_option("--threads", a.threads, "Intra-op threads (0: LibTorch default)")->check(CLI::Range(0, 256));
    c->add_option("--engine", a.engine, "Quantized engine: onednn or qnnpack");
    addOnnxInt8Option(c, a.onnxInt8);
    addPreprocessOptions(c, a.size, a.mean, a.std, a.bgr);
    c->add_flag("--quiet", a.quiet, "No progress output");
}

int runEval(const EvalArgs& a) {
    EvalOptions o;
    o.originalPath = a.original;
    o.quantizedPath = a.quantized;
    o.annotationsPath = a.coco;
    o.imagesDir = a.images;
    o.preprocess = parsePreprocess(a.size, a.mean, a.std, a.bgr);
    o.model.threads = a.threads;
    o.model.engine = a.engine;
    o.model.onnxInt8 = parseOnnxInt8(a.onnxInt8);
    o.decode = parseDecode(a.decode);
    o.yolo.confidence = a.conf;
    o.yolo.nmsIou = a.nmsIou;
    o.saveDetectionsDir = a.saveDetections;
    if (!a.shard.empty())
        std::tie(o.shardIndex, o.shardCount) = parseShard(a.shard);
    const EvalReport r = withProgress(a.quiet, [&](const ProgressFn& progress) { return evaluatePair(o, progress); });
    for (const auto& w : r.warnings)
        std::fprintf(stderr, "quantscope-cli: warning: %s\n", w.c_str());

    const auto& ro = r.original.coco;
    const auto& rq = r.quantized.coco;
    std::printf("%-28s %10s %10s %10s\n", "COCO bbox", "original", "quantized", "drop");
    auto row = [](const char* name, double o, double q) {
        std::printf("%-28s %10s %10s %10s\n", name, percent(o).c_str(), percent(q).c_str(),
                    o < 0 || q < 0 ? "n/a" : percent(o - q).c_str());
    };
    row("mAP@[.5:.95]", ro.map, rq.map);
    row("mAP@.5", ro.map50, rq.map50);
    row("mAP@.75", ro.map75, rq.map75);
    row("AR@100", ro.recall, rq.recall);
    std::printf("per class (AP@[.5:.95], AR@100):\n");
    for (std::size_t k = 0; k < ro.classes.size(); ++k) {
        const auto& co = ro.classes[k];
        const auto& cq = rq.classes[k];
        std::printf("  %-26s %10s %10s %10s   recall %s -> %s  (%d objects)\n",
                    (std::to_string(co.categoryId) + " " + co.name).c_str(), percent(co.ap).c_str(),
                    percent(cq.ap).c_str(), co.ap < 0 ? "n/a" : percent(co.ap - cq.ap).c_str(),
                    percent(co.recall).c_str(), percent(cq.recall).c_str(), co.groundTruth);
    }
    std::printf("per-image mAP@[.5:.95] change (quantized - original), %zu images: %+.2f +/- %.2f points; "
                "relative %+.2f%% +/- %.2f%% (%d images with mAP > 0)\n",
                r.imageIds.size(), r.deltaMean, r.deltaStd, r.relMean, r.relStd, r.relCount);
    std::printf("detections: %zu original, %zu quantized; inference %.2f s vs %.2f s\n",
                r.original.detections.size(), r.quantized.detections.size(), r.original.seconds,
                r.quantized.seconds);
    if (!a.json.empty()) {
        nlohmann::json j = {{"annotations", a.coco},
                            {"images", a.images},
                            {"original", {{"model", a.original}, {"coco", cocoJson(ro)}, {"seconds", r.original.seconds},
                                          {"detections", r.original.detections.size()}}},
                            {"quantized", {{"model", a.quantized}, {"coco", cocoJson(rq)}, {"seconds", r.quantized.seconds},
                                           {"detections", r.quantized.detections.size()}}},
                            {"drop", {{"map", ro.map - rq.map}, {"map50", ro.map50 - rq.map50}}},
                            {"per_image", {{"images", r.imageIds.size()}, {"delta_points_mean", r.deltaMean},
                                           {"delta_points_std", r.deltaStd}, {"relative_percent_mean", r.relMean},
                                           {"relative_percent_std", r.relStd}, {"relative_images", r.relCount}}},
                            {"warnings", r.warnings}};
        std::ofstream out(a.json);
        out << jsonText(j, 2) << "\n";
        if (!out)
            throw Error(ErrorKind::Output, a.json + ": cannot write");
    }
    if (!a.into.empty()) {
        storeEvaluation(a.into, r, a.coco);
        std::printf("stored in %s (/eval)\n", a.into.c_str());
    }
    return 0;
}

void addQuantize(CLI::App& app, QuantizeArgs& a) {
    CLI::App* c = app.add_subcommand("quantize", "Post-training static INT8 quantization of a TorchScript or "
                                                 "ONNX model (calibrated on images) into a new TorchScript file, "
                                                 "or an ONNX file in QDQ form");
    c->add_option("--model", a.model, "Float TorchScript (.pt) or ONNX (.onnx) model")->required();
    c->add_option("--out", a.out, "Quantized model to write: TorchScript, or with .onnx (from an ONNX model) its "
                                  "QDQ form (written under a temporary name, renamed once it has loaded and run)")
        ->required();
    auto* calib = c->add_option("--calib", a.calib, "Directory of calibration images (.jpg .png .bmp)");
    auto* coco = c->add_option("--calib-coco", a.calibCoco, "COCO annotation JSON whose images calibrate");
    auto* images = c->add_option("--images", a.images, "With --calib-coco: directory of its file_name entries");
    calib->excludes(coco);
    coco->excludes(calib);
    coco->needs(images);
    c->add_option("--calib-images", a.calibImages,
                  "Use N images, evenly spaced over the sorted list (0: all)")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--engine", a.engine, "Quantized engine the weights are packed for: onednn or qnnpack");
    c->add_option("--method", a.method, "Activation ranges: minmax, percentile (default), mse, entropy")
        ->check(CLI::IsMember({"minmax", "percentile", "mse", "entropy"}));
    c->add_option("--percentile", a.percentile, "With --method percentile: the percentile kept (default 99.99)");
    auto* pc = c->add_flag("--per-channel", a.perChannel, "One weight scale per output channel (default)");
    auto* pt = c->add_flag("--per-tensor", a.perTensor, "One weight scale per layer");
    pc->excludes(pt);
    pt->excludes(pc);
    c->add_option("--reduce-range", a.reduceRange, "Activations on 7 bits: auto (default: on for onednn on a "
                                                    "CPU without VNNI, whose INT8 kernels saturate), on, off")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    c->add_option("--scope", a.scope, "Quantize only layers under these module paths (comma-separated, "
                                      "e.g. backbone,rpn.head,roi_heads.box_head)")
        ->delimiter(',');
    c->add_option("--exclude", a.exclude, "Leave layers matching this glob in float (repeatable)");
    c->add_option("--float-layer", a.floatLayers, "Leave this layer in float (repeatable)");
    c->add_option("--keep-float", a.keepFloat, "Leave the K most sensitive layers in float")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--max-drop", a.maxDrop, "Keep 0, 1, 2, 4, ... of the most sensitive layers in float until "
                                           "the mAP@[.5:.95] drop on the --calib-coco set is at most X points; "
                                           "prints the trade-off")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--rank-by", a.rankBy, "How --keep-float / --max-drop rank layers: sqnr (lowest SQNR in a "
                                         "compare run of the fully quantized model), sensitivity (quantize one "
                                         "layer at a time; lowest SQNR anywhere after it) or map (quantize one "
                                         "layer at a time; largest mAP drop on the --calib-coco set)")
        ->check(CLI::IsMember({"sqnr", "sensitivity", "map"}));
    c->add_option("--rank-from", a.rankFrom, "With --rank-by sqnr: take the SQNR of each layer from this "
                                             "dump instead of running a compare");
    c->add_option("--rank-images", a.rankImages, "Images used for ranking (default 4)")->check(CLI::PositiveNumber);
    c->add_flag("--fold-only", a.foldOnly, "Write the frozen float model with batch norm folded (no quantization)");
    c->add_flag("--plain-graph", a.plainGraph,
                "No graph speed-ups: keep torchvision's roi_align and the input's memory layout, and dequantize "
                "wherever a quantized result enters a container or leaves a block (for before/after measurements)");
    c->add_option("--threads", a.threads, "Intra-op threads (0: LibTorch default)")->check(CLI::Range(0, 256));
    c->add_option("--json", a.json, "Also write the report as JSON to this file");
    addPreprocessOptions(c, a.size, a.mean, a.std, a.bgr);
    c->add_flag("--quiet", a.quiet, "No progress output");
}

namespace {

QuantizeOptions quantizeOptions(const QuantizeArgs& a) {
    QuantizeOptions o;
    o.modelPath = a.model;
    o.outPath = a.out;
    if (!a.calib.empty())
        o.images = listImages(a.calib);
    else if (!a.calibCoco.empty())
        o.images = cocoImagePaths(a.calibCoco, a.images);
    else if (!a.foldOnly)
        throw Error(ErrorKind::Usage, "quantize: give calibration images with --calib DIR or --calib-coco JSON --images DIR");
    o.images = calibrationSample(o.images, a.calibImages);
    o.preprocess = parsePreprocess(a.size, a.mean, a.std, a.bgr);
    o.model.threads = a.threads;
    o.model.engine = a.engine;
    if (!parseCalibrationMethod(a.method, o.method))
        throw Error(ErrorKind::Usage,
                    "--method: unknown calibration method '" + a.method + "' (expected minmax, percentile, mse or entropy)");
    o.percentile = a.percentile;
    o.perChannel = !a.perTensor;
    o.reduceRange = a.reduceRange == "on" ? ReduceRange::On : a.reduceRange == "off" ? ReduceRange::Off : ReduceRange::Auto;
    o.scope = a.scope;
    o.exclude = a.exclude;
    o.keepFloat = a.floatLayers;
    o.keepFloatCount = a.keepFloat;
    o.rankBy = a.rankBy == "sensitivity" ? RankBy::Sensitivity : a.rankBy == "map" ? RankBy::Map : RankBy::Sqnr;
    o.rankFrom = a.rankFrom;
    o.rankImages = a.rankImages;
    if (a.maxDrop >= 0 && a.calibCoco.empty())
        throw Error(ErrorKind::Usage, "--max-drop measures mAP: give the calibration set as --calib-coco JSON --images DIR");
    o.maxDropPoints = a.maxDrop;
    o.evalAnnotations = a.calibCoco;
    o.evalImagesDir = a.images;
    o.foldOnly = a.foldOnly;
    o.plain = a.plainGraph;

    return o;
}

// The layer table, what was written, size and time, and the --max-drop trade-off.
void printQuantizeReport(const QuantizeReport& r, const QuantizeOptions& o, const QuantizeArgs& a) {
    std::size_t nameWidth = 5;
    for (const auto& l : r.layers)
        nameWidth = std::min<std::size_t>(48, std::max(nameWidth, l.name.size()));
    const int w = static_cast<int>(nameWidth);
    std::printf("%-*s  %-24s %s\n", w, "layer", "as", "scale in -> out / why float");
    for (const auto& l : r.layers) {
        char rank[64] = "";
        if (l.ranked && o.rankBy == RankBy::Map)
            std::snprintf(rank, sizeof rank, "  [alone: mAP drop %.2f points]", -l.rankScore);
        else if (l.ranked)
            std::snprintf(rank, sizeof rank, "  [rank SQNR %.2f dB]", l.rankScore);
        if (!l.quantizedOp.empty())
            std::printf("%-*s  %-24s %.4g -> %.4g%s\n", w, l.name.c_str(), l.quantizedOp.c_str(), l.inputScale,
                        l.outputScale, rank);
        else
            std::printf("%-*s  %-24s %s%s\n", w, l.name.c_str(), ("float " + l.op.substr(l.op.find(':') + 2)).c_str(),
                        l.reason.c_str(), rank);
    }
    auto mb = [](std::int64_t b) { return static_cast<double>(b) / 1e6; };
    auto ratio = [](double x, double y) { return y > 0 ? x / y : 0.0; };
    if (o.foldOnly)
        std::printf("wrote %s: frozen float model, %d conv/linear layers with batch norm folded where "
                    "present, nothing quantized\n",
                    r.outPath.c_str(), r.floatLayers);
    else
        std::printf("wrote %s: %d layers INT8, %d float, %d additions INT8; calibrated on %d image(s) in "
                    "%.1f s (%s, %s weights, %s, activations %d bits)\n",
                    r.outPath.c_str(), r.quantizedLayers, r.floatLayers, r.quantizedAdds, r.calibrationImages,
                    r.calibrationSeconds, toString(o.method), o.perChannel ? "per-channel" : "per-tensor",
                    o.model.engine.c_str(), r.reduceRange ? 7 : 8);
    if (!o.plain)
        std::printf("graph: %d RoI Align op(s) as aten ops, channels-last stem %s, %d quantized result(s) kept "
                    "quantized into containers and out of blocks, %d more addition(s) INT8 when both operands "
                    "arrive quantized, %d quantize(s) in place\n",
                    r.roiAligns, r.channelsLast ? "yes" : "no", r.carried, r.carriedSums, r.inPlaceQuantizes);
    std::printf("size: file %.2f MB -> %.2f MB (x%.3f), parameters %.2f MB -> %.2f MB (x%.3f)\n",
                mb(r.originalFileBytes), mb(r.outputFileBytes), ratio(mb(r.outputFileBytes), mb(r.originalFileBytes)),
                mb(r.originalParameterBytes), mb(r.outputParameterBytes),
                ratio(mb(r.outputParameterBytes), mb(r.originalParameterBytes)));
    if (r.checkSecondsOriginal > 0)
        std::printf("time on %s: %.1f ms -> %.1f ms (x%.3f; fastest of 3 after 3 warm-up runs; "
                    "`bench` measures properly)\n",
                    o.images.front().c_str(), 1e3 * r.checkSecondsOriginal, 1e3 * r.checkSecondsOutput,
                    ratio(r.checkSecondsOutput, r.checkSecondsOriginal));
    if (!r.tradeOffs.empty()) {
        std::printf("trade-off on %s (mAP@[.5:.95] float %.2f):\n  float layers   file MB   time ms   mAP    drop\n",
                    a.calibCoco.c_str(), 100 * r.originalMap);
        for (const auto& t : r.tradeOffs)
            std::printf("  %12d %9.2f %9.1f %6.2f %7.2f\n", t.keptFloat, mb(t.fileBytes), 1e3 * t.seconds, 100 * t.map,
                        t.dropPoints);
    }
}

void writeQuantizeJson(const QuantizeReport& r, const QuantizeOptions& o, const std::string& path) {
    nlohmann::json tradeOffs = nlohmann::json::array();
    for (const auto& t : r.tradeOffs)
        tradeOffs.push_back({{"kept_float", t.keptFloat}, {"file_bytes", t.fileBytes}, {"seconds", t.seconds},
                             {"map", t.map}, {"drop_points", t.dropPoints}});
    const nlohmann::json layers = nlohmann::json::parse(quantizedLayersJson(r.layers, o.rankBy));
    nlohmann::json j = {{"out", r.outPath},
                        {"model", o.modelPath},
                        {"engine", o.model.engine},
                        {"method", toString(o.method)},
                        {"per_channel", o.perChannel},
                        {"reduce_range", r.reduceRange},
                        {"calibration_images", r.calibrationImages},
                        {"quantized_layers", r.quantizedLayers},
                        {"float_layers", r.floatLayers},
                        {"quantized_adds", r.quantizedAdds},
                        {"observed_values", r.observedValues},
                        {"plain_graph", o.plain},
                        {"roi_align_as_aten", r.roiAligns},
                        {"channels_last_stem", r.channelsLast},
                        {"quantized_through_containers", r.carried},
                        {"run_time_quantized_adds", r.carriedSums},
                        {"in_place_quantizes", r.inPlaceQuantizes},
                        {"file_bytes", {{"original", r.originalFileBytes}, {"quantized", r.outputFileBytes}}},
                        {"parameter_bytes",
                         {{"original", r.originalParameterBytes}, {"quantized", r.outputParameterBytes}}},
                        {"check_seconds", {{"original", r.checkSecondsOriginal}, {"quantized", r.checkSecondsOutput}}},
                        {"calibration_seconds", r.calibrationSeconds},
                        {"total_seconds", r.totalSeconds},
                        {"warnings", r.warnings},
                        {"trade_off", tradeOffs},
                        {"layers", layers}};
    std::ofstream f(path);
    f << jsonText(j, 2) << "\n";
    if (!f)
        throw Error(ErrorKind::Output, path + ": cannot write the JSON report");
}

} // namespace

int runQuantize(const QuantizeArgs& a) {
    const QuantizeOptions o = quantizeOptions(a);
    const QuantizeReport r =
        writingWithProgress(a.quiet, a.out, [&](const ProgressFn& progress) { return quantize(o, progress); });
    for (const auto& w : r.warnings)
        std::fprintf(stderr, "quantscope-cli: warning: %s\n", w.c_str());
    printQuantizeReport(r, o, a);
    if (!a.json.empty())
        writeQuantizeJson(r, o, a.json);
    return 0;
}

void addBench(CLI::App& app, BenchArgs& a) {
    CLI::App* c = app.add_subcommand("bench", "Size, latency and peak memory of both models per batch size");
    c->add_option("--original", a.original, "Original (float) TorchScript model")->required();
    c->add_option("--quantized", a.quantized, "Quantized TorchScript model")->required();
    c->add_option("--baseline", a.baseline,
                  "A third model timed in the same runs, e.g. the original frozen and batch-norm-folded "
                  "(quantize --fold-only): the quantized model's time is also given as a ratio to it");
    auto* img = c->add_option("--image", a.image, "Input image (resized to --size when given)");
    c->add_option("--size", a.size, "Input size WxH (default: the image's size, or 640x480 without --image)");
    c->add_option("--batch", a.batch, "Comma-separated batch sizes (default 1,2,4,32,64)");
    c->add_option("--runs", a.runs, "Timed runs per model and batch (default 5)")->check(CLI::Range(1, 1000));
    c->add_option("--warmup", a.warmup, "Untimed runs first (default 3: TorchScript optimises on its second run)")->check(CLI::Range(0, 100));
    c->add_option("--threads", a.threads, "Intra-op threads (0: LibTorch default)")->check(CLI::Range(0, 256));
    c->add_option("--engine", a.engine, "Quantized engine: onednn or qnnpack");
    addOnnxInt8Option(c, a.onnxInt8);
    c->add_option("--memory-limit-mib", a.memoryLimitMiB,
                  "Memory a probe may use before its batch counts as not fitting (default: 85% of available)");
    c->add_option("--json", a.json, "Also write the results as JSON to this file");
    c->add_option("--into", a.into, "Also store the results in this dump (/bench), for the GUI");
    c->add_flag("--quiet", a.quiet, "No progress output");
    (void)img;
}

int runBench(const BenchArgs& a) {
    BenchOptions o;
    o.originalPath = a.original;
    o.quantizedPath = a.quantized;
    o.baselinePath = a.baseline;
    o.imagePath = a.image;
    if (!a.size.empty()) {
        o.size = parseSize(a.size);
    } else if (!a.image.empty()) {
        const Image probe = loadImage(a.image, {});
        o.size = {probe.width, probe.height};
    }
    o.batches.clear();
    std::istringstream in(a.batch);
    std::string item;
    while (std::getline(in, item, ',')) {
        try {
            std::size_t used = 0;
            const int b = std::stoi(item, &used);
            if (used != item.size())
                throw std::invalid_argument(item);
            o.batches.push_back(b);
        } catch (const std::exception&) {
            throw Error(ErrorKind::Usage, "--batch: expected comma-separated integers, got '" + a.batch + "'");
        }
    }
    o.runs = a.runs;
    o.warmup = a.warmup;
    o.model.threads = a.threads;
    o.model.engine = a.engine;
    o.model.onnxInt8 = parseOnnxInt8(a.onnxInt8);
    o.memoryLimitMiB = a.memoryLimitMiB;
    o.childExecutable = "/proc/self/exe";
    const BenchReport r = withProgress(a.quiet, [&](const ProgressFn& progress) { return runBenchmark(o, progress); });
    auto change = [](double o, double q) { return o > 0 ? 100.0 * (q - o) / o : 0.0; };
    std::printf("input %dx%d, %s threads, engine %s\n", r.width, r.height,
                r.threads > 0 ? std::to_string(r.threads).c_str() : "default", r.engine.c_str());
    std::printf("%-22s %12s %12s %9s\n", "size", "original", "quantized", "change");
    std::printf("%-22s %12.2f %12.2f %+8.1f%%\n", "file (MB)", r.fileBytes[0] / 1e6, r.fileBytes[1] / 1e6,
                change(static_cast<double>(r.fileBytes[0]), static_cast<double>(r.fileBytes[1])));
    std::printf("%-22s %12.2f %12.2f %+8.1f%%\n", "parameters (MB)", r.parameterBytes[0] / 1e6,
                r.parameterBytes[1] / 1e6,
                change(static_cast<double>(r.parameterBytes[0]), static_cast<double>(r.parameterBytes[1])));
    std::printf("%-6s %26s %26s %9s %12s %12s\n", "batch", "original ms (min-max)", "quantized ms (min-max)",
                "time", "peak MiB o", "peak MiB q");
    for (const auto& b : r.batches) {
        if (!b.measured) {
            std::printf("%-6d skipped: %s\n", b.batch, b.skipped.c_str());
            continue;
        }
        char lo[64], hi[64];
        std::snprintf(lo, sizeof lo, "%.1f (%.1f-%.1f)", b.medianMs[0], b.minMs[0], b.maxMs[0]);
        std::snprintf(hi, sizeof hi, "%.1f (%.1f-%.1f)", b.medianMs[1], b.minMs[1], b.maxMs[1]);
        std::printf("%-6d %26s %26s %+8.1f%% %12.0f %12.0f\n", b.batch, lo, hi, change(b.medianMs[0], b.medianMs[1]),
                    b.peakMiB[0], b.peakMiB[1]);
    }
    std::printf("memory growth: %.1f MiB per image (original), %.1f MiB per image (quantized); probe limit %.0f MiB\n",
                r.mibPerImage[0], r.mibPerImage[1], r.memoryLimitMiB);
    const bool baseline = r.models == 3;
    if (baseline) {
        std::printf("baseline %s: file %.2f MB\n%-6s %26s %13s %13s %12s\n", r.paths[2].c_str(), r.fileBytes[2] / 1e6,
                    "batch", "baseline ms (min-max)", "q/original", "q/baseline", "peak MiB b");
        for (const auto& b : r.batches)
            if (b.measured) {
                char t[64];
                std::snprintf(t, sizeof t, "%.1f (%.1f-%.1f)", b.medianMs[2], b.minMs[2], b.maxMs[2]);
                std::printf("%-6d %26s %13.3f %13.3f %12.0f\n", b.batch, t, b.medianMs[1] / b.medianMs[0],
                            b.medianMs[1] / b.medianMs[2], b.peakMiB[2]);
            }
    }
    if (!a.json.empty()) {
        nlohmann::json rows = nlohmann::json::array();
        for (const auto& b : r.batches)
            rows.push_back({{"batch", b.batch}, {"measured", b.measured}, {"skipped", b.skipped},
                            {"median_ms", {b.medianMs[0], b.medianMs[1]}}, {"min_ms", {b.minMs[0], b.minMs[1]}},
                            {"max_ms", {b.maxMs[0], b.maxMs[1]}}, {"peak_mib", {b.peakMiB[0], b.peakMiB[1]}},
                            {"model_mib", {b.modelMiB[0], b.modelMiB[1]}},
                            {"time_change_percent", b.measured ? change(b.medianMs[0], b.medianMs[1]) : 0.0}});
        if (baseline)
            for (std::size_t i = 0; i < r.batches.size(); ++i) {
                const auto& b = r.batches[i];
                rows[i]["baseline"] = {{"median_ms", b.medianMs[2]}, {"min_ms", b.minMs[2]}, {"max_ms", b.maxMs[2]},
                                       {"peak_mib", b.peakMiB[2]}, {"model_mib", b.modelMiB[2]},
                                       {"quantized_ratio", b.measured && b.medianMs[2] > 0 ? b.medianMs[1] / b.medianMs[2] : 0.0}};
            }
        nlohmann::json j = {{"original", {{"path", r.paths[0]}, {"file_bytes", r.fileBytes[0]}, {"parameter_bytes", r.parameterBytes[0]}, {"mib_per_image", r.mibPerImage[0]}}},
                            {"quantized", {{"path", r.paths[1]}, {"file_bytes", r.fileBytes[1]}, {"parameter_bytes", r.parameterBytes[1]}, {"mib_per_image", r.mibPerImage[1]}}},
                            {"file_change_percent", change(static_cast<double>(r.fileBytes[0]), static_cast<double>(r.fileBytes[1]))},
                            {"input", {r.width, r.height}}, {"threads", r.threads}, {"engine", r.engine},
                            {"memory_limit_mib", r.memoryLimitMiB}, {"batches", rows}};
        if (baseline)
            j["baseline"] = {{"path", r.paths[2]}, {"file_bytes", r.fileBytes[2]},
                             {"parameter_bytes", r.parameterBytes[2]}, {"mib_per_image", r.mibPerImage[2]}};
        std::ofstream out(a.json);
        out << jsonText(j, 2) << "\n";
        if (!out)
            throw Error(ErrorKind::Output, a.json + ": cannot write");
    }
    if (!a.into.empty()) {
        storeBenchmark(a.into, r);
        std::printf("stored in %s (/bench)\n", a.into.c_str());
    }
    return 0;
}

void addBenchChild(CLI::App& app, BenchChildArgs& a) {
    CLI::App* c = app.add_subcommand("_bench-child", "internal: one memory probe of bench");
    c->group(""); // hidden from --help
    c->add_option("--model", a.model)->required();
    c->add_option("--batch", a.batch)->required();
    c->add_option("--image", a.image);
    c->add_option("--size", a.size)->required();
    c->add_option("--threads", a.threads);
    c->add_option("--engine", a.engine);
    c->add_option("--onnx-int8", a.onnxInt8);
}

int runBenchChild(const BenchChildArgs& a) {
    ModelOptions mo;
    mo.threads = a.threads;
    mo.engine = a.engine;
    mo.onnxInt8 = parseOnnxInt8(a.onnxInt8);
    return benchChild(a.model, a.batch, a.image, parseSize(a.size), mo);
}

void addExport(CLI::App& app, ExportArgs& a) {
    CLI::App* c = app.add_subcommand("export", "Figures of a dump as PNG, SVG or PDF, without a window "
                                               "(rendered by the quantscope application, headless)");
    c->add_option("dump", a.dump, "Dump file")->required();
    auto* layer = c->add_option("--layer", a.layers, "Layer name (repeatable)");
    auto* all = c->add_flag("--all", a.all, "Every layer");
    layer->excludes(all);
    c->add_option("--kind", a.kind, "abs, rel, original, quantized (per layer), hexbin (output error), "
                                    "detections (per image)")
        ->check(CLI::IsMember({"abs", "rel", "original", "quantized", "hexbin", "detections"}));
    c->add_option("--format", a.format, "png, svg or pdf")->check(CLI::IsMember({"png", "svg", "pdf"}));
    c->add_option("--out", a.out, "Output directory")->required();
    c->add_option("--width", a.width, "Figure width in pixels")->check(CLI::Range(100, 20000));
    c->add_option("--height", a.height, "Figure height in pixels")->check(CLI::Range(100, 20000));
    c->add_option("--dpi", a.dpi, "Resolution")->check(CLI::Range(30, 2400));
}

int runExport(const ExportArgs& a, const char* argv0) {
    if (a.layers.empty() && !a.all && a.kind != "hexbin" && a.kind != "detections")
        throw Error(ErrorKind::Usage, "export: give --layer NAME or --all for --kind " + a.kind);
    openDump(a.dump, 10, interrupted); // a clear error for a bad dump before starting the renderer
    // The renderer is the GUI program's headless mode: keeps Qt out of this executable.
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("QS_GUI"))
        candidates.emplace_back(env);
    if (!ec) {
        candidates.push_back(self.parent_path() / "quantscope");
        candidates.push_back(self.parent_path().parent_path() / "gui" / "quantscope"); // build tree
    }
    (void)argv0;
    std::string program;
    for (const auto& c : candidates)
        if (fs::is_regular_file(c, ec) && ::access(c.c_str(), X_OK) == 0) {
            program = c.string();
            break;
        }
    if (program.empty())
        throw Error(ErrorKind::Input, "export needs the quantscope program next to quantscope-cli (or QS_GUI=path)");
    std::vector<std::string> args = {program, "--export", a.dump, "--kind", a.kind, "--format", a.format,
                                     "--out", a.out, "--width", std::to_string(a.width), "--height",
                                     std::to_string(a.height), "--dpi", std::to_string(a.dpi)};
    if (a.all)
        args.push_back("--all");
    for (const auto& l : a.layers)
        args.insert(args.end(), {"--layer", l});
    std::vector<char*> argv;
    for (auto& s : args)
        argv.push_back(s.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    std::fflush(stderr);
    if (!std::getenv("DISPLAY") && !std::getenv("WAYLAND_DISPLAY"))
        setenv("QT_QPA_PLATFORM", "offscreen", 0);
    execv(program.c_str(), argv.data());
    throw Error(ErrorKind::Input, program + ": cannot run (" + std::string(std::strerror(errno)) + ")");
}

} // namespace qs::cli
