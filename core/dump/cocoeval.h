#pragma once
// COCO detection evaluation (bbox), following the definitions of the COCO evaluation:
// IoU thresholds .50:.05:.95, 101 recall points, maxDets 100, area range "all", greedy
// matching by descending score per image and category, crowd ground truth ignored.
// Verified against an independent Python implementation (tools/coco_eval.py) in tests.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qs {

struct CocoImage {
    std::int64_t id = 0;
    std::string fileName;
    int width = 0, height = 0;
};

struct CocoCategory {
    std::int64_t id = 0;
    std::string name;
};

// A ground-truth annotation or a detection; bbox is [x, y, w, h] in image pixels.
struct CocoBox {
    std::int64_t imageId = 0;
    std::int64_t categoryId = 0;
    double x = 0, y = 0, w = 0, h = 0;
    double score = 1;   // detections only
    bool crowd = false; // ground truth only
    double area = 0;    // ground truth: the annotation's area (segment area in COCO)
};

struct CocoDataset {
    std::string path;
    std::vector<CocoImage> images;
    std::vector<CocoCategory> categories;
    std::vector<CocoBox> annotations;
};

// Reads COCO-format annotation JSON. Throws Error(Input) naming the file and what is
// wrong (malformed JSON, missing fields, an annotation of an unknown image or category).
CocoDataset loadCocoAnnotations(const std::string& path);

// The image files an annotation file lists, under imagesDir, sorted. Throws Error(Input)
// naming the file when it lists none.
std::vector<std::string> cocoImagePaths(const std::string& annotationsPath, const std::string& imagesDir);

struct ClassResult {
    std::int64_t categoryId = 0;
    std::string name;
    int groundTruth = 0;  // non-crowd annotations
    double ap = -1;       // AP@[.5:.95]; -1 when the class has no ground truth
    double ap50 = -1;     // AP@.5
    double recall = -1;   // AR, maxDets 100, averaged over the IoU thresholds
};

struct CocoResult {
    double map = -1;   // mAP@[.5:.95]
    double map50 = -1; // mAP@.5
    double map75 = -1;
    double recall = -1; // AR@100
    std::vector<ClassResult> classes;
};

// Evaluates detections against the dataset, optionally on a subset of image ids.
CocoResult evaluateCoco(const CocoDataset& gt, const std::vector<CocoBox>& detections,
                        const std::vector<std::int64_t>& imageIds = {});

// Both models of a pair scored on one annotation set: each model's COCO result, each
// image's mAP@[.5:.95] (images with ground truth), and the per-image change.
struct PairScore {
    CocoResult coco[2];
    std::vector<std::int64_t> imageIds;   // images with ground truth
    std::vector<std::string> imageFiles;  // their file_name entries
    std::vector<double> perImageMap[2];
    double deltaMean = 0, deltaStd = 0;   // quantized - original, in points
    double relMean = 0, relStd = 0;       // relative, in %, over images with mAP > 0
    int relCount = 0;
};
PairScore scorePair(const CocoDataset& gt, const std::vector<CocoBox> detections[2]);

// The part of a dataset an eval --shard I/N covers: images I, I+N, ... in file order, and
// their annotations.
CocoDataset shardOf(const CocoDataset& gt, int index, int count);

} // namespace qs
