// The TorchScript backend: loading, graph taps, running and output decoding.
// This is the one translation unit of the engine that includes LibTorch headers
// (~15 s to compile), so everything LibTorch-specific lives here.

#include "error.h"
#include "model.h"
#include "opvocabulary.h"
#include "torchscript.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/ir/scope.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <torch/script.h>

#include <dlfcn.h>
#include <glob.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <tuple>
#include <set>
#include <unordered_map>

namespace qs {

const char* toString(InputKind kind) {
    return kind == InputKind::ImageList ? "image-list" : "batch-tensor";
}

namespace {

// ---------------------------------------------------------------------------------------
// The tap op and the recorder it reports to

// Tap sites of every instrumented model in this process; append-only, so an index
// stays valid for the life of the process.
struct SiteRegistry {
    std::mutex mutex;
    std::deque<TapSite> sites;

    int add(TapSite site) {
        std::lock_guard<std::mutex> lock(mutex);
        sites.push_back(std::move(site));
        return static_cast<int>(sites.size() - 1);
    }
    TapSite get(int index) {
        std::lock_guard<std::mutex> lock(mutex);
        return sites.at(static_cast<std::size_t>(index));
    }
};

SiteRegistry& siteRegistry() {
    static SiteRegistry registry;
    return registry;
}

// Receives the tensors of one forward pass. Active only while Model::run is running.
class Recorder : public ops::TensorListener {
public:
    Recorder(ActivationSink* sink, StorageType storage) : m_sink(sink), m_storage(storage) {}

    void tensor(const at::Tensor& x, std::int64_t id) override { record(x, static_cast<int>(id)); }

    void record(const at::Tensor& x, int site) {
        if (!m_sink)
            return;

        TapSite info = siteRegistry().get(site);
        Activation a;
        a.site = site;
        a.call = m_calls[info.module]++;
        a.module = std::move(info.module);
        a.op = std::move(info.op);
        a.epilogue = std::move(info.epilogue);
        at::Tensor value = x;
        if (x.is_quantized()) {
            if (x.qscheme() == at::kPerTensorAffine || x.qscheme() == at::kPerTensorSymmetric) {
                a.scale = x.q_scale();
                a.zeroPoint = x.q_zero_point();
                if (x.scalar_type() == at::kQInt8) {
                    a.quantMin = -128;
                    a.quantMax = 127;
                } else if (x.scalar_type() == at::kQInt32) {
                    a.quantMin = std::numeric_limits<std::int32_t>::min();
                    a.quantMax = std::numeric_limits<std::int32_t>::max();
                }
            }
            const bool perTensor = x.qscheme() == at::kPerTensorAffine || x.qscheme() == at::kPerTensorSymmetric;
            const bool eightBit = x.scalar_type() == at::kQUInt8 || x.scalar_type() == at::kQInt8;
            value = perTensor && eightBit ? dequantizeByTable(x) : x.dequantize();
        }
        // Always a fresh contiguous copy: the model may later modify x in place
        // (e.g. relu_), and the sink reads the buffer on another thread.
        const auto dtype = m_storage == StorageType::F16 ? at::kHalf : at::kFloat;
        const bool mustCopy = value.is_same(x);
        value = value.to(dtype, /*non_blocking=*/false, /*copy=*/mustCopy,
                         at::MemoryFormat::Contiguous);
        a.type = m_storage;
        a.shape.assign(value.sizes().begin(), value.sizes().end());
        const void* data = value.data_ptr();
        a.data = std::shared_ptr<const void>(data, [keep = value](const void*) {});
        m_sink->push(std::move(a));
    }

private:
    // An 8-bit per-tensor quantized tensor in the storage type, contiguous: its codes
    // (one byte each) through a table of the 256 values torch's own dequantize gives, then
    // rounded as .to() rounds. The same values as x.dequantize().to(dtype), without the
    // float intermediate on the model's thread.
    at::Tensor dequantizeByTable(const at::Tensor& x) {
        const bool isSigned = x.scalar_type() == at::kQInt8;
        const auto dtype = m_storage == StorageType::F16 ? at::kHalf : at::kFloat;
        const TableKey key{x.q_scale(), x.q_zero_point(), isSigned};
        auto it = m_tables.find(key);
        if (it == m_tables.end()) {
            at::Tensor codes = at::arange(isSigned ? -128 : 0, isSigned ? 128 : 256, at::kInt)
                                   .to(isSigned ? at::kChar : at::kByte);
            at::Tensor table = at::_make_per_tensor_quantized_tensor(codes, key.scale, key.zeroPoint)
                                   .dequantize()
                                   .to(dtype)
                                   .contiguous();
            it = m_tables.emplace(key, table).first;
        }
        const at::Tensor codes = x.int_repr().contiguous();
        at::Tensor out = at::empty(x.sizes(), at::TensorOptions().dtype(dtype));
        const auto* in = static_cast<const std::uint8_t*>(codes.data_ptr());
        const std::uint8_t bias = isSigned ? 128 : 0; // int8 code c sits at c + 128
        auto apply = [&](auto* table, auto* o) {
            at::parallel_for(0, codes.numel(), 1 << 16, [&](std::int64_t b, std::int64_t e) {
                for (std::int64_t i = b; i < e; ++i)
                    o[i] = table[static_cast<std::uint8_t>(in[i] + bias)];
            });
        };
        if (dtype == at::kHalf)
            apply(static_cast<const std::uint16_t*>(it->second.data_ptr()), static_cast<std::uint16_t*>(out.data_ptr()));
        else
            apply(static_cast<const std::uint32_t*>(it->second.data_ptr()), static_cast<std::uint32_t*>(out.data_ptr()));
        return out;
    }
    struct TableKey {
        double scale;
        std::int64_t zeroPoint;
        bool isSigned;
        bool operator<(const TableKey& o) const {
            return std::tie(scale, zeroPoint, isSigned) < std::tie(o.scale, o.zeroPoint, o.isSigned);
        }
    };
    std::map<TableKey, at::Tensor> m_tables;

