// Post-training static INT8 quantization by rewriting a frozen TorchScript graph.
// LibTorch translation unit of qs_quantize; the ops it knows come from the engine's op
// vocabulary (opvocabulary.h).
//
//  prepare    load, inline, name every conv/linear with a marker tap, freeze, fold the
//             (frozen) batch norms into the convolutions, decide what can be quantized
//  calibrate  run images with quantscope::observe on every value that needs a range
//  build      replace convolutions / linear layers / additions by quantized ops with
//             prepacked weights, carry quantized tensors through ops that accept them
//             (pooling, nearest upsampling, reshapes), dequantize where float code takes
//             over, and save an ordinary TorchScript file

#include "quantize.h"

#include "compare.h"
#include "dumpreader.h"
#include "evaluate.h"
#include "error.h"
#include "fileutil.h"
#include "jsonnumber.h"
#include "opvocabulary.h"
#include "torchscript.h"

#include <torch/csrc/jit/ir/alias_analysis.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/frozen_conv_folding.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/jit.h>

#include <nlohmann/json.hpp>

#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace qs {

namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------
// Calibration statistics

class Calibrator : public ops::TensorListener {
public:
    explicit Calibrator(std::size_t values) : m_stats(values) {}
    void setHistogramPass(bool on) {
        m_histogram = on;
        if (on)
            for (auto& s : m_stats)
                s.histogram.assign(kHistogramBins, 0.0);
    }
    void tensor(const at::Tensor& x, std::int64_t id) override { observe(static_cast<std::size_t>(id), x); }
    void observe(std::size_t id, const at::Tensor& x) {
        if (id >= m_stats.size() || !x.defined() || x.numel() == 0 || !x.is_floating_point())
            return;
        ValueStats& s = m_stats[id];
        const at::Tensor f = x.detach().to(at::kFloat);
        if (!m_histogram) {
            auto [mn, mx] = at::aminmax(f);
            const double a = mn.item<double>(), b = mx.item<double>();
            if (!std::isfinite(a) || !std::isfinite(b)) {
                s.nonFinite = true;
                return;
            }
            s.min = std::min(s.min, a);
            s.max = std::max(s.max, b);
            s.count += f.numel();
        } else if (s.hi() > s.lo()) {
            const at::Tensor h = at::histc(f, kHistogramBins, s.lo(), s.hi()).to(at::kDouble).contiguous();
            const double* p = h.data_ptr<double>();
            for (int i = 0; i < kHistogramBins; ++i)
                s.histogram[static_cast<std::size_t>(i)] += p[i];
        }
    }
    const std::vector<ValueStats>& stats() const { return m_stats; }

private:
    std::vector<ValueStats> m_stats;
    bool m_histogram = false;
};

// ---------------------------------------------------------------------------------------
// Graph analysis

std::string kindOf(const Node* n) {
    return n->kind().toQualString();
}

bool isLayerOp(const Node* n) {
    return ops::isFloatLayer(kindOf(n));
}


bool isAdd(const Node* n) {
    const auto k = kindOf(n);
    if (k != "aten::add" && k != "aten::add_")
        return false;
    if (n->inputs().size() != 3 || n->outputs().size() != 1)
        return false;
    for (int i = 0; i < 2; ++i)
        if (!n->input(i)->type()->cast<c10::TensorType>())
            return false;
    const auto alpha = torch::jit::toIValue(n->input(2));
    return alpha && ((alpha->isInt() && alpha->toInt() == 1) || (alpha->isDouble() && alpha->toDouble() == 1.0));
}

// Ops that take a per-tensor quantized input and give one with the same scale.
bool isPassThrough(const Node* n) {
    if (!ops::isCarriedQuantized(kindOf(n)) || n->outputs().size() != 1 || n->inputs().empty())
        return false;
    if (!n->output()->type()->cast<c10::TensorType>())
        return false;
    for (std::size_t i = 1; i < n->inputs().size(); ++i)
        if (n->input(i)->type()->cast<c10::TensorType>())
            return false; // a second tensor operand
    return true;
}

bool isInPlace(const Node* n) {
    return ops::isInPlace(kindOf(n));
}

// Uses that read only a tensor's metadata.
bool isMetadataUse(const Node* n) {
    return ops::isMetadataUse(kindOf(n));
}

// Non-metadata uses of a value.
std::size_t realUses(const Value* v) {
    std::size_t n = 0;
    for (const auto& u : v->uses())
        n += isMetadataUse(u.user) ? 0 : 1;
    return n;
}

// The activation that consumes a value alone, as its first input and in the same block:
// the epilogue the quantizer runs fused, quantized or in float after the layer.
Node* soleEpilogue(const Value* v, const Block* block) {
    if (v->uses().size() != 1)
        return nullptr;
    Node* user = v->uses()[0].user;
    const std::string kind = kindOf(user);
    if (!ops::isEpilogue(kind) || kind == "aten::batch_norm" || user->kind().ns().toUnqualString() != std::string("aten") ||
        v->uses()[0].offset != 0 || user->owningBlock() != block || user->outputs().size() != 1)
        return nullptr;
    return user;
}

// The relu that consumes a value alone (fused into the op before it).
Node* singleRelu(const Value* v, const Block* block) {
    Node* user = soleEpilogue(v, block);
    return user && ops::epilogueMode(kindOf(user)) == ops::EpilogueMode::Fused ? user : nullptr;
}

void collect(Block* block, const std::function<void(Node*)>& fn) {
    for (Node* n : block->nodes()) {
        fn(n);
        for (Block* sub : n->blocks())
            collect(sub, fn);
    }
}

struct Layer {
    Node* node = nullptr;
    std::string name;
    std::string op;     // aten::conv2d / aten::_convolution / aten::linear / ...
    bool conv = false;  // 2-d convolution
    std::string reason; // why it cannot be quantized; empty when it can
    at::Tensor weight, bias;
    std::vector<std::int64_t> stride, padding, dilation;
    std::int64_t groups = 1;
    Node* epilogue = nullptr; // the activation after the layer (batch norm is folded by then)
    std::string epilogueKind; // its op, e.g. "silu" (kept: the node may be rewritten away)
    ops::EpilogueMode epilogueMode = ops::EpilogueMode::Float; // Float also when there is none
    Value* input = nullptr;
    Value* output = nullptr;  // the layer's own output
    Value* end = nullptr;     // the value the quantized part produces: after a fused relu or
                              // a quantized epilogue op, else the layer's output
};

bool validAttributeName(const std::string& s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])))
        return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// The parts of a module path ("backbone.body.0" -> backbone, body, 0), or nothing when a
// part is neither an identifier nor an index (e.g. "<conv2d#0>"): attribute names.
std::vector<std::string> modulePathParts(const std::string& path) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (!path.empty() && start <= path.size()) {
        const std::size_t dot = std::min(path.find('.', start), path.size());
        std::string part = path.substr(start, dot - start);
        const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
        if (!digits && !validAttributeName(part))
            return {};
        parts.push_back(std::move(part));
        start = dot + 1;
    }
    return parts;
}

void fillLayer(Layer& l) {
    Node* n = l.node;
    l.op = kindOf(n);
    l.input = n->input(0);
    const auto weight = torch::jit::toIValue(n->input(1));
    if (!weight || !weight->isTensor()) {
        l.reason = "weight computed at run time";
        return;
    }
    l.weight = weight->toTensor();
    if (!l.weight.is_floating_point()) {
        l.reason = "weight is not floating point";
        return;
    }
    if (n->inputs().size() > 2) {
        const auto bias = torch::jit::toIValue(n->input(2));
        if (!bias) {
            l.reason = "bias computed at run time";
            return;
        }
        if (bias->isTensor())
            l.bias = bias->toTensor().to(at::kFloat);
    }
    auto ints = [&](std::size_t i, std::vector<std::int64_t>& out) {
        const auto v = torch::jit::toIValue(n->input(i));
        if (!v || !v->isIntList())
            return false;
        out = v->toIntVector();
        return true;
    };
    if (l.op == "aten::linear") {
        if (l.weight.dim() != 2)
            l.reason = "linear weight is not 2-d";
    } else if (l.op == "aten::conv2d") {
        l.conv = true;
        const auto g = torch::jit::toIValue(n->input(6));
        if (!ints(3, l.stride) || !ints(4, l.padding) || !ints(5, l.dilation) || !g || !g->isInt())
            l.reason = "stride, padding ('same'/'valid') or groups not constant";
        else
            l.groups = g->toInt();
    } else if (l.op == "aten::_convolution" && n->inputs().size() >= 9) {
        l.conv = true;
        const auto transposed = torch::jit::toIValue(n->input(6));
        const auto g = torch::jit::toIValue(n->input(8));
        if (!transposed || !transposed->isBool() || transposed->toBool())
            l.reason = "transposed convolution (no quantized kernel used here)";
        else if (!ints(3, l.stride) || !ints(4, l.padding) || !ints(5, l.dilation) || !g || !g->isInt())
            l.reason = "stride, padding or groups not constant";
        else
            l.groups = g->toInt();
    } else {
        l.reason = l.op + " is not supported (2-d convolutions and linear layers are)";
    }
    if (l.reason.empty() && l.conv && (l.weight.dim() != 4 || l.stride.size() != 2 || l.padding.size() != 2))
        l.reason = "not a 2-d convolution";
    if (l.reason.empty()) {
        l.output = n->output();
        l.epilogue = soleEpilogue(n->output(), n->owningBlock());
        l.epilogueMode = l.epilogue ? ops::epilogueMode(kindOf(l.epilogue)) : ops::EpilogueMode::Float;
        l.epilogueKind = l.epilogue ? l.epilogue->kind().toUnqualString() : "";
        const bool absorbed = l.epilogueMode == ops::EpilogueMode::Fused || l.epilogueMode == ops::EpilogueMode::QuantizedOp;
        l.end = absorbed ? l.epilogue->output() : n->output();
    }
}

bool matchesAny(const std::string& name, const std::vector<std::string>& globs) {
    for (const auto& g : globs)
        if (fnmatch(g.c_str(), name.c_str(), 0) == 0)
            return true;
    return false;
}

bool inScope(const std::string& name, const std::vector<std::string>& scope) {
    if (scope.empty())
        return true;
    for (const auto& s : scope)
        if (name == s || (name.size() > s.size() && name.compare(0, s.size(), s) == 0 && name[s.size()] == '.'))
            return true;
    return false;
}

// ---------------------------------------------------------------------------------------
// Float speed-ups, applied in every build (--fold-only too, so a ratio against the folded
// model measures quantization alone), unless --plain-graph

// TorchScript written in this file, compiled without Python; a failure is a bug here.
std::shared_ptr<torch::jit::CompilationUnit> compileSource(const char* source, const char* what) {
    try {
        return torch::jit::compile(source);
    } catch (const std::exception& e) {
        throw Error(ErrorKind::Internal, std::string("quantizer: cannot compile the ") + what + ": " + e.what());
    }
}

