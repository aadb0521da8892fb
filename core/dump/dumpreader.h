#pragma once
// Lazy reader of a dump: opening it and listing its layers and metrics reads attributes
// only, never a dataset, so a multi-GB dump opens at once. Activations are read on demand.

#include "layout.h"
#include "metrics.h"

#include <H5Cpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qs {

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

struct InputImage {
    std::string source;
    int width = 0, height = 0;
    std::vector<std::uint8_t> rgb; // [H, W, 3]
};

struct OutputPair {
    std::string kind;                    // "detections", "logits", "raw"
    std::vector<float> original, quantized; // detections: rows of 6 (x1,y1,x2,y2,score,label)
    std::vector<float> matches;          // detections: rows of 4 (orig, quant, iou, score delta)
};

struct BenchData {
    std::int64_t fileBytes[2] = {0, 0}, parameterBytes[2] = {0, 0};
    int width = 0, height = 0, threads = 0;
    std::vector<std::int64_t> batch;
    std::vector<float> medianMs[2], peakMiB[2];
};

struct EvalData {
    double map[2] = {-1, -1}, map50[2] = {-1, -1};
    double deltaMean = 0, deltaStd = 0;
    int images = 0;
    std::string annotations;
};

struct ModelSummary {
    std::string path, sha256, format, input, engine;
    std::int64_t fileBytes = 0, parameterBytes = 0, tappedCalls = 0;
    bool quantized = false;
};

class DumpReader {
public:
    // Throws Error(Input) naming the file: missing, not HDF5, not a dump, incomplete,
    // or of a newer format version.
    explicit DumpReader(const std::string& path);
    ~DumpReader();
    DumpReader(const DumpReader&) = delete;
    DumpReader& operator=(const DumpReader&) = delete;

    const std::string& path() const { return m_path; }
    int version() const { return m_version; }
    int imageCount() const { return m_images; }
    const std::string& dtype() const { return m_dtype; }
    const std::string& created() const { return m_created; }
    const std::string& producer() const { return m_producer; }
    const std::vector<LayerSummary>& layers() const { return m_layers; }
    const ModelSummary& model(Side side) const { return m_models[static_cast<int>(side)]; }
    std::vector<std::string> unmatched(Side side) const;

    // One image of one layer's activation as float [C, H, W] (or the stored shape).
    std::vector<float> activation(int layer, Side side, int image) const;
    // One channel of one image of a layer's activation, [H, W] (reads that channel only).
    std::vector<float> activationChannel(int layer, Side side, int image, int channel) const;
    // One image of a layer's difference map ([H, W]; empty for layers that are not 4-D).
    std::vector<float> diffMap(int layer, bool relative, int image) const;
    // One image of a layer's mean over channels, [H, W]; empty when the dump has none.
    std::vector<float> meanMap(int layer, Side side, int image) const;
    // A per-channel metric of a layer ("sqnr_db", "mse", "max_abs", ...), [C].
    std::vector<float> channelMetric(int layer, const std::string& metric) const;
    InputImage input(int image) const;
    OutputPair outputs(int image) const;
    bool hasBench() const;
    bool hasEval() const;
    EvalData eval() const;
    BenchData bench() const;

private:
    std::string layerGroup(int layer) const;
    std::vector<float> optionalMap(int layer, const std::string& name, int image) const;

    std::string m_path;
    std::unique_ptr<H5::H5File> m_file;
    int m_version = 0;
    int m_images = 0;
    std::string m_dtype, m_created, m_producer;
    std::vector<LayerSummary> m_layers;
    ModelSummary m_models[2];
};

} // namespace qs