    ActivationSink* m_sink;
    StorageType m_storage;
    std::unordered_map<std::string, int> m_calls;
};

std::mutex g_runMutex; // one instrumented forward pass at a time per process

// ---------------------------------------------------------------------------------------
// Graph instrumentation

// Module path of the module that owns a convolution's weight (or packed quantized
// weight): the chain of prim::GetAttr from the graph's `self` to that module, e.g.
// self.backbone -> .fpn -> .inner_blocks -> .3 -> .0 -> weight. This is exactly the path
// a Python forward hook reports, ModuleList containers included; the inlined call stack
// knows only the names of modules whose methods were called (not of ModuleLists) and
// loses outer names for code inlined from loops.
std::optional<std::string> weightOwnerPath(const torch::jit::Node* node,
                                           const torch::jit::Value* self) {
    if (node->inputs().size() < 2)
        return std::nullopt;
    const torch::jit::Node* weight = node->input(1)->node();
    if (weight->kind() != c10::prim::GetAttr)
        return std::nullopt;
    std::vector<std::string> parts;
    const torch::jit::Value* v = weight->input(0);
    while (v != self) {
        const torch::jit::Node* n = v->node();
        if (n->kind() != c10::prim::GetAttr)
            return std::nullopt;
        parts.push_back(n->s(c10::attr::name));
        v = n->input(0);
    }
    std::string path;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it)
        path += (path.empty() ? "" : ".") + *it;
    return path;
}

// Fallback for convolutions whose weight is computed: the instance names of the module
// methods the node was inlined through, outermost first.
std::string modulePath(const torch::jit::Node* node) {
    std::string path;
    auto cs = node->callstack();
    if (!cs)
        return path;
    for (const auto& entry : (*cs)->vec()) {
        const auto& instance = std::get<2>(entry);
        if (!instance)
            continue;
        std::string name = instance->instance_name();
        if (name == "SELF")
            continue; // a method called on the same module (e.g. _conv_forward)
        if (name == "INSTANCE_NAME_UNKNOWN") {
            auto type = instance->class_type();
            name = "<" + (type && type->name() ? type->name()->name() : std::string("?")) + ">";
        }
        if (!path.empty())
            path += '.';
        path += name;
    }
    return path;
}

void collectTargets(torch::jit::Block* block, unsigned tapOps,
                    std::vector<torch::jit::Node*>& targets) {
    for (torch::jit::Node* node : block->nodes()) {
        const std::string kind = node->kind().toQualString();
        const bool conv = (tapOps & static_cast<unsigned>(TapOps::Conv)) && ops::isConv(kind);
        const bool linear = (tapOps & static_cast<unsigned>(TapOps::Linear)) && ops::isLinear(kind);
        if ((conv || linear) && node->outputs().size() == 1)
            targets.push_back(node);
        for (torch::jit::Block* sub : node->blocks())
            collectTargets(sub, tapOps, targets); // loops and ifs: the RPN head runs in one
    }
}

bool holdsTensor(const c10::TypePtr& type, int depth = 0) {
    if (type->kind() == c10::TypeKind::TensorType)
        return true;
    if (depth > 4)
        return false;
    for (const auto& contained : type->containedTypes())
        if (holdsTensor(contained, depth + 1))
            return true;
    return false;
}

// The value of a small expression that does not depend on the input: a constant, a
// module attribute (self.use_res_connect, self.return_layers), `not`, `in`, `==`, `!=`
// of those; nullopt otherwise.
std::optional<c10::IValue> knownValue(const torch::jit::Value* v, const torch::jit::Value* self,
                                      const torch::jit::Module* module, int depth = 0) {
    const torch::jit::Node* n = v->node();
    if (depth > 8)
        return std::nullopt;
    try {
        if (n->kind() == c10::prim::Constant) {
            auto value = torch::jit::toIValue(v);
            return value ? std::optional<c10::IValue>(*value) : std::nullopt;
        }
        if (n->kind() == c10::prim::GetAttr) {
            if (!module)
                return std::nullopt;
            std::vector<std::string> names;
            for (const torch::jit::Value* at = v; at != self; at = at->node()->input(0)) {
                if (at->node()->kind() != c10::prim::GetAttr)
                    return std::nullopt;
                names.push_back(at->node()->s(c10::attr::name));
            }
            c10::IValue value = module->_ivalue();
            for (auto it = names.rbegin(); it != names.rend(); ++it)
                value = value.toObjectRef().getAttr(*it);
            return value;
        }
        if (n->kind() == c10::prim::If) { // a value merged from the branch taken
            const auto cond = knownValue(n->input(0), self, module, depth + 1);
            if (!cond || !cond->isBool())
                return std::nullopt;
            const torch::jit::Block* b = n->blocks()[cond->toBool() ? 0 : 1];
            return knownValue(b->outputs()[v->offset()], self, module, depth + 1);
        }
        const c10::Symbol kind = n->kind();
        const bool arithmetic = kind == c10::aten::add || kind == c10::aten::sub || kind == c10::aten::mul ||
                                kind == c10::aten::lt || kind == c10::aten::gt || kind == c10::aten::le ||
                                kind == c10::aten::ge;
        std::vector<c10::IValue> args;
        if (kind == c10::aten::__not__ || kind == c10::aten::__contains__ || kind == c10::aten::eq ||
            kind == c10::aten::ne || kind == c10::aten::len || arithmetic) {
            for (const torch::jit::Value* in : n->inputs()) {
                auto a = knownValue(in, self, module, depth + 1);
                if (!a)
                    return std::nullopt;
                args.push_back(*a);
            }
        }
        if (n->kind() == c10::aten::__not__ && args.size() == 1 && args[0].isBool())
            return c10::IValue(!args[0].toBool());
        if (n->kind() == c10::aten::__contains__ && args.size() == 2) {
            if (args[0].isGenericDict())
                return c10::IValue(args[0].toGenericDict().contains(args[1]));
            if (args[0].isList()) {
                for (const auto& e : args[0].toListRef())
                    if (e == args[1])
                        return c10::IValue(true);
                return c10::IValue(false);
            }
        }
        if (kind == c10::aten::len && args.size() == 1) {
            if (args[0].isList())
                return c10::IValue(static_cast<std::int64_t>(args[0].toListRef().size()));
            if (args[0].isGenericDict())
                return c10::IValue(static_cast<std::int64_t>(args[0].toGenericDict().size()));
        }
        if (arithmetic && args.size() == 2 && args[0].isInt() && args[1].isInt()) {
            const std::int64_t a = args[0].toInt(), b = args[1].toInt();
            if (kind == c10::aten::add)
                return c10::IValue(a + b);
            if (kind == c10::aten::sub)
                return c10::IValue(a - b);
            if (kind == c10::aten::mul)
                return c10::IValue(a * b);
            return c10::IValue(kind == c10::aten::lt ? a < b : kind == c10::aten::gt ? a > b
                               : kind == c10::aten::le ? a <= b : a >= b);
        }
        if ((n->kind() == c10::aten::eq || n->kind() == c10::aten::ne) && args.size() == 2 &&
            !args[0].isTensor() && !args[1].isTensor() && args[0].tagKind() == args[1].tagKind())
            return c10::IValue((args[0] == args[1]) == (n->kind() == c10::aten::eq));
    } catch (const c10::Error&) {
    }
    return std::nullopt;
}

std::optional<bool> knownCondition(const torch::jit::Value* v, const torch::jit::Value* self,
                                   const torch::jit::Module* module) {
    const auto value = knownValue(v, self, module);
    return value && value->isBool() ? std::optional<bool>(value->toBool()) : std::nullopt;
}

// Whether the user writes to the value it takes at this use (list.append's list,
// add_'s self), by the op's schema.
bool writesTo(const torch::jit::Use& use) {
    const c10::FunctionSchema* schema = use.user->maybeSchema();
    if (!schema || use.offset >= schema->arguments().size())
        return false;
    const c10::AliasInfo* alias = schema->arguments()[use.offset].alias_info();
    return alias && alias->isWrite();
}

// The tap sites whose recorded values reach `tap`'s input without passing through
// another tap: a walk back over tensor-holding values only (a size taken from a tensor is
// not data flow), through the branch an `if` on a module attribute takes (the other is
// dead code for this model), into loops' carried values, and to the ops that mutate a
// value in place (list.append, dict[k] = v, x += y), stopping at tap nodes.
std::vector<int> upstreamTaps(const torch::jit::Node* tap,
                              const std::unordered_map<const torch::jit::Node*, int>& taps,
                              const torch::jit::Value* self, const torch::jit::Module* module) {
    std::vector<int> found;
    std::unordered_set<const torch::jit::Node*> seen;
    std::vector<const torch::jit::Node*> stack;
    auto push = [&](const torch::jit::Node* n) {
        if (!seen.insert(n).second)
            return;
        const auto it = taps.find(n);
        if (it != taps.end())
            found.push_back(it->second);
        else
            stack.push_back(n);
    };
    // code in the branch of an `if` that this model never takes
    auto dead = [&](const torch::jit::Node* n) {
        for (const torch::jit::Block* b = n->owningBlock(); b && b->owningNode(); b = b->owningNode()->owningBlock()) {
            const torch::jit::Node* owner = b->owningNode();
            if (owner->kind() != c10::prim::If)
                continue;
            const auto taken = knownCondition(owner->input(0), self, module);
            if (taken && *taken != (b == owner->blocks()[0]))
                return true;
        }
        return false;
    };
    auto visit = [&](const torch::jit::Value* v) {
        if (!holdsTensor(v->type()))
            return;
        push(v->node());
        // A list or dict is filled after it is made (append, d[k] = v): its writers are
        // where its contents come from. A tensor updated in place (x += y) is rebound to
        // the op's result by TorchScript, so the walk reaches that op anyway.
        if (v->type()->kind() == c10::TypeKind::TensorType)
            return;
        for (const torch::jit::Use& use : v->uses())
            if (use.user != tap && writesTo(use) && !taps.count(use.user) && !dead(use.user))
                push(use.user);
    };
    visit(tap->input(0));
    while (!stack.empty()) {
        const torch::jit::Node* n = stack.back();
        stack.pop_back();
        if (n->kind() == c10::prim::Param) { // a block's parameter: a loop's carried values
            const torch::jit::Block* block = n->owningBlock();
            const torch::jit::Node* owner = block ? block->owningNode() : nullptr;
            if (owner && owner->kind() == c10::prim::Loop)
                for (std::size_t i = 2; i < owner->inputs().size(); ++i)
                    visit(owner->input(i));
            if (owner && owner->kind() == c10::prim::Loop)
                for (std::size_t i = 1; i < block->outputs().size(); ++i)
                    visit(block->outputs()[i]);
            continue;
        }
        if (n->kind() == c10::prim::If) {
            const auto taken = knownCondition(n->input(0), self, module);
            for (std::size_t b = 0; b < n->blocks().size(); ++b)
                if (!taken || *taken == (b == 0))
                    for (const torch::jit::Value* out : n->blocks()[b]->outputs())
                        visit(out);
            continue;
        }
        if (n->kind() == c10::prim::Loop) {
            for (std::size_t i = 2; i < n->inputs().size(); ++i)
                visit(n->input(i));
            for (const torch::jit::Block* b : n->blocks())
                for (std::size_t i = 1; i < b->outputs().size(); ++i)
                    visit(b->outputs()[i]);
            continue;
        }
        for (const torch::jit::Value* in : n->inputs())
            visit(in);
        for (const torch::jit::Block* b : n->blocks())
            for (const torch::jit::Value* out : b->outputs())
                visit(out);
    }
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
    return found;
}

} // namespace

