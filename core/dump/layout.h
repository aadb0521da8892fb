#pragma once
// The dump's layout: every group and the names shared between its writers and readers
// (docs/dump-format.md describes the same). The one owner of these strings: writers,
// readers and the engine ask here instead of spelling paths themselves.

#include <cstdio>
#include <string>

namespace qs::layout {

constexpr int kFormatVersion = 1;
constexpr const char* kFormatName = "quantscope-dump";

// groups
constexpr const char* kModels = "/models";       // /models/{original,quantized}: attributes
constexpr const char* kInputs = "/inputs";       // /inputs/<i>/image
constexpr const char* kOutputs = "/outputs";     // /outputs/<i>/{original,quantized,matches}
constexpr const char* kLayers = "/layers";       // /layers/<k>/{original,quantized,...}
constexpr const char* kUnmatched = "/unmatched"; // /unmatched/<side>/<seq>
constexpr const char* kStaging = "/staging";     // /staging/<side>/<seq>, image 0 before pairing
constexpr const char* kBench = "/bench";
constexpr const char* kEval = "/eval";
constexpr const char* kImageMetrics = "/image_metrics"; // /image_metrics/<metric>: [N, L]
constexpr const char* kKeptRows = "/kept_rows"; // [K] int64: the image each activation row holds

// datasets of a layer group
constexpr const char* kAbsDiff = "abs_diff";
constexpr const char* kRelDiff = "rel_diff";
constexpr const char* kChannels = "channels";
constexpr const char* kMatches = "matches";
constexpr const char* kImage = "image";
constexpr const char* kHistogram = "histogram"; // /layers/<k>/histogram/{original,quantized}

// the per-image channel means of a layer: mean_original, mean_quantized
inline std::string meanMap(const char* side) { return std::string("mean_") + side; }

// The name of the i-th member of an indexed group: 0000, 0001, ... (sorted by name =
// sorted by index for the first 10,000).
inline std::string indexName(int i) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "%04d", i);
    return buffer;
}

inline std::string child(const char* group, int i) {
    return std::string(group) + "/" + indexName(i);
}

} // namespace qs::layout

namespace qs {

// The two sides of a comparison; their names are the dump's group and dataset names.
enum class Side { Original = 0, Quantized = 1 };
const char* toString(Side side);

} // namespace qs
