#include "compare.h"

#include "detection.h"
#include "dumpwriter.h"
#include "error.h"
#include "evaluate.h"
#include "fileutil.h"
#include "h5util.h"
#include "parallel.h"
#include "sections.h"

#include <fnmatch.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
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

// --keep worst: the pixels of the images that may stay kept, written when the run ends
// (the first K images' are written as they come; other inputs keep their name only).
class HeldInputs {
public:
    void hold(int image, InputImage input) {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_inputs[image] = std::move(input);
    }
    void drop(int image) {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_inputs.erase(image);
    }
    std::map<int, InputImage> take() {
        std::lock_guard<std::mutex> lock(m_mutex);
        return std::move(m_inputs);
    }

private:
    std::mutex m_mutex;
    std::map<int, InputImage> m_inputs;
};

// With --keep-activations: every image's contribution to every layer's statistics, read
// back from where the writer put it (the dump for images < K, the scratch file otherwise).
// Image 0 is gathered on the caller's thread (its value ranges plan the histogram bins: its
// values widened by a quarter each side); later images on a worker thread while the models
// run the next image. With --keep worst the worker also decides which images stay: the K
// of lowest mean SQNR so far hold the dump's K rows, and a worse newcomer is copied (by the
// writer, from the scratch file) over the row of the best of them.
class MetricsStream {
public:
    // planned: each kept layer's value range to plan its histogram bins on (both sides),
    // from the list's first image; empty: from this run's image 0, as the writer saw it.
    MetricsStream(DumpWriter& writer, std::vector<LayerPair> kept, int threads, int keptRows, bool worst,
                  std::vector<ValueRange> planned, HeldInputs* held)
        : m_writer(writer), m_kept(std::move(kept)), m_threads(threads), m_keptRows(keptRows), m_worst(worst),
          m_planned(std::move(planned)), m_held(held) {
        for (int r = 0; r < keptRows; ++r)
            m_rows.push_back({r, 0.0});
    }
    ~MetricsStream() {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_stop = true;
        }
        m_changed.notify_all();
        if (m_thread.joinable())
            m_thread.join();
    }
    MetricsStream(const MetricsStream&) = delete;
    MetricsStream& operator=(const MetricsStream&) = delete;

    // Image 0, here and now (after its writes are done).
    void first() {
        m_writer.drain();
        add(0, keepsMaps(0));
        m_thread = std::thread([this] { loop(); });
    }
    // Image i > 0, once the writer has done `ticket` (its activations); returns at once
    // when the previous image is done.
    void submit(int image, std::uint64_t ticket) {
        wait();
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_job = image;
            m_ticket = ticket;
        }
        m_changed.notify_all();
    }
    // Waits for the image in progress; rethrows its error.
    void wait() {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_changed.wait(lock, [&] { return m_job < 0; });
        if (m_error)
            std::rethrow_exception(m_error);
    }
    LayerAccumulator& layer(std::size_t k) { return *m_layers.at(k); }
    // The images the dump's activation rows hold, by row.
    std::vector<int> rows() const {
        std::vector<int> r;
        for (const auto& row : m_rows)
            r.push_back(row.image);
        return r;
    }