// Function `name` of `unit` inserted at the graph's insertion point, inlined: no call into
// the (temporary) compilation unit may stay in the saved model.
Value* insertFunction(Graph& graph, torch::jit::CompilationUnit& unit, const char* name,
                      const std::vector<Value*>& inputs) {
    const std::shared_ptr<Graph> callee = torch::jit::toGraphFunction(unit.get_function(name)).graph()->copy();
    torch::jit::Inline(*callee);
    return torch::jit::insertGraph(graph, *callee, inputs).at(0);
}

// torchvision's roi_align (CPU) runs one thread and reads an NCHW feature map one channel
// at a time. The same RoI Align as aten ops: the sampling points of every bin give 4
// corner rows each of the feature map laid out [B*H*W, C], and one embedding_bag sums
// the weighted rows of each bin, in parallel and vectorised along the channels. The
// coordinates, the clamping at the borders and the weights follow torchvision's kernel
// (roi_align_kernel.cpp, pre_calc_for_bilinear_interpolate) step for step, so only the
// order of the additions differs. (Compiled without Python: dtypes are ScalarType numbers,
// 4 = int64.) A channels-last map is used as it is; an NCHW one is
// transposed once per call. The result is [K, C, PH, PW] with the channels innermost; it is
// made contiguous (one more pass) unless its only users copy it anyway (index_put_,
// flatten).
constexpr const char* kRoiAlignSource = R"TS(
def _qs_roi_axis(v: Tensor, n: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    inside = ((v >= -1.0) & (v <= float(n))).to(v.dtype)
    v = v.clamp_min(0.0)
    low = v.to(4)
    top = low >= n - 1
    low = low.clamp_max(n - 1)
    high = torch.where(top, low, low + 1)
    v = torch.where(top, low.to(v.dtype), v)
    frac = v - low.to(v.dtype)
    return low, high, (1.0 - frac) * inside, frac * inside

def qs_roi_align(input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int, pooled_width: int,
                 sampling_ratio: int, aligned: bool, strided_out: bool) -> Tensor:
    channels = input.size(1)
    height = input.size(2)
    width = input.size(3)
    k = rois.size(0)
    sr = sampling_ratio
    offset = 0.5 if aligned else 0.0
    start_x = rois[:, 1] * spatial_scale - offset
    start_y = rois[:, 2] * spatial_scale - offset
    size_x = rois[:, 3] * spatial_scale - offset - start_x
    size_y = rois[:, 4] * spatial_scale - offset - start_y
    if not aligned:
        size_x = size_x.clamp_min(1.0)
        size_y = size_y.clamp_min(1.0)
    bin_x = (size_x / float(pooled_width)).view(-1, 1)
    bin_y = (size_y / float(pooled_height)).view(-1, 1)
    step_y = torch.arange(pooled_height, dtype=input.dtype, device=input.device).view(-1, 1).expand(pooled_height, sr).reshape(1, -1)
    step_x = torch.arange(pooled_width, dtype=input.dtype, device=input.device).view(-1, 1).expand(pooled_width, sr).reshape(1, -1)
    sub_y = (torch.arange(sr, dtype=input.dtype, device=input.device) + 0.5).repeat(pooled_height).view(1, -1)
    sub_x = (torch.arange(sr, dtype=input.dtype, device=input.device) + 0.5).repeat(pooled_width).view(1, -1)
    y = start_y.view(-1, 1) + step_y * bin_y + sub_y * bin_y / float(sr)
    x = start_x.view(-1, 1) + step_x * bin_x + sub_x * bin_x / float(sr)
    y_low, y_high, y_w0, y_w1 = _qs_roi_axis(y, height)
    x_low, x_high, x_w0, x_w1 = _qs_roi_axis(x, width)
    rows = torch.stack([y_low, y_high], -1).view(k, pooled_height, 1, sr, 2, 1, 1) * width
    cols = torch.stack([x_low, x_high], -1).view(k, 1, pooled_width, 1, 1, sr, 2)
    base = (rois[:, 0].to(4) * (height * width)).view(k, 1, 1, 1, 1, 1, 1)
    index = (base + rows + cols).reshape(-1)
    weight_y = torch.stack([y_w0, y_w1], -1).view(k, pooled_height, 1, sr, 2, 1, 1)
    weight_x = torch.stack([x_w0, x_w1], -1).view(k, 1, pooled_width, 1, 1, sr, 2)
    weight = (weight_y * weight_x / float(sr * sr)).reshape(-1)
    per_bin = 4 * sr * sr
    offsets = torch.arange(0, k * pooled_height * pooled_width * per_bin, per_bin, dtype=4, device=input.device)
    table = input.permute(0, 2, 3, 1).contiguous().view(-1, channels)
    pooled = torch._embedding_bag_forward_only(table, index, offsets, False, 0, False, weight, False, -1)[0]
    out = pooled.view(k, pooled_height, pooled_width, channels).permute(0, 3, 1, 2)
    if strided_out:
        return out
    return out.contiguous()
)TS";

// True when every use of v copies it anyway (index_put_ values, flatten, a dtype
// conversion to the same type feeding those): a strided result costs nothing there.
bool copiedByAllUsers(const Value* v) {
    if (v->uses().empty())
        return false;
    for (const auto& u : v->uses()) {
        const std::string kind = kindOf(u.user);
        if (kind == "aten::index_put_" && u.offset == 2)
            continue;
        if (kind == "aten::flatten" && u.offset == 0)
            continue;
        if (kind == "aten::to" && u.offset == 0 && u.user->outputs().size() == 1 && copiedByAllUsers(u.user->output()))
            continue;
        return false;
    }
    return true;
}

// Replaces every torchvision::roi_align with a sampling ratio fixed at build time by
// kRoiAlignSource's aten ops; returns how many. An adaptive ratio (<= 0) keeps the op.
int replaceRoiAlign(std::shared_ptr<Graph>& graph) {
    std::vector<Node*> found;
    collect(graph->block(), [&](Node* n) {
        if (kindOf(n) == "torchvision::roi_align" && n->inputs().size() == 7 && n->outputs().size() == 1) {
            const auto ratio = torch::jit::constant_as<std::int64_t>(n->input(5));
            if (ratio && *ratio > 0)
                found.push_back(n);
        }
    });
    if (found.empty())
        return 0;
    const auto unit = compileSource(kRoiAlignSource, "RoI Align replacement");
    for (Node* n : found) {
        torch::jit::WithInsertPoint guard(n);
        std::vector<Value*> inputs(n->inputs().begin(), n->inputs().end());
        inputs.push_back(graph->insertConstant(copiedByAllUsers(n->output())));
        n->output()->replaceAllUsesWith(insertFunction(*graph, *unit, "qs_roi_align", inputs));
        n->destroy();
    }
    torch::jit::ConstantPropagation(graph);
    return static_cast<int>(found.size());
}

// The first convolution's input in channels-last layout: every convolution after it, and
// the pooling, upsampling and additions between them, keep that layout, which oneDNN's
// float convolutions run without reordering (and RoI pooling above reads without a
// transpose). Returns false when the model has no 4-d convolution.
bool channelsLastStem(const std::shared_ptr<Graph>& graph, std::vector<Layer>& layers) {
    for (Layer& l : layers) {
        if (!l.conv)
            continue;
        torch::jit::WithInsertPoint guard(l.node);
        Value* format = graph->insertConstant(static_cast<std::int64_t>(c10::MemoryFormat::ChannelsLast));
        Value* x = graph->insert(c10::Symbol::fromQualString("aten::contiguous"), {l.node->input(0)},
                                 {torch::jit::NamedValue("memory_format", format)});
        l.node->replaceInput(0, x);
        l.input = x;
        return true;
    }
    return false;
}

// A loaded, frozen, folded model with its layers named and its quantizable values known.
struct Prepared {
    torch::jit::Module module;
    std::shared_ptr<Graph> graph;
    InputKind input = InputKind::BatchTensor;
    std::vector<Layer> layers;          // every conv/linear, graph order
    std::vector<Value*> observed;       // values that need a range, deterministic order
    std::unordered_map<Value*, std::size_t> observedIndex;
    int roiAligns = 0;          // torchvision::roi_align nodes replaced (replaceRoiAlign)
};

// Which values can be produced in INT8 given the set of layers quantized; fills the
// additions and pass-through ops to convert, in graph order.
struct Plan {
    std::unordered_set<Value*> quantized;
    std::unordered_set<Node*> layers, adds, passThrough;
    std::unordered_map<Node*, Node*> addRelu;
    std::unordered_set<Node*> absorbed;
};

Plan makePlan(const Prepared& p, const std::unordered_set<const Layer*>& selected) {
    Plan plan;
    std::unordered_map<Node*, const Layer*> byNode;
    for (const Layer* l : selected)
        byNode[l->node] = l;
    collect(p.graph->block(), [&](Node* n) {
        if (plan.absorbed.count(n))
            return;
        if (auto it = byNode.find(n); it != byNode.end()) {
            plan.layers.insert(n);
            plan.quantized.insert(it->second->end);
            if (it->second->end != it->second->output)
                plan.absorbed.insert(it->second->epilogue); // fused relu or quantized epilogue op
            return;
        }
        if (isAdd(n) && plan.quantized.count(n->input(0)) && plan.quantized.count(n->input(1)) &&
            n->input(0) != n->input(1) && (!isInPlace(n) || realUses(n->input(0)) == 1)) {
            plan.adds.insert(n);
            Node* relu = singleRelu(n->output(), n->owningBlock());
            if (relu) {
                plan.addRelu[n] = relu;
                plan.absorbed.insert(relu);
                plan.quantized.insert(relu->output());
            } else {
                plan.quantized.insert(n->output());
            }
            return;
        }
        if (isPassThrough(n) && plan.quantized.count(n->input(0)) &&
            (!isInPlace(n) || realUses(n->input(0)) == 1)) {
            plan.passThrough.insert(n);
            plan.quantized.insert(n->output());
        }
    });
    return plan;
}

// Replaces aten::dim of tensors whose rank follows from the ops that made them (a 2-d
// convolution gives 4 dimensions; pooling, activations, nearest upsampling and
// element-wise ops keep their input's) by constants, so that constant propagation drops
// rank checks and the branches for other ranks.
void foldKnownRanks(const std::shared_ptr<Graph>& graph) {
    std::unordered_map<const Value*, std::int64_t> rank;
    std::vector<Node*> dims;
    collect(graph->block(), [&](Node* n) {
        const std::string k = kindOf(n);
        if ((k == "aten::conv2d" || k == "aten::_convolution") && n->inputs().size() > 1) {
            const auto w = torch::jit::toIValue(n->input(1));
            if (w && w->isTensor() && w->toTensor().dim() == 4)
                rank[n->output()] = 4;
            return;
        }
        if (k == "aten::dim" && n->inputs().size() == 1 && rank.count(n->input(0))) {
            dims.push_back(n);
            return;
        }
        if (!ops::keepsRank(k) || n->outputs().size() != 1 || n->inputs().empty() || !rank.count(n->input(0)))
            return;
        for (std::size_t i = 1; i < n->inputs().size(); ++i) {
            const Value* other = n->input(i);
            if (other->type()->cast<c10::TensorType>() && (!rank.count(other) || rank.at(other) > rank.at(n->input(0))))
                return; // broadcasting against a tensor of unknown or higher rank
        }
        rank[n->output()] = rank.at(n->input(0));
    });
    for (Node* n : dims) {
        torch::jit::WithInsertPoint guard(n);
        n->output()->replaceAllUsesWith(graph->insertConstant(rank.at(n->input(0))));
        n->destroy();
    }
}

