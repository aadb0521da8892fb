#include "dumpreader.h"

#include "childprocess.h"
#include "error.h"
#include "h5util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include <filesystem>
#include <limits>

namespace qs {

namespace {

// Iterates the member names of a group without opening them.
std::vector<std::string> memberNames(const H5::Group& group) {
    std::vector<std::string> names;
    const hsize_t n = group.getNumObjs();
    names.reserve(n);
    for (hsize_t i = 0; i < n; ++i)
        names.push_back(group.getObjnameByIdx(i));
    return names;
}

constexpr std::int64_t kMaxImages = 10'000'000;

// In openDump's child: tells the parent that validation is progressing (one byte on the
// pipe per layer or image), so that only a child stuck inside libhdf5 runs out of time.
int g_heartbeatFd = -1;
constexpr char kHeartbeat = '\x01';
void heartbeat() {
    if (g_heartbeatFd >= 0 && ::write(g_heartbeatFd, &kHeartbeat, 1) < 0)
        g_heartbeatFd = -1;
}

std::string shapeText(const std::vector<std::int64_t>& shape) {
    std::string s;
    for (std::size_t i = 0; i < shape.size(); ++i)
        s += (i ? "x" : "") + std::to_string(shape[i]);
    return s.empty() ? "a scalar" : s;
}

// A float dataset of exactly `expected` dims, whose storage can hold them.
// wide: float64 allowed too (the sums behind the metrics); activations and maps never are
void checkDataset(const H5::Group& group, const std::string& name, const std::vector<hsize_t>& expected,
                  const std::string& where, const std::string& layerShape, bool wide = false) {
    H5::DataSet ds = group.openDataSet(name);
    const auto d = h5::dims(ds);
    if (d != expected)
        throw Error(ErrorKind::Input, where + ": " + name + " has shape " + h5::dimsText(d) + " but the layer is " +
                                          layerShape + " (expected " + h5::dimsText(expected) + ")");
    const std::size_t bytes = ds.getDataType().getSize();
    if (ds.getTypeClass() != H5T_FLOAT || (bytes != 2 && bytes != 4 && !(wide && bytes == 8)))
        throw Error(ErrorKind::Input, where + ": " + name + (wide ? " is not float16, float32 or float64"
                                                                  : " is not float16 or float32"));
    hsize_t n = 0;
    if (!h5::product(d, std::numeric_limits<hsize_t>::max(), n))
        throw Error(ErrorKind::Input, where + ": " + name + " has shape " + h5::dimsText(d) + ", too large to be real");
    try {
        h5::checkStorage(ds, n);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, where + ": " + name + ": " + h5::describe(e));
    }
}

} // namespace