private:
    // whether an image's maps are gathered with its metrics: it is one of the first K (with
    // --keep worst, later ones get theirs when they enter the kept set)
    bool keepsMaps(int image) const { return image < m_keptRows; }

    struct Row {
        int image;
        double meanSqnrDb;
    };

    void loop() {
        backgroundPriority();
        for (;;) {
            int image;
            std::uint64_t ticket;
            {
                std::unique_lock<std::mutex> lock(m_mutex);
                m_changed.wait(lock, [&] { return m_stop || m_job >= 0; });
                if (m_stop)
                    return;
                image = m_job;
                ticket = m_ticket;
            }
            std::exception_ptr error;
            try {
                m_writer.waitFor(ticket);
                add(image, keepsMaps(image));
            } catch (...) {
                error = std::current_exception();
            }
            {
                std::lock_guard<std::mutex> lock(m_mutex);
                if (error && !m_error)
                    m_error = error;
                m_job = -1;
            }
            m_changed.notify_all();
        }
    }

    void add(int image, bool maps) {
        const std::size_t layers = m_kept.size();
        for (std::size_t k = 0; k < layers; ++k) {
            if (image == 0) { // bins planned now, on the grid of the quantized side
                h5::Lock lock(h5::libraryMutex());
                try {
                    const H5::DataSet o = m_writer.activationDataset(Side::Original, m_kept[k].original);
                    const H5::DataSet q = m_writer.activationDataset(Side::Quantized, m_kept[k].quantized);
                    ValueRange range;
                    if (!m_planned.empty()) {
                        range = m_planned.at(k);
                    } else {
                        range = m_writer.valueRange(Side::Original, m_kept[k].original);
                        range.merge(m_writer.valueRange(Side::Quantized, m_kept[k].quantized));
                    }
                    if (!range.empty()) {
                        const double margin = 0.25 * (range.high - range.low);
                        range.low -= margin;
                        range.high += margin;
                    }
                    std::vector<hsize_t> dims = h5::dims(o);
                    dims[0] = static_cast<hsize_t>(std::max(1, m_keptRows));
                    m_layers.push_back(std::make_unique<LayerAccumulator>(q, dims, range));
                } catch (const H5::Exception& e) {
                    throw Error(ErrorKind::Output, m_writer.temporaryPath() + ": cannot read layer " +
                                                       std::to_string(k) + "'s datasets (" + h5::describe(e) + ")");
                }
            }
            m_writer.readActivation(Side::Original, m_kept[k].original, image, m_o, m_raw);
            m_writer.readActivation(Side::Quantized, m_kept[k].quantized, image, m_q, m_raw);
            m_layers[k]->addImage(m_o, m_q, maps, m_threads);
        }
        // --keep worst: an image past the first K gets its maps only if it enters the kept
        // set (rarely, late in a long run), read once more from the scratch file, which
        // still holds it: the next image's writes go to the other row, and the one after
        // waits for this worker
        if (m_worst && choose(image) && !maps)
            for (std::size_t k = 0; k < layers; ++k) {
                m_writer.readActivation(Side::Original, m_kept[k].original, image, m_o, m_raw);
                m_writer.readActivation(Side::Quantized, m_kept[k].quantized, image, m_q, m_raw);
                m_layers[k]->addMaps(image, m_o, m_q, m_threads);
            }
        // what this image's layers allocated (per-channel sums, maps): give it back (glibc
        // keeps freed large blocks in its heap once its mmap threshold has risen)
        malloc_trim(0);
    }

    // --keep worst: does image `image` replace one of the kept? (Rows 0..K-1 start with
    // images 0..K-1, written there directly.) Returns whether it is kept now.
    bool choose(int image) {
        ImageMetrics one;
        one.images = 1;
        one.layers = static_cast<int>(m_layers.size());
        for (const auto& layer : m_layers)
            one.values.push_back(layer->imageMetrics(image));
        const double mean = summarizeImage(one, 0).meanSqnrDb;
        if (image < m_keptRows) {
            m_rows[static_cast<std::size_t>(image)].meanSqnrDb = mean;
            return true;
        }
        // the best kept image (highest mean; of equal ones the latest) leaves if this is worse
        auto best = m_rows.end();
        for (auto it = m_rows.begin(); it != m_rows.end(); ++it)
            if (best == m_rows.end() || it->meanSqnrDb > best->meanSqnrDb ||
                (it->meanSqnrDb == best->meanSqnrDb && it->image > best->image))
                best = it;
        int leaving = image;
        if (best != m_rows.end() && mean < best->meanSqnrDb) {
            leaving = best->image;
            m_writer.postKeep(image, static_cast<int>(best - m_rows.begin()));
            *best = {image, mean};
        }
        for (auto& layer : m_layers)
            layer->forgetMaps(leaving);
        if (m_held)
            m_held->drop(leaving);
        return leaving != image;
    }

    DumpWriter& m_writer;
    std::vector<LayerPair> m_kept;
    int m_threads, m_keptRows;
    bool m_worst;
    std::vector<ValueRange> m_planned;
    HeldInputs* m_held;
    std::vector<std::unique_ptr<LayerAccumulator>> m_layers; // by layer
    std::vector<float> m_o, m_q;     // one layer of one image read back, reused (the largest stays)
    std::vector<std::uint16_t> m_raw;
    std::vector<Row> m_rows;                                  // by dump row
    std::thread m_thread;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    int m_job = -1;
    std::uint64_t m_ticket = 0;
    bool m_stop = false;
    std::exception_ptr m_error;
};