// Names every conv/linear from the marker taps (inserted before freezing, they carry the
// module path), then removes the taps.
std::unordered_map<Node*, std::string> takeNames(const std::shared_ptr<Graph>& graph) {
    std::vector<Node*> taps;
    collect(graph->block(), [&](Node* n) {
        if (n->kind() == ops::kTap)
            taps.push_back(n);
    });
    std::unordered_map<Node*, std::string> names;
    for (Node* tap : taps) {
        const auto name = torch::jit::toIValue(tap->input(2));
        Value* v = tap->input(0);
        for (int hops = 0; hops < 8 && name && name->isString(); ++hops) {
            Node* producer = v->node();
            if (isLayerOp(producer)) {
                names.emplace(producer, name->toStringRef());
                break;
            }
            if (producer->inputs().empty())
                break;
            v = producer->input(0);
        }
        tap->output()->replaceAllUsesWith(tap->input(0));
        tap->destroy();
    }
    return names;
}

Prepared prepare(const std::string& path, const QuantizeOptions& options) {
    Prepared p;
    torch::jit::Module original = ts::loadModule(path);
    p.input = ts::inputKind(original);
    std::unordered_map<Node*, std::string> names;
    try {
        auto graph = original.get_method("forward").graph();
        torch::jit::Inline(*graph);
        // the module given: an imported ONNX model's layers named as the taps name them
        // ("features.0", not the import's "features._0")
        ts::instrument(graph, static_cast<unsigned>(TapOps::Conv) | static_cast<unsigned>(TapOps::Linear),
                       TapPoint::Block, &original);
        p.module = torch::jit::freeze_module(original);
        p.graph = p.module.get_method("forward").graph();
        // names first: a tap between a convolution and its batch norm would stop the fold
        names = takeNames(p.graph);
        // A batch norm's input check (input.dim() != 4 -> raise) is a second use of the
        // convolution's output, which also stops the fold; known ranks make it constant.
        foldKnownRanks(p.graph);
        // FrozenBatchNorm2d computes its scale from buffers: constant once propagated, so
        // the folds below see x * const + const after the convolution
        torch::jit::ConstantPropagation(p.graph);
        for (int round = 0; round < 8; ++round) {
            bool changed = torch::jit::FoldFrozenConvBatchnorm(p.graph);
            changed |= torch::jit::FoldFrozenConvAddOrSub(p.graph);
            changed |= torch::jit::FoldFrozenConvMulOrDiv(p.graph);
            if (!changed)
                break;
        }
        torch::jit::EliminateDeadCode(p.graph);
        if (!options.plain)
            p.roiAligns = replaceRoiAlign(p.graph);
    } catch (const Error&) {
        throw;
    } catch (const c10::Error& e) {
        throw Error(ErrorKind::Input, path + ": cannot freeze the TorchScript module (" +
                                          firstLine(e.what_without_backtrace()) + ")");
    } catch (const std::exception& e) {
        throw Error(ErrorKind::Input, path + ": cannot freeze the TorchScript module (" + lastLine(e.what()) + ")");
    }
    if (std::getenv("QS_QUANTIZE_DUMP_GRAPH"))
        std::cerr << "quantize: frozen and folded graph of " << path << ":\n" << *p.graph << "\n";
    int anonymous = 0;
    collect(p.graph->block(), [&](Node* n) {
        if (!isLayerOp(n))
            return;
        Layer l;
        l.node = n;
        auto it = names.find(n);
        l.name = it != names.end() ? it->second
                                   : std::string("<") + n->kind().toUnqualString() + "#" + std::to_string(anonymous++) + ">";
        fillLayer(l);
        p.layers.push_back(std::move(l));
    });
    if (p.layers.empty())
        throw Error(ErrorKind::Input, path + (ts::hasQuantizedOps(p.graph->block())
                                                  ? ": every convolution and linear layer is INT8 already; quantize "
                                                    "the float model it was made from"
                                                  : ": the model has no convolution or linear layer to quantize"));

    // Values needing a range: inputs and outputs of every layer that may be quantized, and
    // the results of the additions between them (with all layers quantized; an addition's
    // operands are results of layers or additions). Any later selection of layers needs
    // a subset of these.
    std::unordered_set<const Layer*> all;
    std::unordered_map<const Node*, const Layer*> layerOf;
    for (const Layer& l : p.layers)
        if (l.reason.empty() && inScope(l.name, options.scope)) {
            all.insert(&l);
            layerOf[l.node] = &l;
        }
    const Plan full = makePlan(p, all);
    auto observe = [&](Value* v) {
        if (p.observedIndex.emplace(v, p.observed.size()).second)
            p.observed.push_back(v);
    };
    collect(p.graph->block(), [&](Node* n) {
        if (auto it = layerOf.find(n); it != layerOf.end()) {
            observe(it->second->input);
            if (it->second->epilogueMode == ops::EpilogueMode::QuantizedOp)
                observe(it->second->output); // the layer's own range, before its epilogue op
            observe(it->second->end);
        }
        if (full.adds.count(n)) {
            auto r = full.addRelu.find(n);
            observe(r != full.addRelu.end() ? r->second->output() : n->output());
        }
    });
    return p;
}

// ---------------------------------------------------------------------------------------
// Calibration

// Reports a nested job's progress (a compare, an evaluation) with its stage prefixed.
ProgressFn prefixed(const ProgressFn& progress, const std::string& prefix) {
    return [progress, prefix](const Progress& s) {
        Progress q = s;
        q.stage = prefix + s.stage;
        return !progress || progress(q);
    };
}

std::vector<ValueStats> calibrate(Prepared& p, const QuantizeOptions& options, const ProgressFn& progress,
                                  std::vector<std::string>& warnings, int& usedImages) {
    // insert the observers (side-effect ops, no outputs: the graph is otherwise unchanged)
    std::vector<Node*> observers;
    for (std::size_t i = 0; i < p.observed.size(); ++i) {
        Value* v = p.observed[i];
        torch::jit::WithInsertPoint guard(v->node()->next());
        Value* id = p.graph->insertConstant(static_cast<std::int64_t>(i));
        Node* obs = p.graph->create(ops::kObserve, {v, id}, 0);
        p.graph->insertNode(obs);
        observers.push_back(obs);
    }
    Calibrator calibrator(p.observed.size());
    const bool histogram = options.method != CalibrationMethod::MinMax;
    const int passes = histogram ? 2 : 1;
    const auto total = static_cast<std::int64_t>(options.images.size()) * passes;
    std::vector<bool> usable(options.images.size(), true);
    torch::NoGradGuard noGrad;
    ops::setObserveListener(&calibrator);
    struct Reset {
        ~Reset() { ops::setObserveListener(nullptr); }
    } reset;
    usedImages = 0;
    for (int pass = 0; pass < passes; ++pass) {
        calibrator.setHistogramPass(pass == 1);
        for (std::size_t i = 0; i < options.images.size(); ++i) {
            const std::string& file = options.images[i];
            reportProgress(progress, {pass == 0 ? "calibrate" : "histogram",
                                   static_cast<std::int64_t>(pass * options.images.size() + i), total, file});
            if (!usable[i])
                continue;
            Image image;
            try {
                image = loadImage(file, options.preprocess);
            } catch (const Error& e) {
                usable[i] = false;
                warnings.push_back(std::string("skipped calibration image: ") + e.what());
                continue;
            }
            ts::forward(p.module, ts::makeInput(p.input, image), options.modelPath, file);
            usedImages += pass == 0;
        }
    }
    reportProgress(progress, {"calibrate", total, total, ""});
    for (Node* obs : observers)
        obs->destroy();
    torch::jit::EliminateDeadCode(p.graph);
    if (usedImages == 0)
        throw Error(ErrorKind::Input, "no usable calibration image (" + std::to_string(options.images.size()) +
                                          " given, none could be read)");
    return calibrator.stats();
}

// ---------------------------------------------------------------------------------------
// Rewriting

// Puts weights under a module path (self.backbone.body.conv1._packed_params), so that
// the taps name the quantized layers exactly as the float ones.
class Attributes {
public:
    Attributes(torch::jit::Module root, std::shared_ptr<Graph> graph) : m_root(std::move(root)), m_graph(std::move(graph)) {}

    // Registers `value` under the layer's path and returns a GetAttr chain to it, inserted
    // at the current insertion point. `identity` (the float weight) lets a layer that
    // appears twice in the graph (the FPN runs its top block in and outside a loop) share
    // one attribute.
    Value* put(const std::string& layer, const std::string& leaf, const c10::IValue& value, bool parameter,
               const void* identity) {
        const std::string key = layer + "/" + leaf;
        if (auto it = m_cache.find(key); it != m_cache.end() && it->second.first == identity)
            return getAttrChain(it->second.second);
        std::vector<std::string> parts = modulePathParts(layer);
        if (parts.empty())
            parts.push_back("_qs_layer_" + std::to_string(m_anonymous++));
        torch::jit::Module owner = m_root;
        for (const auto& part : parts) {
            if (owner.hasattr(part)) {
                const c10::IValue existing = owner.attr(part);
                if (!existing.isModule())
                    return putFlat(leaf, value, parameter);
                owner = existing.toModule();
            } else {
                torch::jit::Module sub(c10::QualifiedName("__torch__.quantscope.Layer"),
                                       m_root._ivalue()->compilation_unit(), /*shouldMangle=*/true);
                owner.register_module(part, sub);
                owner = sub;
            }
        }
        std::string name = leaf;
        for (int k = 1; owner.hasattr(name); ++k)
            name = leaf + "_" + std::to_string(k);
        if (parameter)
            owner.register_parameter(name, value.toTensor(), false);
        else
            owner.register_attribute(name, value.type(), value);
        parts.push_back(name);
        m_cache[key] = {identity, parts};
        return getAttrChain(parts);
    }

private:
    Value* getAttrChain(const std::vector<std::string>& parts) {
        Value* v = m_graph->inputs()[0];
        for (const auto& part : parts)
            v = m_graph->insertGetAttr(v, part);
        return v;
    }
    Value* putFlat(const std::string& leaf, const c10::IValue& value, bool parameter) {
        return put("_qs_layer_" + std::to_string(m_anonymous++) + "_" + leaf, leaf, value, parameter, nullptr);
    }

    std::unordered_map<std::string, std::pair<const void*, std::vector<std::string>>> m_cache;

    torch::jit::Module m_root;
    std::shared_ptr<Graph> m_graph;
    int m_anonymous = 0;
};

