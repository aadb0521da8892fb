#include "sections.h"

#include "detection.h"
#include "error.h"
#include "h5util.h"
#include "halffloat.h"
#include "parallel.h"

#ifdef __SSE2__
#include <emmintrin.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#endif

#include <algorithm>
#include <cmath>
#include <limits>

namespace qs {

namespace {

// ---- names: each spelled here only ------------------------------------------------

// root, written when a dump is created
constexpr const char* kFormat = "format";
constexpr const char* kVersion = "version";
constexpr const char* kComplete = "complete";
constexpr const char* kDtype = "dtype";
constexpr const char* kImageCount = "image_count";
// /inputs/<i>
constexpr const char* kSource = "source";
constexpr const char* kListIndex = "list_index";
// /outputs/<i> and its datasets
constexpr const char* kKind = "kind";
constexpr const char* kColumns = "columns";
constexpr const char* kMinIou = "min_iou";
constexpr const char* kMatchColumns = "original,quantized,iou,score_delta";
constexpr double kMatchMinIou = 0.5;
// /layers/<k> (placement) and activation datasets
constexpr const char* kName = "name";
constexpr const char* kIndex = "index";
constexpr const char* kMatch = "match";
constexpr const char* kEpilogue = "epilogue";
constexpr const char* kScale = "scale";
constexpr const char* kZeroPoint = "zero_point";
constexpr const char* kQuantMin = "quant_min";
constexpr const char* kQuantMax = "quant_max";
// /layers/<k>
constexpr const char* kModule = "module";
constexpr const char* kCall = "call";
constexpr const char* kOp = "op";
constexpr const char* kQuantizedName = "quantized_name";
constexpr const char* kQuantizedOp = "quantized_op";
constexpr const char* kShape = "shape";
constexpr const char* kOriginalIndex = "original_index";
constexpr const char* kQuantizedIndex = "quantized_index";
constexpr const char* kInputs = "inputs";
// /layers/<k>/histogram
constexpr const char* kLow = "low";
constexpr const char* kBinWidth = "bin_width";
constexpr const char* kValueMin = "value_min";
constexpr const char* kValueMax = "value_max";
// /layers/<k>/sums, /layers/<k>/channels/sums: what the metrics are computed from
constexpr const char* kSums = "sums";
constexpr const char* kMetricNames[kMetricCount] = {"sqnr_db", "mse", "max_abs", "mean_abs", "rel_err", "cosine"};
// /models/<side>
constexpr const char* kPath = "path";
constexpr const char* kSha256 = "sha256";
constexpr const char* kFileBytes = "file_bytes";
constexpr const char* kParameterBytes = "parameter_bytes";
constexpr const char* kInput = "input";
constexpr const char* kQuantized = "quantized";
constexpr const char* kTapSites = "tap_sites";
constexpr const char* kTappedCalls = "tapped_calls";
constexpr const char* kEngine = "engine";
// root, written at the end of a compare
constexpr const char* kCreated = "created";
constexpr const char* kProducer = "producer";
constexpr const char* kLayerCount = "layer_count";
constexpr const char* kUnmatchedOriginal = "unmatched_original";
constexpr const char* kUnmatchedQuantized = "unmatched_quantized";
constexpr const char* kTapPoint = "tap_point";
constexpr const char* kOps = "ops";
constexpr const char* kInputWidth = "input_width";
constexpr const char* kInputHeight = "input_height";
constexpr const char* kShardIndex = "shard_index";
constexpr const char* kShardCount = "shard_count";
constexpr const char* kImagesTotal = "images_total";
constexpr const char* kKeptImages = "kept_images";
constexpr const char* kKeptSelection = "kept_selection";
constexpr const char* kKeepRequested = "keep_activations";
// /bench
constexpr const char* kBatch = "batch";
constexpr const char* kWidth = "width";
constexpr const char* kHeight = "height";
constexpr const char* kThreads = "threads";
constexpr const char* kMemoryLimit = "memory_limit_mib";
// /eval
constexpr const char* kAnnotations = "annotations";
constexpr const char* kImages = "images";
constexpr const char* kDeltaMean = "per_image_delta_mean";
constexpr const char* kDeltaStd = "per_image_delta_std";
constexpr const char* kRelMean = "per_image_relative_mean";
constexpr const char* kRelStd = "per_image_relative_std";
constexpr const char* kCategoryIds = "category_ids";
constexpr const char* kCategoryNames = "category_names";
constexpr const char* kPerImageFiles = "per_image_files"; // newline-separated

std::string sideAttr(Side side, const char* name) { return std::string(toString(side)) + "_" + name; }
std::string attrSide(const char* name, Side side) { return std::string(name) + "_" + toString(side); }

void replaceGroup(H5::H5File& file, const char* path) {
    if (H5Lexists(file.getId(), path + 1, H5P_DEFAULT) > 0)
        H5Ldelete(file.getId(), path, H5P_DEFAULT);
}

// A 1-D float dataset of exactly `n` elements (n < 0: any length), or an error naming it.
std::vector<float> readVector(const H5::Group& group, const std::string& name, long long n,
                              const std::string& where) {
    if (!h5::exists(group, name))
        throw Error(ErrorKind::Input, where + ": " + name + " is missing");
    H5::DataSet ds = group.openDataSet(name);
    const auto d = h5::dims(ds);
    if (d.size() != 1 || (n >= 0 && d[0] != static_cast<hsize_t>(n)))
        throw Error(ErrorKind::Input, where + ": " + name + " has shape " + h5::dimsText(d) + " but " +
                                          (n >= 0 ? std::to_string(n) + " values are expected"
                                                  : std::string("a vector is expected")));
    return h5::readFloats(ds);
}

// A float dataset of rank 2 with `columns` columns; its rows flattened.
std::vector<float> readRows(const H5::Group& group, const std::string& name, hsize_t columns,
                            const std::string& where) {
    H5::DataSet ds = group.openDataSet(name);
    const auto d = h5::dims(ds);
    if (d.size() != 2 || d[1] != columns)
        throw Error(ErrorKind::Input, where + ": " + name + " has shape " + h5::dimsText(d) + " but rows of " +
                                          std::to_string(columns) + " are expected");
    return h5::readFloats(ds);
}

void writeOutput(H5::Group& group, Side side, const ModelOutput& out) {
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
    h5::writeFloats(group, toString(side), values, dims);
    H5::DataSet ds = group.openDataSet(toString(side));
    h5::setAttr(ds, kKind, std::string(toString(out.kind)));
}

void writeMetricAttrs(H5::H5Object& obj, const Metrics& m) {
    const auto v = metricValues(m);
    for (int k = 0; k < kMetricCount; ++k)
        h5::setAttr(obj, kMetricNames[k], v[static_cast<std::size_t>(k)]);
}

} // namespace

// ---- writers -------------------------------------------------------------------------

void writeDumpHeader(H5::H5File& file, StorageType storage, int images) {
    H5::Group root = file.openGroup("/");
    h5::setAttr(root, kFormat, std::string(layout::kFormatName));
    h5::setAttr(root, kVersion, std::int64_t{layout::kFormatVersion});
    h5::setAttr(root, kComplete, std::int64_t{0});
    h5::setAttr(root, kDtype, std::string(storage == StorageType::F16 ? "f16" : "f32"));
    h5::setAttr(root, kImageCount, std::int64_t{images});
}

void markComplete(H5::H5File& file) {
    H5::Group root = file.openGroup("/");
    h5::setAttr(root, kComplete, std::int64_t{1});
}

void writeActivationAttributes(H5::DataSet& ds, const Activation& a) {
    h5::setAttr(ds, kModule, a.module);
    h5::setAttr(ds, kCall, std::int64_t{a.call});
    h5::setAttr(ds, kOp, a.op);
    h5::setAttr(ds, kEpilogue, a.epilogue);
    if (!std::isnan(a.scale)) {
        h5::setAttr(ds, kScale, a.scale);
        h5::setAttr(ds, kZeroPoint, std::int64_t{a.zeroPoint});
        h5::setAttr(ds, kQuantMin, std::int64_t{a.quantMin});
        h5::setAttr(ds, kQuantMax, std::int64_t{a.quantMax});
    }
}

void writeLayerPlacement(H5::Group& g, int index, const std::string& name, MatchMethod match) {
    h5::setAttr(g, kName, name);
    h5::setAttr(g, kIndex, std::int64_t{index});
    h5::setAttr(g, kMatch, std::string(toString(match)));
}

void writeInput(H5::H5File& file, int image, const InputImage& input) {
    if (image == 0)
        file.createGroup(layout::kInputs);
    H5::Group g = file.createGroup(layout::child(layout::kInputs, image));
    h5::setAttr(g, kSource, input.source);
    if (input.index >= 0)
        h5::setAttr(g, kListIndex, input.index);
    if (!input.rgb.empty())
        writeInputImage(file, image, input);
}

void writeInputImage(H5::H5File& file, int image, const InputImage& input) {
    H5::Group g = file.openGroup(layout::child(layout::kInputs, image));
    h5::writeBytes(g, layout::kImage, input.rgb,
                   {static_cast<hsize_t>(input.height), static_cast<hsize_t>(input.width), 3});
    H5::DataSet ds = g.openDataSet(layout::kImage);
    h5::setAttr(ds, "CLASS", std::string("IMAGE")); // HDF5's image convention: viewers show it
}

void writeOutputs(H5::H5File& file, int image, const ModelOutput& o, const ModelOutput& q) {
    if (image == 0)
        file.createGroup(layout::kOutputs);
    H5::Group g = file.createGroup(layout::child(layout::kOutputs, image));
    h5::setAttr(g, kKind, std::string(toString(o.kind)));
    writeOutput(g, Side::Original, o);
    writeOutput(g, Side::Quantized, q);
    if (o.kind != OutputKind::Detections)
        return;
    const auto matches = matchDetections(o.detections, q.detections, static_cast<float>(kMatchMinIou));
    std::vector<float> rows;
    for (const auto& m : matches)
        rows.insert(rows.end(), {static_cast<float>(m.original), static_cast<float>(m.quantized), m.iou, m.scoreDelta});
    h5::writeFloats(g, layout::kMatches, rows, {matches.size(), 4});
    H5::DataSet ds = g.openDataSet(layout::kMatches);
    h5::setAttr(ds, kColumns, std::string(kMatchColumns));
    h5::setAttr(ds, kMinIou, kMatchMinIou);
}

void writeLayerRecord(H5::H5File& file, int layer, const LayerRecord& r) {
    H5::Group g = file.openGroup(layout::child(layout::kLayers, layer));
    h5::setAttr(g, kModule, r.module);
    h5::setAttr(g, kCall, std::int64_t{r.call});
    h5::setAttr(g, kOp, r.op);
    h5::setAttr(g, kQuantizedName, r.quantizedName);
    h5::setAttr(g, kQuantizedOp, r.quantizedOp);
    h5::setAttr(g, kShape, r.shape);
    h5::setAttr(g, kOriginalIndex, std::int64_t{r.originalIndex});
    h5::setAttr(g, kQuantizedIndex, std::int64_t{r.quantizedIndex});
    if (!r.inputs.empty())
        h5::setAttr(g, kInputs, r.inputs);
}

void writeModel(H5::H5File& file, Side side, const ModelSummary& m) {
    if (H5Lexists(file.getId(), layout::kModels + 1, H5P_DEFAULT) <= 0)
        file.createGroup(layout::kModels);
    H5::Group g = file.createGroup(std::string(layout::kModels) + "/" + toString(side));
    h5::setAttr(g, kPath, m.path);
    h5::setAttr(g, kFormat, m.format);
    h5::setAttr(g, kSha256, m.sha256);
    h5::setAttr(g, kFileBytes, m.fileBytes);
    h5::setAttr(g, kParameterBytes, m.parameterBytes);
    h5::setAttr(g, kInput, m.input);
    h5::setAttr(g, kQuantized, std::int64_t{m.quantized ? 1 : 0});
    h5::setAttr(g, kTapSites, m.tapSites);
    h5::setAttr(g, kTappedCalls, m.tappedCalls);
    if (!m.engine.empty())
        h5::setAttr(g, kEngine, m.engine);
}

void writeRunRecord(H5::H5File& file, const RunRecord& r) {
    H5::Group root = file.openGroup("/");
    h5::setAttr(root, kCreated, r.created);
    h5::setAttr(root, kProducer, r.producer);
    h5::setAttr(root, kLayerCount, std::int64_t{r.layers});
    h5::setAttr(root, kUnmatchedOriginal, std::int64_t{r.unmatchedOriginal});
    h5::setAttr(root, kUnmatchedQuantized, std::int64_t{r.unmatchedQuantized});
    h5::setAttr(root, kTapPoint, r.tapPoint);
    h5::setAttr(root, kOps, r.ops);
    h5::setAttr(root, kInputWidth, std::int64_t{r.inputWidth});
    h5::setAttr(root, kInputHeight, std::int64_t{r.inputHeight});
    h5::setAttr(root, kShardIndex, std::int64_t{r.shardIndex});
    h5::setAttr(root, kShardCount, std::int64_t{r.shardCount});
    h5::setAttr(root, kImagesTotal, r.imagesTotal);
    if (r.keptImages >= 0) { // only when fewer than all: a whole dump's rows are image_count
        h5::setAttr(root, kKeptImages, std::int64_t{r.keptImages});
        h5::setAttr(root, kKeptSelection, r.keptSelection);
        h5::setAttr(root, kKeepRequested, std::int64_t{r.keepRequested});
        h5::writeInts(root, layout::kKeptRows + 1, std::vector<std::int64_t>(r.keptRows.begin(), r.keptRows.end()));
    }
}

void writeBench(H5::H5File& file, const BenchData& b) {
    replaceGroup(file, layout::kBench);
    H5::Group g = file.createGroup(layout::kBench);
    for (Side s : {Side::Original, Side::Quantized}) {
        const int i = static_cast<int>(s);
        h5::setAttr(g, sideAttr(s, kPath), b.path[i]);
        h5::setAttr(g, sideAttr(s, kFileBytes), b.fileBytes[i]);
        h5::setAttr(g, sideAttr(s, kParameterBytes), b.parameterBytes[i]);
        h5::setAttr(g, sideAttr(s, "mib_per_image"), b.mibPerImage[i]);
    }
    h5::setAttr(g, kWidth, std::int64_t{b.width});
    h5::setAttr(g, kHeight, std::int64_t{b.height});
    h5::setAttr(g, kThreads, std::int64_t{b.threads});
    h5::setAttr(g, kEngine, b.engine);
    h5::setAttr(g, kMemoryLimit, b.memoryLimitMiB);
    const hsize_t n = b.batch.size();
    h5::writeInts(g, kBatch, b.batch);
    for (Side s : {Side::Original, Side::Quantized}) {
        const int i = static_cast<int>(s);
        h5::writeFloats(g, attrSide("median_ms", s), b.medianMs[i], {n});
        h5::writeFloats(g, attrSide("min_ms", s), b.minMs[i], {n});
        h5::writeFloats(g, attrSide("max_ms", s), b.maxMs[i], {n});
        h5::writeFloats(g, attrSide("peak_mib", s), b.peakMiB[i], {n});
        h5::writeFloats(g, attrSide("model_mib", s), b.modelMiB[i], {n});
    }
}

void writeEval(H5::H5File& file, const EvalData& e) {
    replaceGroup(file, layout::kEval);
    H5::Group g = file.createGroup(layout::kEval);
    h5::setAttr(g, kAnnotations, e.annotations);
    h5::setAttr(g, kImages, std::int64_t{e.images});
    h5::setAttr(g, kDeltaMean, e.deltaMean);
    h5::setAttr(g, kDeltaStd, e.deltaStd);
    h5::setAttr(g, kRelMean, e.relMean);
    h5::setAttr(g, kRelStd, e.relStd);
    for (Side s : {Side::Original, Side::Quantized}) {
        const int i = static_cast<int>(s);
        h5::setAttr(g, sideAttr(s, "map"), e.map[i]);
        h5::setAttr(g, sideAttr(s, "map50"), e.map50[i]);
        h5::setAttr(g, sideAttr(s, "map75"), e.map75[i]);
        h5::setAttr(g, sideAttr(s, "recall"), e.recall[i]);
        h5::writeFloats(g, sideAttr(s, "class_ap"), e.classAp[i], {e.classAp[i].size()});
    }
    h5::setAttr(g, kCategoryIds, e.categoryIds);
    h5::setAttr(g, kCategoryNames, e.categoryNames);
    h5::setAttr(g, kShardIndex, std::int64_t{e.shardIndex});
    h5::setAttr(g, kShardCount, std::int64_t{e.shardCount});
    for (Side s : {Side::Original, Side::Quantized}) {
        const auto& dets = e.detections[static_cast<int>(s)];
        if (dets.empty() && e.detections[1 - static_cast<int>(s)].empty())
            continue;
        std::vector<double> rows;
        for (const auto& d : dets)
            rows.insert(rows.end(), {static_cast<double>(d.imageId), static_cast<double>(d.categoryId), d.x, d.y, d.w,
                                     d.h, d.score});
        h5::writeDoubles(g, sideAttr(s, "detections"), rows, {dets.size(), 7});
    }
    if (!e.perImageFiles.empty()) {
        std::string files;
        for (const auto& f : e.perImageFiles)
            files += (files.empty() ? "" : "\n") + f;
        h5::setAttr(g, kPerImageFiles, files);
        for (Side s : {Side::Original, Side::Quantized})
            h5::writeFloats(g, sideAttr(s, "per_image_map"), e.perImageMap[static_cast<int>(s)],
                            {e.perImageMap[static_cast<int>(s)].size()});
    }
}

namespace {

// A layer's histogram planned over `range`, on the quantized dataset's grid when it has one.
Histogram plannedHistogram(const H5::DataSet& q, const ValueRange& range) {
    Histogram histogram;
    if (range.empty())
        return histogram;
    histogram = planHistogram(range, h5::doubleAttr(q, kScale, std::nan("")));
    if (h5::hasAttr(q, kScale)) {
        histogram.zeroPoint = h5::intAttr(q, kZeroPoint, 0);
        histogram.qmin = h5::intAttr(q, kQuantMin, 0);
        histogram.qmax = h5::intAttr(q, kQuantMax, 255);
    }
    return histogram;
}

} // namespace

void writeHistogram(H5::Group& layer, const Histogram& histogram, const ValueRange& range) {
    if (histogram.empty())
        return;
    if (h5::exists(layer, layout::kHistogram))
        H5Ldelete(layer.getId(), layout::kHistogram, H5P_DEFAULT);
    H5::Group hg = layer.createGroup(layout::kHistogram);
    h5::setAttr(hg, kLow, histogram.low);
    h5::setAttr(hg, kBinWidth, histogram.binWidth);
    h5::setAttr(hg, kValueMin, range.low); // what the bins were planned over (merging needs it)
    h5::setAttr(hg, kValueMax, range.high);
    if (std::isfinite(histogram.scale)) {
        h5::setAttr(hg, kScale, histogram.scale);
        h5::setAttr(hg, kZeroPoint, histogram.zeroPoint);
        h5::setAttr(hg, kQuantMin, histogram.qmin);
        h5::setAttr(hg, kQuantMax, histogram.qmax);
    }
    for (Side side : {Side::Original, Side::Quantized})
        h5::writeInts(hg, toString(side), histogram.counts[static_cast<int>(side)]);
}

void writeLayerStatistics(H5::Group& layer, const std::vector<MetricsAccumulator>& perChannel) {
    MetricsAccumulator total;
    std::vector<float> columns[kMetricCount];
    std::vector<double> channelSums;
    for (const auto& acc : perChannel) {
        total.merge(acc);
        const auto v = metricValues(acc.finish());
        for (int k = 0; k < kMetricCount; ++k)
            columns[k].push_back(static_cast<float>(v[static_cast<std::size_t>(k)]));
        const auto sums = acc.sums();
        channelSums.insert(channelSums.end(), sums.begin(), sums.end());
    }
    writeMetricAttrs(layer, total.finish());
    const auto sums = total.sums();
    h5::writeDoubles(layer, kSums, std::vector<double>(sums.begin(), sums.end()), {sums.size()});
    H5::Group ch = layer.createGroup(layout::kChannels);
    const hsize_t channels = perChannel.size();
    for (int k = 0; k < kMetricCount; ++k)
        h5::writeFloats(ch, kMetricNames[k], columns[k], {channels});
    h5::writeDoubles(ch, kSums, channelSums, {channels, static_cast<hsize_t>(MetricsAccumulator::kSums)});
}

std::vector<MetricsAccumulator> readChannelSums(const H5::Group& layer, const std::string& where) {
    const std::string at = where + ": channels/" + kSums;
    if (!h5::exists(layer, std::string(layout::kChannels) + "/" + kSums))
        throw Error(ErrorKind::Input, at + " is missing (the dump was made before sums were stored)");
    H5::DataSet ds = layer.openDataSet(std::string(layout::kChannels) + "/" + kSums);
    const auto d = h5::dims(ds);
    if (d.size() != 2 || d[1] != static_cast<hsize_t>(MetricsAccumulator::kSums))
        throw Error(ErrorKind::Input, at + " has shape " + h5::dimsText(d) + " but [C x 8] is expected");
    const std::vector<double> v = h5::readDoubles(ds);
    std::vector<MetricsAccumulator> perChannel;
    for (std::size_t c = 0; c < d[0]; ++c)
        perChannel.push_back(MetricsAccumulator::fromSums(v.data() + c * MetricsAccumulator::kSums));
    return perChannel;
}

ValueRange readHistogramRange(const H5::Group& layer) {
    ValueRange r;
    if (h5::exists(layer, layout::kHistogram)) {
        H5::Group hg = layer.openGroup(layout::kHistogram);
        r.low = h5::doubleAttr(hg, kValueMin, r.low);
        r.high = h5::doubleAttr(hg, kValueMax, r.high);
    }
    return r;
}

void rewriteHistogram(H5::Group& layer, int images, int threads, const ValueRange& range) {
    H5::DataSet o = layer.openDataSet(toString(Side::Original));
    H5::DataSet q = layer.openDataSet(toString(Side::Quantized));
    Histogram histogram = plannedHistogram(q, range);
    if (histogram.empty())
        return;
    for (int i = 0; i < images; ++i) {
        const std::vector<float> a = h5::readImageSlab(o, i);
        const std::vector<float> b = h5::readImageSlab(q, i);
        histogram.add(Side::Original, a.data(), a.size(), threads);
        histogram.add(Side::Quantized, b.data(), b.size(), threads);
    }
    writeHistogram(layer, histogram, range);
}

LayerAccumulator::LayerAccumulator(const H5::DataSet& quantized, const std::vector<hsize_t>& dims,
                                   const ValueRange& range)
    : m_dims(dims) {
    m_channels = dims.size() >= 2 ? dims[1] : 1;
    m_plane = 1;
    for (std::size_t i = 2; i < dims.size(); ++i)
        m_plane *= dims[i];
    m_maps4d = dims.size() == 4;
    m_perChannel.resize(m_channels);
    m_range = range;
    m_histogram = plannedHistogram(quantized, range);
}

void LayerAccumulator::addImage(const std::vector<float>& a, const std::vector<float>& b, bool keepMaps, int threads) {
    std::vector<MetricsAccumulator> imageChannels(m_channels);
    accumulateImage(a.data(), b.data(), m_channels, m_plane, imageChannels, nullptr, threads);
    MetricsAccumulator image;
    for (std::size_t c = 0; c < m_channels; ++c) {
        m_perChannel[c].merge(imageChannels[c]);
        image.merge(imageChannels[c]);
    }
    m_perImage.push_back(image.finish());
    if (!m_histogram.empty()) {
        m_histogram.add(Side::Original, a.data(), a.size(), threads);
        m_histogram.add(Side::Quantized, b.data(), b.size(), threads);
    }
    if (keepMaps)
        addMaps(static_cast<int>(m_perImage.size()) - 1, a, b, threads);
}

void LayerAccumulator::addMaps(int image, const std::vector<float>& a, const std::vector<float>& b, int threads) {
    if (!m_maps4d)
        return;
    DiffMaps maps = diffMaps(a.data(), b.data(), m_channels, m_plane, threads);
    Maps& m = m_maps[image]; // channel means too, so that viewers need not read whole activations
    m.absDiff = std::move(maps.absMean);
    m.relDiff = std::move(maps.relMean);
    m.meanO = channelMean(a.data(), m_channels, m_plane);
    m.meanQ = channelMean(b.data(), m_channels, m_plane);
}

void LayerAccumulator::forgetMaps(int image) { m_maps.erase(image); }

std::vector<Metrics> LayerAccumulator::write(H5::Group& layer, const std::vector<int>& rows) const {
    writeLayerStatistics(layer, m_perChannel);
    if (m_maps4d) {
        std::vector<int> order = rows;
        if (order.empty())
            for (const auto& entry : m_maps)
                order.push_back(entry.first);
        std::vector<float> absMaps, relMaps, meanO, meanQ;
        for (int image : order) {
            const auto it = m_maps.find(image);
            if (it == m_maps.end())
                throw Error(ErrorKind::Internal, "no difference maps held for image " + std::to_string(image));
            const Maps& m = it->second;
            absMaps.insert(absMaps.end(), m.absDiff.begin(), m.absDiff.end());
            relMaps.insert(relMaps.end(), m.relDiff.begin(), m.relDiff.end());
            meanO.insert(meanO.end(), m.meanO.begin(), m.meanO.end());
            meanQ.insert(meanQ.end(), m.meanQ.begin(), m.meanQ.end());
        }
        const std::vector<hsize_t> mapDims = {static_cast<hsize_t>(order.size()), m_dims[2], m_dims[3]};
        h5::writeFloats(layer, layout::kAbsDiff, absMaps, mapDims);
        h5::writeFloats(layer, layout::kRelDiff, relMaps, mapDims);
        h5::writeFloats(layer, layout::meanMap(toString(Side::Original)), meanO, mapDims);
        h5::writeFloats(layer, layout::meanMap(toString(Side::Quantized)), meanQ, mapDims);
    }
    writeHistogram(layer, m_histogram, m_range);
    return m_perImage;
}

std::vector<Metrics> writeLayerMetrics(H5::H5File& file, int index, int images, int threads,
                                       const ValueRange& range) {
    H5::Group layer = file.openGroup(layout::child(layout::kLayers, index));
    H5::DataSet o = layer.openDataSet(toString(Side::Original));
    H5::DataSet q = layer.openDataSet(toString(Side::Quantized));
    LayerAccumulator acc(q, h5::dims(o), range);
    for (int i = 0; i < images; ++i)
        acc.addImage(h5::readImageSlab(o, i), h5::readImageSlab(q, i), true, threads);
    return acc.write(layer);
}

void writeImageMetrics(H5::H5File& file, const std::vector<std::vector<Metrics>>& byLayer) {
    if (byLayer.empty())
        return;
    const std::size_t layers = byLayer.size(), images = byLayer.front().size();
    replaceGroup(file, layout::kImageMetrics);
    H5::Group g = file.createGroup(layout::kImageMetrics);
    for (int k = 0; k < kMetricCount; ++k) {
        std::vector<double> values(images * layers);
        for (std::size_t l = 0; l < layers; ++l)
            for (std::size_t i = 0; i < images; ++i)
                values[i * layers + l] = metricValues(byLayer[l].at(i))[static_cast<std::size_t>(k)];
        h5::writeDoubles(g, kMetricNames[k], values, {images, layers});
    }
}

// ---- value ranges and histograms -----------------------------------------------------

void ValueRange::add(const float* values, std::size_t n) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (std::size_t i = 0; i < n; ++i) {
        const float v = values[i];
        if (std::isfinite(v)) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    }
    if (lo <= hi) {
        low = std::min(low, static_cast<double>(lo));
        high = std::max(high, static_cast<double>(hi));
    }
}

