#pragma once
// A recorded tensor handed from a tap to a sink, with no LibTorch types in sight.
// The buffer is owned by whoever produced it (a tensor kept alive by the deleter).

#include "types.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qs {

struct Activation {
    std::string module;              // module path, e.g. backbone.body.layer1.0.conv1
    std::string op;                  // graph op, e.g. aten::conv2d, quantized::conv2d_relu
    std::string epilogue;            // see TapSite::epilogue
    int call = 0;                    // n-th call of this tap site in the current forward pass
    int site = 0;                    // tap site index (static position in the graph)
    std::vector<std::int64_t> shape; // e.g. [1, C, H, W]
    StorageType type = StorageType::F32;
    std::shared_ptr<const void> data; // contiguous, row-major, `type` elements
    double scale = std::nan("");      // quantization scale of the op output, when per-tensor
    std::int64_t zeroPoint = 0;
    std::int64_t quantMin = 0, quantMax = 255; // the integer range of its type (quint8: 0..255)

    std::int64_t numel() const {
        std::int64_t n = 1;
        for (auto d : shape)
            n *= d;
        return n;
    }
    std::size_t bytes() const {
        return static_cast<std::size_t>(numel()) * (type == StorageType::F16 ? 2 : 4);
    }
};

// Receives activations during a forward pass. Called on the thread running the model;
// may block (bounded queue) but must not keep the caller longer than needed.
class ActivationSink {
public:
    virtual ~ActivationSink() = default;
    virtual void push(Activation activation) = 0;
};

} // namespace qs