// A quantized epilogue op (EpilogueMode::QuantizedOp) on the layer's quantized output y,
// with its own output range.
Value* emitQuantizedEpilogue(Graph& g, Node* epilogue, Value* y, const QParams& q) {
    const std::string op = ops::quantizedEpilogueOp(kindOf(epilogue));
    std::vector<torch::jit::NamedValue> args{y};
    if (op == "quantized::leaky_relu") {
        args.emplace_back(epilogue->input(1)); // negative slope
        args.emplace_back(false);              // inplace
    }
    args.emplace_back(q.scale);
    args.emplace_back(q.zeroPoint);
    return g.insert(c10::Symbol::fromQualString(op), args);
}

struct BuildResult {
    std::vector<QuantizedLayer> layers;
    int quantizedAdds = 0;
    int carried = 0;  // quantized results passed on through containers and blocks (QuantizedCarrier)
    int carriedSums = 0; // float additions run as quantized::add when both operands arrive quantized
    int roiAligns = 0;         // RoI Align ops run as aten ops (replaceRoiAlign)
    bool channelsLast = false; // the float stem convolution's input made channels-last
    int inPlaceQuantizes = 0;  // quantizes that scale their dead float input in place
};

// ---------------------------------------------------------------------------------------
// Quantized tensors through containers and control flow (after the rewrite)
//
// The rewrite dequantizes a quantized result wherever it leaves straight-line code: into
// a dict or list (a backbone's feature dict, the FPN's results list), out of an `if` or
// a loop (the FPN picks its block per level with `if i == idx`). A quantized op that
// reads it back quantizes it again, with the range calibrated for its own input. On
// Faster R-CNN that is a dequantize and a quantize of every backbone and FPN output, each
// several passes over tens of MB, and an input range shared by all levels in the FPN's
// loop. Here the quantized tensor itself goes into the container or out of the block
// (a quantized tensor is a Tensor to TorchScript), and every reader decides at run time:
// a quantize for a quantized op passes a quantized tensor through unchanged (the op reads
// its scale from the tensor), a float op gets it dequantized by the same arithmetic as
// before, a list read whole by a float op (torch.cat) gets a dequantized copy, and dtype
// reads answer float. All or nothing: a container used by an op this pass does not
// follow keeps the graph as it was.
constexpr const char* kCarrySource = R"TS(
def qs_dequantize_any(x: Tensor) -> Tensor:
    if x.is_quantized:
        return x.int_repr().to(6).sub_(float(x.q_zero_point())).mul_(x.q_scale())
    return x

def qs_quantize_any(x: Tensor, inv_scale: float, zero_point_f: float, low: float, high: float, scale: float,
                    zero_point: int) -> Tensor:
    if x.is_quantized:
        return x
    t = torch.mul(x, inv_scale).add_(zero_point_f).round_().clamp_(low, high).to(0)
    return torch._make_per_tensor_quantized_tensor(t, scale, zero_point)

def qs_both_quantized(a: Tensor, b: Tensor) -> bool:
    return a.is_quantized and b.is_quantized and a.size() == b.size()

def qs_float_add(a: Tensor, b: Tensor) -> Tensor:
    return torch.add(qs_dequantize_any(a), qs_dequantize_any(b))

def qs_dequantize_list(xs: List[Tensor]) -> List[Tensor]:
    return [qs_dequantize_any(x) for x in xs]

def qs_dtype_any(x: Tensor) -> int:
    if x.is_quantized:
        return 6
    return x.dtype
)TS";

// Metadata a quantized tensor answers as its float original would (not dtype and the
// type tests, which differ).
bool readsShapeOnly(const Node* n) {
    const std::string kind = kindOf(n);
    return isMetadataUse(n) && kind != "prim::dtype" && kind != "prim::is_quantized" &&
           kind != "aten::is_floating_point";
}

class QuantizedCarrier {
public:
    explicit QuantizedCarrier(std::shared_ptr<Graph> graph) : m_graph(std::move(graph)) {}

    // Returns how many dequantizes it moved into containers and blocks (0: graph unchanged).
    int run() {
        std::vector<std::pair<Value*, Value*>> dequantized; // (float result, quantized tensor)
        collect(m_graph->block(), [&](Node* n) {
            if (kindOf(n) == "aten::int_repr")
                if (Node* end = ops::dequantizeEnd(n))
                    dequantized.emplace_back(end->output(), n->input(0));
        });
        std::vector<std::tuple<Node*, std::size_t, Value*>> seeds;
        for (const auto& [dq, q] : dequantized)
            for (const auto& u : dq->uses())
                if (carrier(u))
                    seeds.emplace_back(u.user, u.offset, q);
        while (!m_work.empty() && !m_blocked) {
            Value* v = m_work.back();
            m_work.pop_back();
            if (m_tensors.count(v))
                visitTensor(v);
            else
                visitContainer(v);
        }
        if (m_blocked || seeds.empty())
            return 0;
        m_unit = compileSource(kCarrySource, "carrying helpers");
        for (const auto& [user, offset, q] : seeds)
            user->replaceInput(offset, q);
        for (const auto& [add, end] : m_sums)
            replaceSum(add, end);
        for (Node* end : m_quantizeSites)
            replaceQuantize(end);
        for (Node* n : m_dtypeReads) {
            torch::jit::WithInsertPoint guard(n);
            n->output()->replaceAllUsesWith(call("qs_dtype_any", {n->input(0)}));
            n->destroy();
        }
        for (Value* v : m_tensorOrder)
            dequantizeForFloatUses(v, m_floatUses, "qs_dequantize_any");
        for (Value* c : m_listOrder)
            dequantizeForFloatUses(c, m_listFloatUses, "qs_dequantize_list");
        m_sumCount = static_cast<int>(m_sums.size());
        torch::jit::EliminateDeadCode(m_graph);
        return static_cast<int>(seeds.size());
    }

    // additions made quantized::add when both operands arrive quantized (after run())
    int sums() const { return m_sumCount; }

private:
    static bool mayHoldTensor(const c10::TypePtr& t) {
        switch (t->kind()) {
        case c10::TypeKind::TensorType:
            return true;
        case c10::TypeKind::ListType:
            return mayHoldTensor(t->expectRef<c10::ListType>().getElementType());
        case c10::TypeKind::DictType:
            return mayHoldTensor(t->expectRef<c10::DictType>().getValueType());
        case c10::TypeKind::OptionalType:
            return mayHoldTensor(t->expectRef<c10::OptionalType>().getElementType());
        case c10::TypeKind::TupleType:
            for (const auto& e : t->containedTypes())
                if (mayHoldTensor(e))
                    return true;
            return false;
        default:
            return false;
        }
    }

    void mark(Value* v) {
        if (m_tensors.count(v) || m_containers.count(v) || !mayHoldTensor(v->type()))
            return;
        const auto kind = v->type()->kind();
        if (kind == c10::TypeKind::TensorType) {
            m_tensors.insert(v);
            m_tensorOrder.push_back(v);
        } else if (kind == c10::TypeKind::ListType || kind == c10::TypeKind::DictType ||
                   kind == c10::TypeKind::TupleType) {
            m_containers.insert(v);
        } else {
            block(v->node()); // Optional[Tensor] and the like: not followed
            return;
        }
        m_work.push_back(v);
    }

    // A use that stores the value where a later read finds it: a block's output, a list,
    // dict or tuple. Marks what the read will come from.
    bool carrier(const torch::jit::Use& u) {
        Node* user = u.user;
        const std::string kind = kindOf(user);
        if (kind == "prim::Return") {
            Node* owner = user->owningBlock()->owningNode();
            if (!owner)
                return false; // the graph's own output
            if (owner->kind() == c10::prim::If) {
                mark(owner->output(u.offset));
                return true;
            }
            if (owner->kind() == c10::prim::Loop && u.offset >= 1) {
                mark(owner->output(u.offset - 1));
                mark(user->owningBlock()->inputs().at(u.offset));
                return true;
            }
            block(user);
            return false;
        }
        if (kind == "prim::ListConstruct" || kind == "prim::DictConstruct" || kind == "prim::TupleConstruct") {
            // a list made for an op (torch.cat([...])) or returned by the model gets float tensors
            if (!onlyReadAndPassedOn(user->output()))
                return false;
            mark(user->output());
            return true;
        }
        if (storesElement(u)) { // append, insert, _set_item, extend (constructs are handled above)
            mark(user->input(0));
            return true;
        }
        if (kind == "prim::Loop" && u.offset >= 2) { // a loop-carried initial value
            mark(user->output(u.offset - 2));
            mark(user->blocks().at(0)->inputs().at(u.offset - 1));
            return true;
        }
        return false;
    }

    // The end of emitQuantize's chain when `use` starts one (the value as its first input).
    static Node* quantizeEnd(const torch::jit::Use& use) {
        return use.offset == 0 ? ops::quantizeEnd(use.user) : nullptr;
    }

    // An addition of two tensors whose sum a quantized op reads (the FPN's top-down sum):
    // the quantize chain after it, or null.
    static Node* quantizedSum(Node* add) {
        if (kindOf(add) != "aten::add" || add->inputs().size() != 3 || add->outputs().size() != 1 ||
            add->input(1)->type()->kind() != c10::TypeKind::TensorType)
            return nullptr;
        const auto alpha = torch::jit::toIValue(add->input(2));
        if (!alpha || !((alpha->isInt() && alpha->toInt() == 1) || (alpha->isDouble() && alpha->toDouble() == 1.0)))
            return nullptr;
        for (const auto& u : add->output()->uses())
            if (Node* end = quantizeEnd(u))
                return end;
        return nullptr;
    }

    void visitTensor(Value* v) {
        for (const auto& u : v->uses()) {
            if (carrier(u) || readsShapeOnly(u.user))
                continue;
            const std::string kind = kindOf(u.user);
            // ops that run on a quantized tensor as on a float one, keeping it quantized
            if (u.offset == 0 && u.user->outputs().size() == 1 && ops::isCarriedQuantized(kind) &&
                ops::outOfPlace(kind) == kind) {
                mark(u.user->output());
                continue;
            }
            if (Node* end = quantizedSum(u.user)) {
                if (std::find(m_sums.begin(), m_sums.end(), std::make_pair(u.user, end)) == m_sums.end())
                    m_sums.emplace_back(u.user, end);
                mark(u.user->output());
                continue;
            }
            if (Node* end = quantizeEnd(u)) {
                m_quantizeSites.push_back(end);
                continue;
            }
            if (kindOf(u.user) == "prim::dtype") {
                m_dtypeReads.push_back(u.user);
                continue;
            }
            m_floatUses[v].push_back(u);
        }
    }

    static bool readsElements(const torch::jit::Use& u) {
        static const std::set<std::string> reads = {"aten::__getitem__", "aten::values", "aten::list", "aten::copy",
                                                    "aten::items", "aten::pop", "prim::ListUnpack",
                                                    "prim::TupleUnpack", "prim::TupleIndex", "aten::reverse",
                                                    "aten::dict"};
        return u.offset == 0 && reads.count(kindOf(u.user));
    }