// On the bits, without converting: a finite half h orders as the int16 h ^ (h < 0 ?
// 0x7fff : 0) (negatives' magnitude bits flipped), so plain int16 min/max, which vectorise,
// find the range. The writer thread runs this over every value it writes.
void ValueRange::add(const std::uint16_t* halfValues, std::size_t n) {
    std::int16_t keyMin = INT16_MAX, keyMax = INT16_MIN; // no finite value yet
    std::size_t i = 0;
#ifdef __SSE2__ // eight at a time (GCC does not vectorise the loop below by itself: 8x)
    {
        const __m128i magnitude = _mm_set1_epi16(0x7fff), exponent = _mm_set1_epi16(0x7c00);
        const __m128i top = _mm_set1_epi16(INT16_MAX), bottom = _mm_set1_epi16(INT16_MIN);
        __m128i lo = top, hi = bottom;
        for (; i + 8 <= n; i += 8) {
            const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(halfValues + i));
            const __m128i key = _mm_xor_si128(h, _mm_and_si128(_mm_srai_epi16(h, 15), magnitude));
            const __m128i nonFinite = _mm_cmpeq_epi16(_mm_and_si128(h, exponent), exponent);
            const __m128i finiteKey = _mm_andnot_si128(nonFinite, key);
            lo = _mm_min_epi16(lo, _mm_or_si128(finiteKey, _mm_and_si128(nonFinite, top)));
            hi = _mm_max_epi16(hi, _mm_or_si128(finiteKey, _mm_and_si128(nonFinite, bottom)));
        }
        alignas(16) std::int16_t los[8], his[8];
        _mm_store_si128(reinterpret_cast<__m128i*>(los), lo);
        _mm_store_si128(reinterpret_cast<__m128i*>(his), hi);
        keyMin = *std::min_element(los, los + 8);
        keyMax = *std::max_element(his, his + 8);
    }
