#include "compare.h"

#include "detection.h"
#include "dumpwriter.h"
#include "error.h"
#include "evaluate.h"
#include "fileutil.h"
#include "h5util.h"
#include "sections.h"

#include <fnmatch.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <optional>
#include <unordered_map>

namespace qs {

namespace {

bool selected(const std::vector<std::string>& globs, const std::string& name,
              const std::string& other) {
    if (globs.empty())
        return true;
    for (const auto& g : globs)
        if (fnmatch(g.c_str(), name.c_str(), 0) == 0 || fnmatch(g.c_str(), other.c_str(), 0) == 0)
            return true;
    return false;
}

ModelSummary modelSummary(const ModelInfo& info, const std::string& engine, int calls) {
    ModelSummary m;
    m.path = info.path;
    m.format = info.format;
    m.sha256 = info.sha256;
    m.fileBytes = info.fileBytes;
    m.parameterBytes = info.parameterBytes;
    m.input = toString(info.input);
    m.quantized = info.quantized;
    m.tapSites = static_cast<std::int64_t>(info.sites.size());
    m.tappedCalls = calls;
    m.engine = engine;
    return m;
}

// After the first image: checks that the two models are the same network, pairs their
// layers and applies the --layers selection.
struct Pairing {
    std::vector<LayerPair> kept, dropped;
    std::vector<std::string> names;  // display names (original side) of the kept pairs
    std::vector<LayerRecord> records; // what /layers/<k> records about each kept pair
    std::vector<std::string> unmatchedNames;
    int unmatchedOriginal = 0, unmatchedQuantized = 0;
};

Pairing pairLayers(const CompareOptions& options, const std::vector<TapRecord> records[2],
                   const ModelOutput outputs[2]) {
    if (outputs[0].kind != outputs[1].kind)
        throw Error(ErrorKind::Input, options.originalPath + " and " + options.quantizedPath +
                                          " produce different kinds of output (" +
                                          toString(outputs[0].kind) + " vs " +
                                          toString(outputs[1].kind) + "): not the same network");
    const MatchResult match = matchLayers(records[0], records[1]);
    if (outputs[0].kind != OutputKind::Detections && outputs[0].shape != outputs[1].shape)
        throw Error(ErrorKind::Input, options.originalPath + " and " + options.quantizedPath +
                                          " produce outputs of different shapes: not the same network");
    const std::size_t larger = std::max(records[0].size(), records[1].size());
    if (match.pairs.empty() || match.pairs.size() * 2 < larger)
        throw Error(ErrorKind::Input,
                    options.originalPath + " and " + options.quantizedPath +
                        " do not look like the same network: only " +
                        std::to_string(match.pairs.size()) + " of " +
                        std::to_string(records[0].size()) + " original layers (" +
                        std::to_string(records[1].size()) + " quantized) could be paired");
    const auto namesO = displayNames(records[0]);
    const auto namesQ = displayNames(records[1]);
    Pairing r;
    for (const auto& p : match.pairs) {
        const auto& nameO = namesO[static_cast<std::size_t>(p.original)];
        const auto& nameQ = namesQ[static_cast<std::size_t>(p.quantized)];
        if (!selected(options.layerGlobs, nameO, nameQ)) {
            r.dropped.push_back(p);
            continue;
        }
        r.kept.push_back(p);
        r.names.push_back(nameO);
    }
    if (r.kept.empty())
        throw Error(ErrorKind::Usage, "--layers: no layer matches the given pattern(s)");
    for (int idx : match.unmatchedOriginal)
        r.unmatchedNames.push_back("original: " + namesO[static_cast<std::size_t>(idx)]);
    for (int idx : match.unmatchedQuantized)
        r.unmatchedNames.push_back("quantized: " + namesQ[static_cast<std::size_t>(idx)]);
    r.unmatchedOriginal = static_cast<int>(match.unmatchedOriginal.size());
    r.unmatchedQuantized = static_cast<int>(match.unmatchedQuantized.size());
    for (const auto& p : r.kept) {
        const auto& ro = records[0][static_cast<std::size_t>(p.original)];
        const auto& rq = records[1][static_cast<std::size_t>(p.quantized)];
        r.records.push_back({ro.module, ro.call, ro.op, namesQ[static_cast<std::size_t>(p.quantized)], rq.op,
                             ro.shape, p.original, p.quantized, {}});
    }
    return r;
}

// The output as stored: decoded into detections when asked (or, with Auto, when a raw
// output has a YOLO layout).
ModelOutput decoded(const ModelOutput& out, const CompareOptions& options, const std::string& path) {
    if (options.decode == DecodeKind::None)
        return out;
    if (options.decode == DecodeKind::Auto) {
        if (out.kind != OutputKind::Raw)
            return out;
        try {
            return decodeYolo(out, options.yolo);
        } catch (const Error&) {
            return out; // not a YOLO layout: kept raw
        }
    }
    return toDetections(out, options.decode, options.yolo, path);
}

// Graph edges among the kept layers, from the original model's tap sites: layer k takes
// input from the kept layers of the sites feeding its site, the same call when that site
// ran as often (per-level loops), else every call.
void addEdges(Pairing& pairing, const std::vector<TapRecord>& records, const std::vector<TapSite>& sites) {
    std::unordered_map<int, const TapSite*> byId;
    for (const auto& s : sites)
        byId[s.id] = &s;
    std::unordered_map<int, std::vector<int>> layersOfSite; // site -> kept layers, call order
    for (std::size_t k = 0; k < pairing.kept.size(); ++k)
        layersOfSite[records[static_cast<std::size_t>(pairing.kept[k].original)].site].push_back(static_cast<int>(k));
    for (std::size_t k = 0; k < pairing.kept.size(); ++k) {
        const TapRecord& r = records[static_cast<std::size_t>(pairing.kept[k].original)];
        const auto site = byId.find(r.site);
        if (site == byId.end())
            continue;
        auto& inputs = pairing.records[k].inputs;
        for (int from : site->second->inputs) {
            const auto it = layersOfSite.find(from);
            if (it == layersOfSite.end())
                continue;
            const auto& calls = it->second;
            const auto& mine = layersOfSite[r.site];
            if (calls.size() == mine.size() && calls.size() > 1) {
                const auto pos = std::find(mine.begin(), mine.end(), static_cast<int>(k)) - mine.begin();
                inputs.push_back(calls[static_cast<std::size_t>(pos)]);
            } else {
                inputs.insert(inputs.end(), calls.begin(), calls.end());
            }
        }
        std::sort(inputs.begin(), inputs.end());
        inputs.erase(std::unique(inputs.begin(), inputs.end()), inputs.end());
        inputs.erase(std::remove(inputs.begin(), inputs.end(), static_cast<std::int64_t>(k)), inputs.end());
    }
}

int metricThreads(const CompareOptions& options) {
    return options.model.threads > 0 ? options.model.threads
                                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// With --keep-activations: image i's contribution to every layer's statistics, read back
// from where the writer put it (the dump for kept images, the scratch file otherwise).
// Bins are planned at image 0, over its values widened by a quarter each side.
void streamImage(DumpWriter& writer, const std::vector<LayerPair>& kept, int image, int threads,
                 std::vector<std::unique_ptr<LayerAccumulator>>& stream) {
    writer.drain();
    h5::Lock lock(h5::libraryMutex()); // the writer thread is idle
    try {
        for (std::size_t k = 0; k < kept.size(); ++k) {
            const auto [o, rowO] = writer.activationRow(Side::Original, kept[k].original, image);
            const auto [q, rowQ] = writer.activationRow(Side::Quantized, kept[k].quantized, image);
            if (image == 0) {
                ValueRange range = writer.valueRange(Side::Original, kept[k].original);
                range.merge(writer.valueRange(Side::Quantized, kept[k].quantized));
                if (!range.empty()) {
                    const double margin = 0.25 * (range.high - range.low);
                    range.low -= margin;
                    range.high += margin;
                }
                stream.push_back(std::make_unique<LayerAccumulator>(q, h5::dims(o), range));
            }
            stream[k]->addImage(h5::readImageSlab(o, rowO), h5::readImageSlab(q, rowQ), image < writer.keptImages(),
                                threads);
        }
        // the slabs just read were tens of MB each: give that memory back (glibc keeps
        // freed large blocks in its heap once its mmap threshold has risen)
        malloc_trim(0);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Output, writer.temporaryPath() + ": cannot read back image " + std::to_string(image) +
                                           " for its metrics (" + h5::describe(e) + ")");
    }
}

} // namespace

CompareSummary compare(const CompareOptions& options, const ProgressFn& progress) {
    if (options.images.empty())
        throw Error(ErrorKind::Usage, "no input images given (use --image or --images)");
    {
        std::vector<std::pair<std::string, std::string>> inputs = {{"--original", options.originalPath},
                                                                   {"--quantized", options.quantizedPath}};
        for (const auto& image : options.images)
            inputs.push_back({"image", image});
        checkOutputPath(options.outPath, inputs);
    }
    configureRuntime(options.model);

    auto report = [&](const Progress& p) { reportProgress(progress, p); };

    using Clock = std::chrono::steady_clock;
    auto seconds = [](Clock::time_point since) {
        return std::chrono::duration<double>(Clock::now() - since).count();
    };
    const auto loadStart = Clock::now();
    report({"loading", 0, 2, options.originalPath});
    auto original = loadModel(options.originalPath, options.model);
    report({"loading", 1, 2, options.quantizedPath});
    auto quantized = loadModel(options.quantizedPath, options.model);
    if (original->info().sites.empty())
        throw Error(ErrorKind::Input, options.originalPath + ": the model has no convolution" +
                                          std::string((options.model.tapOps & 2u) ? " or linear" : "") +
                                          " layer to tap");

    // One common size for every image, so each layer's activations stack into [N, ...].
    Preprocess pre = options.preprocess;
    if (!pre.size)
        pre.size = original->info().recordedInputSize;
    Image first = loadImage(options.images.front(), pre);
    if (!pre.size)
        pre.size = Size2{first.width, first.height};

    DumpWriterOptions wopts;
    wopts.storage = options.model.storage;
    wopts.gzip = options.gzip;
    wopts.queueBytes = options.queueBytes;
    wopts.images = static_cast<int>(options.images.size());
    if (options.keepActivations == 0 || options.keepActivations < -1)
        throw Error(ErrorKind::Usage, "--keep-activations: keep at least 1 image (or all)");
    wopts.keptImages = options.keepActivations;
    const bool streaming = options.keepActivations > 0 && options.keepActivations < wopts.images;
    DumpWriter writer(options.outPath, wopts);

    CompareSummary summary;
    summary.loadSeconds = seconds(loadStart);
    summary.outPath = options.outPath;
    summary.images = wopts.images;
    const int n = wopts.images;
    std::int64_t expectedCalls = static_cast<std::int64_t>(original->info().sites.size() +
                                                           quantized->info().sites.size());
    std::int64_t doneCalls = 0;
    std::vector<LayerPair> kept;
    std::vector<std::unique_ptr<LayerAccumulator>> stream; // by layer, with streaming

    for (int i = 0; i < n; ++i) {
        const auto imageStart = Clock::now();
        Image image = i == 0 ? std::move(first) : loadImage(options.images[static_cast<std::size_t>(i)], pre);
        InputImage input{image.source, i < static_cast<int>(options.listIndex.size())
                                           ? options.listIndex[static_cast<std::size_t>(i)]
                                           : static_cast<std::int64_t>(i),
                         image.width, image.height, image.rgb};
        writer.post([i, input = std::move(input)](H5::H5File& file) { writeInput(file, i, input); }, image.rgb.size());

        ModelOutput outputs[2];
        std::vector<TapRecord> records[2];
        Model* models[2] = {original.get(), quantized.get()};
        for (int side = 0; side < 2; ++side) {
            const std::string stage = toString(Side(side));
            writer.beginPass(Side(side), i, [&, stage] {
                ++doneCalls;
                report({stage, doneCalls, expectedCalls * n, image.source, i, n});
            });
            try {
                outputs[side] = decoded(models[side]->run(image, &writer), options,
                                        side == 0 ? options.originalPath : options.quantizedPath);
            } catch (...) { // a cancel or write error thrown inside a tap comes back rewrapped
                if (auto e = writer.pushError())
                    std::rethrow_exception(e);
                throw;
            }
            records[side] = writer.endPass();
        }
        if (i == 0) {
            expectedCalls = static_cast<std::int64_t>(records[0].size() + records[1].size());
            summary.originalCalls = static_cast<int>(records[0].size());
            summary.quantizedCalls = static_cast<int>(records[1].size());
            Pairing pairing = pairLayers(options, records, outputs);
            addEdges(pairing, records[0], original->info().sites);
            kept = pairing.kept;
            summary.unmatchedNames = std::move(pairing.unmatchedNames);
            summary.unmatchedOriginal = pairing.unmatchedOriginal;
            summary.unmatchedQuantized = pairing.unmatchedQuantized;
            summary.layers = static_cast<int>(pairing.kept.size());
            writer.placeLayers(pairing.kept, pairing.names, pairing.dropped);
            writer.post([layerRecords = std::move(pairing.records)](H5::H5File& file) {
                for (std::size_t k = 0; k < layerRecords.size(); ++k)
                    writeLayerRecord(file, static_cast<int>(k), layerRecords[k]);
            });
        }
        const ModelOutput o = outputs[0], q = outputs[1];
        writer.post([i, o, q](H5::H5File& file) { writeOutputs(file, i, o, q); });
        if (streaming) // this image's metrics now: its activations may not stay
            streamImage(writer, kept, i, metricThreads(options), stream);
        summary.imageSeconds.push_back(seconds(imageStart));
    }
    const auto finishStart = Clock::now();
    writer.drain();

    // Metrics: read each layer back, one image slab at a time (memory: one layer slab).
    h5::Lock h5lock(h5::libraryMutex()); // the writer thread is idle now; other readers are not
    H5::H5File& file = writer.file();
    const int metricThreads = ::qs::metricThreads(options);
    try {
        std::vector<std::vector<Metrics>> perImage; // [layer][image]
        for (int k = 0; k < summary.layers; ++k) {
            report({"metrics", k, summary.layers, ""});
            if (streaming) { // gathered image by image: written out only
                H5::Group layer = file.openGroup(layout::child(layout::kLayers, k));
                perImage.push_back(stream[static_cast<std::size_t>(k)]->write(layer));
                continue;
            }
            const LayerPair& p = kept[static_cast<std::size_t>(k)];
            ValueRange range = writer.valueRange(Side::Original, p.original);
            range.merge(writer.valueRange(Side::Quantized, p.quantized));
            perImage.push_back(writeLayerMetrics(file, k, n, metricThreads, range));
        }
        writeImageMetrics(file, perImage);
        writeModel(file, Side::Original, modelSummary(original->info(), "", summary.originalCalls));
        writeModel(file, Side::Quantized, modelSummary(quantized->info(), options.model.engine, summary.quantizedCalls));
        RunRecord run;
        run.created = nowIso8601();
        run.producer = std::string("quantscope ") + QS_VERSION;
        run.layers = summary.layers;
        run.unmatchedOriginal = summary.unmatchedOriginal;
        run.unmatchedQuantized = summary.unmatchedQuantized;
        run.tapPoint = options.model.tapPoint == TapPoint::Block ? "block" : "output";
        run.ops = (options.model.tapOps & 2u) ? "conv,linear" : "conv";
        run.inputWidth = pre.size->width;
        run.inputHeight = pre.size->height;
        run.shardIndex = options.shardIndex;
        run.shardCount = options.shardCount;
        run.imagesTotal = options.imagesTotal > 0 ? options.imagesTotal : n;
        run.keptImages = writer.keptImages() < n ? writer.keptImages() : 0; // 0: all, no attribute
        writeRunRecord(file, run);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Output, writer.temporaryPath() + ": cannot write metrics (" + h5::describe(e) + ")");
    }
    report({"metrics", summary.layers, summary.layers, ""});
    writer.commit();
    summary.finishSeconds = seconds(finishStart);
    return summary;
}

} // namespace qs
