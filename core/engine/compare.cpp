#include "compare.h"

#include "detection.h"
#include "dumpwriter.h"
#include "error.h"
#include "h5util.h"
#include "metrics.h"

#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <ctime>
#include <optional>

namespace qs {

namespace {

std::string nowIso8601() {
    const std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

bool selected(const std::vector<std::string>& globs, const std::string& name,
              const std::string& other) {
    if (globs.empty())
        return true;
    for (const auto& g : globs)
        if (fnmatch(g.c_str(), name.c_str(), 0) == 0 || fnmatch(g.c_str(), other.c_str(), 0) == 0)
            return true;
    return false;
}

void writeModelGroup(H5::H5File& file, Side side, const ModelInfo& info, const ModelOptions& opts,
                     int calls) {
    H5::Group g = file.createGroup(std::string("/models/") + toString(side));
    h5::setAttr(g, "path", info.path);
    h5::setAttr(g, "format", info.format);
    h5::setAttr(g, "sha256", info.sha256);
    h5::setAttr(g, "file_bytes", info.fileBytes);
    h5::setAttr(g, "parameter_bytes", info.parameterBytes);
    h5::setAttr(g, "input", std::string(toString(info.input)));
    h5::setAttr(g, "quantized", std::int64_t{info.quantized ? 1 : 0});
    h5::setAttr(g, "tap_sites", static_cast<std::int64_t>(info.sites.size()));
    h5::setAttr(g, "tapped_calls", std::int64_t{calls});
    if (side == Side::Quantized)
        h5::setAttr(g, "engine", opts.engine);
}

void writeOutput(H5::Group& group, const std::string& name, const ModelOutput& out) {
    std::vector<float> values;
    std::vector<hsize_t> dims;
    if (out.kind == OutputKind::Detections) {
        for (const auto& d : out.detections)
            values.insert(values.end(), {d.x1, d.y1, d.x2, d.y2, d.score, static_cast<float>(d.label)});
        dims = {out.detections.size(), 6};
    } else {
        values = out.values;
        dims.assign(out.shape.begin(), out.shape.end());
        if (dims.empty())
            dims = {values.size()};
    }
    h5::writeFloats(group, name, values, dims);
    H5::DataSet ds = group.openDataSet(name);
    h5::setAttr(ds, "kind", std::string(toString(out.kind)));
}

void writeMetricAttrs(H5::H5Object& obj, const Metrics& m) {
    h5::setAttr(obj, "sqnr_db", m.sqnrDb);
    h5::setAttr(obj, "mse", m.mse);
    h5::setAttr(obj, "max_abs", m.maxAbs);
    h5::setAttr(obj, "mean_abs", m.meanAbs);
    h5::setAttr(obj, "rel_err", m.relErr);
    h5::setAttr(obj, "cosine", m.cosine);
}

// Metrics of one layer over all images, per channel, and its difference maps.
void computeLayerMetrics(H5::Group& layer, int images, int threads) {
    H5::DataSet o = layer.openDataSet("original");
    H5::DataSet q = layer.openDataSet("quantized");
    const auto dims = h5::dims(o);
    const std::size_t channels = dims.size() >= 2 ? dims[1] : 1;
    std::size_t plane = 1;
    for (std::size_t i = 2; i < dims.size(); ++i)
        plane *= dims[i];
    std::vector<MetricsAccumulator> perChannel(channels);
    MetricsAccumulator total;
    std::vector<float> absMaps, relMaps, meanO, meanQ;
    for (int i = 0; i < images; ++i) {
        const std::vector<float> a = h5::readImageSlab(o, i);
        const std::vector<float> b = h5::readImageSlab(q, i);
        DiffMaps maps;
        accumulateImage(a.data(), b.data(), channels, plane, perChannel,
                        dims.size() == 4 ? &maps : nullptr, threads);
        absMaps.insert(absMaps.end(), maps.absMean.begin(), maps.absMean.end());
        relMaps.insert(relMaps.end(), maps.relMean.begin(), maps.relMean.end());
        if (dims.size() == 4) { // channel means, so that viewers need not read whole activations
            const std::vector<float> ma = channelMean(a.data(), channels, plane);
            const std::vector<float> mb = channelMean(b.data(), channels, plane);
            meanO.insert(meanO.end(), ma.begin(), ma.end());
            meanQ.insert(meanQ.end(), mb.begin(), mb.end());
        }
    }
    std::vector<float> columns[6];
    for (auto& acc : perChannel) {
        total.merge(acc);
        const Metrics m = acc.finish();
        const double v[6] = {m.sqnrDb, m.mse, m.maxAbs, m.meanAbs, m.relErr, m.cosine};
        for (int k = 0; k < 6; ++k)
            columns[k].push_back(static_cast<float>(v[k]));
    }
    writeMetricAttrs(layer, total.finish());
    H5::Group ch = layer.createGroup("channels");
    const char* names[6] = {"sqnr_db", "mse", "max_abs", "mean_abs", "rel_err", "cosine"};
    for (int k = 0; k < 6; ++k)
        h5::writeFloats(ch, names[k], columns[k], {channels});
    if (dims.size() == 4) {
        h5::writeFloats(layer, "abs_diff", absMaps, {static_cast<hsize_t>(images), dims[2], dims[3]});
        h5::writeFloats(layer, "rel_diff", relMaps, {static_cast<hsize_t>(images), dims[2], dims[3]});
        h5::writeFloats(layer, "mean_original", meanO, {static_cast<hsize_t>(images), dims[2], dims[3]});
        h5::writeFloats(layer, "mean_quantized", meanQ, {static_cast<hsize_t>(images), dims[2], dims[3]});
    }
}

} // namespace

CompareSummary compare(const CompareOptions& options, const ProgressFn& progress) {
    if (options.images.empty())
        throw Error(ErrorKind::Usage, "no input images given (use --image or --images)");
    configureRuntime(options.model);

    bool cancelled = false;
    auto report = [&](const Progress& p) {
        if (progress && !progress(p)) {
            cancelled = true;
            throw Error(ErrorKind::Cancelled, "cancelled");
        }
    };

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
    DumpWriter writer(options.outPath, wopts);

    CompareSummary summary;
    summary.loadSeconds = seconds(loadStart);
    summary.outPath = options.outPath;
    summary.images = wopts.images;
    const int n = wopts.images;
    std::int64_t expectedCalls = static_cast<std::int64_t>(original->info().sites.size() +
                                                           quantized->info().sites.size());
    std::int64_t doneCalls = 0;

    for (int i = 0; i < n; ++i) {
        const auto imageStart = Clock::now();
        Image image = i == 0 ? std::move(first) : loadImage(options.images[static_cast<std::size_t>(i)], pre);
        writer.post([i, source = image.source, rgb = image.rgb, w = image.width, h = image.height](H5::H5File& file) {
            if (i == 0)
                file.createGroup(layout::kInputs);
            H5::Group g = file.createGroup(layout::child(layout::kInputs, i));
            h5::setAttr(g, "source", source);
            const hsize_t dims[3] = {static_cast<hsize_t>(h), static_cast<hsize_t>(w), 3};
            H5::DataSet ds = g.createDataSet("image", H5::PredType::STD_U8LE, H5::DataSpace(3, dims));
            ds.write(rgb.data(), H5::PredType::NATIVE_UINT8);
            h5::setAttr(ds, "CLASS", std::string("IMAGE"));
        }, image.rgb.size());

        ModelOutput outputs[2];
        std::vector<TapRecord> records[2];
        Model* models[2] = {original.get(), quantized.get()};
        for (int side = 0; side < 2; ++side) {
            const std::string stage = toString(Side(side));
            writer.beginPass(Side(side), i, [&, stage] {
                ++doneCalls;
                report({stage, doneCalls, expectedCalls * n, image.source});
            });
            try {
                outputs[side] = models[side]->run(image, &writer);
            } catch (...) {
                if (cancelled)
                    throw Error(ErrorKind::Cancelled, "cancelled");
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
            std::vector<LayerPair> kept, dropped;
            std::vector<std::string> names;
            for (const auto& p : match.pairs) {
                const auto& nameO = namesO[static_cast<std::size_t>(p.original)];
                const auto& nameQ = namesQ[static_cast<std::size_t>(p.quantized)];
                if (!selected(options.layerGlobs, nameO, nameQ)) {
                    dropped.push_back(p);
                    continue;
                }
                kept.push_back(p);
                names.push_back(nameO);
            }
            if (kept.empty())
                throw Error(ErrorKind::Usage, "--layers: no layer matches the given pattern(s)");
            for (int idx : match.unmatchedOriginal)
                summary.unmatchedNames.push_back("original: " + namesO[static_cast<std::size_t>(idx)]);
            for (int idx : match.unmatchedQuantized)
                summary.unmatchedNames.push_back("quantized: " + namesQ[static_cast<std::size_t>(idx)]);
            summary.unmatchedOriginal = static_cast<int>(match.unmatchedOriginal.size());
            summary.unmatchedQuantized = static_cast<int>(match.unmatchedQuantized.size());
            summary.layers = static_cast<int>(kept.size());
            writer.placeLayers(kept, names, dropped);
            writer.post([kept, namesQ, records0 = records[0], records1 = records[1]](H5::H5File& file) {
                for (std::size_t k = 0; k < kept.size(); ++k) {
                    H5::Group g = file.openGroup(layout::child(layout::kLayers, static_cast<int>(k)));
                    const auto& ro = records0[static_cast<std::size_t>(kept[k].original)];
                    const auto& rq = records1[static_cast<std::size_t>(kept[k].quantized)];
                    h5::setAttr(g, "module", ro.module);
                    h5::setAttr(g, "call", std::int64_t{ro.call});
                    h5::setAttr(g, "op", ro.op);
                    h5::setAttr(g, "quantized_name", namesQ[static_cast<std::size_t>(kept[k].quantized)]);
                    h5::setAttr(g, "quantized_op", rq.op);
                    h5::setAttr(g, "shape", ro.shape);
                    h5::setAttr(g, "original_index", std::int64_t{kept[k].original});
                    h5::setAttr(g, "quantized_index", std::int64_t{kept[k].quantized});
                }
            });
        }
        const ModelOutput o = outputs[0], q = outputs[1];
        writer.post([i, o, q](H5::H5File& file) {
            if (i == 0)
                file.createGroup(layout::kOutputs);
            H5::Group g = file.createGroup(layout::child(layout::kOutputs, i));
            h5::setAttr(g, "kind", std::string(toString(o.kind)));
            writeOutput(g, "original", o);
            writeOutput(g, "quantized", q);
            if (o.kind == OutputKind::Detections) {
                const auto matches = matchDetections(o.detections, q.detections);
                std::vector<float> rows;
                for (const auto& m : matches)
                    rows.insert(rows.end(), {static_cast<float>(m.original), static_cast<float>(m.quantized),
                                             m.iou, m.scoreDelta});
                h5::writeFloats(g, "matches", rows, {matches.size(), 4});
                H5::DataSet ds = g.openDataSet("matches");
                h5::setAttr(ds, "columns", std::string("original,quantized,iou,score_delta"));
                h5::setAttr(ds, "min_iou", 0.5);
            }
        });
        summary.imageSeconds.push_back(seconds(imageStart));
    }
    const auto finishStart = Clock::now();
    writer.drain();

    // Metrics: read each layer back, one image slab at a time (memory: one layer slab).
    h5::Lock h5lock(h5::libraryMutex()); // the writer thread is idle now; other readers are not
    H5::H5File& file = writer.file();
    const int metricThreads = options.model.threads > 0
                                  ? options.model.threads
                                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    try {
        for (int k = 0; k < summary.layers; ++k) {
            report({"metrics", k, summary.layers, ""});
            H5::Group layer = file.openGroup(layout::child(layout::kLayers, k));
            computeLayerMetrics(layer, n, metricThreads);
        }
        file.createGroup("/models");
        writeModelGroup(file, Side::Original, original->info(), options.model, summary.originalCalls);
        writeModelGroup(file, Side::Quantized, quantized->info(), options.model, summary.quantizedCalls);
        H5::Group root = file.openGroup("/");
        h5::setAttr(root, "created", nowIso8601());
        h5::setAttr(root, "producer", std::string("quantscope ") + QS_VERSION);
        h5::setAttr(root, "layer_count", std::int64_t{summary.layers});
        h5::setAttr(root, "unmatched_original", std::int64_t{summary.unmatchedOriginal});
        h5::setAttr(root, "unmatched_quantized", std::int64_t{summary.unmatchedQuantized});
        h5::setAttr(root, "tap_point", std::string(options.model.tapPoint == TapPoint::Block ? "block" : "output"));
        h5::setAttr(root, "ops", std::string((options.model.tapOps & 2u) ? "conv,linear" : "conv"));
        h5::setAttr(root, "input_width", std::int64_t{pre.size->width});
        h5::setAttr(root, "input_height", std::int64_t{pre.size->height});
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Output, writer.temporaryPath() + ": cannot write metrics (" + e.getDetailMsg() + ")");
    }
    report({"metrics", summary.layers, summary.layers, ""});
    writer.commit();
    summary.finishSeconds = seconds(finishStart);
    return summary;
}

} // namespace qs
