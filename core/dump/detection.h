#pragma once
// Matching original vs quantized detections of one image.

#include "types.h"

#include <vector>

namespace qs {

float iou(const Detection& a, const Detection& b);

struct DetectionMatch {
    int original = -1;
    int quantized = -1;
    float iou = 0;
    float scoreDelta = 0; // quantized score - original score
};

// Greedy, highest original score first: each original detection takes the unused
// quantized detection of the same label with the highest IoU >= minIou.
std::vector<DetectionMatch> matchDetections(const std::vector<Detection>& original,
                                            const std::vector<Detection>& quantized,
                                            float minIou = 0.5f);

// Greedy non-maximum suppression per label: keeps the highest-scoring box and drops
// boxes of the same label that overlap it by more than iouThreshold. Sorted by score.
std::vector<Detection> nms(std::vector<Detection> boxes, float iouThreshold, std::size_t maxDetections);

// Raw YOLO-style output tensors (batch axis dropped):
//   v5: [boxes, 5 + C]: cx, cy, w, h (input pixels), objectness, C class scores
//   v8: [4 + C, boxes]: cx, cy, w, h (input pixels), C class scores
// Scores are probabilities (sigmoid applied, as exported by the common YOLO exporters);
// a box's score is objectness * best class score (v5) or the best class score (v8).
enum class YoloLayout { Auto, V5, V8 };
struct YoloDecode {
    YoloLayout layout = YoloLayout::Auto; // Auto: v5 when there are more rows than columns
    float confidence = 0.001f;            // boxes below this score are dropped
    float nmsIou = 0.6f;
    std::size_t maxDetections = 300;
    int labelOffset = 1;                  // class index k becomes label k + labelOffset
};
// Throws Error(Input) when the output does not have one of the two layouts.
ModelOutput decodeYolo(const ModelOutput& raw, const YoloDecode& options);

} // namespace qs
