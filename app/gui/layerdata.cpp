#include "layerdata.h"

#include "error.h"
#include "metrics.h"

#include <QObject>

#include <algorithm>
#include <cmath>
#include <limits>

namespace qs {

namespace {

std::vector<float> reduce(const std::vector<float>& chw, int channels, std::size_t plane, ChannelMode mode,
                          int channel) {
    std::vector<float> out(plane, 0.0f);
    if (mode == ChannelMode::Single) {
        const std::size_t c = static_cast<std::size_t>(std::clamp(channel, 0, channels - 1));
        std::copy(chw.begin() + static_cast<std::ptrdiff_t>(c * plane),
                  chw.begin() + static_cast<std::ptrdiff_t>((c + 1) * plane), out.begin());
        return out;
    }
    if (mode == ChannelMode::Max)
        std::fill(out.begin(), out.end(), -std::numeric_limits<float>::infinity());
    for (int c = 0; c < channels; ++c) {
        const float* src = chw.data() + static_cast<std::size_t>(c) * plane;
        for (std::size_t p = 0; p < plane; ++p)
            out[p] = mode == ChannelMode::Max ? std::max(out[p], src[p]) : out[p] + src[p];
    }
    if (mode == ChannelMode::Mean)
        for (auto& v : out)
            v /= static_cast<float>(channels);
    return out;
}

} // namespace

LayerMaps loadLayerMaps(const DumpReader& dump, int layer, int image, ChannelMode mode, int channel) {
    LayerMaps m;
    m.layer = layer;
    m.image = image;
    m.mode = mode;
    m.channel = channel;
    if (!dump.isKept(image)) { // nothing to draw, and nothing wrong
        m.notKept = true;
        return m;
    }
    try {
        const auto& summary = dump.layers().at(static_cast<std::size_t>(layer));
        const auto& shape = summary.shape;
        m.channels = shape.empty() ? 1 : static_cast<int>(shape[0]);
        m.height = shape.size() >= 3 ? static_cast<int>(shape[1]) : 1;
        m.width = shape.size() >= 3 ? static_cast<int>(shape[2]) : (shape.size() >= 2 ? static_cast<int>(shape[1]) : 1);
        if (shape.size() < 3) { // linear layers: one row of features
            m.width = m.channels;
            m.channels = 1;
        }
        const std::size_t plane = static_cast<std::size_t>(m.width) * m.height;
        const bool spatial = shape.size() >= 3;
        if (spatial && mode == ChannelMode::Mean) {
            // stored per-image maps: four [H, W] reads, whatever the number of channels
            m.original = dump.meanMap(layer, Side::Original, image);
            m.quantized = dump.meanMap(layer, Side::Quantized, image);
            m.absDiff = dump.diffMap(layer, false, image);
            m.relDiff = dump.diffMap(layer, true, image);
        }
        const bool stored = m.original.size() == plane && m.quantized.size() == plane &&
                            m.absDiff.size() == plane && m.relDiff.size() == plane;
        if (!stored) {
            std::vector<float> o, q;
            int channels = m.channels;
            if (spatial && mode == ChannelMode::Single) { // one channel: read just that chunk
                const int c = std::clamp(channel, 0, m.channels - 1);
                o = dump.activationChannel(layer, Side::Original, image, c);
                q = dump.activationChannel(layer, Side::Quantized, image, c);
                channels = 1;
            } else {
                o = dump.activation(layer, Side::Original, image);
                q = dump.activation(layer, Side::Quantized, image);
            }
            const ChannelMode reduceMode = channels == 1 ? ChannelMode::Mean : mode;
            m.original = reduce(o, channels, plane, reduceMode, channel);
            m.quantized = reduce(q, channels, plane, reduceMode, channel);
            // the difference maps, with the definitions of docs/metrics.md (tau from the
            // layer's whole activation for the relative map, as stored maps do, except for
            // one channel, where it comes from that channel)
            std::vector<float> err(o.size()), rel(o.size());
            float maxRef = 0;
            for (float v : o)
                maxRef = std::max(maxRef, std::fabs(v));
            const float tau = maxRef > 0 ? static_cast<float>(kRelFloor) * maxRef : 1.0f;
            for (std::size_t i = 0; i < o.size(); ++i) {
                err[i] = std::fabs(q[i] - o[i]);
                rel[i] = err[i] / std::max(std::fabs(o[i]), tau);
            }
            m.absDiff = reduce(err, channels, plane, reduceMode, channel);
            m.relDiff = reduce(rel, channels, plane, reduceMode, channel);
        }
        m.input = inputImage(dump, image);
        m.channelSqnr = dump.channelMetric(layer, "sqnr_db");
        m.channelMse = dump.channelMetric(layer, "mse");
    } catch (const std::exception& e) {
        m.error = QString::fromStdString(e.what());
    }
    return m;
}

QImage inputImage(const DumpReader& dump, int image) {
    try {
        const InputImage in = dump.input(image);
        QImage img(in.width, in.height, QImage::Format_RGB888);
        for (int r = 0; r < in.height; ++r)
            std::copy_n(in.rgb.data() + static_cast<std::size_t>(r) * in.width * 3, in.width * 3, img.scanLine(r));
        return img;
    } catch (const Error&) {
    }
    // compare --keep-activations stores the pixels of kept images only: read the source
    // file again when it is still there, at the size the models were fed
    QImage source(QString::fromStdString(dump.source(image)));
    if (source.isNull())
        return {};
    if (dump.inputWidth() > 0 && dump.inputHeight() > 0)
        source = source.scaled(dump.inputWidth(), dump.inputHeight(), Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
    return source.convertToFormat(QImage::Format_RGB888);
}

OutputSamples loadOutputSamples(const DumpReader& dump, OutputQuantity quantity, int image) {
    OutputSamples s;
    const int first = image < 0 ? 0 : image;
    const int last = image < 0 ? dump.imageCount() - 1 : image;
    try {
        for (int i = first; i <= last; ++i) {
            const OutputPair out = dump.outputs(i);
            if (out.kind == "detections") {
                for (std::size_t m = 0; 4 * m + 3 < out.matches.size(); ++m) {
                    const auto oi = static_cast<std::size_t>(out.matches[4 * m]);
                    const auto qi = static_cast<std::size_t>(out.matches[4 * m + 1]);
                    const float iou = out.matches[4 * m + 2];
                    if (6 * oi + 5 >= out.original.size() || 6 * qi + 5 >= out.quantized.size())
                        continue;
                    const int per = quantity == OutputQuantity::Boxes ? 4 : 1;
                    for (int k = 0; k < per; ++k) {
                        s.image.push_back(i);
                        s.first.push_back(static_cast<int>(oi));
                        s.second.push_back(static_cast<int>(qi));
                    }
                    if (quantity == OutputQuantity::Boxes) {
                        for (int k = 0; k < 4; ++k) {
                            s.x.push_back(out.original[6 * oi + static_cast<std::size_t>(k)]);
                            s.y.push_back(out.quantized[6 * qi + static_cast<std::size_t>(k)]);
                        }
                    } else if (quantity == OutputQuantity::IouVsScore) {
                        s.x.push_back(out.original[6 * oi + 4]);
                        s.y.push_back(iou);
                    } else { // scores
                        s.x.push_back(out.original[6 * oi + 4]);
                        s.y.push_back(out.quantized[6 * qi + 4]);
                    }
                }
                s.xLabel = quantity == OutputQuantity::Boxes ? QObject::tr("original box coordinate (px)")
                                                             : QObject::tr("original score");
                s.yLabel = quantity == OutputQuantity::Boxes      ? QObject::tr("quantized box coordinate (px)")
                           : quantity == OutputQuantity::IouVsScore ? QObject::tr("IoU of the matched pair")
                                                                    : QObject::tr("quantized score");
            } else if (!out.kind.empty()) {
                const std::size_t n = std::min(out.original.size(), out.quantized.size());
                for (std::size_t k = 0; k < n; ++k) {
                    s.x.push_back(out.original[k]);
                    s.y.push_back(out.quantized[k]);
                    s.image.push_back(i);
                    s.first.push_back(static_cast<int>(k));
                    s.second.push_back(-1);
                }
                s.xLabel = out.kind == "logits" ? QObject::tr("original logit") : QObject::tr("original output");
                s.yLabel = out.kind == "logits" ? QObject::tr("quantized logit") : QObject::tr("quantized output");
            }
        }
    } catch (const std::exception& e) {
        s.error = QString::fromStdString(e.what());
    }
    return s;
}

} // namespace qs
