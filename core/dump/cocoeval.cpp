#include "cocoeval.h"

#include "error.h"

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <numeric>
#include <set>
#include <unordered_map>

namespace qs {

namespace {

constexpr int kIouCount = 10;
constexpr int kRecallCount = 101;
constexpr std::size_t kMaxDets = 100;

// The thresholds exactly as numpy.linspace computes them (i * step + start, last = stop),
// so that a recall landing exactly on a threshold is treated the same way.
double iouThreshold(int i) {
    const double step = (0.95 - 0.5) / 9.0;
    return i == kIouCount - 1 ? 0.95 : i * step + 0.5;
}
double recallThreshold(int i) { return i == kRecallCount - 1 ? 1.0 : i * (1.0 / 100.0); }

double boxIou(const CocoBox& d, const CocoBox& g) {
    const double w = std::min(d.x + d.w, g.x + g.w) - std::max(d.x, g.x);
    const double h = std::min(d.y + d.h, g.y + g.h) - std::max(d.y, g.y);
    if (w <= 0 || h <= 0)
        return 0;
    const double inter = w * h;
    const double unionArea = g.crowd ? d.w * d.h : d.w * d.h + g.w * g.h - inter;
    return unionArea > 0 ? inter / unionArea : 0;
}

template <typename T>
T field(const nlohmann::json& obj, const char* name, const std::string& path, const std::string& where) {
    if (!obj.is_object() || !obj.contains(name))
        throw Error(ErrorKind::Input, path + ": " + where + " has no \"" + name + "\"");
    try {
        return obj.at(name).get<T>();
    } catch (const nlohmann::json::exception&) {
        throw Error(ErrorKind::Input, path + ": " + where + ": \"" + name + "\" has the wrong type");
    }
}

template <typename T>
T optionalField(const nlohmann::json& obj, const char* name, T fallback, const std::string& path,
                const std::string& where) {
    if (!obj.contains(name) || obj.at(name).is_null())
        return fallback;
    return field<T>(obj, name, path, where);
}

// Per image and category: the result of matching, as the COCO evaluation keeps it.
struct ImageEval {
    std::vector<double> scores;                    // detections kept, by descending score
    std::vector<std::array<bool, kIouCount>> matched, ignored;
    int nonIgnoredGt = 0;
};

ImageEval evaluateImage(std::vector<const CocoBox*> gts, std::vector<const CocoBox*> dts) {
    ImageEval e;
    // ground truth: non-ignored (non-crowd) first, order otherwise kept
    std::stable_sort(gts.begin(), gts.end(), [](const CocoBox* a, const CocoBox* b) { return !a->crowd && b->crowd; });
    std::stable_sort(dts.begin(), dts.end(), [](const CocoBox* a, const CocoBox* b) { return a->score > b->score; });
    if (dts.size() > kMaxDets)
        dts.resize(kMaxDets);
    for (const auto* g : gts)
        e.nonIgnoredGt += g->crowd ? 0 : 1;
    std::vector<std::vector<double>> ious(dts.size(), std::vector<double>(gts.size()));
    for (std::size_t d = 0; d < dts.size(); ++d)
        for (std::size_t g = 0; g < gts.size(); ++g)
            ious[d][g] = boxIou(*dts[d], *gts[g]);
    e.scores.reserve(dts.size());
    for (const auto* d : dts)
        e.scores.push_back(d->score);
    e.matched.assign(dts.size(), {});
    e.ignored.assign(dts.size(), {});
    for (int t = 0; t < kIouCount; ++t) {
        std::vector<bool> gtTaken(gts.size(), false);
        for (std::size_t d = 0; d < dts.size(); ++d) {
            double best = std::min(iouThreshold(t), 1 - 1e-10);
            int m = -1;
            for (std::size_t g = 0; g < gts.size(); ++g) {
                if (gtTaken[g] && !gts[g]->crowd)
                    continue;
                if (m > -1 && !gts[static_cast<std::size_t>(m)]->crowd && gts[g]->crowd)
                    break; // a real match beats any crowd region; crowds come last
                if (ious[d][g] < best)
                    continue;
                best = ious[d][g];
                m = static_cast<int>(g);
            }
            if (m == -1)
                continue;
            e.ignored[d][static_cast<std::size_t>(t)] = gts[static_cast<std::size_t>(m)]->crowd;
            e.matched[d][static_cast<std::size_t>(t)] = true;
            gtTaken[static_cast<std::size_t>(m)] = true;
        }
    }
    return e;
}

} // namespace

CocoDataset loadCocoAnnotations(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw Error(ErrorKind::Input, path + ": cannot open annotation file");
    nlohmann::json j;
    try {
        in >> j;
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::Input, path + ": malformed JSON (" + firstLine(e.what()) + ")");
    }
    if (!j.is_object() || !j.contains("images") || !j["images"].is_array())
        throw Error(ErrorKind::Input, path + ": not COCO annotations (no \"images\" array)");
    if (!j.contains("annotations") || !j["annotations"].is_array())
        throw Error(ErrorKind::Input, path + ": not COCO annotations (no \"annotations\" array)");
    if (!j.contains("categories") || !j["categories"].is_array())
        throw Error(ErrorKind::Input, path + ": not COCO annotations (no \"categories\" array)");
    CocoDataset ds;
    ds.path = path;
    std::set<std::int64_t> imageIds, categoryIds;
    for (std::size_t i = 0; i < j["images"].size(); ++i) {
        const auto& im = j["images"][i];
        const std::string where = "images[" + std::to_string(i) + "]";
        CocoImage img;
        img.id = field<std::int64_t>(im, "id", path, where);
        img.fileName = field<std::string>(im, "file_name", path, where);
        img.width = optionalField<int>(im, "width", 0, path, where);
        img.height = optionalField<int>(im, "height", 0, path, where);
        if (!imageIds.insert(img.id).second)
            throw Error(ErrorKind::Input, path + ": image id " + std::to_string(img.id) + " appears twice");
        ds.images.push_back(img);
    }
    for (std::size_t i = 0; i < j["categories"].size(); ++i) {
        const auto& c = j["categories"][i];
        const std::string where = "categories[" + std::to_string(i) + "]";
        CocoCategory cat{field<std::int64_t>(c, "id", path, where), optionalField<std::string>(c, "name", std::string(), path, where)};
        if (!categoryIds.insert(cat.id).second)
            throw Error(ErrorKind::Input, path + ": category id " + std::to_string(cat.id) + " appears twice");
        ds.categories.push_back(cat);
    }
    for (std::size_t i = 0; i < j["annotations"].size(); ++i) {
        const auto& a = j["annotations"][i];
        const std::string where = "annotations[" + std::to_string(i) + "]";
        CocoBox b;
        b.imageId = field<std::int64_t>(a, "image_id", path, where);
        b.categoryId = field<std::int64_t>(a, "category_id", path, where);
        const auto bbox = field<std::vector<double>>(a, "bbox", path, where);
        if (bbox.size() != 4 || bbox[2] < 0 || bbox[3] < 0)
            throw Error(ErrorKind::Input, path + ": " + where + ": bbox must be [x, y, w, h] with w, h >= 0");
        b.x = bbox[0];
        b.y = bbox[1];
        b.w = bbox[2];
        b.h = bbox[3];
        b.crowd = a.contains("iscrowd") && a["iscrowd"].is_boolean()
                      ? a["iscrowd"].get<bool>()
                      : optionalField<int>(a, "iscrowd", 0, path, where) != 0;
        b.area = a.contains("area") && a["area"].is_number() ? a["area"].get<double>() : b.w * b.h;
        if (!imageIds.count(b.imageId))
            throw Error(ErrorKind::Input, path + ": " + where + " refers to image id " +
                                              std::to_string(b.imageId) + ", which is not in \"images\"");
        if (!categoryIds.count(b.categoryId))
            throw Error(ErrorKind::Input, path + ": " + where + " refers to category id " +
                                              std::to_string(b.categoryId) + ", which is not in \"categories\"");
        ds.annotations.push_back(b);
    }
    if (ds.images.empty())
        throw Error(ErrorKind::Input, path + ": the annotation file lists no images");
    return ds;
}