void DumpReader::validateLayers() {
    const hsize_t images = static_cast<hsize_t>(m_images);
    const hsize_t rows = static_cast<hsize_t>(m_kept); // activations and maps stored
    for (const auto& layer : m_layers) {
        heartbeat();
        const std::string group = layout::child(layout::kLayers, layer.index);
        const std::string where = m_path + ": layer " + layout::indexName(layer.index);
        if (layer.shape.empty() || layer.shape.size() > 8)
            throw Error(ErrorKind::Input, where + ": its shape attribute is missing or not a shape");
        std::vector<hsize_t> full{rows};
        for (std::int64_t v : layer.shape) {
            if (v < 1 || v > (std::int64_t{1} << 31))
                throw Error(ErrorKind::Input, where + ": its shape " + shapeText(layer.shape) + " is not a shape");
            full.push_back(static_cast<hsize_t>(v));
        }
        const std::string shape = shapeText(layer.shape);
        hsize_t perImage = 0;
        if (!h5::product(std::vector<hsize_t>(full.begin() + 1, full.end()), h5::kMaxReadElements, perImage))
            throw Error(ErrorKind::Input, where + ": its shape " + shape + " is larger than any layer can be");
        H5::Group g = m_file->openGroup(group);
        for (Side side : {Side::Original, Side::Quantized}) {
            if (!h5::exists(g, toString(side)))
                throw Error(ErrorKind::Input, where + ": the " + std::string(toString(side)) + " activations are missing");
            checkDataset(g, toString(side), full, where, shape);
        }
        for (std::string name : {std::string(layout::kAbsDiff), std::string(layout::kRelDiff),
                                 layout::meanMap(toString(Side::Original)), layout::meanMap(toString(Side::Quantized))}) {
            if (!h5::exists(g, name))
                continue;
            if (layer.shape.size() != 3) // maps are written for [C, H, W] layers only
                throw Error(ErrorKind::Input, where + ": " + name + " on a layer of shape " + shape +
                                                  ", which has no spatial map");
            checkDataset(g, name, {rows, full[2], full[3]}, where, shape);
        }
        for (std::int64_t from : layer.inputs)
            if (from < 0 || from >= static_cast<std::int64_t>(m_layers.size()) || from == layer.index)
                throw Error(ErrorKind::Input, where + ": its inputs name layer " + std::to_string(from) +
                                                  ", which is not another layer of the dump");
        if (h5::exists(g, layout::kChannels)) {
            H5::Group ch = g.openGroup(layout::kChannels);
            for (const auto& metric : memberNames(ch)) // per channel, and the sums behind them
                checkDataset(ch, metric, metric == "sums" ? std::vector<hsize_t>{full[1], 8} : std::vector<hsize_t>{full[1]},
                             where + ": channels", shape, metric == "sums");
        }
    }
    H5::Group root = m_file->openGroup("/");
    for (const char* group : {layout::kInputs, layout::kOutputs}) {
        if (!h5::exists(root, group + 1))
            continue;
        const hsize_t members = m_file->openGroup(group).getNumObjs();
        if (members != images)
            throw Error(ErrorKind::Input, m_path + ": " + group + " holds " + std::to_string(members) +
                                              " images but image_count is " + std::to_string(images));
    }
    if (h5::exists(root, std::string(layout::kInputs + 1)))
        for (int i = 0; i < m_images; ++i) { // headers only: the pixels are read on demand
            heartbeat();
            const std::string image = layout::child(layout::kInputs, i) + "/" + layout::kImage;
            const bool stored = h5::exists(root, image.substr(1));
            if (!stored && isKept(i)) // others' pixels are left out with --keep-activations
                throw Error(ErrorKind::Input, m_path + ": input " + layout::indexName(i) + " has no image");
            if (stored)
                checkInputImage(m_file->openDataSet(image), m_path + ": input " + layout::indexName(i));
            m_sources.push_back(readInputSource(*m_file, i));
        }
}

DumpReader::~DumpReader() {
    h5::Lock lock(h5::libraryMutex());
    m_file.reset();
}

