// The op vocabulary and the custom ops (see opvocabulary.h).

#include "opvocabulary.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <string>
#include <set>

namespace qs::ops {

namespace {

bool in(const std::set<std::string>& set, const std::string& kind) {
    return set.count(kind) > 0;
}

} // namespace

bool isInPlace(const std::string& kind) {
    return !kind.empty() && kind.back() == '_';
}

std::string outOfPlace(const std::string& kind) {
    return isInPlace(kind) ? kind.substr(0, kind.size() - 1) : kind;
}

bool isConv(const std::string& kind) {
    static const std::set<std::string> ops = {
        "aten::conv1d",           "aten::conv2d",           "aten::conv3d",
        "aten::_convolution",     "aten::convolution",      "aten::conv_transpose1d",
        "aten::conv_transpose2d", "aten::conv_transpose3d", "quantized::conv1d",
        "quantized::conv2d",      "quantized::conv3d",      "quantized::conv1d_relu",
        "quantized::conv2d_relu", "quantized::conv3d_relu", "quantized::conv_transpose1d",
        "quantized::conv_transpose2d", "quantized::conv2d_add", "quantized::conv2d_add_relu",
    };
    return in(ops, kind);
}

bool isLinear(const std::string& kind) {
    static const std::set<std::string> ops = {
        "aten::linear", "quantized::linear", "quantized::linear_relu",
        "quantized::linear_dynamic", "quantized::linear_relu_dynamic",
    };
    return in(ops, kind);
}

bool isFloatLayer(const std::string& kind) {
    static const std::set<std::string> ops = {
        "aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::_convolution", "aten::convolution",
        "aten::conv_transpose1d", "aten::conv_transpose2d", "aten::conv_transpose3d", "aten::linear",
    };
    return in(ops, kind);
}

bool isEpilogue(const std::string& kind) {
    static const std::set<std::string> ops = {
        // float: batch norm and the activations CNNs put after a convolution
        "aten::batch_norm", "aten::relu", "aten::relu6", "aten::hardtanh", "aten::leaky_relu",
        "aten::silu", "aten::hardswish", "aten::hardsigmoid", "aten::sigmoid", "aten::gelu",
        "aten::mish", "aten::elu", "aten::clamp",
        // quantized forms (PyTorch's eager and FX routes, our quantizer)
        "quantized::batch_norm2d", "quantized::batch_norm2d_relu", "quantized::relu6",
        "quantized::hardswish", "quantized::leaky_relu", "quantized::sigmoid", "quantized::elu",
    };
    return in(ops, outOfPlace(kind)) || in(ops, kind);
}

bool isBatchNormArithmetic(const torch::jit::Node* node) {
    const std::string kind = node->kind().toQualString();
    if (kind != "aten::mul" && kind != "aten::add" && kind != "aten::sub" && kind != "aten::div")
        return false;
    auto cs = node->callstack();
    if (!cs)
        return false;
    const auto entries = (*cs)->vec();
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
        const auto& instance = std::get<2>(*it);
        if (!instance || instance->instance_name() == "SELF")
            continue;
        auto type = instance->class_type();
        return type && type->name() && type->name()->name().find("BatchNorm") != std::string::npos;
    }
    return false;
}

EpilogueMode epilogueMode(const std::string& kind) {
    const std::string k = outOfPlace(kind);
    if (k == "aten::relu")
        return EpilogueMode::Fused;
    if (k == "aten::hardswish" || k == "aten::leaky_relu" || k == "aten::sigmoid")
        return EpilogueMode::QuantizedOp;
    if (k == "aten::hardtanh" || k == "aten::relu6" || k == "aten::clamp")
        return EpilogueMode::Carried;
    return EpilogueMode::Float;
}

const char* toString(EpilogueMode mode) {
    switch (mode) {
    case EpilogueMode::Fused:
        return "fused";
    case EpilogueMode::QuantizedOp:
        return "quantized";
    case EpilogueMode::Carried:
        return "carried";
    case EpilogueMode::Float:
        return "float";
    }
    return "float";
}

std::string quantizedEpilogueOp(const std::string& kind) {
    const std::string k = outOfPlace(kind);
    if (k == "aten::hardswish")
        return "quantized::hardswish";
    if (k == "aten::leaky_relu")
        return "quantized::leaky_relu";
    if (k == "aten::sigmoid")
        return "quantized::sigmoid";
    return {};
}

bool isMetadataUse(const std::string& kind) {
    static const std::set<std::string> ops = {
        "aten::dim",      "aten::size",     "aten::len",          "aten::numel",
        "prim::dtype",    "prim::device",   "prim::is_quantized", "prim::is_cuda",
        "prim::layout",   "prim::shape",    "aten::__is__",       "aten::__isnot__",
        "aten::is_floating_point",
    };
    return in(ops, kind);
}

bool isCarriedQuantized(const std::string& kind) {
    static const std::set<std::string> ops = {
        "aten::max_pool2d", "aten::adaptive_avg_pool2d", "aten::avg_pool2d", "aten::upsample_nearest2d",
        "aten::flatten",    "aten::reshape",             "aten::view",       "aten::contiguous",
        "aten::relu",       "aten::hardtanh",            "aten::relu6",      "aten::clamp",
    };
    return in(ops, outOfPlace(kind));
}

