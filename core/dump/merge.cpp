#include "merge.h"

#include "cocoeval.h"
#include "dumpreader.h"
#include "error.h"
#include "fileutil.h"
#include "h5util.h"
#include "layout.h"
#include "sections.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

namespace qs {

namespace {

struct Shard {
    std::string path;
    std::unique_ptr<H5::H5File> file;
    RunRecord run;
    int images = 0;
    std::string dtype;
    std::string sha[2];
};

// One image of the merged dump: where it comes from.
struct Source {
    std::int64_t listIndex = 0;
    std::size_t shard = 0;
    int image = 0;
};

// Copies every attribute of `from` onto `to` (the kinds dumps hold: strings, numbers,
// integer vectors).
void copyAttributes(const H5::H5Object& from, H5::H5Object& to) {
    for (int i = 0, n = from.getNumAttrs(); i < n; ++i) {
        H5::Attribute a = from.openAttribute(static_cast<unsigned>(i));
        const std::string name = a.getName();
        const H5T_class_t cls = a.getTypeClass();
        const bool scalar = a.getSpace().getSimpleExtentNpoints() == 1 && a.getSpace().getSimpleExtentNdims() == 0;
        if (cls == H5T_STRING)
            h5::setAttr(to, name, h5::stringAttr(from, name));
        else if (cls == H5T_FLOAT)
            h5::setAttr(to, name, h5::doubleAttr(from, name, 0));
        else if (cls == H5T_INTEGER && scalar)
            h5::setAttr(to, name, h5::intAttr(from, name, 0));
        else if (cls == H5T_INTEGER)
            h5::setAttr(to, name, h5::intsAttr(from, name));
    }
}

// A dataset with the image axis first ([N, ...]) made from the shards' datasets at `path`,
// image j of the merged dump read from its source: same type, chunks, filters, attributes.
void concatenate(H5::H5File& out, const std::string& path, std::vector<Shard>& shards,
                 const std::vector<Source>& order) {
    H5::DataSet first = shards.front().file->openDataSet(path);
    auto dims = h5::dims(first);
    dims[0] = order.size();
    const H5::DataType type = first.getDataType();
    H5::DSetCreatPropList props = first.getCreatePlist();
    H5::DSetAccPropList access;
    access.setChunkCache(0, 0, 1.0); // whole chunks written once: a cache would only hold memory
    H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
    H5::DataSet ds = out.createDataSet(path, type, space, props, access);
    copyAttributes(first, ds);
    std::vector<hsize_t> count = dims, start(dims.size(), 0);
    count[0] = 1;
    hsize_t perImage = 1;
    for (std::size_t d = 1; d < dims.size(); ++d)
        perImage *= dims[d];
    std::vector<unsigned char> buffer(perImage * type.getSize());
    std::map<std::size_t, H5::DataSet> open;
    H5::DataSpace memory(static_cast<int>(count.size()), count.data());
    for (std::size_t j = 0; j < order.size(); ++j) {
        const Source& s = order[j];
        auto it = open.find(s.shard);
        if (it == open.end())
            it = open.emplace(s.shard, shards[s.shard].file->openDataSet(path)).first;
        auto fromDims = h5::dims(it->second);
        if (fromDims.size() != dims.size() || !std::equal(dims.begin() + 1, dims.end(), fromDims.begin() + 1) ||
            static_cast<hsize_t>(s.image) >= fromDims[0])
            throw Error(ErrorKind::Input, shards[s.shard].path + ": " + path + " has shape " + h5::dimsText(fromDims) +
                                              ", unlike the other shards'");
        H5::DataSpace from = it->second.getSpace();
        start[0] = static_cast<hsize_t>(s.image);
        from.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
        it->second.read(buffer.data(), type, memory, from);
        H5::DataSpace to = ds.getSpace();
        start[0] = j;
        to.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
        ds.write(buffer.data(), type, memory, to);
    }
}

// A streamed layer's histogram: the shards' counts added, on the bins they share.
void addHistograms(H5::Group& layer, std::vector<Shard>& shards, const std::string& group, int index) {
    Histogram sum;
    ValueRange range;
    for (std::size_t k = 0; k < shards.size(); ++k) {
        const H5::Group from = shards[k].file->openGroup(group);
        const std::string where = shards[k].path + ": layer " + layout::indexName(index);
        Histogram h = readHistogram(from, where);
        if (k == 0) {
            sum = std::move(h);
            range = readHistogramRange(from);
            continue;
        }
        const auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
        if (h.bins() != sum.bins() || !same(h.low, sum.low) || !same(h.binWidth, sum.binWidth) ||
            !same(h.scale, sum.scale) || h.zeroPoint != sum.zeroPoint)
            throw Error(ErrorKind::Input, where + ": its histogram bins differ from " + shards.front().path +
                                              "'s: shards by an older QuantScope planned them on their own first "
                                              "image; rerun the shards with this one, which plans on the list's first)");
        for (int side = 0; side < 2; ++side)
            for (std::size_t b = 0; b < sum.counts[side].size(); ++b)
                sum.counts[side][b] += h.counts[side][b];
    }
    writeHistogram(layer, sum, range);
}

void checkSame(const std::string& what, const std::string& a, const std::string& b, const Shard& shard,
               const Shard& first) {
    if (a != b)
        throw Error(ErrorKind::Input, shard.path + ": not a shard of the same run as " + first.path + ": " + what +
                                          " is " + (b.empty() ? "(none)" : b) + " there, " + (a.empty() ? "(none)" : a) +
                                          " here");
}

// /eval of the merged dump: when every shard holds one eval --shard of the same
// annotations, their detections scored together (COCO mAP of the whole set, exactly as
// one eval run would give it).
void mergeEvaluations(H5::H5File& out, const std::vector<Shard>& shards,
                      const std::vector<std::unique_ptr<DumpReader>>& readers) {
    std::size_t with = 0;
    for (const auto& r : readers)
        with += r->hasEval() ? 1 : 0;
    if (with == 0)
        return;
    if (with != readers.size())
        throw Error(ErrorKind::Input, "merge: only " + std::to_string(with) + " of the " + std::to_string(readers.size()) +
                                          " shards hold an evaluation (eval --shard I/N --into each shard, or none)");
    std::vector<EvalData> evals;
    for (const auto& r : readers)
        evals.push_back(r->eval());
    std::set<int> seen;
    for (std::size_t k = 0; k < evals.size(); ++k) {
        const EvalData& e = evals[k];
        if (e.annotations != evals.front().annotations)
            throw Error(ErrorKind::Input, shards[k].path + ": its evaluation used " + e.annotations + ", " +
                                              shards.front().path + "'s " + evals.front().annotations);
        if (e.shardCount != static_cast<int>(evals.size()) || !seen.insert(e.shardIndex).second)
            throw Error(ErrorKind::Input, shards[k].path + ": its evaluation is eval shard " + std::to_string(e.shardIndex) +
                                              "/" + std::to_string(e.shardCount) + ": give each of the " +
                                              std::to_string(evals.size()) + " eval shards once");
        if (e.detections[0].empty() && e.detections[1].empty() && e.images > 0)
            throw Error(ErrorKind::Input, shards[k].path + ": its evaluation holds no detections (made before they were "
                                                           "stored): run eval --into again");
    }
    CocoDataset gt;
    try {
        gt = loadCocoAnnotations(evals.front().annotations);
    } catch (const Error& e) {
        throw Error(ErrorKind::Input, std::string("merge: the shards' evaluations are scored together against their "
                                                  "annotations, which cannot be read: ") + e.what());
    }
    std::vector<CocoBox> detections[2];
    for (const auto& e : evals)
        for (int side = 0; side < 2; ++side)
            detections[side].insert(detections[side].end(), e.detections[side].begin(), e.detections[side].end());
    const PairScore score = scorePair(gt, detections);
    writeEval(out, toEvalData(score, evals.front().annotations, detections));
}

} // namespace

MergeReport mergeDumps(const std::vector<std::string>& paths, const std::string& out, int threads,
                       const ProgressFn& progress) {
    if (paths.size() < 2)
        throw Error(ErrorKind::Usage, "merge: give at least two shard dumps");
    {
        std::vector<std::pair<std::string, std::string>> inputs;
        for (const auto& p : paths)
            inputs.push_back({"shard", p});
        checkOutputPath(out, inputs);
    }
    // every shard validated first (a damaged one is an error naming it, never a crash)
    std::vector<std::unique_ptr<DumpReader>> readers;
    std::vector<Shard> shards;
    for (std::size_t k = 0; k < paths.size(); ++k) {
        reportProgress(progress, {"checking", static_cast<std::int64_t>(k), static_cast<std::int64_t>(paths.size()), paths[k]});
        readers.push_back(openDump(paths[k], 10, progress ? [&progress] { return !progress({"checking", 0, 0, ""}); }
                                                        : std::function<bool()>{}));
    }
    h5::Lock lock(h5::libraryMutex());
    MergeReport report;
    try {
        for (std::size_t k = 0; k < paths.size(); ++k) {
            Shard s;
            s.path = paths[k];
            s.file = std::make_unique<H5::H5File>(paths[k], H5F_ACC_RDONLY);
            s.run = readRunRecord(*s.file);
            s.images = readers[k]->imageCount();
            s.dtype = readers[k]->dtype();
            for (Side side : {Side::Original, Side::Quantized})
                s.sha[static_cast<int>(side)] = readers[k]->model(side).sha256;
            shards.push_back(std::move(s));
        }
        // the same run: models, settings, layers; each shard once, none missing
        const Shard& first = shards.front();
        const DumpReader& reference = *readers.front();
        std::set<int> seen;
        for (std::size_t k = 0; k < shards.size(); ++k) {
            const Shard& s = shards[k];
            checkSame("the original model (sha256)", s.sha[0], first.sha[0], s, first);
            checkSame("the quantized model (sha256)", s.sha[1], first.sha[1], s, first);
            checkSame("the storage type", s.dtype, first.dtype, s, first);
            checkSame("the tap point", s.run.tapPoint, first.run.tapPoint, s, first);
            checkSame("what is tapped", s.run.ops, first.run.ops, s, first);
            checkSame("the input size", std::to_string(s.run.inputWidth) + "x" + std::to_string(s.run.inputHeight),
                      std::to_string(first.run.inputWidth) + "x" + std::to_string(first.run.inputHeight), s, first);
            checkSame("the shard count", std::to_string(s.run.shardCount), std::to_string(first.run.shardCount), s, first);
            checkSame("the image list's length", std::to_string(s.run.imagesTotal), std::to_string(first.run.imagesTotal), s,
                      first);
            const auto& layers = readers[k]->layers();
            checkSame("the number of layers", std::to_string(layers.size()), std::to_string(reference.layers().size()), s,
                      first);
            for (std::size_t l = 0; l < layers.size(); ++l) {
                const auto& a = layers[l];
                const auto& b = reference.layers()[l];
                checkSame("layer " + std::to_string(l), a.name + " " + a.op + "/" + a.quantizedOp,
                          b.name + " " + b.op + "/" + b.quantizedOp, s, first);
                const auto shapeText = [](const std::vector<std::int64_t>& shape) {
                    std::string t;
                    for (auto d : shape)
                        t += (t.empty() ? "" : "x") + std::to_string(d);
                    return t;
                };
                checkSame("layer " + a.name + "'s shape", shapeText(a.shape), shapeText(b.shape), s, first);
            }
            const auto keepText = [](const RunRecord& r) {
                return r.keptImages < 0 ? std::string("all (no --keep-activations)")
                                        : std::to_string(r.keepRequested) + " (" + r.keptSelection + ")";
            };
            checkSame("--keep-activations", keepText(s.run), keepText(first.run), s, first);
            if (s.run.shardCount < 2)
                throw Error(ErrorKind::Input, s.path + ": not a shard (made without compare --shard I/N)");
            if (!seen.insert(s.run.shardIndex).second)
                throw Error(ErrorKind::Input, s.path + ": shard " + std::to_string(s.run.shardIndex) + "/" +
                                                  std::to_string(s.run.shardCount) + " is given twice");
        }
        std::string missing;
        for (int i = 0; i < first.run.shardCount; ++i)
            if (!seen.count(i))
                missing += (missing.empty() ? "" : ", ") + std::to_string(i) + "/" + std::to_string(first.run.shardCount);
        if (!missing.empty())
            throw Error(ErrorKind::Input, "merge: shard " + missing + " of " + first.path +
                                              "'s run is missing (rerun it with compare --shard)");
        // images in the order of the whole list
        std::vector<Source> order;
        for (std::size_t k = 0; k < shards.size(); ++k)
            for (int i = 0; i < shards[k].images; ++i)
                order.push_back({readInputIndex(*shards[k].file, i), k, i});
        std::stable_sort(order.begin(), order.end(),
                         [](const Source& a, const Source& b) { return a.listIndex < b.listIndex; });
        report.shards = static_cast<int>(shards.size());
        report.images = static_cast<int>(order.size());
        report.layers = static_cast<int>(reference.layers().size());
        std::vector<ImageMetrics> imageMetrics;
        for (const auto& s : shards)
            imageMetrics.push_back(readImageMetrics(*s.file, s.path, s.images, report.layers));

        // With --keep-activations the shards' statistics were gathered as they ran and their
        // histograms binned on bins planned alike (on the list's first image): the merged
        // dump keeps what the unsharded run keeps (the first K of the list, or the K worst,
        // which are among their shards' K worst) and adds the histograms' counts.
        const bool streamed = first.run.keptImages >= 0;
        std::vector<Source> keptOrder = order; // the source of each activation row
        std::vector<int> keptImages;          // the merged image each row holds
        std::vector<bool> pixelsKept(order.size(), false); // by merged image: among keptImages
        if (streamed) {
            const int k = std::min(first.run.keepRequested, report.images);
            std::vector<int> chosen;
            if (first.run.keptSelection == "worst") {
                ImageMetrics merged;
                merged.images = report.images;
                merged.layers = report.layers;
                for (const auto& source : order)
                    for (int l = 0; l < report.layers; ++l)
                        merged.values.push_back(imageMetrics[source.shard].at(source.image, l));
                for (const auto& summary : worstImages(merged, static_cast<std::size_t>(k)))
                    chosen.push_back(summary.image);
                std::sort(chosen.begin(), chosen.end());
            } else {
                for (int j = 0; j < k; ++j)
                    chosen.push_back(j);
            }
            keptOrder.clear();
            for (int j : chosen) {
                const Source& from = order[static_cast<std::size_t>(j)];
                const int row = readers[from.shard]->keptRow(from.image);
                if (row < 0)
                    throw Error(ErrorKind::Input, shards[from.shard].path + ": image " + std::to_string(from.image) +
                                                      " is one the whole run keeps, but this shard did not keep it");
                keptOrder.push_back({from.listIndex, from.shard, row});
                keptImages.push_back(j);
                pixelsKept[static_cast<std::size_t>(j)] = true;
            }
        }

        const std::string temp = partialPath(out);
        struct Remove { // an unfinished merge leaves nothing behind
            std::string path;
            bool keep = false;
            ~Remove() {
                if (!keep)
                    std::remove(path.c_str());
            }
        } cleanup{temp};
        {
            H5::H5File file(temp, H5F_ACC_TRUNC);
            H5::Group root = file.openGroup("/");
            copyAttributes(first.file->openGroup("/"), root);
            if (root.attrExists("kept_images"))
                root.removeAttr("kept_images");
            writeDumpHeader(file, first.dtype == "f32" ? StorageType::F32 : StorageType::F16, report.images);
            RunRecord run = first.run;
            run.created = nowIso8601();
            run.producer = std::string("quantscope ") + QS_VERSION + " (merge of " + std::to_string(report.shards) + " shards)";
            run.shardIndex = 0;
            run.shardCount = 1;
            run.imagesTotal = report.images;
            if (streamed) {
                run.keptImages = static_cast<int>(keptImages.size());
                run.keptRows = keptImages;
            }
            writeRunRecord(file, run);
            if (H5Ocopy(first.file->getId(), layout::kModels, file.getId(), layout::kModels, H5P_DEFAULT, H5P_DEFAULT) < 0)
                throw Error(ErrorKind::Output, temp + ": cannot copy /models of " + first.path);
            // inputs and outputs, renumbered
            for (const char* group : {layout::kInputs, layout::kOutputs}) {
                if (!h5::exists(first.file->openGroup("/"), group + 1))
                    continue;
                file.createGroup(group);
                for (std::size_t j = 0; j < order.size(); ++j) {
                    const std::string from = layout::child(group, order[j].image);
                    const std::string to = layout::child(group, static_cast<int>(j));
                    const H5::H5File& shardFile = *shards[order[j].shard].file;
                    if (streamed && group == std::string(layout::kInputs)) { // pixels of kept images only
                        H5::Group g = file.createGroup(to);
                        copyAttributes(shardFile.openGroup(from), g);
                        if (!pixelsKept[j])
                            continue;
                        const std::string pixels = from + "/" + layout::kImage;
                        if (H5Ocopy(shardFile.getId(), pixels.c_str(), file.getId(),
                                    (to + "/" + layout::kImage).c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
                            throw Error(ErrorKind::Output, temp + ": cannot copy " + pixels + " of " +
                                                               shards[order[j].shard].path);
                        continue;
                    }
                    if (H5Ocopy(shardFile.getId(), from.c_str(), file.getId(), to.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
                        throw Error(ErrorKind::Output, temp + ": cannot copy " + from + " of " + shards[order[j].shard].path);
                }
            }
            // layers: activations and maps copied, statistics merged, histograms anew
            file.createGroup(layout::kLayers);
            std::vector<std::vector<Metrics>> perImage(static_cast<std::size_t>(report.layers));
            for (int l = 0; l < report.layers; ++l) {
                reportProgress(progress, {"merging", l, report.layers, reference.layers()[static_cast<std::size_t>(l)].name});
                const std::string group = layout::child(layout::kLayers, l);
                H5::Group g = file.createGroup(group);
                copyAttributes(first.file->openGroup(group), g);
                const H5::Group firstLayer = first.file->openGroup(group);
                for (const std::string& name : {std::string(toString(Side::Original)), std::string(toString(Side::Quantized)),
                                               std::string(layout::kAbsDiff), std::string(layout::kRelDiff),
                                               layout::meanMap(toString(Side::Original)),
                                               layout::meanMap(toString(Side::Quantized))})
                    if (h5::exists(firstLayer, name))
                        concatenate(file, group + "/" + name, shards, keptOrder);
                std::vector<MetricsAccumulator> perChannel;
                ValueRange range;
                for (const auto& s : shards) {
                    const H5::Group sg = s.file->openGroup(group);
                    const auto sums = readChannelSums(sg, s.path + ": layer " + layout::indexName(l));
                    if (perChannel.empty())
                        perChannel.resize(sums.size());
                    if (sums.size() != perChannel.size())
                        throw Error(ErrorKind::Input, s.path + ": layer " + layout::indexName(l) + " has another channel count");
                    for (std::size_t c = 0; c < sums.size(); ++c)
                        perChannel[c].merge(sums[c]);
                    range.merge(readHistogramRange(sg));
                }
                writeLayerStatistics(g, perChannel);
                if (streamed)
                    addHistograms(g, shards, group, l);
                else
                    rewriteHistogram(g, report.images, threads, range);
                for (const auto& source : order) {
                    const ImageMetrics& im = imageMetrics[source.shard];
                    perImage[static_cast<std::size_t>(l)].push_back(im.empty() ? Metrics{} : im.at(source.image, l));
                }
            }
            if (std::all_of(imageMetrics.begin(), imageMetrics.end(), [](const ImageMetrics& m) { return !m.empty(); }))
                writeImageMetrics(file, perImage);
            // unmatched tap calls: the same calls in every shard, one row per image
            if (h5::exists(first.file->openGroup("/"), layout::kUnmatched + 1)) {
                file.createGroup(layout::kUnmatched);
                for (Side side : {Side::Original, Side::Quantized}) {
                    const std::string dir = std::string(layout::kUnmatched) + "/" + toString(side);
                    file.createGroup(dir);
                    const H5::Group from = first.file->openGroup(dir);
                    for (hsize_t m = 0; m < from.getNumObjs(); ++m)
                        concatenate(file, dir + "/" + from.getObjnameByIdx(m), shards, keptOrder);
                }
            }
            if (h5::exists(first.file->openGroup("/"), layout::kBench + 1))
                report.dropped.push_back(std::string(layout::kBench) + " (timings of one machine; run bench --into on the merged dump)");
            mergeEvaluations(file, shards, readers);
            markComplete(file);
            file.flush(H5F_SCOPE_GLOBAL);
            file.close();
        }
        commitFile(temp, out);
        cleanup.keep = true;
    } catch (const Error&) {
        throw;
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Output, out + ": merge failed (" + h5::describe(e) + ")");
    }
    return report;
}

} // namespace qs
