#include "detection.h"

#include "error.h"

#include <algorithm>
#include <numeric>

namespace qs {

const char* toString(OutputKind kind) {
    switch (kind) {
    case OutputKind::Detections:
        return "detections";
    case OutputKind::Logits:
        return "logits";
    case OutputKind::Raw:
        return "raw";
    }
    return "raw";
}


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

std::vector<Detection> nms(std::vector<Detection> boxes, float iouThreshold, std::size_t maxDetections) {
    std::stable_sort(boxes.begin(), boxes.end(),
                     [](const Detection& a, const Detection& b) { return a.score > b.score; });
    std::vector<Detection> kept;
    std::vector<bool> dropped(boxes.size(), false);
    for (std::size_t i = 0; i < boxes.size() && kept.size() < maxDetections; ++i) {
        if (dropped[i])
            continue;
        kept.push_back(boxes[i]);
        for (std::size_t j = i + 1; j < boxes.size(); ++j)
            if (!dropped[j] && boxes[j].label == boxes[i].label && iou(boxes[i], boxes[j]) > iouThreshold)
                dropped[j] = true;
    }
    return kept;
}

ModelOutput decodeYolo(const ModelOutput& raw, const YoloDecode& options) {
    if (raw.shape.size() != 2)
        throw Error(ErrorKind::Input, "YOLO decoding needs a [boxes, 5+C] or [4+C, boxes] output, got " +
                                          std::to_string(raw.shape.size()) + " dimensions");
    const auto rows = static_cast<std::size_t>(raw.shape[0]);
    const auto cols = static_cast<std::size_t>(raw.shape[1]);
    YoloLayout layout = options.layout;
    if (layout == YoloLayout::Auto)
        layout = rows > cols ? YoloLayout::V5 : YoloLayout::V8;
    const std::size_t boxes = layout == YoloLayout::V5 ? rows : cols;
    const std::size_t fields = layout == YoloLayout::V5 ? cols : rows;
    const std::size_t first = layout == YoloLayout::V5 ? 5 : 4; // first class column
    if (fields <= first)
        throw Error(ErrorKind::Input, std::string("YOLO ") + (layout == YoloLayout::V5 ? "v5" : "v8") +
                                          " output has " + std::to_string(fields) + " values per box, too few");
    // value f of box b
    auto at = [&](std::size_t b, std::size_t f) {
        return layout == YoloLayout::V5 ? raw.values[b * cols + f] : raw.values[f * cols + b];
    };
    std::vector<Detection> candidates;
    for (std::size_t b = 0; b < boxes; ++b) {
        std::size_t best = first;
        for (std::size_t f = first + 1; f < fields; ++f)
            if (at(b, f) > at(b, best))
                best = f;
        const float score = layout == YoloLayout::V5 ? at(b, 4) * at(b, best) : at(b, best);
        if (!(score >= options.confidence))
            continue;
        const float cx = at(b, 0), cy = at(b, 1), w = at(b, 2), h = at(b, 3);
        candidates.push_back({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score,
                              static_cast<std::int64_t>(best - first) + options.labelOffset});
    }
    ModelOutput out;
    out.kind = OutputKind::Detections;
    out.detections = nms(std::move(candidates), options.nmsIou, options.maxDetections);
    return out;
}

} // namespace qs