    static bool leavesElementsAlone(const torch::jit::Use& u) {
        static const std::set<std::string> harmless = {"aten::len", "aten::keys", "aten::__contains__",
                                                       "aten::__is__", "aten::__isnot__"};
        const std::string kind = kindOf(u.user);
        return harmless.count(kind) || (u.offset == 0 && (kind == "aten::append" || kind == "aten::insert" ||
                                                          kind == "aten::_set_item" || kind == "aten::extend"));
    }

    // A container whose uses all read elements, leave them alone, or pass it on through a
    // block (not the model's output): what visitContainer accepts at the first level.
    static bool onlyReadAndPassedOn(const Value* c) {
        for (const auto& u : c->uses()) {
            if (readsElements(u) || leavesElementsAlone(u))
                continue;
            if (kindOf(u.user) == "prim::Return" && u.user->owningBlock()->owningNode())
                continue;
            if (u.user->kind() == c10::prim::Loop && u.offset >= 2)
                continue;
            if (storesElement(u)) // into another container (a list of (name, tensor) tuples)
                continue;
            return false;
        }
        return true;
    }

    static bool storesElement(const torch::jit::Use& u) {
        const std::string kind = kindOf(u.user);
        return (kind == "aten::append" && u.offset == 1) || (kind == "aten::insert" && u.offset == 2) ||
               (kind == "aten::_set_item" && u.offset == 2) || (kind == "aten::extend" && u.offset == 1) ||
               kind == "prim::ListConstruct" ||
               kind == "prim::DictConstruct" || kind == "prim::TupleConstruct";
    }

    void visitContainer(Value* c) {
        for (const auto& u : c->uses()) {
            const std::string kind = kindOf(u.user);
            if (carrier(u))
                continue;
            if (readsElements(u)) {
                for (Value* out : u.user->outputs())
                    mark(out);
                continue;
            }
            // writes into it (of anything) leave it a container of maybe-quantized tensors
            if (leavesElementsAlone(u))
                continue;
            // an op reading a list of tensors whole (torch.cat, the model's output) gets a
            // dequantized copy, unless it writes to the list
            if (readsListWhole(c, u)) {
                m_listFloatUses[c].push_back(u);
                if (std::find(m_listOrder.begin(), m_listOrder.end(), c) == m_listOrder.end())
                    m_listOrder.push_back(c);
                continue;
            }
            block(u.user);
            return;
        }
    }

    static bool readsListWhole(const Value* c, const torch::jit::Use& u) {
        const auto& type = c->type();
        if (type->kind() != c10::TypeKind::ListType ||
            type->expectRef<c10::ListType>().getElementType()->kind() != c10::TypeKind::TensorType)
            return false;
        if (kindOf(u.user) == "prim::Return")
            return !u.user->owningBlock()->owningNode(); // the model's output (block outputs are carriers)
        const c10::FunctionSchema* schema = u.user->maybeSchema();
        if (!schema || u.offset >= schema->arguments().size())
            return false;
        const auto* alias = schema->arguments()[u.offset].alias_info();
        return !alias || !alias->isWrite();
    }

    void block(const Node* n) {
        if (!m_blocked && std::getenv("QS_QUANTIZE_DUMP_GRAPH"))
            std::cerr << "quantize: quantized tensors stay out of containers, because of " << *n;
        m_blocked = true;
    }

    Value* call(const char* name, const std::vector<Value*>& inputs) {
        return insertFunction(*m_graph, *m_unit, name, inputs);
    }

    void replaceQuantize(Node* end) {
        std::vector<Node*> chain{end};
        while (chain.size() < 6)
            chain.push_back(chain.back()->input(0)->node());
        Node* mul = chain[5];
        Node* add = chain[4];
        Node* clamp = chain[2];
        torch::jit::WithInsertPoint guard(end);
        Value* q = call("qs_quantize_any", {mul->input(0), mul->input(1), add->input(1), clamp->input(1),
                                            clamp->input(2), end->input(1), end->input(2)});
        end->output()->replaceAllUsesWith(q);
        for (Node* n : chain)
            n->destroy();
    }

    // if both are quantized (and alike in shape): quantized::add with the range the quantize
    // after the sum would use; else the float addition of both dequantized
    void replaceSum(Node* add, Node* quantizeEnd) {
        torch::jit::WithInsertPoint guard(add);
        Value* a = add->input(0);
        Value* b = add->input(1);
        Node* branch = m_graph->create(c10::prim::If, {call("qs_both_quantized", {a, b})}, 1);
        m_graph->insertNode(branch);
        branch->output()->setType(c10::TensorType::get());
        {
            Block* quantized = branch->addBlock();
            torch::jit::WithInsertPoint inside(quantized);
            quantized->registerOutput(m_graph->insert(c10::Symbol::fromQualString("quantized::add"),
                                                      {a, b, quantizeEnd->input(1), quantizeEnd->input(2)}));
        }
        {
            Block* floating = branch->addBlock();
            torch::jit::WithInsertPoint inside(floating);
            floating->registerOutput(call("qs_float_add", {a, b}));
        }
        add->output()->replaceAllUsesWith(branch->output());
        // the sum was marked as maybe-quantized: its float uses now read the branch's output
        if (auto it = m_floatUses.find(add->output()); it != m_floatUses.end()) {
            m_floatUses[branch->output()] = std::move(it->second);
            m_floatUses.erase(it);
        }
        std::replace(m_tensorOrder.begin(), m_tensorOrder.end(), add->output(), branch->output());
        add->destroy();
    }

    // One dequantize per block that has float uses, before the first of them: a use in a
    // branch that does not run (F.interpolate's 1-d and 3-d cases) costs nothing.
    void dequantizeForFloatUses(Value* v, const std::unordered_map<Value*, std::vector<torch::jit::Use>>& floatUses,
                                const char* helper) {
        auto it = floatUses.find(v);
        if (it == floatUses.end() || it->second.empty())
            return;
        std::vector<std::pair<Block*, std::vector<torch::jit::Use>>> byBlock;
        for (const auto& u : it->second) {
            Block* b = u.user->owningBlock();
            auto at = std::find_if(byBlock.begin(), byBlock.end(), [b](const auto& e) { return e.first == b; });
            if (at == byBlock.end())
                byBlock.push_back({b, {u}});
            else
                at->second.push_back(u);
        }
        for (auto& [block, uses] : byBlock) {
            Node* first = uses.front().user;
            for (const auto& u : uses)
                if (u.user->isBefore(first))
                    first = u.user;
            torch::jit::WithInsertPoint guard(first);
            Value* f = call(helper, {v});
            for (const auto& u : uses)
                u.user->replaceInput(u.offset, f);
        }
    }

    std::shared_ptr<Graph> m_graph;
    std::shared_ptr<torch::jit::CompilationUnit> m_unit;
    std::unordered_set<Value*> m_tensors, m_containers;
    std::vector<Value*> m_tensorOrder, m_work;
    std::vector<Node*> m_quantizeSites, m_dtypeReads;
    std::vector<std::pair<Node*, Node*>> m_sums; // (float addition, the quantize chain reading its sum)
    std::unordered_map<Value*, std::vector<torch::jit::Use>> m_floatUses;
    std::unordered_map<Value*, std::vector<torch::jit::Use>> m_listFloatUses; // lists read whole by float ops
    std::vector<Value*> m_listOrder;
    bool m_blocked = false;
    int m_sumCount = 0;
};

// A layer copy no image reached (the FPN's top block also sits in a loop branch that never
// runs for it) borrows the ranges of a reached copy of the same module.
std::unordered_map<Value*, QParams> borrowRanges(const Prepared& p, const std::vector<QParams>& qparams) {
    std::unordered_map<Value*, QParams> borrowed;
    if (qparams.empty())
        return borrowed;
    auto reached = [&](const Layer& l) {
        return l.reason.empty() && qparams.at(p.observedIndex.at(l.end)).observed &&
               qparams.at(p.observedIndex.at(l.input)).observed;
    };
    for (const Layer& l : p.layers) {
        if (!l.reason.empty() || !p.observedIndex.count(l.end) || reached(l))
            continue;
        // Only values no image reached borrow: the copies in an `if i == idx` chain over a
        // module list all read the same input, which the reached copy observed itself
        // (borrowing it from an unreached copy's twin gave the FPN's lateral and output
        // convolutions in its loop the input range of the top level, outside the loop).
        auto borrow = [&](Value* mine, Value* theirs) {
            if (!qparams.at(p.observedIndex.at(mine)).observed)
                borrowed[mine] = qparams.at(p.observedIndex.at(theirs));
        };
        for (const Layer& twin : p.layers)
            if (&twin != &l && twin.name == l.name && p.observedIndex.count(twin.end) && reached(twin)) {
                borrow(l.input, twin.input);
                borrow(l.end, twin.end);
                if (p.observedIndex.count(twin.output) && p.observedIndex.count(l.output))
                    borrow(l.output, twin.output);
                break;
            }
    }
    return borrowed;
}

// The graph rewrite of one build: quantized layers, additions and carried ops replace
// their float nodes; every quantized value remembers its float original and parameters.
class Rewriter {
public:
    Rewriter(Prepared& p, const std::vector<QParams>& qparams, std::unordered_map<Value*, QParams> borrowed,
             const QuantizeOptions& options, const Plan& plan, BuildResult& result)
        : m_p(p), m_qparams(qparams), m_borrowed(std::move(borrowed)), m_options(options), m_plan(plan),
          m_result(result), m_g(*p.graph), m_attributes(p.module, p.graph) {
        for (std::size_t i = 0; i < p.layers.size(); ++i)
            m_layerIndex[p.layers[i].node] = i;
    }

    void run() {
        rewrite(m_g.block());
        torch::jit::EliminateDeadCode(m_p.graph);
        collect(m_g.block(), [&](Node* n) {
            if (n->kind().ns().toUnqualString() == std::string("quantscope"))
                throw Error(ErrorKind::Internal, "quantizer: an instrumentation op was left in the graph");
        });
        m_g.lint();
    }

private:
    QParams paramsOf(Value* v) const {
        if (auto b = m_borrowed.find(v); b != m_borrowed.end())
            return b->second;
        auto it = m_p.observedIndex.find(v);
        if (it == m_p.observedIndex.end())
            throw Error(ErrorKind::Internal, "quantizer: no calibration range for value %" + v->debugName());
        return m_qparams.at(it->second);
    }

    // v's quantized twin, made right after v the first time it is asked for
    Value* quantized(Value* v) {
        if (auto it = m_qmap.find(v); it != m_qmap.end())
            return it->second;
        const QParams q = paramsOf(v);
        torch::jit::WithInsertPoint guard(v->node()->next());
        Value* out = ops::emitQuantize(m_g, v, q.scale, q.zeroPoint, q.qmax);
        m_qmap[v] = out;
        m_qinfo[out] = q;
        return out;
    }

