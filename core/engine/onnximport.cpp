// ONNX import: an ONNX model becomes a TorchScript module, so that taps, pairing,
// metrics, bench and eval work on it unchanged. The model is read and checked with
// libonnx (checker, shape inference), every node is translated into one TorchScript
// statement, and the module is compiled from that source. Weights of Conv and Gemm nodes
// live in submodules named after the node ("/features/0/Conv" -> features.0), so a layer
// is named as PyTorch names the module it was exported from; other initializers are
// buffers of the root module. docs/onnx.md lists the operators.

#include "error.h"
#include "opvocabulary.h"
#include "torchscript.h"

#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

namespace qs::ts {

namespace {

using onnx::AttributeProto;
using onnx::NodeProto;
using onnx::TensorProto;

at::Tensor toTensor(const TensorProto& t, const std::string& where) {
    const std::vector<std::int64_t> dims(t.dims().begin(), t.dims().end());
    std::int64_t count = 1;
    for (auto d : dims)
        count *= d;
    auto wrongSize = [&](std::size_t have) {
        return Error(ErrorKind::Input, where + ": tensor " + t.name() + " holds " + std::to_string(have) +
                                           " values (or bytes) for a shape of " + std::to_string(count));
    };
    // raw_data (little-endian, the type's own width), else the typed field the type uses
    auto fromRaw = [&](at::ScalarType type) {
        at::Tensor out = at::empty(dims, type);
        if (static_cast<std::size_t>(out.numel() * out.element_size()) != t.raw_data().size())
            throw wrongSize(t.raw_data().size());
        std::memcpy(out.data_ptr(), t.raw_data().data(), t.raw_data().size());
        return out;
    };
    auto fromField = [&](const auto& field, at::ScalarType type) {
        using T = typename std::decay_t<decltype(field)>::value_type;
        if (static_cast<std::int64_t>(field.size()) != count)
            throw wrongSize(static_cast<std::size_t>(field.size()));
        return at::tensor(std::vector<T>(field.begin(), field.end())).to(type).reshape(dims).clone();
    };
    const bool raw = t.has_raw_data();
    switch (t.data_type()) {
    case TensorProto::FLOAT:
        return raw ? fromRaw(at::kFloat) : fromField(t.float_data(), at::kFloat);
    case TensorProto::DOUBLE:
        return raw ? fromRaw(at::kDouble) : fromField(t.double_data(), at::kDouble);
    case TensorProto::INT64:
        return raw ? fromRaw(at::kLong) : fromField(t.int64_data(), at::kLong);
    case TensorProto::INT32:
        return raw ? fromRaw(at::kInt) : fromField(t.int32_data(), at::kInt);
    case TensorProto::UINT8: // the narrow types travel in int32_data
        return raw ? fromRaw(at::kByte) : fromField(t.int32_data(), at::kByte);
    case TensorProto::INT8:
        return raw ? fromRaw(at::kChar) : fromField(t.int32_data(), at::kChar);
    case TensorProto::BOOL:
        return raw ? fromRaw(at::kBool) : fromField(t.int32_data(), at::kBool);
    default:
        throw Error(ErrorKind::Input, where + ": tensor " + t.name() + " has ONNX data type " +
                                          std::to_string(t.data_type()) + ", which QuantScope does not read");
    }
}

std::string num(double v) {
    if (std::isinf(v))
        return v > 0 ? "float('inf')" : "float('-inf')";
    std::ostringstream s;
    s.precision(17);
    s << v;
    std::string text = s.str();
    if (text.find_first_of(".eE") == std::string::npos)
        text += ".0";
    return text;
}

std::string intList(const std::vector<std::int64_t>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i)
        s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

// A Python identifier for an ONNX value or node name.
std::string identifier(const std::string& name, const std::string& prefix) {
    std::string s = prefix;
    for (char c : name)
        s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return s;
}

// ONNX's own operator set ("" or "ai.onnx"), as nodes and opset imports name it.
bool defaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

// A bound as TorchScript source: an infinite one is none.
std::string boundSource(double v) { return std::isinf(v) ? std::string("None") : num(v); }

std::atomic<OnnxInt8> g_onnxInt8{OnnxInt8::Auto};

// Resolves `quantized.conv2d(...)` in the generated source to LibTorch's quantized ops, and
// `torch` as LibTorch's own resolver does.
struct ImportResolver : torch::jit::Resolver {
    std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction&,
                                                           const torch::jit::SourceRange&) override {
        if (name == "torch")
            return std::make_shared<torch::jit::BuiltinModule>("aten");
        if (name == "quantized")
            return std::make_shared<torch::jit::BuiltinModule>("quantized");
        return nullptr;
    }
    c10::TypePtr resolveType(const std::string&, const torch::jit::SourceRange&) override { return nullptr; }
};

// Methods of the imported module for shapes the graph computes as it runs (dynamic exports):
// a Reshape's target (0 copies the input's dimension unless allowzero), a shape as ints.
constexpr const char* kShapeHelpers = R"(
def _qs_dims(self, x: Tensor, shape: Tensor, allowzero: bool) -> List[int]:
    dims: List[int] = []
    for i in range(shape.size(0)):
        d = int(shape[i])
        if d == 0 and not allowzero:
            d = x.size(i)
        dims.append(d)
    return dims

def _qs_ints(self, v: Tensor) -> List[int]:
    out: List[int] = []
    for i in range(v.size(0)):
        out.append(int(v[i]))
    return out
)";

// "/features/0/Conv" -> "features.0"; "conv1" -> "conv1"; "" -> "" (PyTorch's export names
// a node by its module path and op type).
std::string modulePathOf(const NodeProto& node) {
    std::string name = node.name();
    if (name.empty())
        return {};
    std::vector<std::string> parts;
    std::string part;
    for (char c : name) {
        if (c == '/' || c == '.') {
            if (!part.empty())
                parts.push_back(part);
            part.clear();
        } else {
            part += std::isalnum(static_cast<unsigned char>(c)) || c == '_' ? c : '_';
        }
    }
    if (!part.empty())
        parts.push_back(part);
    if (name.front() == '/' && parts.size() > 1)
        parts.pop_back(); // the op type PyTorch appends ("Conv", "Conv_1")
    std::string path;
    for (const auto& p : parts)
        path += (path.empty() ? "" : ".") + p;
    return path;
}

class Importer {
public:
    explicit Importer(std::string path) : m_path(std::move(path)) {}

    torch::jit::Module run() {
        onnx::ModelProto model;
        std::ifstream f(m_path, std::ios::binary);
        if (!f)
            throw Error(ErrorKind::Input, m_path + ": cannot open model file (missing or unreadable)");
        if (!model.ParseFromIstream(&f))
            throw Error(ErrorKind::Input, m_path + ": not an ONNX model (the protobuf does not parse)");
        return build(model);
    }

    // After run(): each layer's module path (as the taps and the quantizer name it, e.g.
    // "features.0") and the output its node writes.
    const std::map<std::string, std::string>& layerOutputs() const { return m_layerOutputs; }

    torch::jit::Module run(const std::string& bytes) {
        onnx::ModelProto model;
        if (!model.ParseFromString(bytes))
            throw Error(ErrorKind::Input, m_path + ": not an ONNX model (the protobuf does not parse)");
        return build(model);
    }

private:
    torch::jit::Module build(onnx::ModelProto& model) {
        try {
            onnx::checker::check_model(model);
        } catch (const std::exception& e) {
            throw Error(ErrorKind::Input, m_path + ": not a valid ONNX model (" + firstLineOf(e.what()) + ")");
        }
        try {
            onnx::shape_inference::InferShapes(model);
        } catch (const std::exception& e) {
            throw Error(ErrorKind::Input, m_path + ": ONNX shape inference fails (" + firstLineOf(e.what()) + ")");
        }
        for (const auto& opset : model.opset_import())
            if (defaultDomain(opset.domain()))
                m_opset = opset.version();
        const auto& graph = model.graph();
        std::string unsupported;
        for (const auto& node : graph.node())
            if (!supported(node) && unsupported.empty())
                unsupported = "node " + (node.name().empty() ? std::string("(unnamed)") : node.name()) + " is " +
                              (defaultDomain(node.domain()) ? "" : node.domain() + ".") +
                              node.op_type();
        if (!unsupported.empty())
            throw Error(ErrorKind::Input, m_path + ": " + unsupported + ", an operator QuantScope does not import "
                                                                         "(docs/onnx.md lists those it does)");
        for (const auto& init : graph.initializer())
            m_initializers[init.name()] = toTensor(init, m_path);
        std::set<std::string> initialized;
        for (const auto& init : graph.initializer())
            initialized.insert(init.name());
        std::vector<std::string> inputs;
        for (const auto& in : graph.input())
            if (!initialized.count(in.name()))
                inputs.push_back(in.name());
        if (inputs.size() != 1)
            throw Error(ErrorKind::Input, m_path + ": the graph takes " + std::to_string(inputs.size()) +
                                              " inputs; QuantScope feeds one image tensor");
        m_module = torch::jit::Module(kOnnxModuleType);
        std::ostringstream body;
        body << "def forward(self, " << value(inputs.front()) << ": Tensor):\n";
        for (const auto& vi : graph.value_info())
            m_valueInfo[vi.name()] = &vi;
        for (const auto& vi : graph.input())
            m_valueInfo[vi.name()] = &vi;
        for (const auto& node : graph.node()) {
            for (const auto& out : node.output())
                m_producer[out] = &node;
            for (const auto& in : node.input())
                m_consumers[in].push_back(&node);
        }
        for (const auto& out : graph.output())
            m_graphOutputs.insert(out.name());
        for (const auto& node : graph.node()) {
            if (foldable(node)) { // shapes, indices, constants: computed now, stored as buffers
                fold(node);
                continue;
            }
            const std::string statement = translate(node);
            body << m_preamble;
            m_preamble.clear();
            if (!statement.empty())
                body << "    " << statement << "\n";
        }
        std::vector<std::string> outputs;
        for (const auto& out : graph.output())
            outputs.push_back(value(out.name()));
        body << m_preamble;
        if (outputs.size() == 1)
            body << "    return " << outputs.front() << "\n";
        else {
            body << "    return (";
            for (std::size_t i = 0; i < outputs.size(); ++i)
                body << (i ? ", " : "") << outputs[i];
            body << ")\n";
        }
        if (m_helpers) // what statements on shapes computed as the graph runs call
            body << kShapeHelpers;
        const std::string source = body.str();
        if (const char* show = std::getenv("QS_ONNX_SOURCE"); show && std::strcmp(show, "all") == 0)
            std::fprintf(stderr, "%s: TorchScript made from the graph:\n%s\n", m_path.c_str(), source.c_str());
        try {
            m_module.define(source, std::make_shared<ImportResolver>());
        } catch (const std::exception& e) {
            std::string what = e.what();
            while (!what.empty() && what.front() == '\n')
                what.erase(0, 1);
            if (std::getenv("QS_ONNX_SOURCE"))
                std::fprintf(stderr, "%s\n", source.c_str());
            throw Error(ErrorKind::Internal, m_path + ": the TorchScript made from the ONNX graph does not compile (" +
                                                 firstLineOf(what) + "; QS_ONNX_SOURCE=1 prints it)");
        }
        m_module.eval();
        return m_module;
    }

    // A node whose inputs are all known now (or a Shape of a statically shaped value).
    bool foldable(const NodeProto& node) const {
        if (node.op_type() == "Constant" || node.op_type() == "Conv" || node.op_type() == "ConvTranspose" ||
            node.op_type() == "QLinearConv" || node.op_type() == "Gemm" || node.output_size() != 1)
            return false;
        if (node.op_type() == "Shape")
            return staticShape(node.input(0)).has_value();
        if (node.input_size() == 0)
            return node.op_type() == "ConstantOfShape";
        for (const auto& in : node.input())
            if (!in.empty() && !m_initializers.count(in))
                return false;
        return true;
    }

