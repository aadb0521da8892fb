// ONNX's own backend node tests (Debian's libonnx-testdata) through QuantScope's ONNX
// importer: every single-node test of an operator the importer translates is imported and
// run, and its outputs compared with the stored ones (rtol 1e-3, atol 1e-7 as ONNX's
// backend tests; integer outputs exactly). Inputs after the first become constants
// (initializers) first, as a model's weights are: QuantScope feeds one image tensor.
// Prints a table per operator (passed, failed, not imported and why); exits 1 when an
// imported test gives other numbers than ONNX's, or none passes.
//   onnx_conformance DATA_DIR [--markdown FILE] [--min-passed N]

#include "error.h"
#include "torchscript.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

namespace fs = std::filesystem;

namespace {

std::string readFile(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

struct Tally {
    int passed = 0, failed = 0, refused = 0;
    std::vector<std::string> failures, refusals;
};

// A message without the test's own name in front ("test_x: node ...": "node ...").
std::string reason(const std::string& message, const std::string& name) {
    std::string r = message;
    while (r.compare(0, name.size() + 2, name + ": ") == 0)
        r.erase(0, name.size() + 2);
    return r;
}

std::string firstLine(const std::string& s) {
    std::string t = s.substr(0, s.find('\n'));
    return t.size() > 160 ? t.substr(0, 157) + "..." : t;
}

// Why an imported test's output differs, or "" when it matches.
std::string mismatch(const at::Tensor& got, const at::Tensor& want) {
    if (got.sizes() != want.sizes()) {
        std::ostringstream s;
        s << "shape " << got.sizes() << " vs " << want.sizes();
        return s.str();
    }
    if (want.is_floating_point()) {
        const at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
        const at::Tensor ok = ((g - w).abs() <= 1e-7 + 1e-3 * w.abs()) | (g.isnan() & w.isnan()) | (g == w);
        if (!ok.all().item<bool>()) {
            std::ostringstream s;
            s << "max |diff| " << (g - w).abs().nan_to_num(0).max().item<double>();
            return s.str();
        }
        return {};
    }
    if (!at::equal(got.to(want.scalar_type()), want))
        return "integers differ";
    return {};
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: onnx_conformance DATA_DIR [--markdown FILE]\n";
        return 2;
    }
    const fs::path data = argv[1];
    std::string markdown;
    int minPassed = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (std::string(argv[i]) == "--markdown")
            markdown = argv[i + 1];
        else if (std::string(argv[i]) == "--min-passed")
            minPassed = std::atoi(argv[i + 1]);
    }
    std::vector<fs::path> tests;
    for (const auto& entry : fs::directory_iterator(data))
        if (entry.is_directory() && fs::exists(entry.path() / "model.onnx"))
            tests.push_back(entry.path());
    std::sort(tests.begin(), tests.end());
    std::map<std::string, Tally> byOp;
    for (const auto& dir : tests) {
        onnx::ModelProto model;
        if (!model.ParseFromString(readFile(dir / "model.onnx")) || model.graph().node_size() != 1)
            continue; // an expanded (multi-node) form: its own operators are tested alone
        const std::string op = model.graph().node(0).op_type();
        if (!model.graph().node(0).domain().empty() && model.graph().node(0).domain() != "ai.onnx")
            continue;
        if (!qs::ts::onnxOpImported(op))
            continue;
        Tally& t = byOp[op];
        const std::string name = dir.filename().string();
        const fs::path set = dir / "test_data_set_0";
        try {
            // inputs after the first become initializers
            std::vector<at::Tensor> inputs;
            auto* graph = model.mutable_graph();
            std::string unreadable;
            for (int i = 0; i < graph->input_size() && unreadable.empty(); ++i) {
                if (!graph->input(i).type().has_tensor_type()) {
                    unreadable = "input " + graph->input(i).name() + " is no tensor (sequence or optional)";
                    break;
                }
                const std::string bytes = readFile(set / ("input_" + std::to_string(i) + ".pb"));
                try {
                    inputs.push_back(qs::ts::tensorFromOnnx(bytes, name));
                } catch (const qs::Error& e) {
                    unreadable = firstLine(e.what());
                    break;
                }
                if (i > 0) {
                    onnx::TensorProto init;
                    init.ParseFromString(bytes);
                    init.set_name(graph->input(i).name());
                    *graph->add_initializer() = init;
                }
            }
            if (unreadable.empty()) // expected outputs of a type the importer does not read either
                for (int j = 0; j < graph->output_size() && unreadable.empty(); ++j) {
                    const auto type = graph->output(j).type().tensor_type().elem_type();
                    if (type == onnx::TensorProto::FLOAT16 || type == onnx::TensorProto::BFLOAT16 ||
                        type == onnx::TensorProto::STRING || type == onnx::TensorProto::UINT32 ||
                        type == onnx::TensorProto::UINT64 || !graph->output(j).type().has_tensor_type())
                        unreadable = "output " + graph->output(j).name() + " has a type QuantScope does not read";
                }
            if (!unreadable.empty()) {
                ++t.refused;
                t.refusals.push_back("`" + name + "`: " + reason(unreadable, name));
                continue;
            }
            while (graph->input_size() > 1)
                graph->mutable_input()->RemoveLast();
            std::string bytes;
            model.SerializeToString(&bytes);
            torch::jit::Module module;
            try {
                module = qs::ts::importOnnxBytes(bytes, name);
            } catch (const qs::Error& e) {
                ++t.refused;
                t.refusals.push_back("`" + name + "`: " + reason(firstLine(e.what()), name));
                continue;
            }
            const c10::IValue out = module.forward({inputs.front()});
            std::vector<at::Tensor> outputs;
            if (out.isTuple()) {
                for (const auto& e : out.toTupleRef().elements())
                    outputs.push_back(e.toTensor());
            } else {
                outputs.push_back(out.toTensor());
            }
            std::string why;
            for (std::size_t j = 0; j < outputs.size() && why.empty(); ++j) {
                const fs::path expected = set / ("output_" + std::to_string(j) + ".pb");
                why = mismatch(outputs[j], qs::ts::tensorFromOnnx(readFile(expected), name));
                if (!why.empty())
                    why = "output " + std::to_string(j) + ": " + why;
            }
            if (why.empty()) {
                ++t.passed;
            } else {
                ++t.failed;
                t.failures.push_back("`" + name + "`: " + why);
            }
        } catch (const std::exception& e) {
            ++t.failed;
            t.failures.push_back("`" + name + "`: " + reason(firstLine(e.what()), name));
        }
    }
    int passed = 0, failed = 0, refused = 0;
    std::ostringstream table;
    table << "| operator | passed | failed | not imported |\n|---|---:|---:|---:|\n";
    for (const auto& [op, t] : byOp) {
        table << "| " << op << " | " << t.passed << " | " << t.failed << " | " << t.refused << " |\n";
        passed += t.passed;
        failed += t.failed;
        refused += t.refused;
    }
    table << "| **all** | **" << passed << "** | **" << failed << "** | **" << refused << "** |\n";
    std::ostringstream notes;
    for (const auto& [op, t] : byOp) {
        for (const auto& f : t.failures)
            notes << "- FAILED " << f << "\n";
        for (const auto& r : t.refusals)
            notes << "- " << r << "\n";
    }
    std::cout << table.str() << "\n" << notes.str();
    if (!markdown.empty()) {
        std::ofstream md(markdown);
        md << table.str() << "\n" << notes.str();
    }
    if (failed > 0 || passed < minPassed) {
        std::cerr << "onnx_conformance: " << failed << " imported test(s) differ from ONNX's outputs; " << passed
                  << " passed (at least " << minPassed << " expected: an operator the importer translated before "
                  << "is refused now?)\n";
        return 1;
    }
    return 0;
}
