#pragma once
// Lazy reader of a dump: opening it reads attributes, dataset headers and one chunk-index
// entry per dataset, never activation data, so a multi-GB dump opens in tens of
// milliseconds. Activations are read on demand.
// Opening validates the structure (docs/robustness.md): every count, rank and extent is
// checked against the layer attributes and image_count, so later reads cannot run past
// what is stored. Use openDump() on files you did not just write: it validates in a
// child process first, so a file that crashes libhdf5 itself is an error, not a crash.

#include "layout.h"
#include "metrics.h"
#include "sections.h"

#include <H5Cpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace qs {

class DumpReader {
public:
    // Throws Error(Input) naming the file: missing, not HDF5, not a dump, incomplete,
    // of a newer format version, or inconsistent (naming the object and the problem).
    explicit DumpReader(const std::string& path);
    ~DumpReader();
    DumpReader(const DumpReader&) = delete;
    DumpReader& operator=(const DumpReader&) = delete;

    const std::string& path() const { return m_path; }
    int version() const { return m_version; }
    int imageCount() const { return m_images; }
    // How many images' activations and maps are stored: imageCount() unless compare
    // --keep-activations kept fewer ("first" K, or the "worst" K; "all" otherwise).
    // Reading an image that is not kept is an error.
    int keptImages() const { return m_kept; }
    const std::string& keptSelection() const { return m_keptSelection; }
    // The size every image was fed at (0 x 0 when the dump does not say).
    int inputWidth() const { return m_inputWidth; }
    int inputHeight() const { return m_inputHeight; }
    bool isKept(int image) const;
    // The activation row holding `image`, -1 when it is not kept.
    int keptRow(int image) const { return isKept(image) ? m_rowOf[static_cast<std::size_t>(image)] : -1; }
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
    // Every layer's metrics on every image ([N, L]); empty for dumps made before they were
    // recorded. Read and checked when the dump opens.
    const ImageMetrics& imageMetrics() const { return m_imageMetrics; }
    // A layer's value histogram over all images (both sides); empty when it has none.
    Histogram histogram(int layer) const;
    InputImage input(int image) const;
    // The file each image came from ("" for dumps without inputs), read when opening.
    const std::string& source(int image) const;
    OutputPair outputs(int image) const;
    bool hasBench() const;
    bool hasEval() const;
    EvalData eval() const;
    BenchData bench() const;

    // Reads everything a viewer may ask for except activation data (outputs, matches,
    // inputs' headers, /bench, /eval, unmatched names); throws as the reads would.
    void readAllMetadata() const;

private:
    void validateLayers();
    std::string layerGroup(int layer) const;
    std::string layerWhere(int layer) const; // "<path>: layer 0003 (<name>)", for messages
    std::vector<float> optionalMap(int layer, const std::string& name, int image) const;

    std::string m_path;
    std::unique_ptr<H5::H5File> m_file;
    int m_version = 0;
    int m_images = 0;
    std::string m_dtype, m_created, m_producer;
    std::vector<LayerSummary> m_layers;
    ImageMetrics m_imageMetrics;
    std::vector<std::string> m_sources;
    int m_kept = 0;
    std::string m_keptSelection;
    int m_inputWidth = 0, m_inputHeight = 0;
    std::vector<int> m_rowOf; // by image: its activation row, -1 when not kept
    int rowOf(int image) const; // its activation row; Error when not kept
    ModelSummary m_models[2];
};

// Validates `path` in a child process (DumpReader plus readAllMetadata), then opens it
// here. A child killed by a signal, or making no progress for `stallSeconds` (it reports
// each layer and image it gets through, so a large dump may take as long as it needs),
// becomes Error(Input) naming the file; the child's own Error is passed on as it was.
// `cancelled` is polled while the child works (e.g. Ctrl-C): true ends it and throws
// Error(Cancelled).
std::unique_ptr<DumpReader> openDump(const std::string& path, int stallSeconds = 10,
                                     const std::function<bool()>& cancelled = {});

} // namespace qs