#endif
    for (; i < n; ++i) {
        const auto h = static_cast<std::int16_t>(halfValues[i]);
        const auto key = static_cast<std::int16_t>(h ^ ((h >> 15) & 0x7fff));
        const bool finite = (h & 0x7c00) != 0x7c00;
        keyMin = std::min<std::int16_t>(keyMin, finite ? key : INT16_MAX);
        keyMax = std::max<std::int16_t>(keyMax, finite ? key : INT16_MIN);
    }
    if (keyMin > keyMax)
        return;
    auto value = [](std::int16_t key) {
        const auto h = static_cast<std::uint16_t>(key ^ ((key >> 15) & 0x7fff));
        float f;
        halfToFloat(&h, &f, 1);
        return static_cast<double>(f);
    };
    low = std::min(low, value(keyMin));
    high = std::max(high, value(keyMax));
}

void ValueRange::add(const Activation& a) {
    const auto n = static_cast<std::size_t>(a.numel());
    if (a.type == StorageType::F16)
        add(static_cast<const std::uint16_t*>(a.data.get()), n);
    else
        add(static_cast<const float*>(a.data.get()), n);
}

void ValueRange::merge(const ValueRange& other) {
    low = std::min(low, other.low);
    high = std::max(high, other.high);
}

Histogram planHistogram(const ValueRange& range, double scale) {
    Histogram h;
    const double lo = range.empty() ? 0 : range.low, hi = range.empty() ? 0 : range.high;
    int bins = 256;
    if (std::isfinite(scale) && scale > 0) {
        const double first = std::floor(lo / scale), last = std::ceil(hi / scale);
        const double levels = last - first + 1;
        if (levels <= 2048) {
            const int perLevel = std::max(1, std::min(16, static_cast<int>(1024 / levels)));
            h.scale = scale;
            h.binWidth = scale / perLevel;
            h.low = first * scale - h.binWidth / 2; // level j * scale is the centre of a bin
            bins = static_cast<int>(last - first) * perLevel + 1;
        }
    }
    if (!std::isfinite(h.scale)) {
        if (hi > lo) {
            h.low = lo;
            h.binWidth = (hi - lo) / bins;
        } else {
            h.low = lo - 0.5;
            h.binWidth = 1.0 / bins;
        }
    }
    for (auto& c : h.counts)
        c.assign(static_cast<std::size_t>(bins), 0);
    return h;
}

