#include "evaluate.h"

#include "dumpupdate.h"
#include "dumpwriter.h"
#include "error.h"
#include "jsonnumber.h"
#include "fileutil.h"
#include "sections.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

namespace qs {

namespace fs = std::filesystem;

ModelOutput toDetections(const ModelOutput& out, DecodeKind decode, const YoloDecode& yolo,
                         const std::string& modelPath) {
    if (out.kind == OutputKind::Detections && decode != DecodeKind::YoloV5 && decode != DecodeKind::YoloV8)
        return out;
    if (decode == DecodeKind::Torchvision)
        throw Error(ErrorKind::Input, modelPath + ": --decode torchvision, but the model returns no detection dicts");
    if (out.kind == OutputKind::Raw || (out.kind == OutputKind::Logits && decode != DecodeKind::Auto)) {
        YoloDecode y = yolo;
        if (decode == DecodeKind::YoloV5)
            y.layout = YoloLayout::V5;
        else if (decode == DecodeKind::YoloV8)
            y.layout = YoloLayout::V8;
        try {
            return decodeYolo(out, y);
        } catch (const Error& e) {
            throw Error(ErrorKind::Input, modelPath + ": " + e.what());
        }
    }
    throw Error(ErrorKind::Input, modelPath + ": the model returns " + toString(out.kind) +
                                      ", not detections (eval needs a detector)");
}

void writeCocoResults(const std::string& path, const std::vector<CocoBox>& detections) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& d : detections)
        j.push_back({{"image_id", d.imageId}, {"category_id", d.categoryId},
                     {"bbox", {d.x, d.y, d.w, d.h}}, {"score", d.score}});
    writeAtomically(path, [&](const std::string& temp) {
        std::ofstream out(temp);
        out << jsonText(j) << "\n";
        if (!out)
            throw Error(ErrorKind::Output, path + ": cannot write detections");
    });
}