namespace ts {

bool hasQuantizedOps(torch::jit::Block* block) {
    for (torch::jit::Node* node : block->nodes()) {
        if (node->kind().is_aten() == false &&
            std::string(node->kind().ns().toUnqualString()) == "quantized")
            return true;
        if (node->kind() == c10::Symbol::fromQualString("aten::quantize_per_tensor"))
            return true;
        for (torch::jit::Block* sub : node->blocks())
            if (ts::hasQuantizedOps(sub))
                return true;
    }
    return false;
}

} // namespace ts

namespace ts {

std::vector<TapSite> instrument(const std::shared_ptr<torch::jit::Graph>& graph, unsigned tapOps,
                                TapPoint point, const torch::jit::Module* module) {
    const bool imported = module && module->type()->name() &&
                          module->type()->name()->qualifiedName() == kOnnxModuleType;
    std::vector<torch::jit::Node*> targets;
    collectTargets(graph->block(), tapOps, targets);
    std::vector<TapSite> sites;
    std::unordered_map<const torch::jit::Node*, int> taps; // tap node -> site id
    int anonymous = 0;
    for (torch::jit::Node* node : targets) {
        TapSite site;
        site.op = node->kind().toQualString();
        site.module = weightOwnerPath(node, graph->inputs()[0]).value_or(modulePath(node));
        if (imported) // ONNX import: "features._0" stands for PyTorch's "features.0"
            site.module = unescapeOnnxPath(site.module);
        if (site.module.empty()) // a functional call in the top-level forward
            site.module = "forward." + std::string(node->kind().toUnqualString()) + "_" +
                          std::to_string(anonymous++);
        torch::jit::Node* last = point == TapPoint::Block ? ops::blockEnd(node, site.epilogue) : node;
        const int index = siteRegistry().add(site);
        torch::jit::Value* out = last->output(0);
        torch::jit::WithInsertPoint guard(last->next());
        torch::jit::Value* siteValue = graph->insertConstant(static_cast<int64_t>(index));
        torch::jit::Value* nameValue = graph->insertConstant(site.module);
        torch::jit::Node* tap = graph->create(ops::kTap, {out, siteValue, nameValue}, 1);
        graph->insertNode(tap);
        tap->output()->setType(out->type());
        out->replaceAllUsesWith(tap->output());
        tap->replaceInput(0, out);
        site.id = index;
        taps[tap] = index;
        sites.push_back(std::move(site));
    }
    for (const auto& [tap, id] : taps)
        for (auto& site : sites)
            if (site.id == id)
                site.inputs = upstreamTaps(tap, taps, graph->inputs()[0], module);
    return sites;
}

} // namespace ts

