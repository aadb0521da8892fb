#pragma once
// Matching original vs quantized detections of one image.

#include "model.h"

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

} // namespace qs
