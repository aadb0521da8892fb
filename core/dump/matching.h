#pragma once
// Pairs the layers of an original model with those of its quantized counterpart.
// Graphs differ (fused conv+bn+relu, renamed or wrapped modules), so: first by
// normalised module path and call index (kept only where the pairs stay in execution
// order and shapes agree), then, between those anchors, by execution order and output
// shape (longest common subsequence). What is left is reported, never guessed.

#include <cstdint>
#include <string>
#include <vector>

namespace qs {

struct TapRecord {
    std::string module;
    int call = 0;
    std::string op;
    std::vector<std::int64_t> shape; // without the batch dimension
    int site = -1;                   // the tap site (Activation::site)
};

enum class MatchMethod { Path, OrderShape };
const char* toString(MatchMethod method);

struct LayerPair {
    int original = -1;  // index into the original's execution-ordered records
    int quantized = -1; // index into the quantized model's records
    MatchMethod method = MatchMethod::Path;
};

struct MatchResult {
    std::vector<LayerPair> pairs; // in execution order
    std::vector<int> unmatchedOriginal;
    std::vector<int> unmatchedQuantized;
};

// Drops wrapper segments that quantization routes add ("module" from QuantWrapper,
// "_packed_params") so that equivalent paths compare equal.
std::string normalizeModulePath(const std::string& path);

MatchResult matchLayers(const std::vector<TapRecord>& original,
                        const std::vector<TapRecord>& quantized);

// Display name of a record: the module path, with "#k" when the module was called more
// than once in the pass (calls counted from 0).
std::vector<std::string> displayNames(const std::vector<TapRecord>& records);

} // namespace qs