namespace {

// ---------------------------------------------------------------------------------------
// Sizes

std::int64_t tensorBytes(const at::Tensor& t) {
    return t.defined() ? static_cast<std::int64_t>(t.numel() * t.element_size()) : 0;
}

std::int64_t ivalueTensorBytes(const c10::IValue& v, int depth = 0) {
    if (depth > 8)
        return 0;
    if (v.isTensor())
        return tensorBytes(v.toTensor());
    std::int64_t sum = 0;
    if (v.isTuple()) {
        for (const auto& e : v.toTupleRef().elements())
            sum += ivalueTensorBytes(e, depth + 1);
    } else if (v.isList()) {
        for (const auto& e : v.toListRef())
            sum += ivalueTensorBytes(e, depth + 1);
    } else if (v.isTensorList()) {
        for (const auto& t : v.toTensorVector())
            sum += tensorBytes(t);
    }
    return sum;
}

// Packed quantized weights are custom-class attributes, not parameters; their
// __getstate__ returns the int8 weight and the bias.
std::int64_t packedParamBytes(const c10::IValue& value) {
    try {
        const auto& type = value.toObjectRef().type();
        torch::jit::Function* getstate = type->findMethod("__getstate__");
        if (!getstate)
            return 0;
        std::vector<c10::IValue> stack{value};
        getstate->run(stack);
        return stack.empty() ? 0 : ivalueTensorBytes(stack.back());
    } catch (const std::exception&) {
        return 0; // unknown packed format: counted as 0, documented
    }
}

} // namespace