namespace {

// The bin of each value: float bins are (v - low) * (1 / w) clamped to the bins, quantized
// values go by their integer level. Non-finite values get `spare`, a bin past the end.
struct FloatBins {
    float low, inverse, top;
    std::int32_t spare;
    std::int32_t operator()(float v) const {
        if (!(std::fabs(v) <= std::numeric_limits<float>::max())) // NaN or infinite
            return spare;
        return static_cast<std::int32_t>(std::clamp((v - low) * inverse, 0.0f, top));
    }
};
struct GridBins {
    float inverseScale;
    std::int32_t firstLevel, perLevel, last, spare;
    std::int32_t operator()(float v) const {
        if (!(std::fabs(v) <= std::numeric_limits<float>::max()))
            return spare;
        const float r = v * inverseScale; // a whole number, give or take f16 rounding
        const auto level = static_cast<std::int32_t>(std::clamp(r + std::copysign(0.5f, r), -2e9f, 2e9f));
        return std::clamp((level - firstLevel) * perLevel, 0, last);
    }
};

template <typename Bins>
void binsScalar(const float* v, std::size_t n, const Bins& bins, std::int32_t* out) {
    for (std::size_t i = 0; i < n; ++i)
        out[i] = bins(v[i]);
}

#if defined(__x86_64__)
// Eight values at a time, with the scalar functions' float operations in the same order
// (so the same bins), clamps as min/max and NaN and infinities masked to the spare bin.
__attribute__((target("avx2"))) __m256i finiteMask(__m256 x) {
    const __m256 magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    return _mm256_castps_si256(_mm256_cmp_ps(magnitude, _mm256_set1_ps(std::numeric_limits<float>::max()), _CMP_LE_OQ));
}

__attribute__((target("avx2"))) void binsAvx2(const float* v, std::size_t n, const FloatBins& bins, std::int32_t* out) {
    const __m256 low = _mm256_set1_ps(bins.low), inverse = _mm256_set1_ps(bins.inverse),
                 top = _mm256_set1_ps(bins.top), zero = _mm256_setzero_ps();
    const __m256i spare = _mm256_set1_epi32(bins.spare);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(v + i);
        const __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_sub_ps(x, low), inverse), zero), top);
        const __m256i b = _mm256_blendv_epi8(spare, _mm256_cvttps_epi32(t), finiteMask(x));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), b);
    }
    binsScalar(v + i, n - i, bins, out + i);
}

