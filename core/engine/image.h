#pragma once
// Image input: JPEG/PNG through OpenCV, converted to the float layout a model expects.

#include "types.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qs {

struct Preprocess {
    std::optional<Size2> size;          // resize to this; unset = keep (or the model's recorded size)
    std::optional<std::array<float, 3>> mean; // subtracted from pixels scaled to [0,1]
    std::optional<std::array<float, 3>> std;  // then divided by this
    bool bgr = false;                   // feed channels in B,G,R order instead of R,G,B
};

struct Image {
    std::string source;                 // path it was read from
    int width = 0, height = 0;          // after resizing
    int originalWidth = 0, originalHeight = 0; // as read from the file
    std::vector<std::uint8_t> rgb;      // [H, W, 3] RGB, as fed (after resize)
    std::vector<float> chw;             // [3, H, W], scaled, normalised, channel order applied
};

// Reads and preprocesses one image. Throws Error(Input) naming the file when it cannot be
// read or decoded.
Image loadImage(const std::string& path, const Preprocess& pre);

// Throws Error(Input) naming the file when it is missing or a JPEG that does not decode
// cleanly (truncated, corrupt data: libjpeg would only warn and hand back grey pixels).
void checkImageFile(const std::string& path);

// Every *.jpg/*.jpeg/*.png/*.bmp in a directory, sorted by name. Throws when there is none.
std::vector<std::string> listImages(const std::string& directory);


} // namespace qs