DumpReader::DumpReader(const std::string& path) : m_path(path) {
    h5::Lock lock(h5::libraryMutex());
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        throw Error(ErrorKind::Input, path + ": no such dump file");
    if (H5Fis_hdf5(path.c_str()) <= 0)
        throw Error(ErrorKind::Input, path + ": not an HDF5 file (or its header is damaged)");
    try {
        m_file = std::make_unique<H5::H5File>(path, H5F_ACC_RDONLY);
        H5::Group root = m_file->openGroup("/");
        const DumpHeader header = readDumpHeader(*m_file);
        if (header.format != layout::kFormatName)
            throw Error(ErrorKind::Input, path + ": an HDF5 file, but not a QuantScope dump");
        m_version = header.version;
        if (m_version > layout::kFormatVersion)
            throw Error(ErrorKind::Input, path + ": dump format version " + std::to_string(m_version) +
                                              " is newer than this QuantScope reads (" +
                                              std::to_string(layout::kFormatVersion) + "); update QuantScope");
        if (m_version < 1)
            throw Error(ErrorKind::Input, path + ": dump has no valid format version");
        if (!header.complete)
            throw Error(ErrorKind::Input, path + ": the dump is incomplete (its writer did not finish)");
        if (header.images < 1 || header.images > kMaxImages)
            throw Error(ErrorKind::Input, path + ": image_count is " + std::to_string(header.images) +
                                              ", not a count of images (1.." + std::to_string(kMaxImages) + ")");
        m_images = static_cast<int>(header.images);
        m_dtype = header.dtype;
        const RunRecord run = readRunRecord(*m_file);
        m_created = run.created;
        m_producer = run.producer;
        m_kept = run.keptImages >= 0 ? run.keptImages : m_images;
        if (m_kept > m_images)
            throw Error(ErrorKind::Input, path + ": kept_images is " + std::to_string(m_kept) + " of " +
                                              std::to_string(m_images) + " images");
        m_keptSelection = run.keptImages >= 0 ? run.keptSelection : "all";
        m_inputWidth = run.inputWidth;
        m_inputHeight = run.inputHeight;
        m_rowOf.assign(static_cast<std::size_t>(m_images), -1);
        if (run.keptImages < 0) {
            for (int i = 0; i < m_images; ++i)
                m_rowOf[static_cast<std::size_t>(i)] = i;
        } else {
            if (static_cast<int>(run.keptRows.size()) != m_kept)
                throw Error(ErrorKind::Input, path + ": /kept_rows names " + std::to_string(run.keptRows.size()) +
                                                  " images but kept_images is " + std::to_string(m_kept));
            for (int r = 0; r < m_kept; ++r) {
                const int image = run.keptRows[static_cast<std::size_t>(r)];
                if (image < 0 || image >= m_images || m_rowOf[static_cast<std::size_t>(image)] >= 0)
                    throw Error(ErrorKind::Input, path + ": /kept_rows row " + std::to_string(r) + " names image " +
                                                      std::to_string(image) + ", " +
                                                      (image < 0 || image >= m_images ? "not one of the dump's "
                                                                                      : "already held by another row of ") +
                                                      std::to_string(m_images) + " images");
                m_rowOf[static_cast<std::size_t>(image)] = r;
            }
        }
        for (Side side : {Side::Original, Side::Quantized})
            m_models[static_cast<int>(side)] = readModel(*m_file, side);
        if (!h5::exists(root, layout::kLayers + 1))
            throw Error(ErrorKind::Input, path + ": the dump has no /layers group");
        H5::Group layers = m_file->openGroup(layout::kLayers);
        const hsize_t count = layers.getNumObjs();
        for (hsize_t k = 0; k < count; ++k) { // 0000, 0001, ... 9999, 10000: by existence, not name order
            const std::string name = layout::indexName(static_cast<int>(k));
            if (H5Lexists(layers.getId(), name.c_str(), H5P_DEFAULT) <= 0)
                throw Error(ErrorKind::Input, path + ": /layers has " + std::to_string(count) +
                                                  " members but no layer " + name);
            m_layers.push_back(readLayer(layers.openGroup(name), static_cast<int>(k)));
        }
        validateLayers();
        m_imageMetrics = readImageMetrics(*m_file, path, m_images, static_cast<int>(m_layers.size()));
    } catch (const Error&) {
        throw;
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, path + ": damaged or truncated dump (" + h5::describe(e) + ")");
    }
}

std::vector<std::string> DumpReader::unmatched(Side side) const {
    h5::Lock lock(h5::libraryMutex());
    std::vector<std::string> names;
    try {
        const std::string p = std::string(layout::kUnmatched) + "/" + toString(side);
        if (!h5::exists(m_file->openGroup("/"), p.substr(1)))
            return names;
        H5::Group g = m_file->openGroup(p);
        for (const auto& member : memberNames(g))
            names.push_back(readActivationName(g.openDataSet(member)));
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": damaged dump (" + h5::describe(e) + ")");
    }
    return names;
}

std::vector<float> DumpReader::activation(int layer, Side side, int image) const {
    const int row = rowOf(image);
    h5::Lock lock(h5::libraryMutex());
    const std::string path = layerGroup(layer) + "/" + toString(side);
    try {
        return h5::readImageSlab(m_file->openDataSet(path), row);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, layerWhere(layer) + ": cannot read the " + toString(side) +
                                          " activations of image " + std::to_string(image + 1) + " (" +
                                          h5::describe(e) + ")");
    }
}

std::string DumpReader::layerWhere(int layer) const {
    return m_path + ": layer " + layout::indexName(layer) + " (" + m_layers.at(static_cast<std::size_t>(layer)).name + ")";
}