__attribute__((target("avx2"))) void binsAvx2(const float* v, std::size_t n, const GridBins& bins, std::int32_t* out) {
    const __m256 inverse = _mm256_set1_ps(bins.inverseScale), half = _mm256_set1_ps(0.5f),
                 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-2e9f), hi = _mm256_set1_ps(2e9f);
    const __m256i first = _mm256_set1_epi32(bins.firstLevel), perLevel = _mm256_set1_epi32(bins.perLevel),
                  last = _mm256_set1_epi32(bins.last), zero = _mm256_setzero_si256(),
                  spare = _mm256_set1_epi32(bins.spare);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(v + i);
        const __m256 r = _mm256_mul_ps(x, inverse);
        const __m256 rounded = _mm256_add_ps(r, _mm256_or_ps(_mm256_and_ps(r, sign), half)); // r + copysign(0.5, r)
        const __m256i level = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(rounded, lo), hi));
        __m256i b = _mm256_mullo_epi32(_mm256_sub_epi32(level, first), perLevel);
        b = _mm256_min_epi32(_mm256_max_epi32(b, zero), last);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_blendv_epi8(spare, b, finiteMask(x)));
    }
    binsScalar(v + i, n - i, bins, out + i);
}
#endif

// Counts the bin of every finite value into `counts` (size `bins`). In blocks: first every
// value's bin (eight at a time with AVX2), then the increments, into four interleaved
// copies of the counts so that runs of values in one bin do not wait on each other's.
template <typename Bins>
void countBins(const float* values, std::size_t n, std::size_t bins, const Bins& binOf, std::int64_t* counts) {
    const std::size_t stride = bins + 1; // + the spare bin
    std::vector<std::uint32_t> copies(4 * stride, 0); // a slab holds < 2^32 values
    std::uint32_t* c = copies.data();
#if defined(__x86_64__)
    static const bool avx2 = __builtin_cpu_supports("avx2");
#endif
    constexpr std::size_t kBlock = 2048;
    std::int32_t index[kBlock];
    for (std::size_t b = 0; b < n; b += kBlock) {
        const std::size_t m = std::min(kBlock, n - b);
#if defined(__x86_64__)
        if (avx2)
            binsAvx2(values + b, m, binOf, index);
        else
#endif
            binsScalar(values + b, m, binOf, index);
        std::size_t i = 0;
        for (; i + 4 <= m; i += 4) {
            ++c[static_cast<std::size_t>(index[i])];
            ++c[stride + static_cast<std::size_t>(index[i + 1])];
            ++c[2 * stride + static_cast<std::size_t>(index[i + 2])];
            ++c[3 * stride + static_cast<std::size_t>(index[i + 3])];
        }
        for (; i < m; ++i)
            ++c[static_cast<std::size_t>(index[i])];
    }
    for (std::size_t k = 0; k < bins; ++k)
        counts[k] += std::int64_t{c[k]} + c[stride + k] + c[2 * stride + k] + c[3 * stride + k];
}

} // namespace