    std::optional<std::vector<std::int64_t>> staticShape(const std::string& name) const {
        auto it = m_valueInfo.find(name);
        if (it == m_valueInfo.end() || !it->second->type().has_tensor_type() ||
            !it->second->type().tensor_type().has_shape())
            return std::nullopt;
        std::vector<std::int64_t> dims;
        for (const auto& d : it->second->type().tensor_type().shape().dim()) {
            if (!d.has_dim_value())
                return std::nullopt;
            dims.push_back(d.dim_value());
        }
        return dims;
    }

    // Runs one node's statement on its constant inputs and keeps the result as a constant.
    void fold(const NodeProto& node) {
        if (node.op_type() == "Shape") {
            auto dims = *staticShape(node.input(0));
            const auto rank = static_cast<std::int64_t>(dims.size());
            auto clampIndex = [&](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + rank : i, 0, rank); };
            const std::int64_t start = clampIndex(intAttr(node, "start", 0));
            const std::int64_t end = clampIndex(intAttr(node, "end", rank));
            dims = std::vector<std::int64_t>(dims.begin() + start, dims.begin() + std::max(start, end));
            m_initializers[node.output(0)] = at::tensor(dims, at::kLong);
            return;
        }
        torch::jit::Module scratch("__torch__.quantscope.onnx.Fold" + std::to_string(m_moduleCount++));
        m_target = &scratch;
        std::string statement;
        try {
            statement = translate(node);
        } catch (...) {
            m_target = &m_module;
            throw;
        }
        m_target = &m_module;
        if (m_initializers.count(node.output(0)))
            return; // the translation made the constant itself (ConstantOfShape)
        const std::string out = identifier(node.output(0), "v_");
        try {
            scratch.define("def forward(self):\n    " + statement + "\n    return " + out + "\n");
            m_initializers[node.output(0)] = scratch.forward({}).toTensor();
        } catch (const std::exception& e) {
            std::string what = e.what();
            while (!what.empty() && what.front() == '\n')
                what.erase(0, 1);
            throw Error(ErrorKind::Input, where(node) + ": cannot compute it from its constant inputs (" +
                                              firstLineOf(what) + ")");
        }
    }

public:
    // ONNX's own operators from the table; of ONNX Runtime's (com.microsoft), the two its
    // quantizer writes in the QOperator form around QLinearConv.
    static bool supported(const NodeProto& node) {
        if (node.domain() == "com.microsoft")
            return node.op_type() == "QLinearAdd" || node.op_type() == "QLinearGlobalAveragePool";
        return defaultDomain(node.domain()) && supported(node.op_type());
    }
    static bool supported(const std::string& op) {
        static const std::set<std::string> ops = {
            "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv",
            "ConvTranspose", "DequantizeLinear", "Div", "Exp", "QuantizeLinear", "Flatten", "Gather", "Gemm",
            "GlobalAveragePool", "HardSigmoid", "HardSwish", "Identity", "LeakyRelu", "MatMul", "MaxPool", "Mul", "Pad",
            "Pow", "PRelu", "QLinearConv", "QLinearMatMul", "ReduceMean", "Relu", "Reshape", "Resize", "Shape", "Sigmoid",
            "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Transpose", "Unsqueeze", "Upsample"};
        return ops.count(op) > 0;
    }

