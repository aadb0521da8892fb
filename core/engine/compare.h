#pragma once
// The comparison job: run images through the original and the quantized model with taps
// on, stream every recorded activation into a dump, pair the layers, compute metrics.

#include "detection.h"
#include "image.h"
#include "model.h"
#include "progress.h"

#include <string>
#include <vector>

namespace qs {

struct CompareOptions {
    std::string originalPath;
    std::string quantizedPath;
    std::vector<std::string> images;
    // compare --shard I/N: `images` is this shard's part of a list of imagesTotal, and
    // listIndex[i] the position of images[i] in that list (empty: 0, 1, ...)
    int shardIndex = 0, shardCount = 1;
    std::int64_t imagesTotal = 0;
    std::vector<std::int64_t> listIndex;
    std::string outPath;
    Preprocess preprocess;
    ModelOptions model;
    std::vector<std::string> layerGlobs; // keep only layers whose name matches one (fnmatch)
    // Auto: raw outputs that have a YOLO layout are decoded (others stay raw); YoloV5/V8
    // and Torchvision insist (an error when the output is not that).
    DecodeKind decode = DecodeKind::Auto;
    YoloDecode yolo = {YoloLayout::Auto, 0.05f}; // torchvision detectors' own score floor
    int gzip = 0;
    std::size_t queueBytes = 256u << 20;
    // --keep-activations K (K >= 0): activations and maps of K images only (0: none);
    // every image's metrics are computed as the run goes, on a worker thread while the next
    // image runs (histogram bins planned from the first image). -1: all (metrics after the
    // run, histogram bins over every value).
    int keepActivations = -1;
    // --keep worst: the K kept images are those of lowest mean SQNR over the layers (as
    // the Images view ranks them, ties to the earlier image), not the first K.
    bool keepWorst = false;
    // With --keep-activations and --shard: the whole list's first image, whose values plan
    // the histogram bins in every shard (so merge adds the shards' counts). Empty, or
    // images[0]: this run's first image plans them.
    std::string planImage;
};

struct CompareSummary {
    std::string outPath;
    int images = 0;
    int layers = 0;                // matched and stored
    int unmatchedOriginal = 0;
    int unmatchedQuantized = 0;
    int originalCalls = 0;         // tap calls per image
    int quantizedCalls = 0;
    std::vector<std::string> unmatchedNames; // "original: name" / "quantized: name"
    // wall-clock seconds, for `bench_recording` and --json
    double loadSeconds = 0;
    std::vector<double> imageSeconds; // both models' passes on one image, with recording
    double finishSeconds = 0;         // drain + metrics + commit
};

CompareSummary compare(const CompareOptions& options, const ProgressFn& progress);

} // namespace qs