void Histogram::add(Side side, const float* values, std::size_t n, int threads) {
    auto& c = counts[static_cast<int>(side)];
    const std::size_t bins = c.size();
    // The quantized tensor held integers times its scale: its values are binned by their
    // integer level (which also undoes f16 storage's rounding, up to 2^-11 relative, enough
    // to leave a level's bin when bins are finer than levels). Float values are binned in
    // float arithmetic, (v - low) * (1 / w), the formula docs/dump-format.md gives.
    const bool grid = side == Side::Quantized && std::isfinite(scale) && scale > 0;
    const std::size_t t = threadCount(threads, n / 65536 + 1);
    std::vector<std::vector<std::int64_t>> partial(t, std::vector<std::int64_t>(bins, 0));
    const auto spare = static_cast<std::int32_t>(bins);
    if (grid) {
        const GridBins binOf{static_cast<float>(1.0 / scale),
                             static_cast<std::int32_t>(std::llround((low + binWidth / 2) / scale)),
                             static_cast<std::int32_t>(std::llround(scale / binWidth)),
                             static_cast<std::int32_t>(bins - 1), spare};
        parallelRanges(n, t, [&](std::size_t k, std::size_t b, std::size_t e) {
            countBins(values + b, e - b, bins, binOf, partial[k].data());
        });
    } else {
        const FloatBins binOf{static_cast<float>(low), static_cast<float>(1.0 / binWidth),
                              static_cast<float>(bins - 1), spare};
        parallelRanges(n, t, [&](std::size_t k, std::size_t b, std::size_t e) {
            countBins(values + b, e - b, bins, binOf, partial[k].data());
        });
    }
    for (const auto& p : partial)
        for (std::size_t b = 0; b < bins; ++b)
            c[b] += p[b];
}

// ---- readers -------------------------------------------------------------------------

DumpHeader readDumpHeader(const H5::H5File& file) {
    H5::Group root = file.openGroup("/");
    DumpHeader h;
    h.format = h5::stringAttr(root, kFormat);
    h.version = static_cast<int>(h5::intAttr(root, kVersion, 0));
    h.complete = h5::intAttr(root, kComplete, 0) == 1;
    h.dtype = h5::stringAttr(root, kDtype);
    h.images = h5::intAttr(root, kImageCount, 0);
    return h;
}

RunRecord readRunRecord(const H5::H5File& file) {
    H5::Group root = file.openGroup("/");
    RunRecord r;
    r.created = h5::stringAttr(root, kCreated);
    r.producer = h5::stringAttr(root, kProducer);
    r.tapPoint = h5::stringAttr(root, kTapPoint);
    r.ops = h5::stringAttr(root, kOps);
    r.layers = static_cast<int>(h5::intAttr(root, kLayerCount, 0));
    r.unmatchedOriginal = static_cast<int>(h5::intAttr(root, kUnmatchedOriginal, 0));
    r.unmatchedQuantized = static_cast<int>(h5::intAttr(root, kUnmatchedQuantized, 0));
    r.inputWidth = static_cast<int>(h5::intAttr(root, kInputWidth, 0));
    r.inputHeight = static_cast<int>(h5::intAttr(root, kInputHeight, 0));
    r.shardIndex = static_cast<int>(h5::intAttr(root, kShardIndex, 0));
    r.shardCount = static_cast<int>(h5::intAttr(root, kShardCount, 1));
    r.imagesTotal = h5::intAttr(root, kImagesTotal, 0);
    r.keptImages = static_cast<int>(h5::intAttr(root, kKeptImages, -1));
    if (r.keptImages >= 0) {
        r.keptSelection = root.attrExists(kKeptSelection) ? h5::stringAttr(root, kKeptSelection) : "first";
        r.keepRequested = static_cast<int>(h5::intAttr(root, kKeepRequested, r.keptImages));
        if (h5::exists(root, layout::kKeptRows + 1)) {
            for (std::int64_t image : h5::readInts(root, layout::kKeptRows + 1, "/"))
                r.keptRows.push_back(image < INT32_MIN || image > INT32_MAX ? -1 : static_cast<int>(image));
        } else {
            for (int i = 0; i < r.keptImages; ++i)
                r.keptRows.push_back(i);
        }
    }
    return r;
}

LayerSummary readLayer(const H5::Group& g, int index) {
    LayerSummary s;
    s.index = index;
    s.name = h5::stringAttr(g, kName);
    s.module = h5::stringAttr(g, kModule);
    s.call = static_cast<int>(h5::intAttr(g, kCall, 0));
    s.op = h5::stringAttr(g, kOp);
    s.quantizedName = h5::stringAttr(g, kQuantizedName);
    s.quantizedOp = h5::stringAttr(g, kQuantizedOp);
    s.match = h5::stringAttr(g, kMatch);
    s.shape = h5::intsAttr(g, kShape);
    if (h5::hasAttr(g, kInputs))
        s.inputs = h5::intsAttr(g, kInputs);
    s.metrics = readMetrics(g);
    return s;
}

std::string readActivationName(const H5::DataSet& ds) {
    const auto call = h5::intAttr(ds, kCall, 0);
    return h5::stringAttr(ds, kModule) + (call > 0 ? "#" + std::to_string(call) : "");
}

Metrics readMetrics(const H5::H5Object& obj) {
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    double v[kMetricCount];
    for (int k = 0; k < kMetricCount; ++k)
        v[k] = h5::doubleAttr(obj, kMetricNames[k], nan);
    return metricsFromValues(v);
}

EvalData toEvalData(const PairScore& score, const std::string& annotations, const std::vector<CocoBox> detections[2],
                    int shardIndex, int shardCount) {
    EvalData e;
    e.annotations = annotations;
    e.images = static_cast<int>(score.imageIds.size());
    e.deltaMean = score.deltaMean;
    e.deltaStd = score.deltaStd;
    e.relMean = score.relMean;
    e.relStd = score.relStd;
    for (int s = 0; s < 2; ++s) {
        const CocoResult& c = score.coco[s];
        e.map[s] = c.map;
        e.map50[s] = c.map50;
        e.map75[s] = c.map75;
        e.recall[s] = c.recall;
        for (const auto& k : c.classes)
            e.classAp[s].push_back(static_cast<float>(k.ap));
        for (double m : score.perImageMap[s])
            e.perImageMap[s].push_back(static_cast<float>(m));
        e.detections[s] = detections[s];
    }
    for (const auto& k : score.coco[0].classes) {
        e.categoryIds.push_back(k.categoryId);
        e.categoryNames += (e.categoryNames.empty() ? "" : ",") + k.name;
    }
    e.perImageFiles = score.imageFiles;
    e.shardIndex = shardIndex;
    e.shardCount = shardCount;
    return e;
}