private:
    static std::string firstLineOf(const std::string& text) { return text.substr(0, text.find('\n')); }

    std::string where(const NodeProto& node) const {
        return m_path + ": node " + (node.name().empty() ? std::string("(unnamed)") : node.name()) + " (" +
               node.op_type() + ")";
    }

    // The TorchScript expression of an ONNX value: an initializer becomes a buffer of the
    // root module, anything else a local variable.
    std::string value(const std::string& name) {
        if (name.empty())
            return "None";
        if (auto p = m_pending.find(name); p != m_pending.end()) { // first use: its statement now
            const auto make = std::move(p->second);
            m_pending.erase(p);
            const std::string statement = make();
            m_preamble += "    " + statement + "\n";
        }
        auto it = m_initializers.find(name);
        if (it != m_initializers.end()) {
            const std::string attr = identifier(name, "c_");
            if (!m_target->hasattr(attr))
                m_target->register_buffer(attr, it->second);
            return "self." + attr;
        }
        return identifier(name, "v_");
    }

    // A constant input (initializer or Constant node output), for shapes and axes.
    std::optional<at::Tensor> constant(const std::string& name) const {
        auto it = m_initializers.find(name);
        if (it != m_initializers.end())
            return it->second;
        return std::nullopt;
    }

    std::vector<std::int64_t> constantInts(const NodeProto& node, int input) const {
        if (node.input_size() <= input || node.input(input).empty())
            return {};
        const auto t = constant(node.input(input));
        if (!t)
            throw Error(ErrorKind::Input, where(node) + ": input " + std::to_string(input) +
                                              " is computed; QuantScope imports it only when it is a constant");
        const at::Tensor l = t->to(at::kLong).contiguous();
        return std::vector<std::int64_t>(l.data_ptr<std::int64_t>(), l.data_ptr<std::int64_t>() + l.numel());
    }

    static const AttributeProto* attribute(const NodeProto& node, const std::string& name) {
        for (const auto& a : node.attribute())
            if (a.name() == name)
                return &a;
        return nullptr;
    }
    static std::vector<std::int64_t> ints(const NodeProto& node, const std::string& name,
                                          std::vector<std::int64_t> otherwise = {}) {
        const auto* a = attribute(node, name);
        return a ? std::vector<std::int64_t>(a->ints().begin(), a->ints().end()) : otherwise;
    }
    static std::int64_t intAttr(const NodeProto& node, const std::string& name, std::int64_t otherwise) {
        const auto* a = attribute(node, name);
        return a ? a->i() : otherwise;
    }
    static double floatAttr(const NodeProto& node, const std::string& name, double otherwise) {
        const auto* a = attribute(node, name);
        return a ? static_cast<double>(a->f()) : otherwise;
    }
    static std::string stringAttr(const NodeProto& node, const std::string& name, const std::string& otherwise) {
        const auto* a = attribute(node, name);
        return a ? a->s() : otherwise;
    }

    // Symmetric 2-D pads as torch takes them, or an explicit constant pad first (uneven
    // pads, or pads over half the kernel, which torch's pooling refuses). auto_pad SAME_UPPER
    // and SAME_LOWER are worked out from the input's size, which must be known at import:
    // output ceil(in / stride), the padding that needs split evenly, the odd one at the end
    // (UPPER) or the beginning (LOWER). `window`: the kernel's size, for SAME.
    std::pair<std::string, std::vector<std::int64_t>> pads(const NodeProto& node, const std::string& x,
                                                           double padValue, std::vector<std::int64_t> kernel = {},
                                                           std::vector<std::int64_t> window = {}) {
        auto p = ints(node, "pads", {0, 0, 0, 0});
        const std::string autoPad = stringAttr(node, "auto_pad", "NOTSET");
        if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
            if (window.empty())
                window = kernel;
            const auto shape = staticShape(node.input(0));
            const auto stride = ints(node, "strides", {1, 1}), dilation = ints(node, "dilations", {1, 1});
            if (!shape || shape->size() != 4 || window.size() != 2 || stride.size() != 2 || dilation.size() != 2)
                throw Error(ErrorKind::Input, where(node) + ": auto_pad " + autoPad + " is imported for 2-D inputs "
                                                                                  "whose size is known at import");
            p.assign(4, 0);
            for (std::size_t i = 0; i < 2; ++i) {
                const std::int64_t in = (*shape)[2 + i], out = (in + stride[i] - 1) / stride[i];
                const std::int64_t total =
                    std::max<std::int64_t>(0, (out - 1) * stride[i] + (window[i] - 1) * dilation[i] + 1 - in);
                p[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                p[i + 2] = total - p[i];
            }
        } else if (autoPad != "NOTSET" && autoPad != "VALID") {
            throw Error(ErrorKind::Input, where(node) + ": auto_pad " + autoPad + " is not imported");
        }
        const bool withinKernel = kernel.size() != 2 || (p.size() == 4 && 2 * p[0] <= kernel[0] && 2 * p[1] <= kernel[1]);
        if (p.size() == 4 && p[0] == p[2] && p[1] == p[3] && withinKernel)
            return {x, {p[0], p[1]}};
        if (p.size() != 4)
            throw Error(ErrorKind::Input, where(node) + ": only 2-D pads are imported");
        return {"torch.constant_pad_nd(" + x + ", [" + std::to_string(p[1]) + ", " + std::to_string(p[3]) + ", " +
                    std::to_string(p[0]) + ", " + std::to_string(p[2]) + "], " + num(padValue) + ")",
                {0, 0}};
    }

    // A submodule at `path` (created along the way) holding `tensors` as parameters; returns
    // the TorchScript expression that reaches it. Names are kept as PyTorch has them
    // ("features.0"), reached with getattr where they are no identifiers.
    std::string owner(const NodeProto& node, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const c10::IValue& packed = c10::IValue()) {
        std::string path = modulePathOf(node);
        if (path.empty())
            path = identifier(node.output(0), "n_");
        if (m_owners.count(path)) // a second node of the same module (a shared weight, a loop)
            path += "_" + std::to_string(m_owners[path]++);
        else
            m_owners[path] = 1;
        std::vector<std::string> names;
        std::stringstream parts(path);
        std::string part;
        while (std::getline(parts, part, '.'))
            names.push_back(part);
        torch::jit::Module leaf("__torch__.quantscope.onnx.Layer" + std::to_string(m_moduleCount++));
        for (const auto& [name, t] : tensors)
            leaf.register_parameter(name, t, false);
        if (!packed.isNone()) // a quantized kernel's weights, as the TorchScript quantizer names them
            leaf.register_attribute("_packed_params", packed.type(), packed);
        torch::jit::Module parent = m_module;
        std::string expression = "self";
        for (std::size_t i = 0; i < names.size(); ++i) {
            const std::string name = escape(names[i]);
            if (i + 1 == names.size()) {
                parent.register_module(name, leaf);
            } else if (!parent.hasattr(name)) {
                torch::jit::Module child("__torch__.quantscope.onnx.Group" + std::to_string(m_moduleCount++));
                parent.register_module(name, child);
            }
            expression += "." + name;
            if (i + 1 < names.size())
                parent = parent.attr(name).toModule();
        }
        if (m_target == &m_module)
            m_layerOutputs[unescapeOnnxPath(expression.substr(5))] = node.output(0);
        return expression;
    }

    // A module name TorchScript source can spell: "0" -> "_0" (unescapeOnnxPath undoes it).
    static std::string escape(const std::string& name) {
        return !name.empty() && std::isdigit(static_cast<unsigned char>(name.front())) ? "_" + name : name;
    }

    // The element type inference found for input `i` must be float (or unknown).
    void requireFloat(const NodeProto& node, int i) const {
        auto it = m_valueInfo.find(node.input(i));
        if (it == m_valueInfo.end() || !it->second->type().has_tensor_type())
            return;
        const auto type = it->second->type().tensor_type().elem_type();
        if (type != TensorProto::FLOAT && type != TensorProto::UNDEFINED)
            throw Error(ErrorKind::Input, where(node) + ": its input has ONNX element type " + std::to_string(type) +
                                              "; only float is imported for this operator");
    }

    std::optional<std::int64_t> rankOf(const std::string& name) const {
        if (const auto t = constant(name))
            return t->dim();
        auto it = m_valueInfo.find(name);
        if (it == m_valueInfo.end() || !it->second->type().has_tensor_type() ||
            !it->second->type().tensor_type().has_shape())
            return std::nullopt;
        return it->second->type().tensor_type().shape().dim_size();
    }

    std::string translate(const NodeProto& node) {
        const std::string& op = node.op_type();
        if (op == "Split")
            return split(node);
        if (node.output_size() != 1)
            throw Error(ErrorKind::Input, where(node) + ": " + std::to_string(node.output_size()) +
                                              " outputs (training-mode or index outputs) are not imported");
        auto in = [&](int i) { return i < node.input_size() ? value(node.input(i)) : std::string("None"); };
        const std::string out = identifier(node.output(0), "v_");
        auto assign = [&](const std::string& expression) { return out + " = " + expression; };
        auto binary = [&](const char* symbol) { return assign(in(0) + " " + symbol + " " + in(1)); };
        if (op == "Constant") {
            const auto* a = attribute(node, "value");
            if (!a)
                throw Error(ErrorKind::Input, where(node) + ": only tensor-valued Constants are imported");
            m_initializers[node.output(0)] = toTensor(a->t(), m_path);
            return "pass  # " + node.output(0) + " is a buffer";
        }
        if (op == "Conv" || op == "Gemm" || op == "MatMul" || op == "QLinearConv" || op == "QLinearMatMul")
            if (auto kernel = layerKernel(node))
                return *kernel;
        if ((op == "Relu" || op == "Clip") && m_absorbed.count(&node))
            return ""; // fused into the kernel before it
        if (op == "Add")
            if (auto kernel = addKernel(node))
                return *kernel;
        if (op == "QuantizeLinear")
            if (const auto it = m_kernelQ.find(&node); it != m_kernelQ.end()) {
                produced(node.output(0), it->second.first, it->second.second.p);
                return "";
            }
        if (op == "DequantizeLinear" && kernelsOn() && !m_lazy && !constant(node.input(0))) {
            // made where it is read, so that a kernel reading the quantized tensor skips it
            const NodeProto* n = &node;
            m_pending[node.output(0)] = [this, n] {
                m_lazy = true;
                std::string statement;
                try {
                    statement = translate(*n);
                } catch (...) {
                    m_lazy = false;
                    throw;
                }
                m_lazy = false;
                return statement;
            };
            return "";
        }
        if (op == "Conv") {
            const at::Tensor weight = constantTensor(node, 1);
            std::vector<std::pair<std::string, at::Tensor>> tensors = {{"weight", weight}};
            if (node.input_size() > 2 && !node.input(2).empty())
                tensors.push_back({"bias", constantTensor(node, 2)});
            const std::string self = owner(node, tensors);
            if (weight.dim() != 4)
                throw Error(ErrorKind::Input, where(node) + ": only 2-D convolutions are imported");
            return assign(conv2d(node, in(0), self, tensors.size() > 1, weight));
        }
        if (op == "ConvTranspose")
            return assign(convTranspose(node, in(0)));
        if (op == "Pad")
            return assign(pad(node, in(0)));
        if (op == "Gemm") {
            if (intAttr(node, "transA", 0) != 0)
                throw Error(ErrorKind::Input, where(node) + ": transA is not imported");
            at::Tensor weight = constantTensor(node, 1);
            if (intAttr(node, "transB", 0) == 0)
                weight = weight.t().contiguous();
            weight = weight * floatAttr(node, "alpha", 1.0);
            std::vector<std::pair<std::string, at::Tensor>> tensors = {{"weight", weight}};
            if (node.input_size() > 2 && !node.input(2).empty())
                tensors.push_back({"bias", constantTensor(node, 2) * floatAttr(node, "beta", 1.0)});
            const std::string self = owner(node, tensors);
            return assign("torch.linear(" + in(0) + ", " + self + ".weight, " +
                          (tensors.size() > 1 ? self + ".bias" : std::string("None")) + ")");
        }
        if (op == "BatchNormalization")
            return assign("torch.batch_norm(" + in(0) + ", " + in(1) + ", " + in(2) + ", " + in(3) + ", " + in(4) +
                          ", False, 0.0, " + num(floatAttr(node, "epsilon", 1e-5)) + ", False)");
        if (op == "Relu")
            return assign("torch.relu(" + in(0) + ")");
        if (op == "LeakyRelu")
            return assign("torch.leaky_relu(" + in(0) + ", " + num(floatAttr(node, "alpha", 0.01)) + ")");
        if (op == "PRelu")
            return assign("torch.where(" + in(0) + " >= 0, " + in(0) + ", " + in(0) + " * " + in(1) + ")");
        if (op == "Sigmoid")
            return assign("torch.sigmoid(" + in(0) + ")");
        if (op == "HardSigmoid")
            return assign("torch.clamp(" + in(0) + " * " + num(floatAttr(node, "alpha", 0.2)) + " + " +
                          num(floatAttr(node, "beta", 0.5)) + ", 0.0, 1.0)");
        if (op == "HardSwish")
            return assign("torch.hardswish(" + in(0) + ")");
        if (op == "Exp")
            return assign("torch.exp(" + in(0) + ")");
        if (op == "Sqrt")
            return assign("torch.sqrt(" + in(0) + ")");
        if (op == "Pow")
            return assign("torch.pow(" + in(0) + ", " + in(1) + ")");
        if (op == "Identity")
            return assign(in(0));
        if (op == "Add")
            return binary("+");
        if (op == "Sub")
            return binary("-");
        if (op == "Mul")
            return binary("*");
        if (op == "Div")
            return binary("/");
        if (op == "Clip") {
            const auto low = clipBound(node, 1), high = clipBound(node, 2);
            if (!low || !high)
                throw Error(ErrorKind::Input, where(node) + ": input " + (low ? "2" : "1") +
                                                  " must be a constant (an initializer) of one value to be imported");
            if (std::isinf(*low) && std::isinf(*high))
                return assign(in(0));
            return assign("torch.clamp(" + in(0) + ", " + boundSource(*low) + ", " + boundSource(*high) + ")");
        }
        if (op == "MaxPool" || op == "AveragePool") {
            const auto kernel = ints(node, "kernel_shape");
            if (kernel.size() != 2)
                throw Error(ErrorKind::Input, where(node) + ": only 2-D pooling is imported");
            requireFloat(node, 0);
            const bool ceil = intAttr(node, "ceil_mode", 0) != 0;
            const bool isMax = op == "MaxPool";
            if (isMax)
                if (auto k = maxPoolKernel(node, kernel))
                    return *k;
            const auto [x, pad] = pads(node, in(0), isMax ? -std::numeric_limits<double>::infinity() : 0.0, kernel);
            if (!isMax && x != in(0) && !intAttr(node, "count_include_pad", 0))
                throw Error(ErrorKind::Input, where(node) + ": average pooling with uneven pads, or pads over half "
                                                            "the kernel, that are not counted is not imported");
            if (isMax)
                return assign("torch.max_pool2d(" + x + ", " + intList(kernel) + ", " +
                              intList(ints(node, "strides", {1, 1})) + ", " + intList(pad) + ", " +
                              intList(ints(node, "dilations", {1, 1})) + ", " + (ceil ? "True" : "False") + ")");
            return assign("torch.avg_pool2d(" + x + ", " + intList(kernel) + ", " +
                          intList(ints(node, "strides", {1, 1})) + ", " + intList(pad) + ", " +
                          (ceil ? "True" : "False") + ", " +
                          (intAttr(node, "count_include_pad", 0) ? "True" : "False") + ")");
        }
        if (op == "GlobalAveragePool")
            return assign("torch.mean(" + in(0) + ", [2, 3], True)");
        if (op == "ReduceMean") {
            auto axes = ints(node, "axes");
            if (axes.empty() && m_opset >= 18)
                axes = constantInts(node, 1);
            return assign("torch.mean(" + in(0) + ", " + intList(axes) + ", " +
                          (intAttr(node, "keepdims", 1) ? "True" : "False") + ")");
        }
        if (op == "Flatten") {
            std::int64_t axis = intAttr(node, "axis", 1);
            if (axis < 0) {
                const auto rank = rankOf(node.input(0));
                if (!rank)
                    throw Error(ErrorKind::Input, where(node) + ": a negative axis on an input of unknown rank");
                axis += *rank;
            }
            if (axis == 0)
                return assign("torch.reshape(" + in(0) + ", [1, -1])");
            return assign("torch.flatten(torch.flatten(" + in(0) + ", " + std::to_string(axis) + "), 0, " +
                          std::to_string(axis - 1) + ")");
        }
        if (op == "Concat")
            return assign("torch.cat([" + joinInputs(node) + "], " + std::to_string(intAttr(node, "axis", 0)) + ")");
        if (op == "Softmax") {
            if (m_opset >= 13)
                return assign("torch.softmax(" + in(0) + ", " + std::to_string(intAttr(node, "axis", -1)) + ")");
            // before opset 13: over all dimensions from `axis` on (the input seen as 2-D)
            return assign("torch.softmax(torch.flatten(" + in(0) + ", " + std::to_string(intAttr(node, "axis", 1)) +
                          "), -1).reshape(" + in(0) + ".size())");
        }
        if (op == "MatMul")
            return assign("torch.matmul(" + in(0) + ", " + in(1) + ")");
        if (op == "Transpose")
        {
            auto perm = ints(node, "perm");
            if (perm.empty()) { // reversed dimensions
                const auto rank = rankOf(node.input(0));
                if (!rank)
                    throw Error(ErrorKind::Input, where(node) + ": no perm, on an input of unknown rank");
                for (std::int64_t d = *rank - 1; d >= 0; --d)
                    perm.push_back(d);
            }
            return assign(in(0) + ".permute(" + intList(perm) + ")");
        }
        if (op == "Reshape") {
            // 0 copies the input's dimension, unless allowzero = 1 (then it is a 0)
            const bool allowZero = intAttr(node, "allowzero", 0) != 0;
            if (!constant(node.input(1))) { // a shape computed as the graph runs (a dynamic export)
                m_helpers = true;
                return assign("torch.reshape(" + in(0) + ", self._qs_dims(" + in(0) + ", " + in(1) + ", " +
                              (allowZero ? "True" : "False") + "))");
            }
            auto shape = constantInts(node, 1);
            std::string dims = "[";
            for (std::size_t i = 0; i < shape.size(); ++i)
                dims += (i ? ", " : "") + (shape[i] == 0 && !allowZero ? in(0) + ".size(" + std::to_string(i) + ")"
                                                                       : std::to_string(shape[i]));
            return assign("torch.reshape(" + in(0) + ", " + dims + "])");
        }
        if (op == "Squeeze" || op == "Unsqueeze") {
            auto axes = m_opset >= 13 ? constantInts(node, 1) : ints(node, "axes");
            std::string e = in(0);
            if (op == "Unsqueeze") {
                std::sort(axes.begin(), axes.end());
                for (auto a : axes)
                    e = "torch.unsqueeze(" + e + ", " + std::to_string(a) + ")";
            } else {
                if (axes.empty())
                    e = "torch.squeeze(" + e + ")";
                std::sort(axes.rbegin(), axes.rend());
                for (auto a : axes)
                    e = "torch.squeeze(" + e + ", " + std::to_string(a) + ")";
            }
            return assign(e);
        }
        if (op == "Resize" || op == "Upsample") {
            const std::string mode = stringAttr(node, "mode", "nearest");
            std::vector<double> scales;
            const int scalesInput = op == "Upsample" ? 1 : 2;
            if (node.input_size() > scalesInput && !node.input(scalesInput).empty()) {
                const at::Tensor s = constantTensor(node, scalesInput).to(at::kDouble).contiguous();
                scales.assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
            }
            std::string size = "None", factor = "None";
            std::optional<std::array<double, 2>> factors; // the output's size over the input's, when known
            if (scales.size() == 4) {
                factor = "[" + num(scales[2]) + ", " + num(scales[3]) + "]";
                factors = std::array<double, 2>{scales[2], scales[3]};
            } else if (op == "Resize" && node.input_size() > 3 && !node.input(3).empty()) {
                if (const auto known = constant(node.input(3))) {
                    const auto sizes = constantInts(node, 3);
                    if (sizes.size() != 4)
                        throw Error(ErrorKind::Input, where(node) + ": only 4-D resizes are imported");
                    size = intList({sizes[2], sizes[3]});
                    if (const auto in = staticShape(node.input(0)); in && in->size() == 4 && (*in)[2] > 0 && (*in)[3] > 0)
                        factors = std::array<double, 2>{static_cast<double>(sizes[2]) / static_cast<double>((*in)[2]),
                                                        static_cast<double>(sizes[3]) / static_cast<double>((*in)[3])};
                } else { // sizes computed as the graph runs (a dynamic export)
                    if (rankOf(node.input(0)).value_or(4) != 4)
                        throw Error(ErrorKind::Input, where(node) + ": only 4-D resizes are imported");
                    size = "self._qs_ints(" + in(3) + ")[2:]";
                    m_helpers = true;
                }
            } else {
                throw Error(ErrorKind::Input, where(node) + ": the resize has no scales or sizes");
            }
            if (mode == "nearest") {
                const std::string nearest = stringAttr(node, "nearest_mode", "round_prefer_floor");
                const std::string coords = stringAttr(node, "coordinate_transformation_mode", "half_pixel");
                // torch's 'nearest' is ONNX's asymmetric + floor (PyTorch's own export). ONNX's
                // default, half_pixel + round_prefer_floor (or _ceil), picks the same pixels when
                // the output is a whole multiple of the input: output pixel k * s + r maps to
                // k + (r + 0.5) / s - 0.5, within half a pixel of k, never on a tie.
                const auto whole = [](double f) { return f >= 1.0 && std::floor(f) == f; };
                const bool sameAsTorch =
                    op == "Upsample" || (coords == "asymmetric" && nearest == "floor") ||
                    ((coords == "half_pixel" || coords == "pytorch_half_pixel") &&
                     (nearest == "round_prefer_floor" || nearest == "round_prefer_ceil") && factors &&
                     whole((*factors)[0]) && whole((*factors)[1]));
                if (!sameAsTorch)
                    throw Error(ErrorKind::Input, where(node) + ": nearest resize with " + coords + "/" + nearest +
                                                      " is not imported (asymmetric/floor is, and half_pixel/"
                                                      "round_prefer_* by whole factors)");
                return assign("torch.upsample_nearest2d(" + in(0) + ", " + size + ", " + factor + ")");
            }
            if (mode == "linear") {
                const std::string coords = stringAttr(node, "coordinate_transformation_mode", "half_pixel");
                if (std::any_of(scales.begin(), scales.end(), [](double v) { return v < 1.0; }) || size != "None")
                    throw Error(ErrorKind::Input, where(node) + ": linear resizes are imported for upsampling by "
                                                              "scales only (downsampling differs from ONNX's)");
                if (coords != "half_pixel" && coords != "align_corners" && coords != "pytorch_half_pixel")
                    throw Error(ErrorKind::Input, where(node) + ": linear resize with " + coords + " is not imported");
                return assign("torch.upsample_bilinear2d(" + in(0) + ", " + size + ", " +
                              (coords == "align_corners" ? "True" : "False") + ", " + factor + ")");
            }
            throw Error(ErrorKind::Input, where(node) + ": resize mode " + mode + " is not imported");
        }
        if (op == "QuantizeLinear" || op == "DequantizeLinear") {
            // ONNX's formulas, simulated in float: y = saturate(round_half_even(x / s) + zp),
            // x' = (y - zp) * s; per tensor, or per axis (scale and zero point along `axis`)
            const at::Tensor scale = constantTensor(node, 1);
            const bool hasZeroPoint = node.input_size() > 2 && !node.input(2).empty();
            const at::Tensor zeroPoint = hasZeroPoint ? constantTensor(node, 2) : at::zeros({}, at::kByte);
            if (zeroPoint.scalar_type() != at::kByte && zeroPoint.scalar_type() != at::kChar)
                throw Error(ErrorKind::Input, where(node) + ": only 8-bit quantization (uint8, int8) is imported");
            const bool isSigned = zeroPoint.scalar_type() == at::kChar;
            std::string s = in(1), zp = hasZeroPoint ? in(2) + ".to(6)" : std::string("0.0");
            if (scale.dim() == 1 && scale.numel() > 1) { // per axis
                const auto rank = rankOf(node.input(0));
                if (!rank)
                    throw Error(ErrorKind::Input, where(node) + ": per-axis scales on an input of unknown rank");
                std::int64_t axis = intAttr(node, "axis", 1);
                if (axis < 0)
                    axis += *rank;
                std::vector<std::int64_t> shape(static_cast<std::size_t>(*rank), 1);
                shape[static_cast<std::size_t>(axis)] = -1;
                s = "torch.reshape(" + s + ", " + intList(shape) + ")";
                if (hasZeroPoint)
                    zp = "torch.reshape(" + zp + ", " + intList(shape) + ")";
            }
            if (op == "QuantizeLinear")
                return assign(quantizeFormula(in(0), s, zp, isSigned));
            return assign(dequantizeFormula(in(0), s, zp));
        }
        if (op == "QLinearConv" || op == "QLinearMatMul" || op == "QLinearAdd" || op == "QLinearGlobalAveragePool")
            return assign(qlinear(node));
        if (op == "Shape") {
            const auto* start = attribute(node, "start");
            const auto* end = attribute(node, "end");
            return assign("torch.tensor(" + in(0) + ".size()[" + (start ? std::to_string(start->i()) : "") + ":" +
                          (end ? std::to_string(end->i()) : "") + "], dtype=4)");
        }
        if (op == "Cast") {
            const auto to = intAttr(node, "to", TensorProto::FLOAT);
            // torch's ScalarType numbers (TorchScript source has no dtype names from C++)
            const char* type = to == TensorProto::FLOAT ? "6"
                               : to == TensorProto::INT64 ? "4"
                               : to == TensorProto::INT32 ? "3"
                               : to == TensorProto::BOOL ? "11"
                               : to == TensorProto::DOUBLE ? "7"
                                                           : nullptr;
            if (!type)
                throw Error(ErrorKind::Input, where(node) + ": a cast to ONNX type " + std::to_string(to) +
                                                  " is not imported");
            return assign(in(0) + ".to(" + type + ")");
        }
        if (op == "ConstantOfShape") {
            const auto* a = attribute(node, "value");
            const at::Tensor v = a ? toTensor(a->t(), m_path) : at::zeros({1}, at::kFloat);
            if (!constant(node.input(0))) { // a shape computed as the graph runs
                m_helpers = true;
                const double fill = v.reshape({-1})[0].item<double>();
                return assign("torch.full(self._qs_ints(" + in(0) + "), " + num(fill) + ", dtype=" +
                              std::to_string(static_cast<int>(v.scalar_type())) + ")");
            }
            const auto shape = constantInts(node, 0);
            m_initializers[node.output(0)] = at::full(shape, v.reshape({-1})[0].item(), v.options());
            return "pass  # " + node.output(0) + " is a buffer";
        }
        if (op == "Gather") {
            const std::int64_t axis = intAttr(node, "axis", 0);
            const auto index = node.input_size() > 1 ? constant(node.input(1)) : std::nullopt;
            if (index && index->dim() == 0)
                return assign("torch.select(" + in(0) + ", " + std::to_string(axis) + ", " +
                              std::to_string(index->item<std::int64_t>()) + ")");
            // indices of any shape: rows picked along axis, the indices' shape put in its place
            // negative indices count from the end: taken modulo the axis' size
            return assign("torch.index_select(" + in(0) + ", " + std::to_string(axis) + ", torch.remainder(" + in(1) +
                          ".reshape([-1]).to(4), " + in(0) + ".size(" + std::to_string(axis) + "))).reshape(" + in(0) +
                          ".size()[:" + std::to_string(axis) +
                          "] + " + in(1) + ".size() + " + in(0) + ".size()[" + std::to_string(axis) + " + 1:])");
        }
        if (op == "Slice") {
            std::vector<std::int64_t> starts, ends, axes, steps;
            std::vector<std::string> startExprs, endExprs; // computed bounds (a dynamic export)
            if (m_opset >= 10) {
                axes = constantInts(node, 3);
                steps = constantInts(node, 4);
                for (int input : {1, 2}) {
                    auto& known = input == 1 ? starts : ends;
                    auto& computed = input == 1 ? startExprs : endExprs;
                    if (constant(node.input(input))) {
                        known = constantInts(node, input);
                        continue;
                    }
                    const auto shape = staticShape(node.input(input));
                    if (!shape || shape->size() != 1)
                        throw Error(ErrorKind::Input, where(node) + ": computed slice bounds of unknown length");
                    for (std::int64_t i = 0; i < (*shape)[0]; ++i) {
                        computed.push_back("int(" + in(input) + "[" + std::to_string(i) + "])");
                        known.push_back(0);
                    }
                }
            } else {
                starts = ints(node, "starts");
                ends = ints(node, "ends");
                axes = ints(node, "axes");
            }
            if (axes.empty())
                for (std::size_t i = 0; i < starts.size(); ++i)
                    axes.push_back(static_cast<std::int64_t>(i));
            std::string e = in(0);
            for (std::size_t i = 0; i < starts.size(); ++i) {
                const std::int64_t step = i < steps.size() ? steps[i] : 1;
                if (step != 1)
                    throw Error(ErrorKind::Input, where(node) + ": slices with step " + std::to_string(step) +
                                                      " are not imported");
                const auto bound = [](std::int64_t v) {
                    return v >= (std::int64_t{1} << 62) || v <= -(std::int64_t{1} << 62) ? std::string("None")
                                                                                         : std::to_string(v);
                };
                e = "torch.slice(" + e + ", " + std::to_string(axes[i]) + ", " +
                    (startExprs.empty() ? bound(starts[i]) : startExprs[i]) + ", " +
                    (endExprs.empty() ? bound(ends[i]) : endExprs[i]) + ", 1)";
            }
            return assign(e);
        }
        throw Error(ErrorKind::Input, where(node) + ": not imported");
    }

    // A quantized constant's integers as float, ONNX's (q - zero point) * scale, with a scale
    // (and zero point) per tensor, or per slice along `axis` (negative: from the end).
    static at::Tensor dequantizeConstant(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& zeroPoint,
                                         std::int64_t axis) {
        std::vector<std::int64_t> shape(static_cast<std::size_t>(q.dim()), 1);
        at::Tensor s = scale.to(at::kFloat), zp = zeroPoint.to(at::kFloat);
        if (s.numel() > 1) {
            shape[static_cast<std::size_t>(axis < 0 ? axis + q.dim() : axis)] = -1;
            s = s.reshape(shape);
            if (zp.numel() > 1)
                zp = zp.reshape(shape);
        }
        return ((q.to(at::kFloat) - zp) * s).contiguous();
    }

    // The QOperator form, simulated as the QDQ form is: the inputs dequantized by ONNX's
    // formula, the convolution or matrix product in float (weights dequantized at import;
    // QLinearConv's int32 bias times input scale times weight scale), the result quantized
    // with round half to even and saturation into the output zero point's type.
    // QLinearAdd and QLinearGlobalAveragePool (ONNX Runtime's) the same way.
    std::string qlinear(const NodeProto& node) {
        const std::string& op = node.op_type();
        const bool conv = op == "QLinearConv", pool = op == "QLinearGlobalAveragePool";
        // where the output's scale and zero point are: (x, s, zp, [w, s, zp,] y_s, y_zp)
        const int outScale = pool ? 3 : 6, outZeroPoint = outScale + 1;
        for (int i = 1; i <= outZeroPoint && i < node.input_size(); ++i)
            if (i != 3 && !node.input(i).empty())
                (void)constantTensor(node, i); // scales and zero points must be constants
        const at::Tensor outZero = node.input_size() > outZeroPoint && !node.input(outZeroPoint).empty()
                                       ? constantTensor(node, outZeroPoint)
                                       : at::zeros({}, at::kByte);
        if (outZero.scalar_type() != at::kByte && outZero.scalar_type() != at::kChar)
            throw Error(ErrorKind::Input, where(node) + ": only 8-bit quantization (uint8, int8) is imported");
        if (constantTensor(node, 1).numel() != 1 || constantTensor(node, outScale).numel() != 1)
            throw Error(ErrorKind::Input, where(node) + ": per-axis input or output scales are not imported");
        const auto in = [&](int i) { return value(node.input(i)); };
        const auto zeroPointOf = [&](int i) {
            return node.input_size() > i && !node.input(i).empty() ? in(i) + ".to(6)" : std::string("0.0");
        };
        const auto dequantized = [&](int q, int scale, int zeroPoint) {
            return dequantizeFormula(in(q), in(scale), zeroPointOf(zeroPoint));
        };
        const std::string a = dequantized(0, 1, 2);
        std::string y;
        if (pool) {
            if (intAttr(node, "channels_last", 0) != 0)
                throw Error(ErrorKind::Input, where(node) + ": channels_last is not imported");
            y = "torch.mean(" + a + ", [2, 3], True)";
        } else if (op == "QLinearAdd") {
            if (constantTensor(node, 4).numel() != 1)
                throw Error(ErrorKind::Input, where(node) + ": per-axis input scales are not imported");
            y = "(" + a + " + " + dequantized(3, 4, 5) + ")";
        } else if (conv) {
            const at::Tensor wq = constantTensor(node, 3), ws = constantTensor(node, 4);
            if (wq.dim() != 4)
                throw Error(ErrorKind::Input, where(node) + ": only 2-D convolutions are imported");
            std::vector<std::pair<std::string, at::Tensor>> tensors = {
                {"weight", dequantizeConstant(wq, ws, constantTensor(node, 5), 0)}};
            if (node.input_size() > 8 && !node.input(8).empty())
                tensors.push_back({"bias", (constantTensor(node, 8).to(at::kDouble) *
                                            (constantTensor(node, 1).to(at::kDouble) * ws.to(at::kDouble)))
                                               .to(at::kFloat)
                                               .reshape({-1})});
            y = conv2d(node, a, owner(node, tensors), tensors.size() > 1, wq);
        } else {
            std::string b;
            if (const auto bq = constant(node.input(3))) { // weights: dequantized once, per column when so given
                m_initializers[node.output(0) + "#b"] = dequantizeConstant(*bq, constantTensor(node, 4),
                                                                           constantTensor(node, 5), -1);
                b = value(node.output(0) + "#b");
            } else {
                if (constantTensor(node, 4).numel() != 1)
                    throw Error(ErrorKind::Input, where(node) + ": per-axis scales on a computed input");
                b = dequantized(3, 4, 5);
            }
            y = "torch.matmul(" + a + ", " + b + ")";
        }
        return quantizeFormula(y, in(outScale), zeroPointOf(outZeroPoint), outZero.scalar_type() == at::kChar);
    }

    // ONNX's QuantizeLinear, y = saturate(round_half_even(x / s) + zp), into uint8 or int8,
    // and DequantizeLinear, (q - zp) * s, as TorchScript expressions (zp already float).
    static std::string quantizeFormula(const std::string& x, const std::string& scale, const std::string& zeroPoint,
                                       bool isSigned) {
        // in place after the division: the same numbers with one fresh tensor instead of four
        return "torch.clamp_(torch.round_(" + x + " / " + scale + ").add_(" + zeroPoint + "), " +
               (isSigned ? "-128.0, 127.0" : "0.0, 255.0") + ").to(" + (isSigned ? "1" : "0") + ")";
    }
    static std::string dequantizeFormula(const std::string& q, const std::string& scale,
                                         const std::string& zeroPoint) {
        return q + ".to(6).sub_(" + zeroPoint + ").mul_(" + scale + ")";
    }

    // A 2-D convolution of `x` with the weight (and bias) of the submodule `self`, ONNX's
    // strides, pads (SAME worked out with the weight's kernel), dilations and groups.
    std::string conv2d(const NodeProto& node, const std::string& x, const std::string& self, bool bias,
                       const at::Tensor& weight) {
        const auto [padded, pad] = pads(node, x, 0.0, {}, {weight.size(2), weight.size(3)});
        return "torch.conv2d(" + padded + ", " + self + ".weight, " + (bias ? self + ".bias" : std::string("None")) +
               ", " + intList(ints(node, "strides", {1, 1})) + ", " + intList(pad) + ", " +
               intList(ints(node, "dilations", {1, 1})) + ", " + std::to_string(intAttr(node, "group", 1)) + ")";
    }

    // ---- INT8 kernels (docs/onnx.md, "INT8 kernels") ----
    // Q -> DQ -> Conv/Gemm/MatMul(DQ(int8 weights, zero point 0)) [-> Relu] -> Q runs as
    // quantized::conv2d[_relu] / quantized::linear[_relu] on a quantized tensor, and so do
    // QLinearConv and QLinearMatMul with such weights; MaxPool between a DQ and Qs of the same
    // range runs on the quantized tensor (exactly ONNX's result), Add of two DQs [-> Relu] -> Q
    // as quantized::add[_relu]. A kernel's result stays a quantized variable; the 8-bit tensor
    // ONNX names is made from it (int_repr) only if a node reads it as such.

    struct QParams {
        double scale = 1;
        std::int64_t zeroPoint = 0; // as ONNX has it (int8: -128..127)
        bool isSigned = false;
        bool operator==(const QParams& o) const {
            return scale == o.scale && zeroPoint == o.zeroPoint && isSigned == o.isSigned;
        }
        // LibTorch's kernels take quint8: int8 levels shifted by 128 hold the same values
        std::int64_t unsignedZeroPoint() const { return isSigned ? zeroPoint + 128 : zeroPoint; }
    };
    struct Dequantized { // a DequantizeLinear of an 8-bit activation, per tensor
        std::string q;
        QParams p;
    };
    struct Requantized { // every reader of a layer's output (or of the Relu after it) a Q
        std::vector<const NodeProto*> quantizers;
        QParams p;
        const NodeProto* relu = nullptr;
        // or a Clip read by a Q alone (7-bit activations): the kernel's result clamped to it
        std::vector<const NodeProto*> clips;
        std::optional<std::pair<double, double>> clamp;
        std::int64_t top = 255; // the highest level the result can hold (quint8 form)
    };

    bool kernelsOn() const { return g_onnxInt8 != OnnxInt8::Simulated && m_target == &m_module; }

    static bool isOnnxOp(const NodeProto& node, const char* op) {
        return defaultDomain(node.domain()) && node.op_type() == op;
    }
    const NodeProto* producer(const std::string& v, const char* op) const {
        const auto it = m_producer.find(v);
        return it != m_producer.end() && isOnnxOp(*it->second, op) ? it->second : nullptr;
    }

    // A constant per-tensor scale (input `s`) and 8-bit zero point (input `z`, absent: uint8 0).
    std::optional<QParams> perTensor(const NodeProto& node, int s, int z) const {
        const auto scale = node.input_size() > s ? constant(node.input(s)) : std::nullopt;
        if (!scale || scale->numel() != 1)
            return std::nullopt;
        QParams p;
        p.scale = scale->to(at::kDouble).item<double>();
        if (node.input_size() > z && !node.input(z).empty()) {
            const auto zp = constant(node.input(z));
            if (!zp || zp->numel() != 1 || (zp->scalar_type() != at::kByte && zp->scalar_type() != at::kChar))
                return std::nullopt;
            p.isSigned = zp->scalar_type() == at::kChar;
            p.zeroPoint = zp->to(at::kLong).item<std::int64_t>();
        }
        if (!(p.scale > 0) || !std::isfinite(p.scale))
            return std::nullopt;
        return p;
    }

    std::optional<Dequantized> dequantizedActivation(const std::string& v) const {
        const NodeProto* dq = producer(v, "DequantizeLinear");
        if (!dq || constant(dq->input(0)))
            return std::nullopt;
        const auto p = perTensor(*dq, 1, 2);
        if (!p)
            return std::nullopt;
        return Dequantized{dq->input(0), *p};
    }

    // Every reader of `v` a QuantizeLinear with one per-tensor range (`v` no graph output).
    std::optional<Requantized> requantized(const std::string& v) const {
        const auto it = m_consumers.find(v);
        if (m_graphOutputs.count(v) || it == m_consumers.end() || it->second.empty())
            return std::nullopt;
        Requantized r;
        for (const NodeProto* c : it->second) {
            std::optional<std::pair<double, double>> clamp;
            if (isOnnxOp(*c, "Clip") && c->input(0) == v) { // Clip(v, lo, hi) -> Q
                const auto lo = clipBound(*c, 1), hi = clipBound(*c, 2);
                const auto next = m_consumers.find(c->output(0));
                if (!lo || !hi || m_graphOutputs.count(c->output(0)) || next == m_consumers.end() ||
                    next->second.size() != 1)
                    return std::nullopt;
                clamp = std::make_pair(*lo, *hi);
                r.clips.push_back(c);
                c = next->second.front();
                if (c->input(0) != r.clips.back()->output(0))
                    return std::nullopt;
            } else if (c->input(0) != v) {
                return std::nullopt;
            }
            const auto p = isOnnxOp(*c, "QuantizeLinear") ? perTensor(*c, 1, 2) : std::nullopt;
            if (!p || (!r.quantizers.empty() && (!(r.p == *p) || r.clamp != clamp)))
                return std::nullopt;
            r.quantizers.push_back(c);
            r.p = *p;
            r.clamp = clamp;
        }
        if (r.clamp) // the levels the clamp leaves (ONNX: Q of the clipped value)
            r.top = topLevel(r.clamp->second, r.p);
        return r;
    }
    // The level (quint8 form) QuantizeLinear with range `p` gives the value `high`, as ONNX
    // rounds it: the highest a Q of a Clip to `high` can hold.
    static std::int64_t topLevel(double high, const QParams& p) {
        const float level = std::nearbyint(static_cast<float>(high) / static_cast<float>(p.scale)) +
                            static_cast<float>(p.unsignedZeroPoint());
        return static_cast<std::int64_t>(std::clamp(level, 0.0f, 255.0f));
    }
    // A Clip's bound (input 1: min, 2: max; before opset 11 attributes), or nothing when it
    // is not a constant. An absent bound is an infinite one.
    std::optional<double> clipBound(const NodeProto& clip, int i) const {
        const double none = i == 1 ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
        if (m_opset < 11)
            return floatAttr(clip, i == 1 ? "min" : "max", none);
        if (clip.input_size() <= i || clip.input(i).empty())
            return none;
        const auto t = constant(clip.input(i));
        if (!t || t->numel() != 1)
            return std::nullopt;
        return t->to(at::kDouble).item<double>();
    }
    // ... or the Relu that is all `v` feeds.
    std::optional<Requantized> outputQuantizers(const std::string& v) const {
        if (auto direct = requantized(v))
            return direct;
        const auto it = m_consumers.find(v);
        if (m_graphOutputs.count(v) || it == m_consumers.end() || it->second.size() != 1 ||
            !isOnnxOp(*it->second.front(), "Relu"))
            return std::nullopt;
        auto after = requantized(it->second.front()->output(0));
        if (after)
            after->relu = it->second.front();
        return after;
    }

    // Whether a kernel gives ONNX's numbers on this input, up to the requantization's
    // rounding: VNNI sums u8 x s8 products exactly; without it oneDNN sums pairs in 16 bits,
    // exact only while the input's levels stay within 0..127 (a QuantizeLinear of a Clip
    // whose top maps to 127 or less, as quantize --out writes 7-bit activations).
    bool exactOn(const Dequantized& x) const {
        if (g_onnxInt8 == OnnxInt8::Kernels || m_vnni)
            return true;
        const NodeProto* q = x.p.isSigned ? nullptr : producer(x.q, "QuantizeLinear");
        if (const auto k = q ? m_kernelQ.find(q) : m_kernelQ.end(); k != m_kernelQ.end())
            return k->second.second.top <= 127; // a kernel's result, clamped to 7 bits
        const auto qp = q ? perTensor(*q, 1, 2) : std::nullopt;
        const NodeProto* clip = qp && *qp == x.p ? producer(q->input(0), "Clip") : nullptr;
        if (!clip || m_opset < 11 || clip->input_size() < 3 || clip->input(2).empty())
            return false;
        const auto hi = clipBound(*clip, 2);
        return hi && topLevel(*hi, x.p) <= 127;
    }

    // Inputs q, s, z of `node` as int8 weights LibTorch's kernels take: an int8 constant, zero
    // points 0, one scale or one per slice along `axis` (negative: from the end). `rows`: the
    // slices are the output rows (a Conv's dim 0), else columns, transposed to rows.
    std::optional<at::Tensor> int8Weights(const NodeProto& node, int q, int s, int z, bool rows,
                                          std::int64_t axis) const {
        const auto qt = node.input_size() > q ? constant(node.input(q)) : std::nullopt;
        const auto st = node.input_size() > s ? constant(node.input(s)) : std::nullopt;
        if (!qt || !st || qt->scalar_type() != at::kChar || (!rows && qt->dim() != 2))
            return std::nullopt;
        if (node.input_size() > z && !node.input(z).empty()) {
            const auto zt = constant(node.input(z));
            if (!zt || zt->ne(0).any().item<bool>())
                return std::nullopt;
        }
        const at::Tensor w = rows ? qt->contiguous() : qt->t().contiguous();
        const at::Tensor scales = st->to(at::kDouble).reshape({-1});
        if ((scales <= 0).any().item<bool>())
            return std::nullopt;
        if (scales.numel() == 1)
            return at::_make_per_tensor_quantized_tensor(w, scales.item<double>(), 0);
        if (axis < 0)
            axis += qt->dim();
        if (axis != (rows ? 0 : 1) || scales.numel() != w.size(0))
            return std::nullopt;
        return at::_make_per_channel_quantized_tensor(w, scales, at::zeros({w.size(0)}, at::kLong), 0);
    }
    std::optional<at::Tensor> dequantizedWeights(const std::string& v, bool rows) const {
        const NodeProto* dq = producer(v, "DequantizeLinear");
        return dq ? int8Weights(*dq, 0, 1, 2, rows, intAttr(*dq, "axis", 1)) : std::nullopt;
    }

    // The quantized tensor (quint8) of the 8-bit tensor `q` with range `p`: the kernel's own
    // variable when a kernel made `q`, else made once from the integers.
    static std::string quantizedKey(const std::string& q, const QParams& p) {
        return q + "|" + num(p.scale) + "|" + std::to_string(p.unsignedZeroPoint());
    }
    std::string quantizedInput(const std::string& q, const QParams& p) {
        const std::string key = quantizedKey(q, p);
        if (const auto it = m_quantizedVar.find(key); it != m_quantizedVar.end())
            return it->second;
        std::string ints = value(q);
        if (p.isSigned)
            ints = "(" + ints + ".to(3) + 128).to(0)";
        const std::string var = identifier(q, "qx" + std::to_string(m_quantizedVar.size()) + "_");
        m_preamble += "    " + var + " = torch._make_per_tensor_quantized_tensor(" + ints + ", " + num(p.scale) +
                      ", " + std::to_string(p.unsignedZeroPoint()) + ")\n";
        m_quantizedVar[key] = var;
        return var;
    }
    // `var` (quantized, range `p`) is what 8-bit value `out` holds: readers that want it
    // quantized take `var`; `out` itself is made on first use.
    void produced(const std::string& out, const std::string& var, const QParams& p) {
        m_quantizedVar[quantizedKey(out, p)] = var;
        const std::string name = identifier(out, "v_");
        m_pending[out] = [name, var, p] {
            return name + " = " +
                   (p.isSigned ? "(" + var + ".int_repr().to(3) - 128).to(1)" : var + ".int_repr()");
        };
    }
    // The statement of a kernel whose result the Q nodes of `out` give (a Relu fused).
    std::string kernelResult(const NodeProto& node, const std::string& call, const Requantized& out) {
        const std::string var = identifier(node.output(0), "q_");
        for (const NodeProto* q : out.quantizers)
            m_kernelQ[q] = {var, out};
        for (const NodeProto* clip : out.clips)
            m_absorbed.insert(clip);
        if (out.relu)
            m_absorbed.insert(out.relu);
        if (!out.clamp)
            return var + " = " + call;
        // Q(Clip(x)) = the levels of Q(x) clamped to those of the bounds (Q is monotonic); an
        // infinite bound is none (LibTorch would quantize it)
        return var + " = torch.clamp(" + call + ", " + boundSource(out.clamp->first) + ", " +
               boundSource(out.clamp->second) + ")";
    }

    // Conv, Gemm, MatMul in the QDQ pattern; QLinearConv, QLinearMatMul with int8 weights.
    std::optional<std::string> layerKernel(const NodeProto& node) {
        if (!kernelsOn())
            return std::nullopt;
        const std::string& op = node.op_type();
        const bool qlinear = op == "QLinearConv" || op == "QLinearMatMul";
        const bool conv = op == "Conv" || op == "QLinearConv";
        std::optional<Dequantized> x;
        std::optional<Requantized> out;
        std::optional<at::Tensor> w;
        c10::IValue bias;
        if (qlinear) {
            const auto in = perTensor(node, 1, 2);
            const auto y = perTensor(node, 6, 7);
            if (!in || !y || constant(node.input(0)) || (!conv && rankOf(node.input(0)).value_or(0) != 2))
                return std::nullopt;
            x = Dequantized{node.input(0), *in};
            out = Requantized();
            out->p = *y;
            w = int8Weights(node, 3, 4, 5, conv, conv ? 0 : 1); // QLinearConv: per output channel; MatMul: column
            if (w && conv && node.input_size() > 8 && !node.input(8).empty()) { // int32 bias, scale s_x * s_w
                const auto b = constant(node.input(8));
                if (!b)
                    return std::nullopt;
                const at::Tensor ws = constantTensor(node, 4).to(at::kDouble).reshape({-1});
                bias = (b->to(at::kDouble).reshape({-1}) * (in->scale * ws)).to(at::kFloat).contiguous();
            }
        } else {
            x = dequantizedActivation(node.input(0));
            out = outputQuantizers(node.output(0));
            const bool transB = op == "Gemm" && intAttr(node, "transB", 0) != 0;
            w = dequantizedWeights(node.input(1), conv || transB);
            if (op == "Gemm" && (intAttr(node, "transA", 0) != 0 || floatAttr(node, "alpha", 1.0) != 1.0 ||
                                 floatAttr(node, "beta", 1.0) != 1.0 || rankOf(node.input(0)).value_or(0) != 2))
                return std::nullopt;
            if (op == "MatMul" && rankOf(node.input(0)).value_or(0) != 2)
                return std::nullopt;
            if (op != "MatMul" && node.input_size() > 2 && !node.input(2).empty()) {
                const auto b = constant(node.input(2));
                if (!b || !w || b->numel() != w->size(0))
                    return std::nullopt;
                bias = b->to(at::kFloat).reshape({-1}).contiguous();
            }
        }
        if (!x || !out || !w || !exactOn(*x) || (conv && w->dim() != 4))
            return std::nullopt;
        c10::IValue packed;
        std::string call;
        try {
            if (conv) {
                const auto [padded, pad] = pads(node, "x", 0.0, {}, {w->size(2), w->size(3)});
                if (padded != "x")
                    return std::nullopt; // uneven pads: simulated
                packed = ops::callOp("quantized::conv2d_prepack",
                                {*w, bias, ints(node, "strides", {1, 1}), pad, ints(node, "dilations", {1, 1}),
                                 intAttr(node, "group", 1)});
                call = out->relu ? "quantized.conv2d_relu(" : "quantized.conv2d(";
            } else {
                packed = ops::callOp("quantized::linear_prepack", {*w, bias});
                call = out->relu ? "quantized.linear_relu(" : "quantized.linear(";
            }
        } catch (const c10::Error&) {
            return std::nullopt; // a layout this engine's kernels refuse: simulated
        }
        call += quantizedInput(x->q, x->p) + ", " + owner(node, {}, packed) + "._packed_params, " +
                num(out->p.scale) + ", " + std::to_string(out->p.unsignedZeroPoint()) + ")";
        if (!qlinear)
            return kernelResult(node, call, *out);
        const std::string var = identifier(node.output(0), "q_");
        produced(node.output(0), var, out->p);
        return var + " = " + call;
    }

    // MaxPool from a DQ to Qs of the same range: max pooling of the quantized tensor, which
    // is exactly ONNX's (dequantization is monotonic, Q(DQ(q)) = q).
    std::optional<std::string> maxPoolKernel(const NodeProto& node, const std::vector<std::int64_t>& kernel) {
        if (!kernelsOn())
            return std::nullopt;
        const auto x = dequantizedActivation(node.input(0));
        const auto out = requantized(node.output(0));
        if (!x || !out || !(out->p == x->p))
            return std::nullopt;
        const auto [padded, pad] = pads(node, "x", 0.0, kernel);
        if (padded != "x")
            return std::nullopt;
        return kernelResult(node,
                            "torch.max_pool2d(" + quantizedInput(x->q, x->p) + ", " + intList(kernel) + ", " +
                                intList(ints(node, "strides", {1, 1})) + ", " + intList(pad) + ", " +
                                intList(ints(node, "dilations", {1, 1})) + ", " +
                                (intAttr(node, "ceil_mode", 0) ? "True" : "False") + ")",
                            *out);
    }

    // Add of two DQs [-> Relu] -> Q of equal shapes: quantized::add[_relu]. LibTorch adds the
    // dequantized values in float and requantizes, as ONNX does; its rounding (by the
    // scale's reciprocal) may differ by one level.
    std::optional<std::string> addKernel(const NodeProto& node) {
        if (!kernelsOn())
            return std::nullopt;
        const auto a = dequantizedActivation(node.input(0)), b = dequantizedActivation(node.input(1));
        const auto out = outputQuantizers(node.output(0));
        if (!a || !b || !out || !sameShape(node.input(0), node.input(1)))
            return std::nullopt;
        return kernelResult(node,
                            std::string(out->relu ? "quantized.add_relu(" : "quantized.add(") +
                                quantizedInput(a->q, a->p) + ", " + quantizedInput(b->q, b->p) + ", " +
                                num(out->p.scale) + ", " + std::to_string(out->p.unsignedZeroPoint()) + ")",
                            *out);
    }
    bool sameShape(const std::string& a, const std::string& b) const {
        const auto ia = m_valueInfo.find(a), ib = m_valueInfo.find(b);
        if (ia == m_valueInfo.end() || ib == m_valueInfo.end() || !ia->second->type().tensor_type().has_shape() ||
            !ib->second->type().tensor_type().has_shape())
            return false;
        const auto& da = ia->second->type().tensor_type().shape().dim();
        const auto& db = ib->second->type().tensor_type().shape().dim();
        if (da.size() != db.size())
            return false;
        for (int i = 0; i < da.size(); ++i) {
            const bool values = da[i].has_dim_value() && db[i].has_dim_value() && da[i].dim_value() == db[i].dim_value();
            const bool params = da[i].has_dim_param() && db[i].has_dim_param() && da[i].dim_param() == db[i].dim_param();
            if (!values && !params)
                return false;
        }
        return true;
    }

    // Split: one statement per output, each a part of the list torch's split gives.
    std::string split(const NodeProto& node) {
        const std::int64_t axis = intAttr(node, "axis", 0);
        const auto sizes = m_opset < 13 ? ints(node, "split") : constantInts(node, 1);
        const std::string parts = identifier(node.output(0), "v_") + "_parts";
        std::string s = parts + " = ";
        if (!sizes.empty()) {
            if (static_cast<int>(sizes.size()) != node.output_size())
                throw Error(ErrorKind::Input, where(node) + ": " + std::to_string(sizes.size()) + " split sizes for " +
                                                  std::to_string(node.output_size()) + " outputs");
            s += "torch.split_with_sizes(" + value(node.input(0)) + ", " + intList(sizes) + ", " +
                 std::to_string(axis) + ")";
        } else { // equal parts (the last one smaller when the axis does not divide: opset 18)
            s += "torch.chunk(" + value(node.input(0)) + ", " + std::to_string(node.output_size()) + ", " +
                 std::to_string(axis) + ")";
        }
        for (int i = 0; i < node.output_size(); ++i)
            if (!node.output(i).empty())
                s += "\n    " + identifier(node.output(i), "v_") + " = " + parts + "[" + std::to_string(i) + "]";
        return s;
    }

    // Pad: constant (any axes, negative pads crop), reflect and edge (the last two axes of a
    // 3-D or 4-D tensor).
    std::string pad(const NodeProto& node, const std::string& x) {
        const std::string mode = stringAttr(node, "mode", "constant");
        std::vector<std::int64_t> p, axes;
        double fill = 0.0;
        if (m_opset < 11) {
            p = ints(node, "pads");
            fill = floatAttr(node, "value", 0.0);
        } else {
            p = constantInts(node, 1);
            if (node.input_size() > 2 && !node.input(2).empty())
                fill = constantTensor(node, 2).item<double>();
            axes = constantInts(node, 3);
        }
        if (p.size() % 2 != 0 || (!axes.empty() && p.size() != 2 * axes.size()))
            throw Error(ErrorKind::Input, where(node) + ": " + std::to_string(p.size()) + " pads do not match the axes");
        const auto n = static_cast<std::int64_t>(p.size() / 2);
        std::int64_t rank = n;
        if (!axes.empty()) {
            const auto r = rankOf(node.input(0));
            if (!r)
                throw Error(ErrorKind::Input, where(node) + ": pads over some axes of an input of unknown rank");
            rank = *r;
        }
        std::vector<std::int64_t> begin(static_cast<std::size_t>(rank), 0), end(begin);
        for (std::int64_t i = 0; i < n; ++i) {
            std::int64_t axis = axes.empty() ? i : axes[static_cast<std::size_t>(i)];
            if (axis < 0)
                axis += rank;
            if (axis < 0 || axis >= rank)
                throw Error(ErrorKind::Input, where(node) + ": pad axis out of range");
            begin[static_cast<std::size_t>(axis)] = p[static_cast<std::size_t>(i)];
            end[static_cast<std::size_t>(axis)] = p[static_cast<std::size_t>(i + n)];
        }
        std::vector<std::int64_t> torchPads; // last axis first, (begin, end) each
        for (std::int64_t d = rank - 1; d >= 0; --d) {
            torchPads.push_back(begin[static_cast<std::size_t>(d)]);
            torchPads.push_back(end[static_cast<std::size_t>(d)]);
        }
        if (mode == "constant")
            return "torch.constant_pad_nd(" + x + ", " + intList(torchPads) + ", " + num(fill) + ")";
        if (mode != "reflect" && mode != "edge")
            throw Error(ErrorKind::Input, where(node) + ": pad mode " + mode + " is not imported");
        requireFloat(node, 0); // torch's reflection and replication pads take floating point only
        bool lastTwo = rank == 3 || rank == 4;
        for (std::int64_t d = 0; d < rank; ++d) {
            const auto k = static_cast<std::size_t>(d);
            lastTwo = lastTwo && begin[k] >= 0 && end[k] >= 0 && (d >= rank - 2 || (begin[k] == 0 && end[k] == 0));
        }
        if (!lastTwo)
            throw Error(ErrorKind::Input, where(node) + ": " + mode + " padding is imported on the last two axes of "
                                                                     "a 3-D or 4-D tensor only, without negative pads");
        torchPads.resize(4);
        return std::string(mode == "reflect" ? "torch.reflection_pad2d(" : "torch.replication_pad2d(") + x + ", " +
               intList(torchPads) + ")";
    }

    // ConvTranspose, 2-D. Symmetric pads: torch's conv_transpose2d as it is. Otherwise
    // (asymmetric pads, output_shape, auto_pad SAME, output padding torch refuses) the full
    // output (no padding) cropped or extended by ONNX's pads, then the bias over all of it.
    std::string convTranspose(const NodeProto& node, const std::string& x) {
        const at::Tensor weight = constantTensor(node, 1);
        if (weight.dim() != 4)
            throw Error(ErrorKind::Input, where(node) + ": only 2-D transposed convolutions are imported");
        std::vector<std::pair<std::string, at::Tensor>> tensors = {{"weight", weight}};
        const bool bias = node.input_size() > 2 && !node.input(2).empty();
        if (bias)
            tensors.push_back({"bias", constantTensor(node, 2)});
        const std::string self = owner(node, tensors);
        const auto stride = ints(node, "strides", {1, 1}), dilation = ints(node, "dilations", {1, 1});
        auto outputPadding = ints(node, "output_padding", {0, 0});
        auto p = ints(node, "pads", {0, 0, 0, 0});
        const auto outputShape = ints(node, "output_shape");
        const std::string autoPad = stringAttr(node, "auto_pad", "NOTSET");
        const std::int64_t group = intAttr(node, "group", 1);
        if (stride.size() != 2 || dilation.size() != 2 || outputPadding.size() != 2 || p.size() != 4)
            throw Error(ErrorKind::Input, where(node) + ": only 2-D strides, dilations and pads are imported");
        const std::int64_t kernel[2] = {weight.size(2), weight.size(3)};
        if (!outputShape.empty() || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
            const auto shape = staticShape(node.input(0));
            if (!shape || shape->size() != 4)
                throw Error(ErrorKind::Input, where(node) + ": output_shape or auto_pad SAME needs the input's size "
                                                            "known at import");
            for (std::size_t i = 0; i < 2; ++i) {
                const std::int64_t in = (*shape)[2 + i];
                const std::int64_t out = !outputShape.empty() ? outputShape[outputShape.size() - 2 + i] : in * stride[i];
                const std::int64_t total =
                    stride[i] * (in - 1) + outputPadding[i] + (kernel[i] - 1) * dilation[i] + 1 - out;
                const std::int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2); // floor
                const bool upper = autoPad == "SAME_UPPER";
                p[i] = upper ? half : total - half;
                p[i + 2] = upper ? total - half : half;
            }
        } else if (autoPad != "NOTSET" && autoPad != "VALID") {
            throw Error(ErrorKind::Input, where(node) + ": auto_pad " + autoPad + " is not imported");
        }
        const bool plain = p[0] == p[2] && p[1] == p[3] && p[0] >= 0 && p[1] >= 0 &&
                           outputPadding[0] < std::max(stride[0], dilation[0]) &&
                           outputPadding[1] < std::max(stride[1], dilation[1]);
        const std::string b = bias ? self + ".bias" : std::string("None");
        if (plain)
            return "torch.conv_transpose2d(" + x + ", " + self + ".weight, " + b + ", " + intList(stride) + ", " +
                   intList({p[0], p[1]}) + ", " + intList(outputPadding) + ", " + std::to_string(group) + ", " +
                   intList(dilation) + ")";
        std::string full = "torch.conv_transpose2d(" + x + ", " + self + ".weight, None, " + intList(stride) +
                           ", [0, 0], [0, 0], " + std::to_string(group) + ", " + intList(dilation) + ")";
        full = "torch.constant_pad_nd(" + full + ", " +
               intList({-p[1], outputPadding[1] - p[3], -p[0], outputPadding[0] - p[2]}) + ", 0.0)";
        return bias ? full + " + " + b + ".reshape([1, -1, 1, 1])" : full;
    }

    at::Tensor constantTensor(const NodeProto& node, int input) const {
        const auto t = node.input_size() > input ? constant(node.input(input)) : std::nullopt;
        if (!t)
            throw Error(ErrorKind::Input, where(node) + ": input " + std::to_string(input) +
                                              " must be a constant (an initializer) to be imported");
        return *t;
    }

    std::string joinInputs(const NodeProto& node) {
        std::string s;
        for (int i = 0; i < node.input_size(); ++i)
            s += (i ? ", " : "") + value(node.input(i));
        return s;
    }

    std::string m_path;
    std::int64_t m_opset = 13;
    std::map<std::string, at::Tensor> m_initializers;
    std::map<std::string, const onnx::ValueInfoProto*> m_valueInfo;
    std::map<std::string, int> m_owners;
    std::map<std::string, std::string> m_layerOutputs;
    // INT8 kernels: who makes and reads each value, and what the kernels replaced
    std::map<std::string, const NodeProto*> m_producer;
    std::map<std::string, std::vector<const NodeProto*>> m_consumers;
    std::set<std::string> m_graphOutputs;
    std::map<const NodeProto*, std::pair<std::string, Requantized>> m_kernelQ; // Q node -> kernel variable, its Qs
    std::set<const NodeProto*> m_absorbed;                                 // Relu nodes fused into a kernel
    std::map<std::string, std::string> m_quantizedVar;                     // quantizedKey -> variable
    std::map<std::string, std::function<std::string()>> m_pending;         // statements made on first use
    std::string m_preamble;                                                // made for the node being translated
    bool m_lazy = false;
    bool m_helpers = false; // the source calls kShapeHelpers' methods
    bool m_vnni = ops::cpuHasVnni();
    int m_moduleCount = 0;
    torch::jit::Module m_module;
    torch::jit::Module* m_target = &m_module; // where value() puts buffers (folding: a scratch module)
};

} // namespace

