#pragma once
// The accuracy job: both models over a COCO-annotated image set, scored with the COCO
// detection metrics, plus the per-image change between the two.

#include "cocoeval.h"
#include "detection.h"
#include "image.h"
#include "model.h"
#include "progress.h"

#include <optional>
#include <string>
#include <vector>

namespace qs {

struct EvalOptions {
    std::string originalPath, quantizedPath;
    std::string annotationsPath; // COCO JSON
    std::string imagesDir;       // where its file_name entries live
    Preprocess preprocess;
    ModelOptions model;
    DecodeKind decode = DecodeKind::Auto;
    YoloDecode yolo;
    std::string saveDetectionsDir; // COCO results JSON of each model, when set
    // eval --shard I/N: only images I, I+N, ... of the annotation file (its file order),
    // scored among themselves; merge rescores the shards' detections together
    int shardIndex = 0, shardCount = 1;
};

struct ModelEval {
    CocoResult coco;
    std::vector<CocoBox> detections;      // in original image pixels
    std::vector<double> perImageMap;      // mAP@[.5:.95] per evaluated image (see imageIds)
    std::int64_t ignoredLabels = 0;       // detections whose label is no category
    double seconds = 0;
};

struct EvalReport {
    ModelEval original, quantized;
    std::vector<std::int64_t> imageIds;   // images with ground truth, for the per-image change
    std::vector<std::string> imageFiles;  // their file_name entries, in the same order
    double deltaMean = 0, deltaStd = 0;   // per-image mAP change, quantized - original, in points
    double relMean = 0, relStd = 0;       // per-image relative change in %, images with mAP > 0
    int relCount = 0;
    std::vector<std::string> warnings;
    int shardIndex = 0, shardCount = 1;
};

EvalReport evaluatePair(const EvalOptions& options, const ProgressFn& progress);

// Turns a model output into detections (decoding raw YOLO tensors as asked); throws
// Error(Input) for outputs that are not detections.
ModelOutput toDetections(const ModelOutput& out, DecodeKind decode, const YoloDecode& yolo,
                         const std::string& modelPath);

// Stores the accuracy of both models as /eval in a complete dump (for the GUI's summary).
void storeEvaluation(const std::string& dumpPath, const EvalReport& report, const std::string& annotations);

// Writes detections in the COCO results format ([{image_id, category_id, bbox, score}]).
void writeCocoResults(const std::string& path, const std::vector<CocoBox>& detections);

} // namespace qs
