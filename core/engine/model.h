#pragma once
// A loaded network behind a backend-neutral interface. TorchScript is the backend today
// (torchscriptmodel.cpp; LibTorch is seen only by the engine's files that include the
// private torchscript.h / opvocabulary.h, and by the quantizer); ONNX comes behind the
// same interface. No LibTorch type appears here, so this header is cheap to include.

#include "activation.h"
#include "image.h"
#include "types.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qs {

// How inputs are fed and outputs decoded.
enum class InputKind {
    ImageList,   // torchvision detector: forward(List[Tensor[3,H,W]]) in [0,1]
    BatchTensor, // forward(Tensor[N,3,H,W])
};

const char* toString(InputKind kind);

enum class TapOps { Conv = 1, Linear = 2 };

// Where a convolution is recorded: its own output, or the end of its block (after the
// batch norm and activation that quantization fuses into it; the default).
enum class TapPoint { Output, Block };

// How a model's output becomes detections: torchvision detection dicts as they are, raw
// YOLO tensors decoded (detection.h). None keeps every output as the model returned it.
enum class DecodeKind { Auto, None, Torchvision, YoloV5, YoloV8 };

// How an INT8 ONNX model's convolutions and matrix products run (docs/onnx.md): as
// LibTorch's quantized kernels where the QDQ or QOperator pattern allows (Auto: only where
// they give ONNX's numbers up to requantization rounding, i.e. with VNNI or on inputs
// clipped to 7 bits; Kernels: wherever the pattern allows, saturation included), or
// simulated in float with ONNX's formulas everywhere.
enum class OnnxInt8 { Auto, Kernels, Simulated };
const char* toString(OnnxInt8 mode); // "auto", "kernels", "simulated"
// "auto" | "kernels" | "simulated"; throws Error(Usage) naming --onnx-int8 otherwise
OnnxInt8 parseOnnxInt8(const std::string& text);

struct ModelOptions {
    int threads = 0;                // intra-op threads; 0 = library default
    std::string engine = "onednn";  // quantized engine: onednn | qnnpack
    unsigned tapOps = static_cast<unsigned>(TapOps::Conv);
    TapPoint tapPoint = TapPoint::Block;
    StorageType storage = StorageType::F16; // what taps convert recorded tensors to
    OnnxInt8 onnxInt8 = OnnxInt8::Auto;     // process-wide, set by configureRuntime
};

struct TapSite {
    std::string module; // module path recovered from the inlined call stack
    std::string op;     // e.g. aten::conv2d
    std::string epilogue; // ops the tap was moved past, e.g. "batch_norm+relu_" or "[bn]+relu"
    int id = -1;          // Activation::site of its tensors
    std::vector<int> inputs; // ids of the tap sites whose outputs reach this one's input
                             // without passing another tap (the graph's data flow)
};

struct ModelInfo {
    std::string path;
    std::string format = "torchscript";
    std::string sha256;
    std::int64_t fileBytes = 0;
    std::int64_t parameterBytes = 0; // float parameters + packed quantized weights
    InputKind input = InputKind::BatchTensor;
    std::optional<Size2> recordedInputSize; // from a traced graph, when it records one
    bool quantized = false;                 // holds quantized ops
    std::vector<TapSite> sites;             // in graph order (not execution order)
};

class Model {
public:
    virtual ~Model() = default;
    virtual const ModelInfo& info() const = 0;
    // Runs one image. While it runs, every tap site hands its tensor to `sink` (may be null).
    virtual ModelOutput run(const Image& image, ActivationSink* sink) = 0;
    // Runs one forward pass on `batch` copies of the image (no taps, output discarded),
    // for benchmarks. Throws Error(OutOfMemory) when an allocation fails.
    virtual void runBatch(const Image& image, int batch) = 0;
};

// Loads a model file; throws Error(Input) naming the file and the problem.
std::unique_ptr<Model> loadModel(const std::string& path, const ModelOptions& options);

// LibTorch's own warnings (TORCH_WARN, TorchScript's warnings.warn, e.g. "RCNN always
// returns a (Losses, Detections) tuple") are dropped, or printed to stderr as
// "<prefix>: LibTorch: <message>" when `print`. Call once, before the first model loads.
void routeLibraryWarnings(bool print, const std::string& prefix);

// Applies process-wide runtime settings (threads, quantized engine, ONNX INT8 mode for
// models loaded afterwards). Throws Error(Usage) for an engine this LibTorch lacks.
void configureRuntime(const ModelOptions& options);

// Loads torchvision's operator library (torchvision::nms, roi_align), which detection
// models call: QS_TORCHVISION_LIB when set (and then only that), else Debian's
// python3-torchvision. Returns "" or why it could not be loaded; a model that needs the
// ops then fails to load with that reason. loadModel calls it; safe to call again.
std::string loadTorchvisionOps();

std::string sha256File(const std::string& path);

} // namespace qs