namespace {
// Errors of LibTorch or libonnx that no check above caught still name the file.
template <typename Fn>
auto guarded(const std::string& path, Fn fn) -> decltype(fn()) {
    try {
        return fn();
    } catch (const Error&) {
        throw;
    } catch (const c10::Error& e) {
        throw Error(ErrorKind::Input, path + ": cannot import the ONNX model (" +
                                          std::string(e.what_without_backtrace()).substr(0, 300) + ")");
    } catch (const std::exception& e) {
        throw Error(ErrorKind::Input, path + ": cannot import the ONNX model (" + std::string(e.what()).substr(0, 300) +
                                          ")");
    }
}
} // namespace

torch::jit::Module importOnnx(const std::string& path) {
    return guarded(path, [&] { return Importer(path).run(); });
}

torch::jit::Module importOnnxBytes(const std::string& bytes, const std::string& name) {
    return guarded(name, [&] { return Importer(name).run(bytes); });
}

bool onnxOpImported(const std::string& op) { return Importer::supported(op); }

void setOnnxInt8(OnnxInt8 mode) { g_onnxInt8 = mode; }

namespace {

TensorProto initializer(const std::string& name, TensorProto::DataType type, const at::Tensor& t) {
    TensorProto p;
    p.set_name(name);
    p.set_data_type(type);
    for (const auto d : t.sizes())
        p.add_dims(d);
    const at::Tensor c = t.contiguous();
    p.set_raw_data(std::string(static_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.nbytes())));
    return p;
}