// The value range of every activation of one pass, in execution order, nothing stored:
// the planning pass of a sharded run (histogram bins planned on the list's first image in
// every shard, so that merge can add the shards' counts).
class RangeSink : public ActivationSink {
public:
    void push(Activation a) override {
        ValueRange r;
        r.add(a);
        ranges[side].push_back(r);
        modules[side].push_back(a.module);
    }
    int side = 0;
    std::vector<ValueRange> ranges[2];
    std::vector<std::string> modules[2];
};

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
    if (options.keepActivations < -1)
        throw Error(ErrorKind::Usage, "--keep-activations: give all, none, or a number of images");
    wopts.keptImages = options.keepActivations;
    // given --keep-activations (even K >= N): metrics as the run goes, bins planned up front
    const bool streaming = options.keepActivations >= 0;
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
    HeldInputs held;                       // with --keep worst
    std::unique_ptr<MetricsStream> stream; // with --keep-activations

    // A shard's histogram bins are planned on the whole list's first image, as the
    // unsharded run's are: one extra pass of each model on it, nothing stored.
    std::optional<RangeSink> plan;
    if (streaming && !options.planImage.empty() && options.planImage != options.images.front()) {
        report({"planning", 0, 1, options.planImage});
        const Image planImage = loadImage(options.planImage, pre);
        plan.emplace();
        Model* models[2] = {original.get(), quantized.get()};
        for (int side = 0; side < 2; ++side) {
            plan->side = side;
            models[side]->run(planImage, &*plan);
        }
    }

    for (int i = 0; i < n; ++i) {
        const auto imageStart = Clock::now();
        Image image = i == 0 ? std::move(first) : loadImage(options.images[static_cast<std::size_t>(i)], pre);
        InputImage input{image.source, i < static_cast<int>(options.listIndex.size())
                                           ? options.listIndex[static_cast<std::size_t>(i)]
                                           : static_cast<std::int64_t>(i),
                         image.width, image.height, image.rgb};
        if (streaming) { // pixels of kept images only (a data-set run must not store every input)
            if (options.keepWorst && writer.keptImages() > 0)
                held.hold(i, input);
            if (options.keepWorst || i >= writer.keptImages())
                input.rgb.clear();
        }
        const std::size_t inputBytes = input.rgb.size();
        writer.post([i, input = std::move(input)](H5::H5File& file) { writeInput(file, i, input); }, inputBytes);

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
        const std::uint64_t written = writer.post([i, o, q](H5::H5File& file) { writeOutputs(file, i, o, q); });
        if (streaming) { // this image's metrics: its activations may not stay
            if (i == 0) {
                std::vector<ValueRange> planned;
                if (plan) {
                    for (int side = 0; side < 2; ++side) {
                        std::vector<std::string> modules;
                        for (const auto& r : records[side])
                            modules.push_back(r.module);
                        if (modules != plan->modules[side])
                            throw Error(ErrorKind::Input,
                                        std::string("the ") + toString(Side(side)) + " model ran another sequence of "
                                            "layers on " + options.planImage + " (the list's first image, on which "
                                            "every shard plans its histograms) than on " + options.images.front() +
                                            "; data-dependent control flow is not supported");
                    }
                    for (const auto& p : kept) {
                        ValueRange r = plan->ranges[0].at(static_cast<std::size_t>(p.original));
                        r.merge(plan->ranges[1].at(static_cast<std::size_t>(p.quantized)));
                        planned.push_back(r);
                    }
                }
                stream = std::make_unique<MetricsStream>(writer, kept, metricThreads(options), writer.keptImages(),
                                                         options.keepWorst, std::move(planned),
                                                         options.keepWorst ? &held : nullptr);
                stream->first();
            } else {
                stream->submit(i, written);
            }
        }
        summary.imageSeconds.push_back(seconds(imageStart));
    }
    const auto finishStart = Clock::now();
    if (stream)
        stream->wait();
    for (auto& [image, input] : held.take()) // --keep worst: the kept images' pixels
        writer.post([image = image, input = std::move(input)](H5::H5File& file) { writeInputImage(file, image, input); });
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
                perImage.push_back(stream->layer(static_cast<std::size_t>(k)).write(layer, stream->rows()));
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
        if (streaming) { // without --keep-activations no attribute: a whole dump's rows are image_count
            run.keptImages = writer.keptImages();
            run.keptSelection = options.keepWorst ? "worst" : "first";
            run.keepRequested = options.keepActivations;
            run.keptRows = stream->rows();
        }
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