    // replaces `old` (float) by dequantize(q) and remembers q as its quantized twin
    void publish(Value* old, Value* q) {
        torch::jit::WithInsertPoint guard(q->node()->next());
        Value* dq = ops::emitDequantize(m_g, q, m_qinfo.at(q).scale, m_qinfo.at(q).zeroPoint);
        old->replaceAllUsesWith(dq);
        m_qmap[dq] = q;
        // shape and device queries can read the quantized tensor: no dequantize for them
        // (dtype and type tests cannot: they would answer quint8)
        const auto uses = dq->uses();
        for (const auto& u : uses)
            if (readsShapeOnly(u.user))
                u.user->replaceInput(u.offset, q);
    }

    void rewrite(Block* block) {
        std::vector<Node*> nodes(block->nodes().begin(), block->nodes().end());
        for (Node* n : nodes) {
            if (m_destroyed.count(n))
                continue;
            for (Block* sub : n->blocks())
                rewrite(sub);
            if (auto li = m_layerIndex.find(n); li != m_layerIndex.end())
                rewriteLayer(n, m_p.layers[li->second], m_result.layers[li->second]);
            else if (m_plan.adds.count(n))
                rewriteAdd(n);
            else if (m_plan.passThrough.count(n) && m_qmap.count(n->input(0)))
                carryQuantized(n);
        }
    }

    void rewriteLayer(Node* n, const Layer& l, QuantizedLayer& info) {
        torch::jit::WithInsertPoint guard(n);
        if (!m_plan.layers.count(n)) {
            // stays float: move its weights under its module path so it keeps its name
            if (l.weight.defined() && torch::jit::toIValue(n->input(1))) {
                n->replaceInput(1, m_attributes.put(l.name, "weight", l.weight, true, l.weight.unsafeGetTensorImpl()));
                if (l.bias.defined())
                    n->replaceInput(2, m_attributes.put(l.name, "bias", l.bias, true, l.bias.unsafeGetTensorImpl()));
            }
            return;
        }
        const bool epilogueOp = l.epilogueMode == ops::EpilogueMode::QuantizedOp;
        const bool fusedRelu = l.epilogueMode == ops::EpilogueMode::Fused;
        const QParams out = paramsOf(epilogueOp ? l.output : l.end);
        Value* qx = quantized(n->input(0));
        const QParams in = m_qinfo.at(qx);
        const at::Tensor qw = ops::quantizeWeight(l.weight, m_options.perChannel, 0, kMinScale);
        c10::IValue bias = l.bias.defined() ? c10::IValue(l.bias) : c10::IValue();
        c10::IValue packed;
        std::string op;
        if (l.conv) {
            packed = ops::callOp("quantized::conv2d_prepack", {qw, bias, l.stride, l.padding, l.dilation, l.groups});
            op = fusedRelu ? "quantized::conv2d_relu" : "quantized::conv2d";
        } else {
            packed = ops::callOp("quantized::linear_prepack", {qw, bias});
            op = fusedRelu ? "quantized::linear_relu" : "quantized::linear";
        }
        Value* w = m_attributes.put(l.name, "_packed_params", packed, false, l.weight.unsafeGetTensorImpl());
        Value* y = m_g.insert(c10::Symbol::fromQualString(op), {qx, w, out.scale, out.zeroPoint});
        m_qinfo[y] = out;
        if (epilogueOp) {
            const QParams end = paramsOf(l.end);
            y = emitQuantizedEpilogue(m_g, l.epilogue, y, end);
            m_qinfo[y] = end;
            info.epilogueScale = end.scale;
            info.epilogueZeroPoint = end.zeroPoint;
        }
        publish(l.end, y);
        if (l.end != l.output) {
            m_destroyed.insert(l.epilogue);
            l.epilogue->destroy();
        }
        m_layerIndex.erase(n);
        n->destroy();
        info.quantizedOp = op;
        if (!l.epilogueKind.empty()) {
            info.epilogue = l.epilogueKind;
            info.epilogueMode = ops::toString(l.epilogueMode);
        }
        info.inputScale = in.scale;
        info.inputZeroPoint = in.zeroPoint;
        info.outputScale = out.scale;
        info.outputZeroPoint = out.zeroPoint;
    }

    void rewriteAdd(Node* n) {
        Node* relu = m_plan.addRelu.count(n) ? m_plan.addRelu.at(n) : nullptr;
        Value* end = relu ? relu->output() : n->output();
        const QParams out = paramsOf(end);
        torch::jit::WithInsertPoint guard(n);
        Value* y = m_g.insert(c10::Symbol::fromQualString(relu ? "quantized::add_relu" : "quantized::add"),
                              {quantized(n->input(0)), quantized(n->input(1)), out.scale, out.zeroPoint});
        m_qinfo[y] = out;
        publish(end, y);
        if (relu) {
            m_destroyed.insert(relu);
            relu->destroy();
        }
        n->destroy();
        ++m_result.quantizedAdds;
    }

    // on the quantized tensor, in-place forms as their out-of-place ones
    void carryQuantized(Node* n) {
        torch::jit::WithInsertPoint guard(n);
        std::vector<Value*> inputs(n->inputs().begin(), n->inputs().end());
        inputs[0] = m_qmap.at(n->input(0));
        Node* q = m_g.create(c10::Symbol::fromQualString(ops::outOfPlace(kindOf(n))), inputs, 1);
        m_g.insertNode(q);
        q->output()->setType(n->output()->type());
        m_qinfo[q->output()] = m_qinfo.at(m_qmap.at(n->input(0)));
        publish(n->output(), q->output());
        n->destroy();
    }

    Prepared& m_p;
    const std::vector<QParams>& m_qparams;
    const std::unordered_map<Value*, QParams> m_borrowed;
    const QuantizeOptions& m_options;
    const Plan& m_plan;
    BuildResult& m_result;
    Graph& m_g;
    Attributes m_attributes;
    std::unordered_map<Value*, Value*> m_qmap;    // float value -> its quantized twin
    std::unordered_map<Value*, QParams> m_qinfo;  // quantized value -> its parameters
    std::unordered_set<Node*> m_destroyed;
    std::unordered_map<Node*, std::size_t> m_layerIndex;
};

// A quantize whose float input nothing reads afterwards scales it in place (mul_ instead
// of mul; emitQuantize's other steps already run in place): a fresh tensor as big as the
// input costs its page faults (the R50 box head's 12.5M-element input: about 10 ms on
// AVX2). Safe when the input has no other reader, is no graph input, constant or
// attribute, a floating tensor, no view with overlapping elements (expand, ...), and every
// value that may share its memory (the RoI pooling's result it is a view of, the loop
// values that filled it) is read only before the quantize. Run after
// QuantizedCarrier, which recognises quantize chains by their out-of-place mul. Returns
// how many were made in place.
int quantizeInPlace(const std::shared_ptr<Graph>& graph) {
    Graph& g = *graph;
    std::vector<Node*> heads;
    std::vector<Value*> values(g.inputs().begin(), g.inputs().end());
    collect(g.block(), [&](Node* n) {
        values.insert(values.end(), n->outputs().begin(), n->outputs().end());
        for (torch::jit::Block* b : n->blocks())
            values.insert(values.end(), b->inputs().begin(), b->inputs().end());
        if (n->inputs().size() == 2 && n->input(1)->type()->kind() != c10::TypeKind::TensorType && ops::quantizeEnd(n))
            heads.push_back(n);
    });
    // views whose elements may share memory: an in-place write to them fails
    const auto overlapping = [](const Value* v) {
        const std::string k = kindOf(v->node());
        return k == "aten::expand" || k == "aten::expand_as" || k == "aten::broadcast_to" || k == "aten::as_strided" ||
               k == "aten::unfold";
    };
    torch::jit::AliasDb aliasDb(graph);
    std::vector<Node*> convert;
    for (Node* head : heads) {
        Value* x = head->input(0);
        const c10::Symbol made = x->node()->kind();
        const auto tensor = x->type()->cast<c10::TensorType>();
        const auto dtype = tensor ? tensor->scalarType() : c10::nullopt;
        bool safe = x->uses().size() == 1 && made != c10::prim::Param && made != c10::prim::Constant &&
                    made != c10::prim::GetAttr && tensor && (!dtype || c10::isFloatingType(*dtype)) && !overlapping(x);
        for (Value* a : values) {
            if (!safe)
                break;
            if (a == x || !aliasDb.mayContainAlias(a, x))
                continue;
            safe = !overlapping(a) && (a->node()->kind() != c10::prim::Param || a->node()->owningBlock() != g.block());
            for (const torch::jit::Use& u : a->uses())
                safe = safe && u.user != head && u.user->isBefore(head);
        }
        if (safe)
            convert.push_back(head);
    }
    for (Node* head : convert) {
        torch::jit::WithInsertPoint guard(head);
        Value* y = g.insert(c10::aten::mul_, {head->input(0), head->input(1)});
        y->setType(head->output()->type());
        head->output()->replaceAllUsesWith(y);
        head->destroy();
    }
    return static_cast<int>(convert.size());
}

// channelsLast: make the first convolution's input channels-last if that convolution stays
// float (oneDNN's INT8 convolutions reorder to channels-last themselves; measured on the
// ResNet-50-FPN, a channels-last input made the INT8 model slower, 208 vs 195 ms).
BuildResult build(Prepared& p, const std::vector<QParams>& qparams, const QuantizeOptions& options,
                  const std::set<std::string>& keepFloat, bool foldOnly, bool channelsLast) {
    BuildResult result;
    result.roiAligns = p.roiAligns;
    std::unordered_map<Value*, QParams> borrowed = borrowRanges(p, qparams);
    auto observedOk = [&](Value* v) {
        return borrowed.count(v) ? borrowed.at(v).observed : qparams.at(p.observedIndex.at(v)).observed;
    };
    // which layers go INT8, and why each other one stays float
    std::unordered_set<const Layer*> selected;
    for (const Layer& l : p.layers) {
        QuantizedLayer q;
        q.name = l.name;
        q.op = l.op;
        if (!l.reason.empty())
            q.reason = l.reason;
        else if (foldOnly)
            q.reason = "--fold-only";
        else if (!inScope(l.name, options.scope))
            q.reason = "outside --scope";
        else if (matchesAny(l.name, options.exclude))
            q.reason = "--exclude";
        else if (keepFloat.count(l.name))
            q.reason = std::count(options.keepFloat.begin(), options.keepFloat.end(), l.name)
                           ? "--float-layer"
                           : "kept in float (--keep-float)";
        else if (!qparams.empty() && (!observedOk(l.end) || !observedOk(l.input)))
            q.reason = "no calibration image reached it";
        else
            selected.insert(&l);
        result.layers.push_back(q);
    }
    const Plan plan = makePlan(p, selected);
    Rewriter(p, qparams, std::move(borrowed), options, plan, result).run();
    if (!selected.empty() && !options.plain) {
        QuantizedCarrier carrier(p.graph);
        result.carried = carrier.run();
        result.carriedSums = carrier.sums();
        result.inPlaceQuantizes = quantizeInPlace(p.graph);
    }
    if (channelsLast && !options.plain) {
        auto stem = std::find_if(p.layers.begin(), p.layers.end(), [](const Layer& l) { return l.conv; });
        if (stem != p.layers.end() && !selected.count(&*stem))
            result.channelsLast = channelsLastStem(p.graph, p.layers);
    }
    return result;
}