CocoResult evaluateCoco(const CocoDataset& gt, const std::vector<CocoBox>& detections,
                        const std::vector<std::int64_t>& imageIdsIn) {
    std::vector<std::int64_t> imageIds = imageIdsIn;
    if (imageIds.empty())
        for (const auto& im : gt.images)
            imageIds.push_back(im.id);
    std::sort(imageIds.begin(), imageIds.end());
    imageIds.erase(std::unique(imageIds.begin(), imageIds.end()), imageIds.end());
    const std::set<std::int64_t> wanted(imageIds.begin(), imageIds.end());

    using Key = std::pair<std::int64_t, std::int64_t>; // image, category
    std::map<Key, std::vector<const CocoBox*>> gts, dts;
    for (const auto& a : gt.annotations)
        if (wanted.count(a.imageId))
            gts[{a.imageId, a.categoryId}].push_back(&a);
    for (const auto& d : detections)
        if (wanted.count(d.imageId))
            dts[{d.imageId, d.categoryId}].push_back(&d);

    CocoResult result;
    std::vector<double> apAll, ap50All, ap75All, recallAll;
    for (const auto& cat : gt.categories) {
        ClassResult cr;
        cr.categoryId = cat.id;
        cr.name = cat.name;
        // per image (in id order), then all detections merged by descending score
        struct Row {
            double score;
            std::size_t order;
            const ImageEval* image;
            std::size_t index;
        };
        std::vector<ImageEval> evals;
        evals.reserve(imageIds.size());
        int nonIgnored = 0;
        for (auto id : imageIds) {
            auto g = gts.find({id, cat.id});
            auto d = dts.find({id, cat.id});
            if (g == gts.end() && d == dts.end())
                continue;
            evals.push_back(evaluateImage(g == gts.end() ? std::vector<const CocoBox*>{} : g->second,
                                          d == dts.end() ? std::vector<const CocoBox*>{} : d->second));
            nonIgnored += evals.back().nonIgnoredGt;
        }
        cr.groundTruth = nonIgnored;
        if (nonIgnored == 0) {
            result.classes.push_back(cr);
            continue; // no ground truth: AP undefined (-1), as in COCO
        }
        std::vector<Row> rows;
        for (const auto& e : evals)
            for (std::size_t i = 0; i < e.scores.size(); ++i)
                rows.push_back({e.scores[i], rows.size(), &e, i});
        std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.score > b.score; });

        double apSum = 0, recallSum = 0;
        double apAt[kIouCount] = {};
        for (int t = 0; t < kIouCount; ++t) {
            std::vector<double> recall, precision;
            double tp = 0, fp = 0;
            const auto ti = static_cast<std::size_t>(t);
            for (const auto& r : rows) {
                // a detection matched to a crowd region counts neither as TP nor FP,
                // but keeps its place in the ranking (as in the COCO evaluation)
                if (!r.image->ignored[r.index][ti]) {
                    if (r.image->matched[r.index][ti])
                        tp += 1;
                    else
                        fp += 1;
                }
                recall.push_back(tp / nonIgnored);
                precision.push_back(tp / (fp + tp + std::numeric_limits<double>::epsilon()));
            }
            const double finalRecall = recall.empty() ? 0 : recall.back();
            for (std::size_t i = precision.size(); i-- > 1;)
                precision[i - 1] = std::max(precision[i - 1], precision[i]);
            double sum = 0;
            for (int k = 0; k < kRecallCount; ++k) {
                const auto it = std::lower_bound(recall.begin(), recall.end(), recallThreshold(k));
                if (it == recall.end())
                    break; // precision 0 beyond the highest recall reached
                sum += precision[static_cast<std::size_t>(it - recall.begin())];
            }
            apAt[t] = sum / kRecallCount;
            apSum += apAt[t];
            recallSum += finalRecall;
        }
        cr.ap = apSum / kIouCount;
        cr.ap50 = apAt[0];
        cr.recall = recallSum / kIouCount;
        apAll.push_back(cr.ap);
        ap50All.push_back(apAt[0]);
        ap75All.push_back(apAt[5]);
        recallAll.push_back(cr.recall);
        result.classes.push_back(cr);
    }
    auto mean = [](const std::vector<double>& v) {
        return v.empty() ? -1.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    };
    result.map = mean(apAll);
    result.map50 = mean(ap50All);
    result.map75 = mean(ap75All);
    result.recall = mean(recallAll);
    return result;
}

