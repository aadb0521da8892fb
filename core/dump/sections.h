#pragma once
// The typed sections of a dump (docs/dump-format.md), each written and read by one pair
// of functions in sections.cpp, where every attribute and dataset name of the section is
// spelled once. compare, bench and eval hand these records over; none of them writes
// HDF5 by hand. Readers validate what they read (rank, extent, type, lengths that must
// agree) and throw Error(Input) naming the object and the problem.

#include "activation.h"
#include "cocoeval.h"
#include "layout.h"
#include "matching.h"
#include "metrics.h"
#include "types.h"

#include <H5Cpp.h>

#include <cstdint>
#include <limits>
#include <map>
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
    std::vector<std::int64_t> inputs; // layers whose output flows into this one (graph edges)
    Metrics metrics;
};

// /inputs/<i>: one image as the models saw it.
struct InputImage {
    std::string source;
    std::int64_t index = -1; // position in the whole image list (sharded runs); -1: unknown
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
    std::vector<std::int64_t> inputs; // kept layers feeding this one, from the original's graph
};

// /image_metrics: the six metrics of every layer on every image, [N, L] datasets.
struct ImageMetrics {
    int images = 0, layers = 0;
    std::vector<Metrics> values; // values[image * layers + layer]
    bool empty() const { return values.empty(); }
    const Metrics& at(int image, int layer) const {
        return values[static_cast<std::size_t>(image) * static_cast<std::size_t>(layers) +
                      static_cast<std::size_t>(layer)];
    }
};

// One image over all layers (docs/metrics.md): the mean of the layers' finite SQNRs (+inf
// when every layer is exact) and the worst layer.
struct ImageSummary {
    int image = 0;
    double meanSqnrDb = 0, minSqnrDb = 0;
    int worstLayer = -1;
};
ImageSummary summarizeImage(const ImageMetrics& metrics, int image);
// The `top` images of lowest mean SQNR, worst first (ties in image order).
std::vector<ImageSummary> worstImages(const ImageMetrics& metrics, std::size_t top);

// The smallest and largest finite value seen (low > high: none yet).
struct ValueRange {
    double low = std::numeric_limits<double>::infinity();
    double high = -std::numeric_limits<double>::infinity();
    void add(const float* values, std::size_t n);
    void add(const std::uint16_t* halfValues, std::size_t n);
    void add(const Activation& activation); // its values, float16 or float32 as stored
    void merge(const ValueRange& other);
    bool empty() const { return low > high; }
};

// /layers/<k>/histogram: value distributions of both sides over all images, on shared
// bins. When the quantized side is per-tensor quantized, every quantization level
// (scale * integer) sits at the centre of a bin, so rounding and clipping show.
struct Histogram {
    double low = 0, binWidth = 1;           // bin b covers [low + b w, low + (b + 1) w)
    std::vector<std::int64_t> counts[2];    // by Side
    double scale = std::numeric_limits<double>::quiet_NaN(); // quantized side, when known
    std::int64_t zeroPoint = 0, qmin = 0, qmax = 0;          // its integer range
    bool empty() const { return counts[0].empty(); }
    int bins() const { return static_cast<int>(counts[0].size()); }
    // the values the quantized tensor can hold: scale * (qmin - zp) .. scale * (qmax - zp)
    double clipLow() const { return scale * static_cast<double>(qmin - zeroPoint); }
    double clipHigh() const { return scale * static_cast<double>(qmax - zeroPoint); }
    // Non-finite values are skipped; with a grid, quantized values are put back on their
    // level (round(v / scale) * scale) first, undoing f16 storage's rounding. The values
    // are split over `threads` threads (counts do not depend on it).
    void add(Side side, const float* values, std::size_t n, int threads = 1);
};
// Bins for values in `range`: one per quantization level (or several, up to 1024 bins
// in all) when `scale` is a finite positive number and the range spans at most 2048
// levels, else 256 equal bins.
Histogram planHistogram(const ValueRange& range, double scale);