namespace ts {

// tensor and packed-weight constants of a graph, each counted once
static void addConstantBytes(torch::jit::Block* block, std::set<const void*>& seen, std::int64_t& bytes) {
    for (torch::jit::Node* node : block->nodes()) {
        if (node->kind() == c10::prim::Constant && node->hasAttribute(c10::attr::value)) {
            const auto value = torch::jit::toIValue(node->output());
            if (value && value->isTensor()) {
                const at::Tensor& t = value->toTensor();
                if (t.defined() && seen.insert(t.unsafeGetTensorImpl()).second)
                    bytes += tensorBytes(t);
            } else if (value && value->isCustomClass()) {
                if (seen.insert(value->internalToPointer()).second)
                    bytes += packedParamBytes(*value);
            }
        }
        for (torch::jit::Block* sub : node->blocks())
            addConstantBytes(sub, seen, bytes);
    }
}

std::int64_t parameterBytes(const torch::jit::Module& module) {
    std::int64_t bytes = 0;
    for (const auto& p : module.named_parameters(true))
        bytes += tensorBytes(p.value);
    for (const auto& b : module.named_buffers(true))
        bytes += tensorBytes(b.value);
    for (const auto& a : module.named_attributes(true))
        if (a.value.isCustomClass())
            bytes += packedParamBytes(a.value);
    // frozen modules hold their weights as constants of the graph
    if (auto forward = module.find_method("forward")) {
        std::set<const void*> seen;
        addConstantBytes(forward->graph()->block(), seen, bytes);
    }
    return bytes;
}

} // namespace ts