std::vector<std::string> cocoImagePaths(const std::string& annotationsPath, const std::string& imagesDir) {
    const CocoDataset coco = loadCocoAnnotations(annotationsPath);
    std::vector<std::string> paths;
    for (const auto& img : coco.images)
        paths.push_back((std::filesystem::path(imagesDir) / img.fileName).string());
    std::sort(paths.begin(), paths.end());
    if (paths.empty())
        throw Error(ErrorKind::Input, annotationsPath + ": the annotation file lists no images");
    return paths;
}

namespace {
void meanStd(const std::vector<double>& v, double& mean, double& stdev) {
    mean = stdev = 0;
    if (v.empty())
        return;
    for (double x : v)
        mean += x;
    mean /= static_cast<double>(v.size());
    if (v.size() < 2)
        return;
    double ss = 0;
    for (double x : v)
        ss += (x - mean) * (x - mean);
    stdev = std::sqrt(ss / static_cast<double>(v.size() - 1));
}
} // namespace

PairScore scorePair(const CocoDataset& gt, const std::vector<CocoBox> detections[2]) {
    PairScore r;
    std::set<std::int64_t> withGt;
    for (const auto& a : gt.annotations)
        if (!a.crowd)
            withGt.insert(a.imageId);
    r.imageIds.assign(withGt.begin(), withGt.end());
    for (auto id : r.imageIds)
        for (const auto& im : gt.images)
            if (im.id == id) {
                r.imageFiles.push_back(im.fileName);
                break;
            }
    for (int side = 0; side < 2; ++side) {
        r.coco[side] = evaluateCoco(gt, detections[side]);
        for (auto id : r.imageIds)
            r.perImageMap[side].push_back(evaluateCoco(gt, detections[side], {id}).map);
    }
    std::vector<double> deltas, rel;
    for (std::size_t k = 0; k < r.imageIds.size(); ++k) {
        const double o = r.perImageMap[0][k], q = r.perImageMap[1][k];
        deltas.push_back(100.0 * (q - o));
        if (o > 0)
            rel.push_back(100.0 * (q - o) / o);
    }
    meanStd(deltas, r.deltaMean, r.deltaStd);
    meanStd(rel, r.relMean, r.relStd);
    r.relCount = static_cast<int>(rel.size());
    return r;
}

CocoDataset shardOf(const CocoDataset& gt, int index, int count) {
    CocoDataset part;
    part.path = gt.path;
    part.categories = gt.categories;
    std::set<std::int64_t> ids;
    for (std::size_t i = static_cast<std::size_t>(index); i < gt.images.size(); i += static_cast<std::size_t>(count)) {
        part.images.push_back(gt.images[i]);
        ids.insert(gt.images[i].id);
    }
    for (const auto& a : gt.annotations)
        if (ids.count(a.imageId))
            part.annotations.push_back(a);
    return part;
}

} // namespace qs
