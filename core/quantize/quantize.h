#pragma once
// Post-training static INT8 quantization of a TorchScript model by graph rewriting
// (quantizer.cpp): freeze, fold batch norm into the convolutions, calibrate activation
// ranges on images, replace convolutions and linear layers by quantized ops with prepacked
// weights, keep tensors quantized between quantized ops, and save an ordinary TorchScript
// file. No LibTorch type appears here.

#include "image.h"
#include "model.h"
#include "progress.h"
#include "ranges.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qs {

// How the layers kept in float for --keep-float are chosen.
enum class RankBy {
    Sqnr,        // lowest per-layer SQNR in a compare run of the fully quantized model
    Sensitivity, // largest error at the output when only that layer is quantized
    Map,         // largest mAP drop on the annotated set when only that layer is quantized
};

// Activations on 7 bits (0..127) instead of 8: needed where the INT8 kernels can
// saturate (oneDNN on CPUs without VNNI, see quantizer.cpp). Auto: on for onednn when
// /proc/cpuinfo shows neither avx512_vnni nor avx_vnni, or ONEDNN_MAX_CPU_ISA (or
// DNNL_MAX_CPU_ISA) caps oneDNN below its VNNI kernels (e.g. AVX2).
enum class ReduceRange { Auto, On, Off };

struct QuantizeOptions {
    std::string modelPath;
    std::string outPath;
    std::vector<std::string> images;    // calibration images, in order
    Preprocess preprocess;
    ModelOptions model;                 // threads and quantized engine
    CalibrationMethod method = CalibrationMethod::Percentile;
    double percentile = 99.99;          // for CalibrationMethod::Percentile
    bool perChannel = true;             // per-output-channel weight scales
    ReduceRange reduceRange = ReduceRange::Auto;
    std::vector<std::string> scope;     // module path prefixes to quantize; empty = all
    std::vector<std::string> exclude;   // fnmatch globs of layers left in float
    std::vector<std::string> keepFloat; // layers left in float by name
    int keepFloatCount = 0;             // and this many of the most sensitive ones
    RankBy rankBy = RankBy::Sqnr;
    std::string rankFrom;               // a compare dump to rank by instead of running one
    int rankImages = 4;                 // images used to rank layers
    // --max-drop: keep 0, 1, 2, 4, ... of the most sensitive layers in float until the
    // mAP@[.5:.95] drop on this COCO set is at most maxDropPoints (negative: off).
    // The set also serves RankBy::Map.
    double maxDropPoints = -1;
    std::string evalAnnotations, evalImagesDir;
    bool foldOnly = false;              // write the frozen float model with batch norm folded
    // No graph speed-ups: torchvision's roi_align kept, the input layout kept, quantized
    // results dequantized wherever they enter a container or leave a block (as before
    // these existed; for before/after measurements and models they break).
    bool plain = false;
};

struct QuantizedLayer {
    std::string name;        // module path, as the taps name it
    std::string op;          // the float op, e.g. aten::conv2d
    std::string quantizedOp; // e.g. quantized::conv2d_relu; empty when left in float
    std::string reason;      // why it stayed in float
    double inputScale = 0, outputScale = 0;
    std::int64_t inputZeroPoint = 0, outputZeroPoint = 0;
    // The activation after the layer (e.g. "silu") and how the INT8 model runs it: "fused"
    // into the layer's op, "quantized" by its own op with the range below, "carried" on
    // the quantized tensor with the layer's range, or "float" after a dequantize.
    std::string epilogue, epilogueMode;
    double epilogueScale = 0;
    std::int64_t epilogueZeroPoint = 0;
    double rankScore = 0;    // SQNR in dB used for ranking, when ranked
    bool ranked = false;
};

// One candidate of the --max-drop search.
struct TradeOff {
    int keptFloat = 0;
    std::int64_t fileBytes = 0;
    double seconds = 0;  // forward time on the first calibration image (fastest of 3)
    double map = 0;      // mAP@[.5:.95] of the INT8 model on the evaluation set
    double dropPoints = 0;
};

struct QuantizeReport {
    std::string outPath;
    std::vector<QuantizedLayer> layers; // graph order
    std::vector<std::string> warnings;
    int quantizedLayers = 0;
    int floatLayers = 0;
    int quantizedAdds = 0;      // residual / FPN additions done in INT8
    int calibrationImages = 0;
    int observedValues = 0;
    bool reduceRange = false;   // activations were given 7 bits
    std::int64_t originalFileBytes = 0, outputFileBytes = 0;
    std::int64_t originalParameterBytes = 0, outputParameterBytes = 0;
    double calibrationSeconds = 0, totalSeconds = 0;
    double checkSecondsOriginal = 0, checkSecondsOutput = 0; // fastest forward time, check image
    std::vector<TradeOff> tradeOffs; // --max-drop: every candidate tried, in order
    double originalMap = -1;         // --max-drop: the float model's mAP@[.5:.95]
    int roiAligns = 0;               // torchvision::roi_align ops replaced by aten ops
    int carried = 0;                 // quantized results carried into containers / out of blocks
    int carriedSums = 0;             // additions that run quantized when both operands arrive quantized
    int inPlaceQuantizes = 0;        // quantizes that scale their float input in place (nothing reads it after)
    bool channelsLast = false;       // the (float) first convolution's input made channels-last
};

// The layers of a report as a JSON array (name, op, quantized_op, reason, scales and zero
// points, and rank_sqnr_db or rank_map_drop_points for ranked layers; a non-finite score
// is written as the string "inf", "-inf" or "nan"). The CLI's --json and the report
// stored inside the output file both use it.
std::string quantizedLayersJson(const std::vector<QuantizedLayer>& layers, RankBy rankBy);

// `count` images spread evenly over the sorted list (all of them for count <= 0 or more
// than there are): the calibration set.
std::vector<std::string> calibrationSample(const std::vector<std::string>& images, int count);

// Quantizes options.modelPath into options.outPath. The output file appears only when it
// is complete and has run one calibration image. Throws Error naming the file and the
// problem; Error(Cancelled) when `progress` returns false.
QuantizeReport quantize(const QuantizeOptions& options, const ProgressFn& progress);

} // namespace qs