std::string DumpReader::layerGroup(int layer) const {
    if (layer < 0 || layer >= static_cast<int>(m_layers.size()))
        throw Error(ErrorKind::Usage, m_path + ": no layer " + std::to_string(layer));
    return layout::child(layout::kLayers, layer);
}

std::vector<float> DumpReader::optionalMap(int layer, const std::string& name, int image) const {
    const int row = rowOf(image);
    h5::Lock lock(h5::libraryMutex());
    const std::string g = layerGroup(layer) + "/" + name;
    try {
        if (H5Lexists(m_file->getId(), g.c_str(), H5P_DEFAULT) <= 0)
            return {};
        return h5::readImageSlab(m_file->openDataSet(g), row);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, layerWhere(layer) + ": cannot read " + name + " of image " +
                                          std::to_string(image + 1) + " (" + h5::describe(e) + ")");
    }
}

std::vector<float> DumpReader::diffMap(int layer, bool relative, int image) const {
    return optionalMap(layer, relative ? layout::kRelDiff : layout::kAbsDiff, image);
}

std::vector<float> DumpReader::meanMap(int layer, Side side, int image) const {
    return optionalMap(layer, layout::meanMap(toString(side)), image);
}

std::vector<float> DumpReader::activationChannel(int layer, Side side, int image, int channel) const {
    const int row = rowOf(image);
    h5::Lock lock(h5::libraryMutex());
    const std::string path = layerGroup(layer) + "/" + toString(side);
    try {
        return h5::readSlab(m_file->openDataSet(path), row, channel);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, layerWhere(layer) + ": cannot read channel " + std::to_string(channel) +
                                          " of the " + toString(side) + " activations of image " +
                                          std::to_string(image + 1) + " (" + h5::describe(e) + ")");
    }
}

std::vector<float> DumpReader::channelMetric(int layer, const std::string& metric) const {
    h5::Lock lock(h5::libraryMutex());
    const std::string g = layerGroup(layer) + "/" + layout::kChannels + "/" + metric;
    try {
        if (!h5::exists(m_file->openGroup("/"), g.substr(1)))
            return {};
        return h5::readFloats(m_file->openDataSet(g));
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, layerWhere(layer) + ": cannot read its per-channel " + metric + " (" +
                                          h5::describe(e) + ")");
    }
}

bool DumpReader::isKept(int image) const {
    return image >= 0 && static_cast<std::size_t>(image) < m_rowOf.size() && m_rowOf[static_cast<std::size_t>(image)] >= 0;
}

int DumpReader::rowOf(int image) const {
    if (image < 0 || image >= m_images)
        throw Error(ErrorKind::Usage, m_path + ": no image " + std::to_string(image));
    if (!isKept(image))
        throw Error(ErrorKind::Input, m_path + ": image " + std::to_string(image) + "'s activations were not kept "
                                      "(compare --keep-activations " + std::to_string(m_kept) + "); its metrics were");
    return m_rowOf[static_cast<std::size_t>(image)];
}

const std::string& DumpReader::source(int image) const {
    static const std::string none;
    return image >= 0 && static_cast<std::size_t>(image) < m_sources.size() ? m_sources[static_cast<std::size_t>(image)]
                                                                          : none;
}

Histogram DumpReader::histogram(int layer) const {
    h5::Lock lock(h5::libraryMutex());
    try {
        return readHistogram(m_file->openGroup(layerGroup(layer)), layerWhere(layer));
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, layerWhere(layer) + ": cannot read its histogram (" + h5::describe(e) + ")");
    }
}

InputImage DumpReader::input(int image) const {
    h5::Lock lock(h5::libraryMutex());
    try {
        return readInput(*m_file, m_path, image);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read input " + std::to_string(image) + " (" +
                                          h5::describe(e) + ")");
    }
}

OutputPair DumpReader::outputs(int image) const {
    h5::Lock lock(h5::libraryMutex());
    try {
        return readOutputs(*m_file, m_path, image);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read outputs of image " + std::to_string(image) + " (" +
                                          h5::describe(e) + ")");
    }
}

bool DumpReader::hasBench() const {
    h5::Lock lock(h5::libraryMutex());
    return H5Lexists(m_file->getId(), layout::kBench + 1, H5P_DEFAULT) > 0;
}