namespace {

// ---------------------------------------------------------------------------------------
// Output decoding

bool isDetectionDict(const c10::IValue& v) {
    if (!v.isGenericDict())
        return false;
    const auto dict = v.toGenericDict();
    return dict.contains(c10::IValue("boxes")) && dict.contains(c10::IValue("scores"));
}

std::vector<Detection> decodeDetectionDict(const c10::IValue& v) {
    const auto dict = v.toGenericDict();
    const at::Tensor boxes = dict.at(c10::IValue("boxes")).toTensor().to(at::kFloat).contiguous();
    const at::Tensor scores = dict.at(c10::IValue("scores")).toTensor().to(at::kFloat).contiguous();
    at::Tensor labels;
    if (dict.contains(c10::IValue("labels")))
        labels = dict.at(c10::IValue("labels")).toTensor().to(at::kLong).contiguous();
    TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "boxes must have shape [K, 4]");
    TORCH_CHECK(scores.numel() == boxes.size(0), "scores must have one entry per box");
    std::vector<Detection> out(static_cast<std::size_t>(boxes.size(0)));
    const float* b = boxes.data_ptr<float>();
    const float* s = scores.data_ptr<float>();
    const std::int64_t* l = labels.defined() ? labels.data_ptr<std::int64_t>() : nullptr;
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = {b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3], s[i], l ? l[i] : 0};
    }
    return out;
}

// Finds the first tensor in a nested output, for raw outputs.
at::Tensor firstTensor(const c10::IValue& v, int depth = 0) {
    if (depth > 8)
        return {};
    if (v.isTensor())
        return v.toTensor();
    if (v.isTuple()) {
        for (const auto& e : v.toTupleRef().elements())
            if (auto t = firstTensor(e, depth + 1); t.defined())
                return t;
    } else if (v.isList()) {
        for (const auto& e : v.toListRef())
            if (auto t = firstTensor(e, depth + 1); t.defined())
                return t;
    } else if (v.isGenericDict()) {
        for (const auto& e : v.toGenericDict())
            if (auto t = firstTensor(e.value(), depth + 1); t.defined())
                return t;
    }
    return {};
}

} // namespace

namespace ts {

ModelOutput decodeOutput(const c10::IValue& out) {
    ModelOutput result;
    // torchvision detectors: (losses, detections) when scripted, or detections alone
    std::vector<c10::IValue> candidates;
    if (out.isTuple()) {
        for (const auto& e : out.toTupleRef().elements())
            candidates.push_back(e);
    } else {
        candidates.push_back(out);
    }
    for (const auto& c : candidates) {
        if (c.isList() && c.toListRef().size() >= 1 && isDetectionDict(c.toListRef()[0])) {
            result.kind = OutputKind::Detections;
            result.detections = decodeDetectionDict(c.toListRef()[0]);
            return result;
        }
        if (isDetectionDict(c)) {
            result.kind = OutputKind::Detections;
            result.detections = decodeDetectionDict(c);
            return result;
        }
    }
    at::Tensor t = firstTensor(out);
    if (!t.defined())
        throw Error(ErrorKind::Input, "the model's output holds no tensor (expected a tensor, or detections "
                                      "as a dict of boxes, scores and labels)");
    if (t.is_quantized())
        t = t.dequantize();
    t = t.to(at::kFloat).contiguous();
    result.kind = (t.dim() == 2 && t.size(0) == 1) ? OutputKind::Logits : OutputKind::Raw;
    for (std::int64_t d = 1; d < t.dim(); ++d)
        result.shape.push_back(t.size(d));
    if (t.dim() <= 1)
        result.shape.assign(t.sizes().begin(), t.sizes().end());
    const float* p = t.data_ptr<float>();
    const std::int64_t perImage = t.dim() >= 1 && t.size(0) > 0 ? t.numel() / t.size(0) : t.numel();
    result.values.assign(p, p + (t.dim() <= 1 ? t.numel() : perImage));
    return result;
}

} // namespace ts

namespace {

// ---------------------------------------------------------------------------------------
// The model

class TorchScriptModel final : public Model {
public:
    TorchScriptModel(torch::jit::Module module, ModelInfo info, StorageType storage)
        : m_module(std::move(module)), m_info(std::move(info)), m_storage(storage) {}

    const ModelInfo& info() const override { return m_info; }

    ModelOutput run(const Image& image, ActivationSink* sink) override {
        std::lock_guard<std::mutex> lock(g_runMutex);
        torch::NoGradGuard noGrad;
        const c10::IValue input = ts::makeInput(m_info.input, image);
        Recorder recorder(sink, m_storage);
        ops::setTapListener(&recorder);
        struct Reset {
            ~Reset() { ops::setTapListener(nullptr); }
        } reset;
        const c10::IValue out = ts::forward(m_module, input, m_info.path, image.source);
        try {
            return ts::decodeOutput(out);
        } catch (const Error& e) {
            throw Error(e.kind(), m_info.path + ": " + e.what());
        } catch (const c10::Error& e) {
            throw Error(ErrorKind::Input, m_info.path + ": cannot decode the output: " +
                                              firstLine(e.what_without_backtrace()));
        }
    }