bool keepsRank(const std::string& kind) {
    static const std::set<std::string> ops = {
        "aten::max_pool2d", "aten::avg_pool2d", "aten::adaptive_avg_pool2d", "aten::batch_norm",
        "aten::upsample_nearest2d", "aten::add", "aten::sub", "aten::mul", "aten::div", "aten::dropout",
        "aten::contiguous", "aten::relu", "aten::relu6", "aten::hardtanh", "aten::leaky_relu", "aten::silu",
        "aten::hardswish", "aten::hardsigmoid", "aten::sigmoid", "aten::gelu", "aten::mish", "aten::elu",
        "aten::clamp",
    };
    return in(ops, outOfPlace(kind));
}

// ---------------------------------------------------------------------------------------
// quantize / dequantize

namespace {

c10::Symbol sym(const char* s) {
    return c10::Symbol::fromQualString(s);
}

// The one use of v that is not a metadata query, or null.
torch::jit::Node* soleUser(const torch::jit::Value* v) {
    torch::jit::Node* user = nullptr;
    for (const auto& use : v->uses()) {
        if (isMetadataUse(use.user->kind().toQualString()))
            continue;
        if (user)
            return nullptr;
        user = use.user;
    }
    return user;
}

} // namespace

torch::jit::Value* emitQuantize(torch::jit::Graph& g, torch::jit::Value* x, double scale,
                                std::int64_t zeroPoint, int qmax) {
    torch::jit::Value* t = g.insert(sym("aten::mul"), {x, 1.0 / scale});
    t = g.insert(sym("aten::add_"), {t, static_cast<double>(zeroPoint)});
    t = g.insert(sym("aten::round_"), {t});
    t = g.insert(sym("aten::clamp_"), {t, 0.0, static_cast<double>(qmax)});
    t = g.insert(sym("aten::to"), {t, static_cast<std::int64_t>(c10::ScalarType::Byte)});
    return g.insert(sym("aten::_make_per_tensor_quantized_tensor"), {t, scale, zeroPoint});
}

torch::jit::Value* emitDequantize(torch::jit::Graph& g, torch::jit::Value* q, double scale,
                                  std::int64_t zeroPoint) {
    torch::jit::Value* t = g.insert(sym("aten::int_repr"), {q});
    t = g.insert(sym("aten::to"), {t, static_cast<std::int64_t>(c10::ScalarType::Float)});
    t = g.insert(sym("aten::sub_"), {t, static_cast<double>(zeroPoint)});
    return g.insert(sym("aten::mul_"), {t, scale});
}

at::Tensor quantizeWeight(const at::Tensor& w, bool perChannel, std::int64_t axis, double minScale) {
    const at::Tensor f = w.detach().to(at::kFloat).contiguous();
    if (perChannel) {
        const at::Tensor amax = f.abs().transpose(0, axis).reshape({f.size(axis), -1}).amax(1).to(at::kDouble);
        const at::Tensor scales = at::clamp_min(amax / 127.0, minScale);
        const at::Tensor zeros = at::zeros({f.size(axis)}, at::kLong);
        return at::quantize_per_channel(f, scales, zeros, axis, at::kQInt8);
    }
    const double amax = f.abs().max().item<double>();
    return at::quantize_per_tensor(f, std::max(amax / 127.0, minScale), 0, at::kQInt8);
}

torch::jit::Node* quantizeEnd(torch::jit::Node* user) {
    static const char* const chain[] = {"aten::mul",    "aten::add_", "aten::round_",
                                        "aten::clamp_", "aten::to",   "aten::_make_per_tensor_quantized_tensor"};
    torch::jit::Node* n = user;
    for (std::size_t i = 0; i < 6; ++i) {
        if (!n || n->kind() != sym(chain[i]) || n->outputs().size() != 1)
            return nullptr;
        if (i == 5)
            return n;
        const auto& uses = n->output()->uses();
        if (uses.size() != 1 || uses[0].offset != 0)
            return nullptr;
        n = uses[0].user;
    }
    return nullptr;
}

c10::IValue callOp(const char* name, std::vector<c10::IValue> args) {
    auto op = c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
    op.callBoxed(&args);
    return args.at(0);
}

torch::jit::Node* dequantizeEnd(torch::jit::Node* user) {
    if (user->kind() == sym("aten::dequantize"))
        return user;
    // emitDequantize's chain, each step the sole user of the one before
    static const char* const chain[] = {"aten::int_repr", "aten::to", "aten::sub_", "aten::mul_"};
    torch::jit::Node* n = user;
    for (std::size_t i = 0; i < 4; ++i) {
        if (!n || n->kind() != sym(chain[i]) || n->outputs().size() != 1 || n->owningBlock() != user->owningBlock())
            return nullptr;
        if (i == 3)
            return n;
        n = soleUser(n->output());
    }
    return nullptr;
}