NodeProto makeNode(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                   const std::string& output) {
    NodeProto n;
    n.set_op_type(op);
    n.set_name(name);
    for (const auto& i : inputs)
        n.add_input(i);
    n.add_output(output);
    return n;
}

} // namespace

QdqWritten writeQdqOnnx(const std::string& floatPath, const std::string& outPath, const std::vector<QdqLayer>& layers,
                        bool perChannel, double minWeightScale, const std::string& report) {
    return guarded(floatPath, [&] {
        Importer importer(floatPath);
        importer.run(); // checks the model, and names its layers as the quantizer saw them
        onnx::ModelProto model;
        {
            std::ifstream f(floatPath, std::ios::binary);
            if (!f || !model.ParseFromIstream(&f))
                throw Error(ErrorKind::Input, floatPath + ": cannot read the ONNX model again");
        }
        std::int64_t opset = 1;
        for (const auto& o : model.opset_import())
            if (defaultDomain(o.domain()))
                opset = o.version();
        if (opset < 10)
            throw Error(ErrorKind::Input, floatPath + ": opset " + std::to_string(opset) + " has no QuantizeLinear "
                                                                                          "(opset 10 or later needed)");
        perChannel = perChannel && opset >= 13; // DequantizeLinear's axis came with opset 13
        onnx::GraphProto& graph = *model.mutable_graph();
        std::set<std::string> names; // every tensor name in use, so that new ones do not clash
        for (const auto& n : graph.node()) {
            names.insert(n.input().begin(), n.input().end());
            names.insert(n.output().begin(), n.output().end());
        }
        for (const auto& i : graph.initializer())
            names.insert(i.name());
        for (const auto& i : graph.input())
            names.insert(i.name());
        auto fresh = [&](const std::string& base) {
            std::string name = base;
            for (int k = 1; names.count(name); ++k)
                name = base + "_" + std::to_string(k);
            names.insert(name);
            return name;
        };
        std::map<std::string, int> initializerIndex;
        for (int i = 0; i < graph.initializer_size(); ++i)
            initializerIndex[graph.initializer(i).name()] = i;
        std::map<std::string, std::vector<NodeProto*>> readers;
        std::map<std::string, NodeProto*> producers;
        for (auto& n : *graph.mutable_node()) {
            for (const auto& in : n.input())
                readers[in].push_back(&n);
            for (const auto& out : n.output())
                producers[out] = &n;
        }
        std::map<std::string, std::vector<NodeProto>> before, after; // nodes to put before / after the
                                                                   // node writing this value
        std::vector<NodeProto> front;                                // ... or first of all (graph inputs)
        std::vector<TensorProto> added;
        std::set<std::string> replacedWeights;
        QdqWritten result;
        const auto& outputs = importer.layerOutputs();
        std::vector<NodeProto*> nodes(layers.size(), nullptr);
        for (std::size_t i = 0; i < layers.size(); ++i) {
            const auto out = outputs.find(layers[i].name);
            NodeProto* node = out != outputs.end() && producers.count(out->second) ? producers[out->second] : nullptr;
            if (!node || (node->op_type() != "Conv" && node->op_type() != "Gemm") || node->input_size() < 2 ||
                !initializerIndex.count(node->input(1)))
                result.missing.push_back(layers[i].name);
            else
                nodes[i] = node;
        }
        auto scalar = [&](const std::string& base, double scale, std::int64_t zeroPoint) {
            const std::string s = fresh(base + "_scale"), z = fresh(base + "_zero_point");
            added.push_back(initializer(s, TensorProto::FLOAT, at::tensor(static_cast<float>(scale))));
            added.push_back(initializer(z, TensorProto::UINT8, at::tensor(static_cast<std::uint8_t>(zeroPoint))));
            return std::make_pair(s, z);
        };
        // 7-bit activations: `x` clipped to the range first, as the TorchScript model clamps
        // what it quantizes (QuantizeLinear would saturate at 255); returns what to quantize
        auto clip7 = [&](std::vector<NodeProto>& mine, const std::string& base, const std::string& x, double scale,
                         std::int64_t zeroPoint, int qmax) {
            if (qmax >= 255)
                return x;
            if (opset < 11)
                throw Error(ErrorKind::Input, floatPath + ": 7-bit activations need opset 11 or later (Clip's "
                                                          "inputs); quantize with --reduce-range off");
            const std::string lo = fresh(base + "_min"), hi = fresh(base + "_max"), clipped = fresh(base + "_clipped");
            added.push_back(initializer(lo, TensorProto::FLOAT, at::tensor(static_cast<float>(-zeroPoint * scale))));
            added.push_back(initializer(hi, TensorProto::FLOAT, at::tensor(static_cast<float>((qmax - zeroPoint) * scale))));
            mine.push_back(makeNode("Clip", base + "/Clip", {x, lo, hi}, clipped));
            return clipped;
        };
        // results: the value a layer's node (or the Relu it fused) writes is now written by a
        // DequantizeLinear of its QuantizeLinear with the output range; every reader reads that
        std::map<std::string, std::pair<double, std::int64_t>> requantized; // value -> its range
        std::map<std::string, std::string> renamed;                         // value -> its writer's new output
        for (std::size_t i = 0; i < layers.size(); ++i) {
            const QdqLayer& layer = layers[i];
            NodeProto* writer = nodes[i];
            if (!writer || !(layer.outputScale > 0))
                continue;
            if (layer.fusedRelu) {
                const auto& r = readers[writer->output(0)];
                writer = r.size() == 1 && r.front()->op_type() == "Relu" ? r.front() : nullptr;
                if (!writer)
                    continue; // no Relu right after it here: the result stays float
            }
            const std::string v = writer->output(0);
            const std::string base = nodes[i]->name().empty() ? nodes[i]->output(0) : nodes[i]->name();
            const std::string result32 = fresh(base + "/output_float"), q = fresh(base + "/output_quantized");
            const auto [os, oz] = scalar(base + "/output", layer.outputScale, layer.outputZeroPoint);
            writer->set_output(0, result32);
            std::vector<NodeProto>& mine = after[result32];
            const std::string clipped =
                clip7(mine, base + "/output", result32, layer.outputScale, layer.outputZeroPoint, layer.qmax);
            mine.push_back(makeNode("QuantizeLinear", base + "/output/QuantizeLinear", {clipped, os, oz}, q));
            mine.push_back(makeNode("DequantizeLinear", base + "/output/DequantizeLinear", {q, os, oz}, v));
            requantized[v] = {layer.outputScale, layer.outputZeroPoint};
            renamed[v] = result32;
        }
        // inputs: one Q/DQ pair per value and range, read by the layers quantizing that value
        // with that range and by the Adds of a residual sum (a value an Add or a Relu writes:
        // the TorchScript model adds the quantized tensor); none where the value is already a
        // layer's result with that range
        std::map<std::pair<std::string, std::pair<double, std::int64_t>>, std::string> inputPairs;
        for (std::size_t i = 0; i < layers.size(); ++i) {
            const QdqLayer& layer = layers[i];
            NodeProto* node = nodes[i];
            if (!node)
                continue;
            const std::string base = node->name().empty() ? node->output(0) : node->name();
            // weights: int8, symmetric, per output channel (a Gemm's rows with transB, else columns)
            const auto weightIt = initializerIndex.find(node->input(1));
            const at::Tensor w = toTensor(graph.initializer(weightIt->second), floatPath);
            std::int64_t axis = 0;
            if (node->op_type() == "Gemm") {
                std::int64_t transB = 0;
                for (const auto& a : node->attribute())
                    if (a.name() == "transB")
                        transB = a.i();
                axis = transB ? 0 : 1;
            }
            const at::Tensor qw = ops::quantizeWeight(w, perChannel, axis, minWeightScale);
            const at::Tensor q = qw.int_repr();
            const at::Tensor scale =
                (perChannel ? qw.q_per_channel_scales() : at::tensor(qw.q_scale())).to(at::kFloat).contiguous();
            const std::string wq = fresh(node->input(1) + "_quantized"), ws = fresh(node->input(1) + "_scale"),
                              wz = fresh(node->input(1) + "_zero_point"), wd = fresh(node->input(1) + "_dequantized");
            added.push_back(initializer(wq, TensorProto::INT8, q));
            added.push_back(initializer(ws, TensorProto::FLOAT, scale));
            added.push_back(initializer(wz, TensorProto::INT8, at::zeros(scale.sizes(), at::kChar)));
            NodeProto dqw = makeNode("DequantizeLinear", base + "/weight/DequantizeLinear", {wq, ws, wz}, wd);
            if (perChannel) {
                auto* a = dqw.add_attribute();
                a->set_name("axis");
                a->set_type(AttributeProto::INT);
                a->set_i(axis);
            }
            before[node->output(0)].push_back(dqw);
            replacedWeights.insert(node->input(1));
            node->set_input(1, wd);
            ++result.layers;
            // the input: quantized and dequantized with the calibrated range (7-bit
            // activations: clipped to the range first, as the TorchScript model clamps)
            const std::string x = node->input(0);
            const std::pair<double, std::int64_t> range{layer.inputScale, layer.inputZeroPoint};
            const auto made = requantized.find(x);
            if (made != requantized.end() && made->second == range)
                continue;
            auto& dequantized = inputPairs[{x, range}];
            if (dequantized.empty()) {
                const auto [xs, xz] = scalar(base + "/input", layer.inputScale, layer.inputZeroPoint);
                std::vector<NodeProto>& mine = renamed.count(x) ? after[renamed[x]] : producers.count(x) ? after[x] : front;
                const std::string clipped =
                    clip7(mine, base + "/input", x, layer.inputScale, layer.inputZeroPoint, layer.qmax);
                const std::string xq = fresh(base + "/input_quantized");
                dequantized = fresh(base + "/input_dequantized");
                mine.push_back(makeNode("QuantizeLinear", base + "/input/QuantizeLinear", {clipped, xs, xz}, xq));
                mine.push_back(makeNode("DequantizeLinear", base + "/input/DequantizeLinear", {xq, xs, xz}, dequantized));
                const auto p = producers.find(x);
                if (p != producers.end() && !renamed.count(x) &&
                    (p->second->op_type() == "Add" || p->second->op_type() == "Relu" ||
                     p->second->op_type() == "MaxPool"))
                    for (NodeProto* r : readers[x])
                        if (r->op_type() == "Add")
                            for (int k = 0; k < r->input_size(); ++k)
                                if (r->input(k) == x)
                                    r->set_input(k, dequantized);
            }
            node->set_input(0, dequantized);
        }
        // the nodes in order, the new ones where they belong
        google::protobuf::RepeatedPtrField<NodeProto> ordered;
        for (const auto& extra : front)
            *ordered.Add() = extra;
        for (const auto& n : graph.node()) {
            const auto b = n.output_size() > 0 ? before.find(n.output(0)) : before.end();
            if (b != before.end())
                for (const auto& extra : b->second)
                    *ordered.Add() = extra;
            *ordered.Add() = n;
            for (const auto& out : n.output())
                if (const auto a = after.find(out); a != after.end())
                    for (const auto& extra : a->second)
                        *ordered.Add() = extra;
        }
        graph.mutable_node()->Swap(&ordered);
        // float weights nothing reads any more go (the file's size is that of int8 weights)
        std::set<std::string> used;
        for (const auto& n : graph.node())
            used.insert(n.input().begin(), n.input().end());
        for (const auto& o : graph.output())
            used.insert(o.name());
        google::protobuf::RepeatedPtrField<TensorProto> kept;
        for (const auto& i : graph.initializer())
            if (!replacedWeights.count(i.name()) || used.count(i.name()))
                *kept.Add() = i;
        for (auto& t : added)
            *kept.Add() = std::move(t);
        graph.mutable_initializer()->Swap(&kept);
        google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> inputs;
        for (const auto& i : graph.input())
            if (!replacedWeights.count(i.name()) || used.count(i.name()))
                *inputs.Add() = i;
        graph.mutable_input()->Swap(&inputs);
        auto* meta = model.add_metadata_props();
        meta->set_key("quantscope_quantize");
        meta->set_value(report);
        for (const auto& i : graph.initializer())
            result.initializerBytes += static_cast<std::int64_t>(i.raw_data().size()) +
                                       4 * (i.float_data_size() + i.int32_data_size()) +
                                       8 * (i.int64_data_size() + i.double_data_size());
        try {
            onnx::checker::check_model(model);
        } catch (const std::exception& e) {
            throw Error(ErrorKind::Internal, outPath + ": the QDQ model written fails ONNX's checker (" +
                                                 std::string(e.what()).substr(0, 300) + ")");
        }
        std::ofstream f(outPath, std::ios::binary | std::ios::trunc);
        if (!f || !model.SerializeToOstream(&f) || !f.flush())
            throw Error(ErrorKind::Output, outPath + ": cannot write the ONNX model (disk full?)");
        return result;
    });
}

at::Tensor tensorFromOnnx(const std::string& bytes, const std::string& where) {
    TensorProto t;
    if (!t.ParseFromString(bytes))
        throw Error(ErrorKind::Input, where + ": not an ONNX TensorProto");
    return toTensor(t, where);
}

std::string unescapeOnnxPath(const std::string& path) {
    std::string out, part;
    auto flush = [&] {
        const bool escaped = part.size() > 1 && part.front() == '_' &&
                             std::all_of(part.begin() + 1, part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
        out += escaped ? part.substr(1) : part;
        part.clear();
    };
    for (char c : path) {
        if (c == '.') {
            flush();
            out += '.';
        } else {
            part += c;
        }
    }
    flush();
    return out;
}

bool isOnnxPath(const std::string& path) {
    return path.size() > 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
}

} // namespace qs::ts