    void runBatch(const Image& image, int batch) override {
        std::lock_guard<std::mutex> lock(g_runMutex);
        torch::NoGradGuard noGrad;
        try {
            at::Tensor chw = torch::from_blob(const_cast<float*>(image.chw.data()),
                                              {3, image.height, image.width}, at::kFloat);
            c10::IValue input;
            if (m_info.input == InputKind::ImageList) {
                c10::List<at::Tensor> list;
                for (int i = 0; i < batch; ++i)
                    list.push_back(chw.clone());
                input = list;
            } else {
                input = chw.unsqueeze(0).expand({batch, 3, image.height, image.width}).contiguous();
            }
            m_module.forward({input});
        } catch (const std::bad_alloc&) {
            throw Error(ErrorKind::OutOfMemory, m_info.path + ": out of memory at batch " + std::to_string(batch));
        } catch (const std::exception& e) {
            const std::string what = e.what();
            if (what.find("allocate") != std::string::npos || what.find("bad_alloc") != std::string::npos)
                throw Error(ErrorKind::OutOfMemory, m_info.path + ": out of memory at batch " + std::to_string(batch));
            throw Error(ErrorKind::Input, m_info.path + ": forward pass failed at batch " + std::to_string(batch) +
                                              ": " + firstLine(what));
        }
    }

private:
    torch::jit::Module m_module;
    ModelInfo m_info;
    StorageType m_storage;
};

std::optional<Size2> recordedSize(const std::shared_ptr<torch::jit::Graph>& graph) {
    if (graph->inputs().size() < 2)
        return std::nullopt;
    auto type = graph->inputs()[1]->type()->cast<c10::TensorType>();
    if (!type)
        return std::nullopt;
    auto sizes = type->sizes().concrete_sizes();
    if (!sizes || sizes->size() != 4)
        return std::nullopt;
    return Size2{static_cast<int>((*sizes)[3]), static_cast<int>((*sizes)[2])};
}

} // namespace

namespace {
class WarningRouter : public c10::WarningHandler {
public:
    bool print = false;
    std::string prefix;
    void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
        if (print)
            std::fprintf(stderr, "%s: LibTorch: %s\n", prefix.c_str(), firstLine(msg).c_str());
    }
};
} // namespace

void routeLibraryWarnings(bool print, const std::string& prefix) {
    static WarningRouter router; // lives as long as the process, as LibTorch requires
    router.print = print;
    router.prefix = prefix;
    c10::Warning::set_warning_handler(&router);
}

const char* toString(OnnxInt8 mode) {
    return mode == OnnxInt8::Kernels ? "kernels" : mode == OnnxInt8::Simulated ? "simulated" : "auto";
}

OnnxInt8 parseOnnxInt8(const std::string& text) {
    for (auto mode : {OnnxInt8::Auto, OnnxInt8::Kernels, OnnxInt8::Simulated})
        if (text == toString(mode))
            return mode;
    throw Error(ErrorKind::Usage, "--onnx-int8 " + text + ": expected auto, kernels or simulated");
}

void configureRuntime(const ModelOptions& options) {
    if (options.threads > 0)
        at::set_num_threads(options.threads);
    at::QEngine engine;
    if (options.engine == "onednn")
        engine = at::QEngine::ONEDNN;
    else if (options.engine == "qnnpack")
        engine = at::QEngine::QNNPACK;
    else if (options.engine == "fbgemm")
        engine = at::QEngine::FBGEMM;
    else if (options.engine == "x86")
        engine = at::QEngine::X86;
    else
        throw Error(ErrorKind::Usage, "--engine: unknown quantized engine '" + options.engine +
                                          "' (expected onednn or qnnpack)");
    const auto& supported = at::globalContext().supportedQEngines();
    if (std::find(supported.begin(), supported.end(), engine) == supported.end()) {
        std::string list;
        for (auto e : supported)
            if (e != at::QEngine::NoQEngine)
                list += (list.empty() ? "" : ", ") + c10::toString(e);
        throw Error(ErrorKind::Usage, "--engine: this LibTorch has no '" + options.engine +
                                          "' quantized engine (it has: " + list + ")");
    }
    at::globalContext().setQEngine(engine);
    ts::setOnnxInt8(options.onnxInt8);
}