EvalReport evaluatePair(const EvalOptions& options, const ProgressFn& progress) {
    if (!options.saveDetectionsDir.empty())
        for (const char* name : {"original.json", "quantized.json"})
            checkOutputPath((std::filesystem::path(options.saveDetectionsDir) / name).string(),
                            {{"--coco", options.annotationsPath}});
    auto report = [&](const Progress& p) { reportProgress(progress, p); };
    const CocoDataset whole = loadCocoAnnotations(options.annotationsPath);
    const CocoDataset gt = options.shardCount > 1 ? shardOf(whole, options.shardIndex, options.shardCount) : whole;
    if (gt.images.empty())
        throw Error(ErrorKind::Usage, "--shard " + std::to_string(options.shardIndex) + "/" +
                                          std::to_string(options.shardCount) + ": no image of " +
                                          options.annotationsPath + " falls in this shard");
    // every image must be there before any model runs
    std::vector<std::string> files;
    int missing = 0;
    std::string firstMissing;
    for (const auto& im : gt.images) {
        const fs::path p = fs::path(options.imagesDir) / im.fileName;
        std::error_code ec;
        if (!fs::is_regular_file(p, ec)) {
            if (missing++ == 0)
                firstMissing = p.string();
        }
        files.push_back(p.string());
    }
    if (missing)
        throw Error(ErrorKind::Input, options.annotationsPath + " refers to " + std::to_string(missing) +
                                          " image(s) not found in " + options.imagesDir + " (first: " +
                                          firstMissing + ")");
    configureRuntime(options.model);
    ModelOptions mo = options.model;
    mo.tapOps = 0; // no taps: accuracy only
    std::unique_ptr<Model> models[2] = {loadModel(options.originalPath, mo), loadModel(options.quantizedPath, mo)};
    const std::string paths[2] = {options.originalPath, options.quantizedPath};
    std::set<std::int64_t> categoryIds;
    for (const auto& c : gt.categories)
        categoryIds.insert(c.id);

    EvalReport rep;
    ModelEval* evals[2] = {&rep.original, &rep.quantized};
    for (std::size_t i = 0; i < gt.images.size(); ++i) {
        report({"eval", static_cast<std::int64_t>(i), static_cast<std::int64_t>(gt.images.size()), files[i]});
        const Image image = loadImage(files[i], options.preprocess);
        const double sx = static_cast<double>(image.originalWidth) / image.width;
        const double sy = static_cast<double>(image.originalHeight) / image.height;
        for (int side = 0; side < 2; ++side) {
            const auto start = std::chrono::steady_clock::now();
            const ModelOutput out = toDetections(models[side]->run(image, nullptr), options.decode,
                                                 options.yolo, paths[side]);
            evals[side]->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            for (const auto& d : out.detections) {
                if (!categoryIds.count(d.label)) {
                    ++evals[side]->ignoredLabels;
                    continue;
                }
                CocoBox b;
                b.imageId = gt.images[i].id;
                b.categoryId = d.label;
                b.x = d.x1 * sx;
                b.y = d.y1 * sy;
                b.w = (d.x2 - d.x1) * sx;
                b.h = (d.y2 - d.y1) * sy;
                b.score = d.score;
                evals[side]->detections.push_back(b);
            }
        }
    }
    report({"scoring", 0, 1, ""});
    const std::vector<CocoBox> detections[2] = {rep.original.detections, rep.quantized.detections};
    PairScore score = scorePair(gt, detections);
    rep.imageIds = std::move(score.imageIds);
    rep.imageFiles = std::move(score.imageFiles);
    for (int side = 0; side < 2; ++side) {
        evals[side]->coco = std::move(score.coco[side]);
        evals[side]->perImageMap = std::move(score.perImageMap[side]);
    }
    rep.deltaMean = score.deltaMean;
    rep.deltaStd = score.deltaStd;
    rep.relMean = score.relMean;
    rep.relStd = score.relStd;
    rep.relCount = score.relCount;
    rep.shardIndex = options.shardIndex;
    rep.shardCount = options.shardCount;

    for (int side = 0; side < 2; ++side)
        if (evals[side]->ignoredLabels > 0)
            rep.warnings.push_back(paths[side] + ": " + std::to_string(evals[side]->ignoredLabels) +
                                   " detections had a label that is no category of " +
                                   options.annotationsPath + "; they were not scored");
    for (const auto& c : gt.categories) {
        bool predicted = false;
        for (int side = 0; side < 2 && !predicted; ++side)
            for (const auto& d : evals[side]->detections)
                if (d.categoryId == c.id) {
                    predicted = true;
                    break;
                }
        if (!predicted)
            rep.warnings.push_back("category " + std::to_string(c.id) + " (" + c.name +
                                   ") was never predicted by either model: its AP is 0 (or undefined without ground truth)");
    }
    if (rep.imageIds.size() < gt.images.size())
        rep.warnings.push_back(std::to_string(gt.images.size() - rep.imageIds.size()) +
                               " image(s) have no ground truth: their detections count as false positives, "
                               "and they are left out of the per-image change");
    if (!options.saveDetectionsDir.empty()) {
        std::error_code ec;
        fs::create_directories(options.saveDetectionsDir, ec);
        if (ec)
            throw Error(ErrorKind::Output, options.saveDetectionsDir + ": cannot create directory (" + ec.message() + ")");
        writeCocoResults((fs::path(options.saveDetectionsDir) / "original.json").string(), rep.original.detections);
        writeCocoResults((fs::path(options.saveDetectionsDir) / "quantized.json").string(), rep.quantized.detections);
    }
    return rep;
}

void storeEvaluation(const std::string& dumpPath, const EvalReport& r, const std::string& annotations) {
    PairScore score;
    score.imageIds = r.imageIds;
    score.imageFiles = r.imageFiles;
    score.coco[0] = r.original.coco;
    score.coco[1] = r.quantized.coco;
    score.perImageMap[0] = r.original.perImageMap;
    score.perImageMap[1] = r.quantized.perImageMap;
    score.deltaMean = r.deltaMean;
    score.deltaStd = r.deltaStd;
    score.relMean = r.relMean;
    score.relStd = r.relStd;
    const std::vector<CocoBox> detections[2] = {r.original.detections, r.quantized.detections};
    const EvalData e = toEvalData(score, annotations, detections, r.shardIndex, r.shardCount);
    updateDump(dumpPath, [&e](H5::H5File& file) { writeEval(file, e); });
}

} // namespace qs