ImageMetrics readImageMetrics(const H5::H5File& file, const std::string& path, int images, int layers) {
    ImageMetrics r;
    if (H5Lexists(file.getId(), layout::kImageMetrics + 1, H5P_DEFAULT) <= 0)
        return r;
    const std::string where = path + ": " + layout::kImageMetrics;
    H5::Group g = file.openGroup(layout::kImageMetrics);
    r.images = images;
    r.layers = layers;
    const std::size_t cells = static_cast<std::size_t>(images) * static_cast<std::size_t>(layers);
    std::vector<double> byMetric(cells * kMetricCount); // [cell][metric]
    for (int k = 0; k < kMetricCount; ++k) {
        if (!h5::exists(g, kMetricNames[k]))
            throw Error(ErrorKind::Input, where + ": " + kMetricNames[k] + " is missing");
        H5::DataSet ds = g.openDataSet(kMetricNames[k]);
        const auto d = h5::dims(ds);
        if (d.size() != 2 || d[0] != static_cast<hsize_t>(images) || d[1] != static_cast<hsize_t>(layers))
            throw Error(ErrorKind::Input, where + ": " + kMetricNames[k] + " has shape " + h5::dimsText(d) +
                                              " but [" + std::to_string(images) + "x" + std::to_string(layers) +
                                              "] (images x layers) is expected");
        const std::vector<double> v = h5::readDoubles(ds);
        for (std::size_t j = 0; j < v.size(); ++j)
            byMetric[j * kMetricCount + static_cast<std::size_t>(k)] = v[j];
    }
    for (std::size_t j = 0; j < cells; ++j)
        r.values.push_back(metricsFromValues(byMetric.data() + j * kMetricCount));
    return r;
}

Histogram readHistogram(const H5::Group& layer, const std::string& where) {
    Histogram h;
    if (!h5::exists(layer, layout::kHistogram))
        return h;
    H5::Group g = layer.openGroup(layout::kHistogram);
    const std::string at = where + ": histogram";
    h.low = h5::doubleAttr(g, kLow, std::nan(""));
    h.binWidth = h5::doubleAttr(g, kBinWidth, std::nan(""));
    if (!std::isfinite(h.low) || !std::isfinite(h.binWidth) || h.binWidth <= 0)
        throw Error(ErrorKind::Input, at + ": low and bin_width must be finite numbers, bin_width > 0");
    if (h5::hasAttr(g, kScale)) {
        h.scale = h5::doubleAttr(g, kScale, std::nan(""));
        h.zeroPoint = h5::intAttr(g, kZeroPoint, 0);
        h.qmin = h5::intAttr(g, kQuantMin, 0);
        h.qmax = h5::intAttr(g, kQuantMax, 255);
        if (!std::isfinite(h.scale) || h.scale <= 0 || h.qmin > h.qmax)
            throw Error(ErrorKind::Input, at + ": its quantization grid (scale, quant_min, quant_max) is not valid");
    }
    for (Side side : {Side::Original, Side::Quantized}) {
        auto& c = h.counts[static_cast<int>(side)];
        c = h5::readInts(g, toString(side), at);
        if (c.empty() || c.size() > 65536)
            throw Error(ErrorKind::Input, at + ": " + toString(side) + " has " + std::to_string(c.size()) +
                                              " bins (1 to 65536 expected)");
        for (auto v : c)
            if (v < 0)
                throw Error(ErrorKind::Input, at + ": " + toString(side) + " has a negative count");
    }
    if (h.counts[0].size() != h.counts[1].size())
        throw Error(ErrorKind::Input, at + ": the two sides have different numbers of bins");
    return h;
}

std::vector<hsize_t> checkInputImage(const H5::DataSet& ds, const std::string& where) {
    const auto d = h5::dims(ds);
    if (d.size() != 3 || d[2] != 3 || d[0] == 0 || d[1] == 0 || d[0] > 65536 || d[1] > 65536)
        throw Error(ErrorKind::Input, where + ": image has shape " + h5::dimsText(d) + " but [H, W, 3] is expected");
    if (ds.getTypeClass() != H5T_INTEGER || ds.getDataType().getSize() != 1)
        throw Error(ErrorKind::Input, where + ": image is not 8-bit");
    try {
        h5::checkStorage(ds, d[0] * d[1] * 3);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, where + ": image: " + h5::describe(e));
    }
    return d;
}

std::int64_t readInputIndex(const H5::H5File& file, int image) {
    return h5::intAttr(file.openGroup(layout::child(layout::kInputs, image)), kListIndex, -1);
}

std::string readInputSource(const H5::H5File& file, int image) {
    return h5::stringAttr(file.openGroup(layout::child(layout::kInputs, image)), kSource);
}

ImageSummary summarizeImage(const ImageMetrics& metrics, int image) {
    ImageSummary s;
    s.image = image;
    double sum = 0;
    int finite = 0;
    s.minSqnrDb = std::numeric_limits<double>::infinity();
    for (int k = 0; k < metrics.layers; ++k) {
        const double v = metrics.at(image, k).sqnrDb;
        if (std::isnan(v))
            continue;
        if (s.worstLayer < 0 || v < s.minSqnrDb) {
            s.minSqnrDb = v;
            s.worstLayer = k;
        }
        if (std::isfinite(v)) {
            sum += v;
            ++finite;
        }
    }
    s.meanSqnrDb = finite ? sum / finite : std::numeric_limits<double>::infinity();
    return s;
}

std::vector<ImageSummary> worstImages(const ImageMetrics& metrics, std::size_t top) {
    std::vector<ImageSummary> images;
    for (int i = 0; i < metrics.images; ++i)
        images.push_back(summarizeImage(metrics, i));
    std::stable_sort(images.begin(), images.end(),
                     [](const ImageSummary& a, const ImageSummary& b) { return a.meanSqnrDb < b.meanSqnrDb; });
    if (images.size() > top)
        images.resize(top);
    return images;
}

InputImage readInput(const H5::H5File& file, const std::string& path, int image) {
    const std::string group = layout::child(layout::kInputs, image);
    const std::string where = path + ": input " + layout::indexName(image);
    if (!h5::exists(file.openGroup("/"), group.substr(1) + "/" + layout::kImage))
        throw Error(ErrorKind::Input, path + ": the dump has no input image " + std::to_string(image));
    H5::Group g = file.openGroup(group);
    InputImage img;
    img.source = h5::stringAttr(g, kSource);
    img.index = h5::intAttr(g, kListIndex, -1);
    H5::DataSet ds = g.openDataSet(layout::kImage);
    const auto d = checkInputImage(ds, where);
    img.height = static_cast<int>(d[0]);
    img.width = static_cast<int>(d[1]);
    img.rgb.resize(d[0] * d[1] * 3);
    ds.read(img.rgb.data(), H5::PredType::NATIVE_UINT8);
    return img;
}