// Root attributes written when a compare finishes.
struct RunRecord {
    std::string created, producer, tapPoint, ops;
    int layers = 0, unmatchedOriginal = 0, unmatchedQuantized = 0;
    int inputWidth = 0, inputHeight = 0;
    // compare --shard I/N: this dump holds every N-th image of the list, from the I-th
    // (a merged or unsharded dump: 0/1); images_total: how many the whole list holds
    int shardIndex = 0, shardCount = 1;
    std::int64_t imagesTotal = 0;
    // compare --keep-activations K < N: K (0 with none), "first" | "worst", and the image
    // each activation row holds. keptImages -1: all images (no attributes, no /kept_rows).
    int keptImages = -1;
    std::string keptSelection;
    std::vector<int> keptRows;
    int keepRequested = -1; // the K asked for (kept_images is at most the images there are)
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
    // per evaluated image (those with ground truth): its file name as the annotations give
    // it, and each model's mAP@[.5:.95] on it alone; empty in dumps made before
    std::vector<std::string> perImageFiles;
    std::vector<float> perImageMap[2];
    // every detection scored (image id, category, box, score, in the annotations' pixels),
    // so that eval shards can be scored together (merge); empty in dumps made before
    std::vector<CocoBox> detections[2];
    int shardIndex = 0, shardCount = 1; // eval --shard I/N
};
// /eval's content from a scored pair.
EvalData toEvalData(const PairScore& score, const std::string& annotations, const std::vector<CocoBox> detections[2],
                    int shardIndex = 0, int shardCount = 1);

// Writers. Each creates its group (replacing /bench or /eval when present).
void writeDumpHeader(H5::H5File& file, StorageType storage, int images); // complete = 0
void markComplete(H5::H5File& file);
void writeActivationAttributes(H5::DataSet& dataset, const Activation& activation);
void writeLayerPlacement(H5::Group& layer, int index, const std::string& name, MatchMethod match);
void writeInput(H5::H5File& file, int image, const InputImage& input);
// The pixels of an input already written without them (compare --keep-activations: only
// kept images' inputs hold pixels).
void writeInputImage(H5::H5File& file, int image, const InputImage& input);
void writeOutputs(H5::H5File& file, int image, const ModelOutput& original, const ModelOutput& quantized);
void writeLayerRecord(H5::H5File& file, int layer, const LayerRecord& record);
void writeModel(H5::H5File& file, Side side, const ModelSummary& model);
void writeRunRecord(H5::H5File& file, const RunRecord& run);
void writeBench(H5::H5File& file, const BenchData& bench);
void writeEval(H5::H5File& file, const EvalData& eval);

// Reads both sides of layer `layer` back one image at a time and writes its metrics
// (attributes, /channels) and, for 4-D layers, its difference and mean maps.
// One layer's statistics gathered image by image (the metrics pass, or compare's stream
// when activations are not all kept): per-channel sums, each image's metrics, the
// histogram on bins planned over `range` up front (values beyond it count in the end
// bins), and the difference and mean maps of the images asked to keep them.
class LayerAccumulator {
public:
    // dims: the activation dataset's ([N, C, H, W] or [N, F]); quantized: its dataset, for
    // the grid.
    LayerAccumulator(const H5::DataSet& quantized, const std::vector<hsize_t>& dims, const ValueRange& range);
    // Images come in order 0, 1, ...; keepMaps: hold this image's difference and mean maps.
    void addImage(const std::vector<float>& original, const std::vector<float>& quantized, bool keepMaps, int threads);
    // Holds the difference and mean maps of image `image` (added already without them:
    // compare --keep worst computes them only for an image that enters the kept set).
    void addMaps(int image, const std::vector<float>& original, const std::vector<float>& quantized, int threads);
    // Drops the maps held for `image` (compare --keep worst: an image no longer kept).
    void forgetMaps(int image);
    // The metrics of image `image` (added already).
    const Metrics& imageMetrics(int image) const { return m_perImage.at(static_cast<std::size_t>(image)); }
    // Metrics attributes, sums, channels, maps and histogram; returns each image's metrics.
    // The maps are written in the order of `rows` (the images the dump's activation rows
    // hold; each must have its maps held), or in image order when `rows` is empty.
    std::vector<Metrics> write(H5::Group& layer, const std::vector<int>& rows = {}) const;

private:
    std::vector<hsize_t> m_dims;
    std::size_t m_channels = 1, m_plane = 1;
    bool m_maps4d = false;
    std::vector<MetricsAccumulator> m_perChannel;
    std::vector<Metrics> m_perImage;
    struct Maps {
        std::vector<float> absDiff, relDiff, meanO, meanQ;
    };
    std::map<int, Maps> m_maps; // by image
    ValueRange m_range;
    Histogram m_histogram;
};

