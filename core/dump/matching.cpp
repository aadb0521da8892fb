#include "matching.h"

#include <algorithm>
#include <map>
#include <sstream>

namespace qs {

const char* toString(MatchMethod method) {
    return method == MatchMethod::Path ? "path" : "order+shape";
}

std::string normalizeModulePath(const std::string& path) {
    std::istringstream in(path);
    std::string segment, out;
    while (std::getline(in, segment, '.')) {
        if (segment == "module" || segment == "_packed_params" || segment.empty())
            continue;
        out += (out.empty() ? "" : ".") + segment;
    }
    return out;
}

namespace {

std::map<std::string, std::vector<int>> keyIndex(const std::vector<TapRecord>& records) {
    std::map<std::string, std::vector<int>> index;
    for (std::size_t i = 0; i < records.size(); ++i)
        index[normalizeModulePath(records[i].module) + "#" + std::to_string(records[i].call)]
            .push_back(static_cast<int>(i));
    return index;
}

// Longest chain of candidate pairs increasing in both indices (pairs sorted by original).
std::vector<LayerPair> increasingChain(const std::vector<LayerPair>& candidates) {
    const std::size_t n = candidates.size();
    std::vector<int> length(n, 1), prev(n, -1);
    int best = -1;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < i; ++j)
            if (candidates[j].quantized < candidates[i].quantized && length[j] + 1 > length[i]) {
                length[i] = length[j] + 1;
                prev[i] = static_cast<int>(j);
            }
        if (best < 0 || length[i] > length[static_cast<std::size_t>(best)])
            best = static_cast<int>(i);
    }
    std::vector<LayerPair> chain;
    for (int i = best; i >= 0; i = prev[static_cast<std::size_t>(i)])
        chain.push_back(candidates[static_cast<std::size_t>(i)]);
    std::reverse(chain.begin(), chain.end());
    return chain;
}

// LCS over shapes of original[a0,a1) and quantized[b0,b1).
void alignByShape(const std::vector<TapRecord>& o, const std::vector<TapRecord>& q, int a0, int a1,
                  int b0, int b1, std::vector<LayerPair>& out) {
    const int n = a1 - a0, m = b1 - b0;
    if (n <= 0 || m <= 0)
        return;
    std::vector<std::vector<int>> dp(static_cast<std::size_t>(n + 1),
                                     std::vector<int>(static_cast<std::size_t>(m + 1), 0));
    for (int i = n - 1; i >= 0; --i)
        for (int j = m - 1; j >= 0; --j) {
            auto& cell = dp[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
            if (o[static_cast<std::size_t>(a0 + i)].shape == q[static_cast<std::size_t>(b0 + j)].shape)
                cell = 1 + dp[static_cast<std::size_t>(i + 1)][static_cast<std::size_t>(j + 1)];
            else
                cell = std::max(dp[static_cast<std::size_t>(i + 1)][static_cast<std::size_t>(j)],
                                dp[static_cast<std::size_t>(i)][static_cast<std::size_t>(j + 1)]);
        }
    int i = 0, j = 0;
    while (i < n && j < m) {
        if (o[static_cast<std::size_t>(a0 + i)].shape == q[static_cast<std::size_t>(b0 + j)].shape) {
            out.push_back({a0 + i, b0 + j, MatchMethod::OrderShape});
            ++i;
            ++j;
        } else if (dp[static_cast<std::size_t>(i + 1)][static_cast<std::size_t>(j)] >=
                   dp[static_cast<std::size_t>(i)][static_cast<std::size_t>(j + 1)]) {
            ++i;
        } else {
            ++j;
        }
    }
}

} // namespace

MatchResult matchLayers(const std::vector<TapRecord>& original,
                        const std::vector<TapRecord>& quantized) {
    // 1. unique normalised path + call index on both sides, same shape
    const auto oIndex = keyIndex(original);
    const auto qIndex = keyIndex(quantized);
    std::vector<LayerPair> candidates;
    for (const auto& [key, os] : oIndex) {
        auto it = qIndex.find(key);
        if (os.size() != 1 || it == qIndex.end() || it->second.size() != 1)
            continue;
        const int a = os[0], b = it->second[0];
        if (original[static_cast<std::size_t>(a)].shape == quantized[static_cast<std::size_t>(b)].shape)
            candidates.push_back({a, b, MatchMethod::Path});
    }
    std::sort(candidates.begin(), candidates.end(),
              [](const LayerPair& x, const LayerPair& y) { return x.original < y.original; });
    const std::vector<LayerPair> anchors = increasingChain(candidates);

    // 2. between anchors: execution order + shape
    MatchResult result;
    int a = 0, b = 0;
    for (const auto& anchor : anchors) {
        alignByShape(original, quantized, a, anchor.original, b, anchor.quantized, result.pairs);
        result.pairs.push_back(anchor);
        a = anchor.original + 1;
        b = anchor.quantized + 1;
    }
    alignByShape(original, quantized, a, static_cast<int>(original.size()), b,
                 static_cast<int>(quantized.size()), result.pairs);

    std::vector<bool> usedO(original.size(), false), usedQ(quantized.size(), false);
    for (const auto& p : result.pairs) {
        usedO[static_cast<std::size_t>(p.original)] = true;
        usedQ[static_cast<std::size_t>(p.quantized)] = true;
    }
    for (std::size_t i = 0; i < usedO.size(); ++i)
        if (!usedO[i])
            result.unmatchedOriginal.push_back(static_cast<int>(i));
    for (std::size_t i = 0; i < usedQ.size(); ++i)
        if (!usedQ[i])
            result.unmatchedQuantized.push_back(static_cast<int>(i));
    return result;
}

std::vector<std::string> displayNames(const std::vector<TapRecord>& records) {
    std::map<std::string, int> calls;
    for (const auto& r : records)
        calls[r.module] = std::max(calls[r.module], r.call + 1);
    std::vector<std::string> names;
    names.reserve(records.size());
    for (const auto& r : records)
        names.push_back(calls[r.module] > 1 ? r.module + "#" + std::to_string(r.call) : r.module);
    return names;
}

} // namespace qs