OutputPair readOutputs(const H5::H5File& file, const std::string& path, int image) {
    const std::string group = layout::child(layout::kOutputs, image);
    const std::string where = path + ": outputs " + layout::indexName(image);
    OutputPair out;
    if (!h5::exists(file.openGroup("/"), group.substr(1)))
        return out;
    H5::Group g = file.openGroup(group);
    out.kind = h5::stringAttr(g, kKind);
    for (Side s : {Side::Original, Side::Quantized}) {
        if (!h5::exists(g, toString(s)))
            throw Error(ErrorKind::Input, where + ": " + toString(s) + " is missing");
        auto& values = s == Side::Original ? out.original : out.quantized;
        values = out.kind == toString(OutputKind::Detections) ? readRows(g, toString(s), 6, where)
                                                               : h5::readFloats(g.openDataSet(toString(s)));
    }
    if (h5::exists(g, layout::kMatches)) {
        out.matches = readRows(g, layout::kMatches, 4, where);
        const std::size_t no = out.original.size() / 6, nq = out.quantized.size() / 6;
        for (std::size_t r = 0; r < out.matches.size(); r += 4) {
            const float a = out.matches[r], b = out.matches[r + 1];
            if (!(a >= 0 && a < static_cast<float>(no) && b >= 0 && b < static_cast<float>(nq)))
                throw Error(ErrorKind::Input, where + ": matches row " + std::to_string(r / 4) +
                                                  " names a detection that does not exist");
        }
    }
    return out;
}

ModelSummary readModel(const H5::H5File& file, Side side) {
    ModelSummary m;
    const std::string p = std::string(layout::kModels) + "/" + toString(side);
    if (!h5::exists(file.openGroup("/"), p.substr(1)))
        return m;
    H5::Group g = file.openGroup(p);
    m.path = h5::stringAttr(g, kPath);
    m.sha256 = h5::stringAttr(g, kSha256);
    m.format = h5::stringAttr(g, kFormat);
    m.input = h5::stringAttr(g, kInput);
    m.engine = h5::stringAttr(g, kEngine);
    m.fileBytes = h5::intAttr(g, kFileBytes, 0);
    m.parameterBytes = h5::intAttr(g, kParameterBytes, 0);
    m.tapSites = h5::intAttr(g, kTapSites, 0);
    m.tappedCalls = h5::intAttr(g, kTappedCalls, 0);
    m.quantized = h5::intAttr(g, kQuantized, 0) == 1;
    return m;
}

BenchData readBench(const H5::H5File& file, const std::string& path) {
    const std::string where = path + ": /bench";
    BenchData b;
    H5::Group g = file.openGroup(layout::kBench);
    for (Side s : {Side::Original, Side::Quantized}) {
        const int i = static_cast<int>(s);
        b.path[i] = h5::stringAttr(g, sideAttr(s, kPath));
        b.fileBytes[i] = h5::intAttr(g, sideAttr(s, kFileBytes), 0);
        b.parameterBytes[i] = h5::intAttr(g, sideAttr(s, kParameterBytes), 0);
        b.mibPerImage[i] = h5::doubleAttr(g, sideAttr(s, "mib_per_image"), 0);
    }
    b.width = static_cast<int>(h5::intAttr(g, kWidth, 0));
    b.height = static_cast<int>(h5::intAttr(g, kHeight, 0));
    b.threads = static_cast<int>(h5::intAttr(g, kThreads, 0));
    b.engine = h5::stringAttr(g, kEngine);
    b.memoryLimitMiB = h5::doubleAttr(g, kMemoryLimit, 0);
    b.batch = h5::readInts(g, kBatch, where);
    const long long n = static_cast<long long>(b.batch.size());
    for (Side s : {Side::Original, Side::Quantized}) {
        const int i = static_cast<int>(s);
        b.medianMs[i] = readVector(g, attrSide("median_ms", s), n, where);
        b.peakMiB[i] = readVector(g, attrSide("peak_mib", s), n, where);
        // written since the first release, but not read by any view: optional
        for (auto [name, into] : {std::pair{"min_ms", &b.minMs[i]}, {"max_ms", &b.maxMs[i]}, {"model_mib", &b.modelMiB[i]}})
            *into = h5::exists(g, attrSide(name, s)) ? readVector(g, attrSide(name, s), n, where)
                                                     : std::vector<float>(static_cast<std::size_t>(n), std::nanf(""));
    }
    return b;
}

EvalData readEval(const H5::H5File& file, const std::string& path) {
    const std::string where = path + ": /eval";
    EvalData e;
    H5::Group g = file.openGroup(layout::kEval);
    e.annotations = h5::stringAttr(g, kAnnotations);
    e.images = static_cast<int>(h5::intAttr(g, kImages, 0));
    e.deltaMean = h5::doubleAttr(g, kDeltaMean, 0);
    e.deltaStd = h5::doubleAttr(g, kDeltaStd, 0);
    e.relMean = h5::doubleAttr(g, kRelMean, 0);
    e.relStd = h5::doubleAttr(g, kRelStd, 0);
    e.categoryIds = h5::intsAttr(g, kCategoryIds);
    e.categoryNames = h5::stringAttr(g, kCategoryNames);
    for (Side s : {Side::Original, Side::Quantized}) {
        const int i = static_cast<int>(s);
        e.map[i] = h5::doubleAttr(g, sideAttr(s, "map"), -1);
        e.map50[i] = h5::doubleAttr(g, sideAttr(s, "map50"), -1);
        e.map75[i] = h5::doubleAttr(g, sideAttr(s, "map75"), -1);
        e.recall[i] = h5::doubleAttr(g, sideAttr(s, "recall"), -1);
        if (h5::exists(g, sideAttr(s, "class_ap")))
            e.classAp[i] = readVector(g, sideAttr(s, "class_ap"), static_cast<long long>(e.categoryIds.size()), where);
    }
    e.shardIndex = static_cast<int>(h5::intAttr(g, kShardIndex, 0));
    e.shardCount = static_cast<int>(h5::intAttr(g, kShardCount, 1));
    for (Side s : {Side::Original, Side::Quantized}) {
        if (!h5::exists(g, sideAttr(s, "detections")))
            continue;
        H5::DataSet ds = g.openDataSet(sideAttr(s, "detections"));
        const auto d = h5::dims(ds);
        if (d.size() != 2 || d[1] != 7)
            throw Error(ErrorKind::Input, where + ": " + sideAttr(s, "detections") + " has shape " + h5::dimsText(d) +
                                              " but rows of 7 are expected");
        const std::vector<double> v = h5::readDoubles(ds);
        for (std::size_t r = 0; r < d[0]; ++r) {
            CocoBox b;
            b.imageId = static_cast<std::int64_t>(v[7 * r]);
            b.categoryId = static_cast<std::int64_t>(v[7 * r + 1]);
            b.x = v[7 * r + 2];
            b.y = v[7 * r + 3];
            b.w = v[7 * r + 4];
            b.h = v[7 * r + 5];
            b.score = v[7 * r + 6];
            e.detections[static_cast<int>(s)].push_back(b);
        }
    }
    if (h5::hasAttr(g, kPerImageFiles)) {
        const std::string files = h5::stringAttr(g, kPerImageFiles);
        for (std::size_t start = 0; start <= files.size();) {
            const std::size_t end = std::min(files.find('\n', start), files.size());
            e.perImageFiles.push_back(files.substr(start, end - start));
            start = end + 1;
        }
        for (Side s : {Side::Original, Side::Quantized})
            e.perImageMap[static_cast<int>(s)] = readVector(g, sideAttr(s, "per_image_map"),
                                                            static_cast<long long>(e.perImageFiles.size()), where);
    }
    return e;
}

} // namespace qs
