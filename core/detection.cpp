#include "detection.h"

#include <algorithm>
#include <numeric>

namespace qs {

float iou(const Detection& a, const Detection& b) {
    const float ix = std::max(0.0f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
    const float iy = std::max(0.0f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
    const float inter = ix * iy;
    const float areaA = std::max(0.0f, a.x2 - a.x1) * std::max(0.0f, a.y2 - a.y1);
    const float areaB = std::max(0.0f, b.x2 - b.x1) * std::max(0.0f, b.y2 - b.y1);
    const float uni = areaA + areaB - inter;
    return uni > 0 ? inter / uni : 0.0f;
}

std::vector<DetectionMatch> matchDetections(const std::vector<Detection>& original,
                                            const std::vector<Detection>& quantized, float minIou) {
    std::vector<int> order(original.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
        return original[static_cast<std::size_t>(x)].score > original[static_cast<std::size_t>(y)].score;
    });
    std::vector<bool> used(quantized.size(), false);
    std::vector<DetectionMatch> matches;
    for (int i : order) {
        const Detection& o = original[static_cast<std::size_t>(i)];
        int best = -1;
        float bestIou = minIou;
        for (std::size_t j = 0; j < quantized.size(); ++j) {
            if (used[j] || quantized[j].label != o.label)
                continue;
            const float v = iou(o, quantized[j]);
            if (v >= bestIou && (best < 0 || v > bestIou)) {
                best = static_cast<int>(j);
                bestIou = v;
            }
        }
        if (best >= 0) {
            used[static_cast<std::size_t>(best)] = true;
            matches.push_back({i, best, bestIou, quantized[static_cast<std::size_t>(best)].score - o.score});
        }
    }
    return matches;
}

} // namespace qs
