#pragma once
// LibTorch-level helpers shared by the engine's two LibTorch translation units
// (torchscriptmodel.cpp and quantizer.cpp). Includes LibTorch: never include this from a
// public header.

#include "image.h"
#include "model.h"

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

namespace qs::ts {

// Loads a TorchScript file in eval mode (torchvision's ops loaded first). Throws
// Error(Input) naming the file and the problem.
torch::jit::Module loadModule(const std::string& path);

// An ONNX model (path ending in .onnx) as a TorchScript module (onnximport.cpp): checked
// and shape-inferred by libonnx, one TorchScript statement per node, Conv and Gemm weights
// in submodules named after their nodes. Throws Error(Input) naming the file and the node.
torch::jit::Module importOnnx(const std::string& path);
// The same from a serialized ModelProto (`name` for messages; the conformance tests).
torch::jit::Module importOnnxBytes(const std::string& bytes, const std::string& name);
// How imports from now on run INT8 convolutions and products (configureRuntime sets it).
void setOnnxInt8(OnnxInt8 mode);
// quantize --out B.onnx: the float ONNX model at `floatPath` with QuantizeLinear and
// DequantizeLinear around each layer named here (by module path, as the quantizer's report
// names them): its input quantized and dequantized with the calibrated range (one pair per
// value and range, read by every such layer and by the Adds of a residual sum: where the
// TorchScript model adds quantized tensors), its result with the output range, its weights
// as int8 initializers (symmetric, per output channel unless `perChannel` is false or the
// opset is below 13) through a DequantizeLinear. Other layers stay float. `report` goes
// into the model's metadata (quantscope_quantize). The weights are ops::quantizeWeight's,
// as in the TorchScript output. Checked by ONNX's checker, then written.
struct QdqLayer {
    std::string name;
    double inputScale = 1;
    std::int64_t inputZeroPoint = 0;
    int qmax = 255; // 127: 7-bit activations (clipped to that range before QuantizeLinear)
    // The range the TorchScript model requantizes the layer's result to (0: none), after the
    // Relu when it fused one: a Q/DQ pair there, so that the layer sits between a DQ and a
    // Q as an INT8 kernel needs.
    double outputScale = 0;
    std::int64_t outputZeroPoint = 0;
    bool fusedRelu = false;
};
struct QdqWritten {
    int layers = 0;                   // wrapped in Q/DQ
    std::vector<std::string> missing; // named, but no Conv or Gemm with a weight initializer found
    std::int64_t initializerBytes = 0;
};
QdqWritten writeQdqOnnx(const std::string& floatPath, const std::string& outPath, const std::vector<QdqLayer>& layers,
                        bool perChannel, double minWeightScale, const std::string& report);
// Whether the importer translates operator `op` (docs/onnx.md's table).
bool onnxOpImported(const std::string& op);
// A serialized ONNX TensorProto as a tensor.
at::Tensor tensorFromOnnx(const std::string& bytes, const std::string& where);
// Whether `path` names an ONNX model (by its extension).
bool isOnnxPath(const std::string& path);
// The class of an imported ONNX model; its layer paths escape components that are no
// identifiers ("0" -> "_0"), which unescapeOnnxPath undoes.
constexpr const char* kOnnxModuleType = "__torch__.quantscope.OnnxModel";
std::string unescapeOnnxPath(const std::string& path);

// How the module's forward takes its input (a list of images or a batch tensor).
InputKind inputKind(const torch::jit::Module& module);

// The forward input for one image.
c10::IValue makeInput(InputKind kind, const Image& image);

// Runs forward; a failure becomes Error(Input) naming `path` and `image.source`.
c10::IValue forward(torch::jit::Module& module, const c10::IValue& input,
                    const std::string& path, const std::string& source);

// Inserts a quantscope::tap after every convolution (and/or linear layer) of an inlined
// graph; its third argument is the layer's module path. `module` (the graph's owner, when
// given) settles branches on its attributes when the data flow among taps is traced.
std::vector<TapSite> instrument(const std::shared_ptr<torch::jit::Graph>& graph, unsigned ops,
                                TapPoint point, const torch::jit::Module* module = nullptr);

ModelOutput decodeOutput(const c10::IValue& out);

// Bytes of parameters, buffers, packed quantized weights and tensor constants of the
// forward graph (frozen modules keep their weights there).
std::int64_t parameterBytes(const torch::jit::Module& module);

// "quantized::*" ops or quantize_per_tensor anywhere in the graph.
bool hasQuantizedOps(torch::jit::Block* block);

} // namespace qs::ts