// ---------------------------------------------------------------------------------------
// The tap point

torch::jit::Node* blockEnd(torch::jit::Node* layer, std::string& epilogue) {
    auto append = [&](const std::string& name) { epilogue += (epilogue.empty() ? "" : "+") + name; };
    // an epilogue op taking v as its first input, or batch-norm arithmetic
    auto epilogueStep = [&](torch::jit::Node* user, const torch::jit::Value* v) {
        if (!user || user->owningBlock() != layer->owningBlock() || user->outputs().size() != 1)
            return false;
        if (isBatchNormArithmetic(user))
            return true;
        return isEpilogue(user->kind().toQualString()) && user->input(0) == v;
    };
    torch::jit::Node* last = layer;
    torch::jit::Value* v = layer->output(0);
    for (;;) {
        torch::jit::Node* user = soleUser(v);
        if (epilogueStep(user, v)) {
            if (!isBatchNormArithmetic(user))
                append(user->kind().toUnqualString());
            else if (epilogue.empty() || epilogue.back() != ']')
                append("[bn]");
            last = user;
            v = user->output(0);
            continue;
        }
        // a quantized model that runs the activation in float: follow the dequantize
        torch::jit::Node* dq = user && user->owningBlock() == layer->owningBlock() ? dequantizeEnd(user) : nullptr;
        if (dq && epilogueStep(soleUser(dq->output()), dq->output())) {
            append("dequantize");
            last = dq;
            v = dq->output();
            continue;
        }
        break;
    }
    return last;
}

// ---------------------------------------------------------------------------------------
// The custom ops

const c10::Symbol kTap = c10::Symbol::fromQualString("quantscope::tap");
const c10::Symbol kObserve = c10::Symbol::fromQualString("quantscope::observe");

namespace {

std::atomic<TensorListener*> g_tap{nullptr};
std::atomic<TensorListener*> g_observe{nullptr};

at::Tensor tapKernel(const at::Tensor& x, int64_t site, c10::string_view /*layer*/) {
    if (TensorListener* l = g_tap.load())
        l->tensor(x, site);
    return x;
}

void observeKernel(const at::Tensor& x, int64_t id) {
    if (TensorListener* l = g_observe.load())
        l->tensor(x, id);
}

} // namespace

void setTapListener(TensorListener* listener) {
    g_tap.store(listener);
}

void setObserveListener(TensorListener* listener) {
    g_observe.store(listener);
}

TORCH_LIBRARY(quantscope, m) {
    // tap's output aliases its input: an identity with a side effect
    m.def(torch::schema("quantscope::tap(Tensor(a) x, int site, str layer) -> Tensor(a)",
                        c10::AliasAnalysisKind::FROM_SCHEMA));
    // observe has no output: a side effect the optimiser must keep
    m.def(torch::schema("quantscope::observe(Tensor x, int id) -> ()", c10::AliasAnalysisKind::CONSERVATIVE));
}

TORCH_LIBRARY_IMPL(quantscope, CatchAll, m) {
    m.impl("tap", tapKernel);
    m.impl("observe", observeKernel);
}

// oneDNN's INT8 convolution without VNNI multiplies u8 x s8 pairs into saturating 16-bit
// sums (vpmaddubsw): with 8-bit activations and 7-bit weights a pair can reach 64770 and
// clip. Measured here (AVX2, no VNNI): single-op errors 10-15x their worst-case rounding
// bound with activations on 0..255 (tests/cli/test_quantize.py), within it on 0..127.
// Whether oneDNN's INT8 kernels here use VNNI: the CPU has it, and oneDNN is not capped
// below it (ONEDNN_MAX_CPU_ISA, or DNNL_MAX_CPU_ISA, e.g. AVX2 to see how a model does on
// an AVX2-only machine: oneDNN then runs its AVX2 kernels, which saturate, on any CPU).
bool cpuHasVnni() {
    bool avx512Vnni = false, avxVnni = false;
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line))
        if (line.rfind("flags", 0) == 0) {
            avx512Vnni = line.find(" avx512_vnni") != std::string::npos;
            avxVnni = line.find(" avx_vnni") != std::string::npos;
            break;
        }
    const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
    if (!cap || !*cap)
        cap = std::getenv("DNNL_MAX_CPU_ISA");
    if (!cap || !*cap)
        return avx512Vnni || avxVnni;
    std::string isa(cap);
    std::transform(isa.begin(), isa.end(), isa.begin(), [](unsigned char c) { return std::toupper(c); });
    if (isa == "ALL")
        return avx512Vnni || avxVnni;
    if (isa == "AVX2_VNNI" || isa == "AVX2_VNNI_2")
        return avxVnni;
    // AVX512_CORE_VNNI and every level above it (BF16, AMX, ...) include VNNI
    if (isa.rfind("AVX512_CORE_", 0) == 0 && isa != "AVX512_CORE")
        return avx512Vnni || avxVnni;
    return false; // SSE41, AVX, AVX2, AVX512_CORE, AVX512_MIC*: no VNNI kernels
}

} // namespace qs::ops