// Returns the layer's metrics on each image. `range` covers both sides' values (from the
// writer); the histogram is written when it is not empty.
std::vector<Metrics> writeLayerMetrics(H5::H5File& file, int layer, int images, int threads,
                                       const ValueRange& range = {});
// A layer's metrics attributes, /layers/<k>/sums and /layers/<k>/channels/* from its
// per-channel accumulators (over all images).
void writeLayerStatistics(H5::Group& layer, const std::vector<MetricsAccumulator>& perChannel);
// Those accumulators back, from channels/sums; Error(Input) naming `where` when missing.
std::vector<MetricsAccumulator> readChannelSums(const H5::Group& layer, const std::string& where);
// The value range a layer's histogram was planned over (empty when it has none).
ValueRange readHistogramRange(const H5::Group& layer);
// Bins the layer's activations (all `images`) anew over `range` and replaces its histogram.
void rewriteHistogram(H5::Group& layer, int images, int threads, const ValueRange& range);
// byLayer[k][i]: layer k on image i.
void writeImageMetrics(H5::H5File& file, const std::vector<std::vector<Metrics>>& byLayer);

// /layers/<k>/histogram from `histogram` (nothing when it is empty), recording the range
// its bins were planned over.
void writeHistogram(H5::Group& layer, const Histogram& histogram, const ValueRange& range);

// Readers: throw Error(Input) naming `path` (the dump, for messages) and the object.
DumpHeader readDumpHeader(const H5::H5File& file);
RunRecord readRunRecord(const H5::H5File& file); // what is there of it
LayerSummary readLayer(const H5::Group& layer, int index);
// "module#call" of an activation dataset (as /unmatched lists them).
std::string readActivationName(const H5::DataSet& dataset);
InputImage readInput(const H5::H5File& file, const std::string& path, int image);
std::string readInputSource(const H5::H5File& file, int image); // its file name
std::int64_t readInputIndex(const H5::H5File& file, int image);  // its place in the whole list, or -1
// An input image dataset's [H, W, 3] extent, after checking shape, 8-bit type and storage;
// Error(Input) prefixed with `where` otherwise. Reads no pixels.
std::vector<hsize_t> checkInputImage(const H5::DataSet& dataset, const std::string& where);
OutputPair readOutputs(const H5::H5File& file, const std::string& path, int image); // empty when absent
ModelSummary readModel(const H5::H5File& file, Side side);                         // empty when absent
BenchData readBench(const H5::H5File& file, const std::string& path);
EvalData readEval(const H5::H5File& file, const std::string& path);
Metrics readMetrics(const H5::H5Object& object);
// Empty when the dump has none (made before they were recorded); else checked to be
// [images, layers] in every metric.
ImageMetrics readImageMetrics(const H5::H5File& file, const std::string& path, int images, int layers);
// Empty when the layer has none.
Histogram readHistogram(const H5::Group& layer, const std::string& where);

} // namespace qs
