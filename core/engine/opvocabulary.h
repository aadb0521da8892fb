#pragma once
// The op vocabulary: the one table that says what every op the engine meets is to a CNN
// block, read by the taps (where a layer is recorded), the pairing and the quantizer
// (what it fuses, carries quantized or leaves float). Two lists kept apart drifted once
// and gave wrong numbers (a SiLU layer tapped after the activation on one side and right
// after the convolution on the other): add an op here, nowhere else.
//
// Also home of the two custom ops, quantscope::tap (records a layer) and
// quantscope::observe (calibration), and of the element-wise quantize/dequantize form the
// quantizer writes, so that the taps recognise exactly what the quantizer emits.
//
// Includes LibTorch's IR headers: include only from the engine's LibTorch translation
// units (torchscriptmodel.cpp, opvocabulary.cpp, quantizer.cpp).

#include <ATen/core/Tensor.h>
#include <torch/csrc/jit/ir/ir.h>

#include <cstdint>
#include <string>

namespace qs::ops {

// ---- layers: what a tap records ----
bool isConv(const std::string& kind);        // float and quantized convolutions
bool isLinear(const std::string& kind);      // float and quantized linear layers
bool isFloatLayer(const std::string& kind);  // float conv/linear ops the quantizer may replace

// ---- the epilogue of a layer: ops a quantization route fuses into, or runs right after,
// the layer (batch norm incl. frozen, relu, relu6/hardtanh, leaky_relu, silu, hardswish,
// hardsigmoid, sigmoid, gelu, mish, elu, clamp), float or quantized ----
bool isEpilogue(const std::string& kind);
// Arithmetic inside a batch-norm module's own forward (torchvision's FrozenBatchNorm2d
// computes x * scale + bias instead of calling aten::batch_norm).
bool isBatchNormArithmetic(const torch::jit::Node* node);

// How the quantizer runs an activation that follows a quantized convolution/linear layer.
enum class EpilogueMode {
    Fused,       // inside the layer's op: quantized::conv2d_relu, linear_relu
    QuantizedOp, // its own quantized op with a calibrated output range (quantized::hardswish)
    Carried,     // the same aten op on the quantized tensor, same scale (hardtanh, clamp)
    Float,       // dequantize, then the float op (silu, mish, gelu, hardsigmoid, elu)
};
EpilogueMode epilogueMode(const std::string& kind);
const char* toString(EpilogueMode mode);
// For EpilogueMode::QuantizedOp: the quantized op ("quantized::hardswish", ...).
std::string quantizedEpilogueOp(const std::string& kind);

// ---- in-place ops: aten::relu_ is the in-place form of aten::relu ----
bool isInPlace(const std::string& kind);
std::string outOfPlace(const std::string& kind);

// ---- uses that read only a tensor's metadata (a module's input checks) ----
bool isMetadataUse(const std::string& kind);

// ---- ops the quantizer carries on a quantized tensor with its scale unchanged ----
bool isCarriedQuantized(const std::string& kind);
// ---- ops whose output has the rank of their (first) input ----
bool keepsRank(const std::string& kind);

// ---- quantize / dequantize as the quantizer writes them ----
// quantize_per_tensor and dequantize written as element-wise float ops: Debian's LibTorch
// (no FBGEMM) has scalar-loop quantize/dequantize kernels, 2-4x slower than these
// vectorised, multi-threaded ops (measured on 1.2M-12.5M element activations). The result
// is the same quint8 tensor up to ties in rounding, and only aten ops are used, so the file
// still loads anywhere.
torch::jit::Value* emitQuantize(torch::jit::Graph& g, torch::jit::Value* x, double scale,
                                std::int64_t zeroPoint, int qmax);
torch::jit::Value* emitDequantize(torch::jit::Graph& g, torch::jit::Value* q, double scale,
                                  std::int64_t zeroPoint);
// A layer's weights as the quantizer stores them: qint8, symmetric (zero point 0), scale
// max|w| / 127 (at least `minScale`) per slice along `axis` (the output channels), or
// one for the tensor. The TorchScript quantizer and the QDQ ONNX writer both use it, so a
// model's two INT8 forms hold the same weights.
at::Tensor quantizeWeight(const at::Tensor& w, bool perChannel, std::int64_t axis, double minScale);
// Whether oneDNN's INT8 kernels here use VNNI (exact 32-bit sums of u8 x s8 products):
// the CPU has AVX-512 VNNI or AVX-VNNI and ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA does not
// cap oneDNN below it. Without VNNI a pair of products is summed in 16 bits and saturates
// unless the activations stay within 7 bits.
bool cpuHasVnni();
// The last node (_make_per_tensor_quantized_tensor) of emitQuantize's chain when `user`
// starts one (its aten::mul, each step the sole user of the one before), else null.
torch::jit::Node* quantizeEnd(torch::jit::Node* user);
// The last node of a dequantize that starts at `user`: aten::dequantize itself, or the
// end of emitDequantize's chain; null when `user` starts neither.
torch::jit::Node* dequantizeEnd(torch::jit::Node* user);

// Calls a registered operator (overload "") by name on boxed arguments, e.g. the
// quantized::conv2d_prepack that makes a layer's packed weights; returns its result.
c10::IValue callOp(const char* name, std::vector<c10::IValue> args);

// ---- the tap point ----
// Follows the single-consumer chain from a layer through its epilogue, across a
// dequantize when an epilogue follows it (a quantized model that runs SiLU in float), and
// returns the node after which the layer is recorded; `epilogue` gets the ops passed,
// e.g. "batch_norm+silu", "[bn]+relu_", "dequantize+silu".
torch::jit::Node* blockEnd(torch::jit::Node* layer, std::string& epilogue);

// ---- the custom ops ----
// quantscope::tap(Tensor(a) x, int site, str layer) -> Tensor(a): an identity that hands
// x to the tap listener. quantscope::observe(Tensor x, int id) -> (): hands x to the
// observe listener. Both are registered by this file.
extern const c10::Symbol kTap;
extern const c10::Symbol kObserve;

class TensorListener {
public:
    virtual ~TensorListener() = default;
    virtual void tensor(const at::Tensor& x, std::int64_t id) = 0;
};
// The active listeners (null: the op does nothing). Process-wide; the caller serialises.
void setTapListener(TensorListener* listener);
void setObserveListener(TensorListener* listener);

} // namespace qs::ops
