#pragma once
// Plain value types shared by the dump, the engine and the views. No LibTorch, no HDF5,
// no Qt: the GUI and the dump reader use them without the engine.

#include <cstdint>
#include <vector>

namespace qs {

struct Size2 {
    int width = 0;
    int height = 0;
};

// What recorded activations are stored as.
enum class StorageType { F16, F32 };

enum class OutputKind {
    Detections, // boxes/scores/labels (torchvision dict outputs)
    Logits,     // Tensor[N, K]
    Raw,        // any other tensor (first tensor found in the output)
};
const char* toString(OutputKind kind);

struct Detection {
    float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
    float score = 0;
    std::int64_t label = 0;
};

// The decoded output of a model for one image.
struct ModelOutput {
    OutputKind kind = OutputKind::Raw;
    std::vector<Detection> detections;  // Detections
    std::vector<float> values;          // Logits / Raw (row-major)
    std::vector<std::int64_t> shape;    // Logits / Raw shape, batch dimension dropped
};

} // namespace qs
