#pragma once
// The typed sections of a dump (docs/dump-format.md), each written and read by one pair
// of functions in sections.cpp, where every attribute and dataset name of the section is
// spelled once. compare, bench and eval hand these records over; none of them writes
// HDF5 by hand. Readers validate what they read (rank, extent, type, lengths that must
// agree) and throw Error(Input) naming the object and the problem.

#include "activation.h"
#include "layout.h"
#include "matching.h"
#include "metrics.h"
#include "types.h"

#include <H5Cpp.h>

#include <cstdint>
#include <string>
#include <vector>

namespace qs {

// Root attributes written when a dump is created (completion is set by markComplete).
struct DumpHeader {
    std::string format;    // layout::kFormatName for a dump
    int version = 0;
    bool complete = false;
    std::string dtype;     // "f16" or "f32"
    std::int64_t images = 0;
};

// /layers/<k>: what a viewer lists (placement by the writer, record by compare, metrics).
struct LayerSummary {
    int index = 0;
    std::string name;          // display name (original side)
    std::string module;        // module path (original side)
    int call = 0;
    std::string op;            // original op
    std::string quantizedName; // display name on the quantized side
    std::string quantizedOp;
    std::string match;         // "path" or "order+shape"
    std::vector<std::int64_t> shape; // without the image dimension
    Metrics metrics;
};

// /inputs/<i>: one image as the models saw it.
struct InputImage {
    std::string source;
    int width = 0, height = 0;
    std::vector<std::uint8_t> rgb; // [H, W, 3]
};

// /outputs/<i>: both models' outputs for one image, and the detection matches.
struct OutputPair {
    std::string kind;                       // "detections", "logits", "raw"
    std::vector<float> original, quantized; // detections: rows of 6 (x1,y1,x2,y2,score,label)
    std::vector<float> matches;             // detections: rows of 4 (orig, quant, iou, score delta)
};

// /models/<side>
struct ModelSummary {
    std::string path, sha256, format, input, engine;
    std::int64_t fileBytes = 0, parameterBytes = 0, tapSites = 0, tappedCalls = 0;
    bool quantized = false;
};

// /layers/<k>: what compare knows about a pair once both sides ran.
struct LayerRecord {
    std::string module;        // original side
    int call = 0;
    std::string op;
    std::string quantizedName; // display name on the quantized side
    std::string quantizedOp;
    std::vector<std::int64_t> shape; // without the image dimension
    int originalIndex = 0, quantizedIndex = 0; // in each side's execution order
};

// Root attributes written when a compare finishes.
struct RunRecord {
    std::string created, producer, tapPoint, ops;
    int layers = 0, unmatchedOriginal = 0, unmatchedQuantized = 0;
    int inputWidth = 0, inputHeight = 0;
};

// /bench
struct BenchData {
    std::string path[2];
    std::int64_t fileBytes[2] = {0, 0}, parameterBytes[2] = {0, 0};
    double mibPerImage[2] = {0, 0};
    int width = 0, height = 0, threads = 0;
    std::string engine;
    double memoryLimitMiB = 0;
    std::vector<std::int64_t> batch;
    // per batch size; NaN where that batch was not measured (timings only)
    std::vector<float> medianMs[2], minMs[2], maxMs[2], peakMiB[2], modelMiB[2];
};

// /eval
struct EvalData {
    std::string annotations;
    int images = 0;
    double deltaMean = 0, deltaStd = 0, relMean = 0, relStd = 0;
    double map[2] = {-1, -1}, map50[2] = {-1, -1}, map75[2] = {-1, -1}, recall[2] = {-1, -1};
    std::vector<float> classAp[2];
    std::vector<std::int64_t> categoryIds;
    std::string categoryNames; // comma-separated, in categoryIds order
};

// Writers. Each creates its group (replacing /bench or /eval when present).
void writeDumpHeader(H5::H5File& file, StorageType storage, int images); // complete = 0
void markComplete(H5::H5File& file);
void writeActivationAttributes(H5::DataSet& dataset, const Activation& activation);
void writeLayerPlacement(H5::Group& layer, int index, const std::string& name, MatchMethod match);
void writeInput(H5::H5File& file, int image, const InputImage& input);
void writeOutputs(H5::H5File& file, int image, const ModelOutput& original, const ModelOutput& quantized);
void writeLayerRecord(H5::H5File& file, int layer, const LayerRecord& record);
void writeModel(H5::H5File& file, Side side, const ModelSummary& model);
void writeRunRecord(H5::H5File& file, const RunRecord& run);
void writeBench(H5::H5File& file, const BenchData& bench);
void writeEval(H5::H5File& file, const EvalData& eval);

// Reads both sides of layer `layer` back one image at a time and writes its metrics
// (attributes, /channels) and, for 4-D layers, its difference and mean maps.
void writeLayerMetrics(H5::H5File& file, int layer, int images, int threads);

// Readers: throw Error(Input) naming `path` (the dump, for messages) and the object.
DumpHeader readDumpHeader(const H5::H5File& file);
RunRecord readRunRecord(const H5::H5File& file); // what is there of it
LayerSummary readLayer(const H5::Group& layer, int index);
// "module#call" of an activation dataset (as /unmatched lists them).
std::string readActivationName(const H5::DataSet& dataset);
InputImage readInput(const H5::H5File& file, const std::string& path, int image);
// An input image dataset's [H, W, 3] extent, after checking shape, 8-bit type and storage;
// Error(Input) prefixed with `where` otherwise. Reads no pixels.
std::vector<hsize_t> checkInputImage(const H5::DataSet& dataset, const std::string& where);
OutputPair readOutputs(const H5::H5File& file, const std::string& path, int image); // empty when absent
ModelSummary readModel(const H5::H5File& file, Side side);                         // empty when absent
BenchData readBench(const H5::H5File& file, const std::string& path);
EvalData readEval(const H5::H5File& file, const std::string& path);
Metrics readMetrics(const H5::H5Object& object);

} // namespace qs