std::string loadTorchvisionOps() {
    static std::once_flag once;
    static std::string failure;
    std::call_once(once, [] {
        if (c10::Dispatcher::singleton().findSchema({"torchvision::nms", ""}))
            return; // already linked in
        std::vector<std::string> candidates;
        if (const char* env = std::getenv("QS_TORCHVISION_LIB")) {
            candidates.emplace_back(env);
        } else {
            glob_t g{};
            if (glob("/usr/lib/python3/dist-packages/torchvision/_C*.so", 0, nullptr, &g) == 0) {
                for (std::size_t i = 0; i < g.gl_pathc; ++i)
                    candidates.emplace_back(g.gl_pathv[i]);
            }
            globfree(&g);
        }
        std::string tried;
        for (const auto& path : candidates) {
            if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL))
                return;
            const char* why = dlerror();
            tried += "; " + path + ": " + (why ? why : "cannot load");
        }
        failure = "torchvision's operator library (torchvision::nms, roi_align) could not be loaded" +
                  (tried.empty() ? std::string(" (none in /usr/lib/python3/dist-packages/torchvision)") : tried) +
                  "; install Debian's python3-torchvision or set QS_TORCHVISION_LIB";
    });
    return failure;
}

namespace ts {

torch::jit::Module loadModule(const std::string& path) {
    {
        std::ifstream probe(path, std::ios::binary);
        if (!probe)
            throw Error(ErrorKind::Input, path + ": cannot open model file (missing or unreadable)");
    }
    if (isOnnxPath(path))
        return importOnnx(path);
    const std::string torchvision = loadTorchvisionOps();
    auto loadError = [&](const std::string& message) {
        // the compiler's ErrorReport is no c10::Error, so both kinds come through here
        if (!torchvision.empty() && message.find("torchvision") != std::string::npos)
            return Error(ErrorKind::Input, path + ": the model calls torchvision ops, but " + torchvision);
        return Error(ErrorKind::Input, path + ": not a loadable TorchScript model (" + firstLine(message) + ")");
    };
    torch::jit::Module module;
    try {
        module = torch::jit::load(path, torch::kCPU);
    } catch (const c10::Error& e) {
        throw loadError(e.what_without_backtrace());
    } catch (const std::exception& e) {
        throw loadError(e.what());
    }
    module.eval();
    if (!module.find_method("forward"))
        throw Error(ErrorKind::Input, path + ": the TorchScript module has no forward method");
    return module;
}

InputKind inputKind(const torch::jit::Module& module) {
    const auto& schema = module.get_method("forward").function().getSchema();
    if (schema.arguments().size() >= 2) {
        auto type = schema.arguments()[1].type();
        if (auto list = type->cast<c10::ListType>();
            list && list->getElementType()->kind() == c10::TypeKind::TensorType)
            return InputKind::ImageList;
    }
    return InputKind::BatchTensor;
}

c10::IValue makeInput(InputKind kind, const Image& image) {
    at::Tensor chw = torch::from_blob(const_cast<float*>(image.chw.data()),
                                      {3, image.height, image.width}, at::kFloat)
                         .clone();
    if (kind == InputKind::ImageList) {
        c10::List<at::Tensor> list;
        list.push_back(chw);
        return list;
    }
    return chw.unsqueeze(0);
}

c10::IValue forward(torch::jit::Module& module, const c10::IValue& input, const std::string& path,
                    const std::string& source) {
    try {
        return module.forward({input});
    } catch (const Error&) {
        throw; // a sink error (write failure, cancel) passes through unchanged
    } catch (const c10::Error& e) {
        throw Error(ErrorKind::Input, path + ": forward pass failed on " + source + ": " +
                                          firstLine(e.what_without_backtrace()));
    } catch (const std::exception& e) { // the interpreter rewraps errors as runtime_error
        throw Error(ErrorKind::Input, path + ": forward pass failed on " + source + ": " +
                                          lastLine(e.what()));
    }
}

} // namespace ts

std::unique_ptr<Model> loadModel(const std::string& path, const ModelOptions& options) {
    ModelInfo info;
    info.path = path;
    info.format = ts::isOnnxPath(path) ? "onnx" : "torchscript";
    torch::jit::Module module = ts::loadModule(path);
    try {
        info.input = ts::inputKind(module);
        auto graph = module.get_method("forward").graph();
        info.recordedInputSize = recordedSize(graph);
        torch::jit::Inline(*graph);
        info.quantized = ts::hasQuantizedOps(graph->block());
        info.sites = ts::instrument(graph, options.tapOps, options.tapPoint, &module);
        info.parameterBytes = ts::parameterBytes(module);
    } catch (const Error&) {
        throw;
    } catch (const c10::Error& e) {
        throw Error(ErrorKind::Input, path + ": cannot instrument the TorchScript graph (" +
                                          firstLine(e.what_without_backtrace()) + ")");
    }
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    info.fileBytes = static_cast<std::int64_t>(f.tellg());
    info.sha256 = sha256File(path);
    return std::make_unique<TorchScriptModel>(std::move(module), std::move(info), options.storage);
}

} // namespace qs