// ---------------------------------------------------------------------------------------
// Saving and checking

std::int64_t fileSize(const std::string& path) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(path, ec);
    return ec ? 0 : static_cast<std::int64_t>(n);
}

struct RemoveOnExit {
    std::vector<std::string> paths;
    ~RemoveOnExit() {
        for (const auto& p : paths)
            std::remove(p.c_str());
    }
};

nlohmann::json layersJson(const std::vector<QuantizedLayer>& layers, RankBy rankBy) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& l : layers) {
        nlohmann::json j = {{"name", l.name}, {"op", l.op}, {"quantized_op", l.quantizedOp}, {"reason", l.reason},
                            {"input_scale", l.inputScale}, {"input_zero_point", l.inputZeroPoint},
                            {"output_scale", l.outputScale}, {"output_zero_point", l.outputZeroPoint}};
        if (!l.epilogue.empty()) {
            j["epilogue"] = l.epilogue;
            j["epilogue_mode"] = l.epilogueMode;
            if (l.epilogueMode == "quantized") {
                j["epilogue_scale"] = l.epilogueScale;
                j["epilogue_zero_point"] = l.epilogueZeroPoint;
            }
        }
        if (l.ranked && rankBy == RankBy::Map)
            j["rank_map_drop_points"] = jsonNumber(-l.rankScore);
        else if (l.ranked)
            j["rank_sqnr_db"] = jsonNumber(l.rankScore);
        out.push_back(std::move(j));
    }
    return out;
}

nlohmann::json reportJson(const QuantizeOptions& options, const BuildResult& b, bool reduceRange) {
    return {{"producer", "quantscope-cli quantize"},
            {"source", options.modelPath},
            {"engine", options.model.engine},
            {"method", toString(options.method)},
            {"per_channel", options.perChannel},
            {"reduce_range", reduceRange},
            {"calibration_images", options.images.size()},
            {"roi_align_as_aten", b.roiAligns},
            {"quantized_through_containers", b.carried},
            {"run_time_quantized_adds", b.carriedSums},
            {"in_place_quantizes", b.inPlaceQuantizes},
            {"channels_last_stem", b.channelsLast},
            {"layers", layersJson(b.layers, options.rankBy)}};
}

void save(torch::jit::Module& module, const std::string& path, const std::string& json) {
    try {
        module.save(path, {{"quantscope.json", json}});
    } catch (const std::exception& e) {
        std::remove(path.c_str());
        throw Error(ErrorKind::Output, path + ": cannot write the model (" + firstLine(e.what()) + ")");
    }
}

// The fastest of `runs` forward passes on one image after three warm-up passes (the
// profiling executor optimises on the second run; the fastest run is the least disturbed).
double timeForward(torch::jit::Module& module, InputKind kind, const Image& image, const std::string& path,
                   int runs) {
    torch::NoGradGuard noGrad;
    const c10::IValue input = ts::makeInput(kind, image);
    for (int i = 0; i < 3; ++i)
        ts::forward(module, input, path, image.source);
    std::vector<double> t;
    for (int i = 0; i < runs; ++i) {
        const auto t0 = Clock::now();
        ts::forward(module, input, path, image.source);
        t.push_back(secondsSince(t0));
    }
    return t.empty() ? 0 : *std::min_element(t.begin(), t.end());
}


} // namespace

std::string quantizedLayersJson(const std::vector<QuantizedLayer>& layers, RankBy rankBy) {
    return jsonText(layersJson(layers, rankBy));
}

std::vector<std::string> calibrationSample(const std::vector<std::string>& images, int count) {
    if (count <= 0 || static_cast<std::size_t>(count) >= images.size())
        return images;
    std::vector<std::string> picked;
    const std::size_t n = images.size(), k = static_cast<std::size_t>(count);
    for (std::size_t i = 0; i < k; ++i)
        picked.push_back(images[i * n / k]);
    return picked;
}

namespace {

// Refuses a request that cannot work, before anything is loaded.
void checkRequest(const QuantizeOptions& options) {
    if (options.outPath.empty())
        throw Error(ErrorKind::Usage, "--out: no output file given");
    std::vector<std::pair<std::string, std::string>> inputs = {{"model", options.modelPath}};
    for (const auto& image : options.images)
        inputs.push_back({"calibration image", image});
    checkOutputPath(options.outPath, inputs);
    if (options.images.empty() && !options.foldOnly)
        throw Error(ErrorKind::Usage, "no calibration images given (--calib DIR or --calib-coco)");
    if (options.percentile <= 50 || options.percentile > 100)
        throw Error(ErrorKind::Usage, "--percentile must be in (50, 100]");
    const bool search = options.maxDropPoints >= 0 && !options.foldOnly;
    if (search && options.evalAnnotations.empty())
        throw Error(ErrorKind::Usage, "--max-drop needs an annotated image set (--calib-coco JSON --images DIR)");
    if (options.rankBy == RankBy::Map && options.evalAnnotations.empty() && (options.keepFloatCount > 0 || search))
        throw Error(ErrorKind::Usage, "--rank-by map needs an annotated image set (--calib-coco JSON --images DIR)");
}

// --scope must name layers; --float-layer names that match nothing and layers that stay
// float for a reason become warnings.
void checkLayerNames(const Prepared& p, const QuantizeOptions& options, QuantizeReport& report) {
    for (const auto& s : options.scope) {
        const bool named = std::any_of(p.layers.begin(), p.layers.end(),
                                       [&](const Layer& l) { return inScope(l.name, {s}); });
        if (!named)
            throw Error(ErrorKind::Usage, "--scope: '" + s + "' names no convolution or linear layer of " +
                                              options.modelPath + " (layers look like '" + p.layers.front().name + "')");
    }
    for (const auto& k : options.keepFloat)
        if (std::none_of(p.layers.begin(), p.layers.end(), [&](const Layer& l) { return l.name == k; }))
            report.warnings.push_back("--float-layer: no layer is named '" + k + "'");
    for (const Layer& l : p.layers)
        if (!l.reason.empty() && inScope(l.name, options.scope))
            report.warnings.push_back("left in float: " + l.name + " (" + l.op + "): " + l.reason);
}

// Calibrates and turns each observed value's statistics into quantization parameters.
std::vector<QParams> calibrateRanges(Prepared& p, const QuantizeOptions& options, const ProgressFn& progress,
                                     QuantizeReport& report) {
    report.reduceRange = options.reduceRange == ReduceRange::On ||
                         (options.reduceRange == ReduceRange::Auto && options.model.engine == "onednn" && !ops::cpuHasVnni());
    std::vector<QParams> qparams;
    if (options.foldOnly)
        return qparams;
    const int qmax = report.reduceRange ? 127 : 255;
    const auto tc = Clock::now();
    const auto stats = calibrate(p, options, progress, report.warnings, report.calibrationImages);
    report.calibrationSeconds = secondsSince(tc);
    for (const auto& s : stats) {
        qparams.push_back(chooseRange(s, options.method, options.percentile, qmax));
        if (s.nonFinite)
            report.warnings.push_back("non-finite activations seen during calibration");
    }
    return qparams;
}

// Mixed precision (--keep-float K, --max-drop X): ranks the layers by how much their
// quantization hurts, then keeps the worst ones float. Every build reuses the calibration
// ranges; each needs a fresh frozen graph (a build consumes its graph).
class MixedPrecision {
public:
    MixedPrecision(const QuantizeOptions& options, const ProgressFn& progress, Prepared& p,
                   const std::vector<QParams>& qparams, const std::set<std::string>& keepFloat,
                   const std::string& tmp, RemoveOnExit& cleanup, QuantizeReport& report)
        : m_options(options), m_progress(progress), m_p(p), m_qparams(qparams), m_keepFloat(keepFloat), m_tmp(tmp),
          m_cleanup(cleanup), m_report(report) {}

    // The model written to `tmp` with the chosen layers float; its layers carry rank scores.
    BuildResult run() {
        rank();
        BuildResult b = m_options.maxDropPoints >= 0 ? searchDrop()
                                                     : rebuild(withTop(static_cast<std::size_t>(m_options.keepFloatCount)));
        for (auto& l : b.layers)
            for (const auto& [score, name] : m_scores)
                if (name == l.name) {
                    l.rankScore = score;
                    l.ranked = true;
                }
        return b;
    }

private:
    // Scores ascending = most harmful first: SQNR in dB, or minus the mAP drop in points.
    void rank() {
        std::vector<std::string> candidates;
        {
            BuildResult full = build(m_p, m_qparams, m_options, m_keepFloat, false, true);
            for (const auto& l : full.layers)
                if (!l.quantizedOp.empty())
                    candidates.push_back(l.name);
            if (m_options.rankBy == RankBy::Sqnr && m_options.rankFrom.empty()) // compared below
                save(m_p.module, m_tmp, jsonText(reportJson(m_options, full, m_report.reduceRange)));
        }
        if (m_options.rankBy == RankBy::Sqnr) {
            const auto sqnr = sqnrOf(m_options.rankFrom.empty() ? compareWith(m_tmp, "rank") : m_options.rankFrom);
            for (const auto& name : candidates)
                if (auto it = sqnr.find(name); it != sqnr.end())
                    m_scores.emplace_back(it->second, name);
        } else { // sensitivity: each layer alone quantized
            int k = 0;
            for (const auto& name : candidates) {
                std::set<std::string> others(m_keepFloat);
                for (const auto& c : candidates)
                    if (c != name)
                        others.insert(c);
                rebuild(others);
                const std::string stage = "sensitivity " + std::to_string(++k) + "/" + std::to_string(candidates.size());
                if (m_options.rankBy == RankBy::Map) {
                    const EvalReport r = evaluateTmp(stage);
                    m_scores.emplace_back(-100.0 * (r.original.coco.map - r.quantized.coco.map), name);
                    continue;
                }
                double worst = std::numeric_limits<double>::infinity();
                for (const auto& [layer, v] : sqnrOf(compareWith(m_tmp, stage)))
                    if (std::isfinite(v))
                        worst = std::min(worst, v);
                m_scores.emplace_back(worst, name);
            }
        }
        std::sort(m_scores.begin(), m_scores.end());
    }