bool DumpReader::hasEval() const {
    h5::Lock lock(h5::libraryMutex());
    return H5Lexists(m_file->getId(), layout::kEval + 1, H5P_DEFAULT) > 0;
}

EvalData DumpReader::eval() const {
    h5::Lock lock(h5::libraryMutex());
    try {
        return readEval(*m_file, m_path);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read /eval (" + h5::describe(e) + ")");
    }
}

BenchData DumpReader::bench() const {
    h5::Lock lock(h5::libraryMutex());
    try {
        return readBench(*m_file, m_path);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read /bench (" + h5::describe(e) + ")");
    }
}

void DumpReader::readAllMetadata() const {
    for (Side side : {Side::Original, Side::Quantized})
        unmatched(side);
    for (int layer = 0; layer < static_cast<int>(m_layers.size()); ++layer) {
        heartbeat();
        h5::Lock lock(h5::libraryMutex());
        try { // every attribute, as the views list them (strings included: see openDump)
            H5::Group g = m_file->openGroup(layerGroup(layer));
            for (int i = 0, n = g.getNumAttrs(); i < n; ++i) {
                H5::Attribute attr = g.openAttribute(static_cast<unsigned>(i));
                if (attr.getTypeClass() == H5T_STRING)
                    h5::stringAttr(g, attr.getName());
            }
            readHistogram(g, layerWhere(layer));
        } catch (const H5::Exception& e) {
            throw Error(ErrorKind::Input, m_path + ": layer " + layout::indexName(layer) + " (" +
                                              h5::describe(e) + ")");
        }
    }
    for (int image = 0; image < m_images; ++image) {
        heartbeat();
        outputs(image);
    }
    if (hasBench())
        bench();
    if (hasEval())
        eval();
}

std::unique_ptr<DumpReader> openDump(const std::string& path, int stallSeconds,
                                     const std::function<bool()>& cancelled) {
    ChildOptions options;
    options.stallSeconds = stallSeconds;
    options.cancelled = cancelled;
    // held across fork() only: no other thread of ours is inside libhdf5 at that moment,
    // so the child starts with its state consistent; the parent's readers go on meanwhile
    options.holdAcrossFork = &h5::libraryMutex();
    ChildResult r = runChild([&path](int fd) {
        h5::resetLibraryMutexInChild();
        g_heartbeatFd = fd;
        // The parent reports the outcome; what a crashing libhdf5 (or a sanitizer
        // watching it) prints here is noise to the user. QS_CHILD_STDERR=1 keeps it.
        if (!std::getenv("QS_CHILD_STDERR")) {
            const int devNull = ::open("/dev/null", O_WRONLY);
            if (devNull >= 0)
                ::dup2(devNull, STDERR_FILENO);
        }
        int code = 0;
        std::string message;
        try {
            DumpReader reader(path);
            reader.readAllMetadata();
        } catch (const Error& e) {
            code = 1;
            message = e.what();
        } catch (const std::exception& e) { // bad_alloc and the like: the file is to blame
            code = 1;
            message = path + ": damaged dump (" + e.what() + ")";
        }
        for (std::size_t done = 0; done < message.size();) {
            const ssize_t n = ::write(fd, message.data() + done, message.size() - done);
            if (n <= 0)
                break;
            done += static_cast<std::size_t>(n);
        }
        ::_exit(code);
    }, options);
    if (r.cancelled)
        throw Error(ErrorKind::Cancelled, "cancelled");
    r.output.erase(0, r.output.find_first_not_of(kHeartbeat));
    if (r.timedOut)
        throw Error(ErrorKind::Input, path + ": damaged dump (reading its structure stalled for " +
                                          std::to_string(stallSeconds) + " s inside the HDF5 library)");
    if (!r.exited)
        throw Error(ErrorKind::Input, path + ": damaged dump (the HDF5 library crashed reading it, signal " +
                                          std::to_string(r.signal) + ")");
    if (r.code != 0)
        throw Error(ErrorKind::Input, r.output.empty() ? path + ": damaged dump (exit code " +
                                                             std::to_string(r.code) + ")"
                                                       : r.output);
    return std::make_unique<DumpReader>(path);
}

} // namespace qs
