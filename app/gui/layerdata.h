#pragma once
// What the layer view shows, computed from a dump off the GUI thread: the original and
// quantized activation and the absolute and relative difference, each reduced to one
// [H, W] map (mean over channels, max over channels, or one channel).

#include "dumpreader.h"

#include <QImage>
#include <QString>

#include <memory>
#include <vector>

namespace qs {

enum class ChannelMode { Mean, Max, Single };

struct LayerMaps {
    int layer = -1, image = 0, channel = 0;
    ChannelMode mode = ChannelMode::Mean;
    int width = 0, height = 0;   // of each map
    int channels = 0;
    std::vector<float> original, quantized, absDiff, relDiff;
    std::vector<float> channelSqnr, channelMse; // per channel, over all images
    QImage input;                // the input image, for the overlay
    QString error;               // set when reading failed
    bool notKept = false;        // this image's activations were not stored (--keep-activations)
};

LayerMaps loadLayerMaps(const DumpReader& dump, int layer, int image, ChannelMode mode, int channel);
// The input image as stored, else (compare --keep-activations keeps kept images' pixels
// only) its source file read again and scaled to the input size; null when neither.
QImage inputImage(const DumpReader& dump, int image);

// Samples for the output-error hexbin: x = original value, y = quantized value.
enum class OutputQuantity { Values, Scores, Boxes, IouVsScore };
struct OutputSamples {
    std::vector<double> x, y;
    // where each sample comes from: the image, and the matched detections (original,
    // quantized) or, for tensors, the element index (and -1)
    std::vector<int> image, first, second;
    QString xLabel, yLabel;
    QString error;
};
OutputSamples loadOutputSamples(const DumpReader& dump, OutputQuantity quantity, int image /* -1: all */);

} // namespace qs