    // --max-drop: 0, 1, 2, 4, ... layers float until the mAP drop is small enough.
    BuildResult searchDrop() {
        const Image first = loadImage(m_options.images.front(), m_options.preprocess);
        std::vector<std::size_t> ks{0};
        for (std::size_t k = 1; k < m_scores.size(); k *= 2)
            ks.push_back(k);
        ks.push_back(m_scores.size());
        BuildResult b;
        std::size_t tried = 0;
        for (std::size_t k : ks) {
            if (tried > 0 && static_cast<int>(k) == m_report.tradeOffs.back().keptFloat)
                continue;
            ++tried;
            b = rebuild(withTop(k));
            const EvalReport r = evaluateTmp("max-drop: " + std::to_string(k) + " float");
            TradeOff t;
            t.keptFloat = static_cast<int>(k);
            t.fileBytes = fileSize(m_tmp);
            torch::jit::Module candidate = ts::loadModule(m_tmp);
            t.seconds = timeForward(candidate, m_p.input, first, m_tmp, 3);
            t.map = r.quantized.coco.map;
            t.dropPoints = 100.0 * (r.original.coco.map - r.quantized.coco.map);
            m_report.originalMap = r.original.coco.map;
            m_report.tradeOffs.push_back(t);
            if (t.dropPoints <= m_options.maxDropPoints)
                break;
        }
        if (m_report.tradeOffs.back().dropPoints > m_options.maxDropPoints)
            m_report.warnings.push_back("--max-drop: no candidate met the drop; the last one (" +
                                        std::to_string(m_report.tradeOffs.back().keptFloat) +
                                        " layers float) is written");
        return b;
    }

    std::set<std::string> withTop(std::size_t k) const {
        std::set<std::string> floatLayers(m_keepFloat);
        for (std::size_t i = 0; i < m_scores.size() && i < k; ++i)
            floatLayers.insert(m_scores[i].second);
        return floatLayers;
    }

    BuildResult rebuild(const std::set<std::string>& floatLayers) {
        m_p = prepare(m_options.modelPath, m_options);
        if (m_p.observed.size() != m_qparams.size())
            throw Error(ErrorKind::Internal, "quantizer: preparing the model twice gave different graphs");
        BuildResult b = build(m_p, m_qparams, m_options, floatLayers, false, true);
        save(m_p.module, m_tmp, jsonText(reportJson(m_options, b, m_report.reduceRange)));
        return b;
    }

    // Each layer's SQNR in a dump; a module called several times (the RPN head, once per
    // level) scores by its worst call.
    static std::unordered_map<std::string, double> sqnrOf(const std::string& dumpPath) {
        std::unordered_map<std::string, double> sqnr;
        const std::unique_ptr<DumpReader> opened = openDump(dumpPath); // --rank-from may be anyone's
        for (const auto& l : opened->layers()) {
            const std::string key = l.module.empty() ? l.name : l.module;
            const auto it = sqnr.find(key);
            sqnr[key] = it == sqnr.end() ? l.metrics.sqnrDb : std::min(it->second, l.metrics.sqnrDb);
        }
        return sqnr;
    }

    std::string compareWith(const std::string& quantizedModel, const std::string& stage) {
        const std::string dump = partialPath(m_options.outPath) + ".rank.h5";
        m_cleanup.paths.push_back(dump);
        CompareOptions c;
        c.originalPath = m_options.modelPath;
        c.quantizedPath = quantizedModel;
        c.images.assign(m_options.images.begin(),
                        m_options.images.begin() +
                            std::min<std::size_t>(m_options.images.size(), std::max(1, m_options.rankImages)));
        c.outPath = dump;
        c.preprocess = m_options.preprocess;
        c.model = m_options.model;
        compare(c, prefixed(m_progress, stage + " "));
        return dump;
    }

    // The float and INT8 mAP@[.5:.95] of the model in `tmp` on the annotated set.
    EvalReport evaluateTmp(const std::string& stage) {
        EvalOptions e;
        e.originalPath = m_options.modelPath;
        e.quantizedPath = m_tmp;
        e.annotationsPath = m_options.evalAnnotations;
        e.imagesDir = m_options.evalImagesDir;
        e.preprocess = m_options.preprocess;
        e.model = m_options.model;
        return evaluatePair(e, prefixed(m_progress, stage + ", "));
    }

    const QuantizeOptions& m_options;
    const ProgressFn& m_progress;
    Prepared& m_p;
    const std::vector<QParams>& m_qparams;
    const std::set<std::string>& m_keepFloat;
    const std::string& m_tmp;
    RemoveOnExit& m_cleanup;
    QuantizeReport& m_report;
    std::vector<std::pair<double, std::string>> m_scores;
};

// The written file must load and run before it takes the output's name.
void checkAndCommit(const QuantizeOptions& options, const ProgressFn& progress, const Prepared& p,
                    const std::string& tmp, QuantizeReport& report) {
    reportProgress(progress, {"check", 0, 1, tmp});
    torch::jit::Module written = ts::loadModule(tmp);
    torch::jit::Module original = ts::loadModule(options.modelPath);
    report.originalParameterBytes = ts::parameterBytes(original);
    report.outputParameterBytes = ts::parameterBytes(written);
    if (!options.images.empty()) {
        const Image image = loadImage(options.images.front(), options.preprocess);
        report.checkSecondsOutput = timeForward(written, p.input, image, options.outPath, 3);
        report.checkSecondsOriginal = timeForward(original, p.input, image, options.modelPath, 3);
    }
    reportProgress(progress, {"check", 1, 1, tmp});
    commitFile(tmp, options.outPath);
    report.outputFileBytes = fileSize(options.outPath);
}

// quantize --out B.onnx: the same quantization as the TorchScript output (made first,
// under a temporary name, and removed), written as the ONNX model's QDQ form: the layers
// INT8 there get a QuantizeLinear/DequantizeLinear pair on their input with the calibrated
// range and int8 weights through a DequantizeLinear (ts::writeQdqOnnx). The file is
// imported and run on the first calibration image before it takes the output's name.
QuantizeReport quantizeToOnnx(const QuantizeOptions& options, const ProgressFn& progress) {
    if (!ts::isOnnxPath(options.modelPath))
        throw Error(ErrorKind::Usage, "--out " + options.outPath + ": an ONNX output (QDQ form) needs an ONNX model, " +
                                          options.modelPath + " is TorchScript (give --out X.pt)");
    if (options.foldOnly)
        throw Error(ErrorKind::Usage, "--fold-only writes a TorchScript model (give --out X.pt)");
    checkRequest(options);
    const auto t0 = Clock::now();
    RemoveOnExit cleanup;
    QuantizeOptions inner = options;
    inner.outPath = partialPath(options.outPath) + ".pt";
    cleanup.paths.push_back(inner.outPath);
    QuantizeReport report = quantize(inner, progress);
    std::vector<ts::QdqLayer> layers;
    for (const auto& l : report.layers)
        if (!l.quantizedOp.empty())
            layers.push_back({l.name, l.inputScale, l.inputZeroPoint, report.reduceRange ? 127 : 255, l.outputScale,
                              l.outputZeroPoint, l.epilogueMode == "fused"});
    const std::string tmp = partialPath(options.outPath) + ".onnx"; // read back as ONNX
    cleanup.paths.push_back(tmp);
    reportProgress(progress, {"check", 0, 1, tmp});
    const ts::QdqWritten written = ts::writeQdqOnnx(options.modelPath, tmp, layers, options.perChannel, kMinScale,
                                                    quantizedLayersJson(report.layers, options.rankBy));
    for (auto& l : report.layers)
        if (std::find(written.missing.begin(), written.missing.end(), l.name) != written.missing.end()) {
            l.quantizedOp.clear();
            l.reason = "no Conv or Gemm with a weight initializer in the ONNX file";
            report.warnings.push_back("left in float: " + l.name + " (" + l.reason + ")");
        }
    report.quantizedLayers = written.layers;
    report.floatLayers = static_cast<int>(report.layers.size()) - written.layers;
    if (written.layers == 0)
        throw Error(ErrorKind::Input, options.modelPath + ": no layer could be written in QDQ form (see the warnings)");
    if (!options.images.empty()) { // it must import and run; timed as checkAndCommit times the TorchScript one
        torch::jit::Module written = ts::loadModule(tmp);
        const Image image = loadImage(options.images.front(), options.preprocess);
        report.checkSecondsOutput = timeForward(written, ts::inputKind(written), image, tmp, 3);
    }
    reportProgress(progress, {"check", 1, 1, tmp});
    commitFile(tmp, options.outPath);
    report.outPath = options.outPath;
    report.outputFileBytes = fileSize(options.outPath);
    report.outputParameterBytes = written.initializerBytes;
    report.totalSeconds = secondsSince(t0);
    return report;
}

} // namespace

QuantizeReport quantize(const QuantizeOptions& options, const ProgressFn& progress) {
    if (ts::isOnnxPath(options.outPath))
        return quantizeToOnnx(options, progress);
    const auto t0 = Clock::now();
    checkRequest(options);
    QuantizeReport report;
    report.outPath = options.outPath;
    configureRuntime(options.model);

    Prepared p = prepare(options.modelPath, options);
    report.originalFileBytes = fileSize(options.modelPath);
    checkLayerNames(p, options, report);
    report.observedValues = static_cast<int>(p.observed.size());
    const std::vector<QParams> qparams = calibrateRanges(p, options, progress, report);

    RemoveOnExit cleanup;
    const std::set<std::string> keepFloat(options.keepFloat.begin(), options.keepFloat.end());
    const std::string tmp = partialPath(options.outPath);
    cleanup.paths.push_back(tmp);
    const bool mixed = (options.keepFloatCount > 0 || options.maxDropPoints >= 0) && !options.foldOnly;
    BuildResult b;
    if (mixed) {
        b = MixedPrecision(options, progress, p, qparams, keepFloat, tmp, cleanup, report).run();
    } else {
        // channels-last only when checkAndCommit's image will show the model still runs
        b = build(p, qparams, options, keepFloat, options.foldOnly, !options.images.empty());
        save(p.module, tmp, jsonText(reportJson(options, b, report.reduceRange)));
    }
    report.roiAligns = b.roiAligns;
    report.carried = b.carried;
    report.carriedSums = b.carriedSums;
    report.inPlaceQuantizes = b.inPlaceQuantizes;
    report.channelsLast = b.channelsLast;
    report.layers = b.layers;
    report.quantizedAdds = b.quantizedAdds;
    for (const auto& l : report.layers)
        (l.quantizedOp.empty() ? report.floatLayers : report.quantizedLayers)++;
    if (!options.foldOnly && report.quantizedLayers == 0)
        throw Error(ErrorKind::Input, options.modelPath + ": no layer could be quantized (see the warnings)");

    try {
        checkAndCommit(options, progress, p, tmp, report);
    } catch (const Error& e) {
        // a .view() of a convolution's output fails on channels-last tensors: such a model is
        // written again with its own layout (the stem is the only difference)
        if (!b.channelsLast || mixed || e.kind() == ErrorKind::Cancelled || e.kind() == ErrorKind::Output)
            throw;
        report.warnings.push_back("the model does not run with a channels-last input, kept its layout (" +
                                  firstLine(e.what()) + ")");
        p = prepare(options.modelPath, options);
        b = build(p, qparams, options, keepFloat, options.foldOnly, false);
        save(p.module, tmp, jsonText(reportJson(options, b, report.reduceRange)));
        report.channelsLast = false;
        checkAndCommit(options, progress, p, tmp, report);
    }
    report.totalSeconds = secondsSince(t0);
    return report;
}

} // namespace qs
