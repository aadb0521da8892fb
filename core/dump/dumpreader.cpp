#include "dumpreader.h"

#include "error.h"
#include "h5util.h"

#include <filesystem>
#include <limits>

namespace qs {

namespace {

Metrics readMetrics(const H5::H5Object& obj) {
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    Metrics m;
    m.sqnrDb = h5::doubleAttr(obj, "sqnr_db", nan);
    m.mse = h5::doubleAttr(obj, "mse", nan);
    m.maxAbs = h5::doubleAttr(obj, "max_abs", nan);
    m.meanAbs = h5::doubleAttr(obj, "mean_abs", nan);
    m.relErr = h5::doubleAttr(obj, "rel_err", nan);
    m.cosine = h5::doubleAttr(obj, "cosine", nan);
    return m;
}

// Iterates the member names of a group without opening them.
std::vector<std::string> memberNames(const H5::Group& group) {
    std::vector<std::string> names;
    const hsize_t n = group.getNumObjs();
    names.reserve(n);
    for (hsize_t i = 0; i < n; ++i)
        names.push_back(group.getObjnameByIdx(i));
    return names;
}

} // namespace

DumpReader::~DumpReader() {
    h5::Lock lock(h5::libraryMutex());
    m_file.reset();
}

DumpReader::DumpReader(const std::string& path) : m_path(path) {
    h5::Lock lock(h5::libraryMutex());
    H5::Exception::dontPrint();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        throw Error(ErrorKind::Input, path + ": no such dump file");
    if (H5Fis_hdf5(path.c_str()) <= 0)
        throw Error(ErrorKind::Input, path + ": not an HDF5 file (or its header is damaged)");
    try {
        m_file = std::make_unique<H5::H5File>(path, H5F_ACC_RDONLY);
        H5::Group root = m_file->openGroup("/");
        if (h5::stringAttr(root, "format") != layout::kFormatName)
            throw Error(ErrorKind::Input, path + ": an HDF5 file, but not a QuantScope dump");
        m_version = static_cast<int>(h5::intAttr(root, "version", 0));
        if (m_version > layout::kFormatVersion)
            throw Error(ErrorKind::Input, path + ": dump format version " + std::to_string(m_version) +
                                              " is newer than this QuantScope reads (" +
                                              std::to_string(layout::kFormatVersion) + "); update QuantScope");
        if (m_version < 1)
            throw Error(ErrorKind::Input, path + ": dump has no valid format version");
        if (h5::intAttr(root, "complete", 0) != 1)
            throw Error(ErrorKind::Input, path + ": the dump is incomplete (its writer did not finish)");
        m_images = static_cast<int>(h5::intAttr(root, "image_count", 0));
        m_dtype = h5::stringAttr(root, "dtype");
        m_created = h5::stringAttr(root, "created");
        m_producer = h5::stringAttr(root, "producer");
        for (int side = 0; side < 2; ++side) {
            const std::string p = std::string("/models/") + toString(Side(side));
            if (!h5::exists(root, p.substr(1)))
                continue;
            H5::Group g = m_file->openGroup(p);
            ModelSummary& m = m_models[side];
            m.path = h5::stringAttr(g, "path");
            m.sha256 = h5::stringAttr(g, "sha256");
            m.format = h5::stringAttr(g, "format");
            m.input = h5::stringAttr(g, "input");
            m.engine = h5::stringAttr(g, "engine");
            m.fileBytes = h5::intAttr(g, "file_bytes", 0);
            m.parameterBytes = h5::intAttr(g, "parameter_bytes", 0);
            m.tappedCalls = h5::intAttr(g, "tapped_calls", 0);
            m.quantized = h5::intAttr(g, "quantized", 0) == 1;
        }
        if (!h5::exists(root, "layers"))
            throw Error(ErrorKind::Input, path + ": the dump has no /layers group");
        H5::Group layers = m_file->openGroup("/layers");
        for (const auto& name : memberNames(layers)) {
            H5::Group g = layers.openGroup(name);
            LayerSummary s;
            s.index = static_cast<int>(h5::intAttr(g, "index", static_cast<std::int64_t>(m_layers.size())));
            s.name = h5::stringAttr(g, "name");
            s.module = h5::stringAttr(g, "module");
            s.call = static_cast<int>(h5::intAttr(g, "call", 0));
            s.op = h5::stringAttr(g, "op");
            s.quantizedName = h5::stringAttr(g, "quantized_name");
            s.quantizedOp = h5::stringAttr(g, "quantized_op");
            s.match = h5::stringAttr(g, "match");
            s.shape = h5::intsAttr(g, "shape");
            s.metrics = readMetrics(g);
            m_layers.push_back(std::move(s));
        }
    } catch (const Error&) {
        throw;
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, path + ": damaged or truncated dump (" + e.getDetailMsg() + ")");
    }
}

std::vector<std::string> DumpReader::unmatched(Side side) const {
    h5::Lock lock(h5::libraryMutex());
    std::vector<std::string> names;
    try {
        const std::string p = std::string("/unmatched/") + toString(side);
        if (!h5::exists(m_file->openGroup("/"), p.substr(1)))
            return names;
        H5::Group g = m_file->openGroup(p);
        for (const auto& member : memberNames(g)) {
            H5::DataSet ds = g.openDataSet(member);
            const auto call = h5::intAttr(ds, "call", 0);
            names.push_back(h5::stringAttr(ds, "module") + (call > 0 ? "#" + std::to_string(call) : ""));
        }
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": damaged dump (" + e.getDetailMsg() + ")");
    }
    return names;
}

std::vector<float> DumpReader::activation(int layer, Side side, int image) const {
    h5::Lock lock(h5::libraryMutex());
    if (image < 0 || image >= m_images)
        throw Error(ErrorKind::Usage, m_path + ": no image " + std::to_string(image));
    const std::string path = layerGroup(layer) + "/" + toString(side);
    try {
        return h5::readImageSlab(m_file->openDataSet(path), image);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read " + path + " (" + e.getDetailMsg() + ")");
    }
}

std::string DumpReader::layerGroup(int layer) const {
    if (layer < 0 || layer >= static_cast<int>(m_layers.size()))
        throw Error(ErrorKind::Usage, m_path + ": no layer " + std::to_string(layer));
    char name[32];
    std::snprintf(name, sizeof name, "/layers/%04d", layer);
    return name;
}

std::vector<float> DumpReader::optionalMap(int layer, const std::string& name, int image) const {
    h5::Lock lock(h5::libraryMutex());
    const std::string g = layerGroup(layer) + "/" + name;
    try {
        if (H5Lexists(m_file->getId(), g.c_str(), H5P_DEFAULT) <= 0)
            return {};
        return h5::readImageSlab(m_file->openDataSet(g), image);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read " + g + " (" + e.getDetailMsg() + ")");
    }
}

std::vector<float> DumpReader::diffMap(int layer, bool relative, int image) const {
    return optionalMap(layer, relative ? "rel_diff" : "abs_diff", image);
}

std::vector<float> DumpReader::meanMap(int layer, Side side, int image) const {
    return optionalMap(layer, std::string("mean_") + toString(side), image);
}

std::vector<float> DumpReader::activationChannel(int layer, Side side, int image, int channel) const {
    h5::Lock lock(h5::libraryMutex());
    const std::string path = layerGroup(layer) + "/" + toString(side);
    try {
        return h5::readSlab(m_file->openDataSet(path), image, channel);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read " + path + " (" + e.getDetailMsg() + ")");
    }
}

std::vector<float> DumpReader::channelMetric(int layer, const std::string& metric) const {
    h5::Lock lock(h5::libraryMutex());
    const std::string g = layerGroup(layer) + "/channels/" + metric;
    try {
        if (!h5::exists(m_file->openGroup("/"), g.substr(1)))
            return {};
        return h5::readFloats(m_file->openDataSet(g));
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read " + g + " (" + e.getDetailMsg() + ")");
    }
}

InputImage DumpReader::input(int image) const {
    h5::Lock lock(h5::libraryMutex());
    char name[32];
    std::snprintf(name, sizeof name, "/inputs/%04d", image);
    InputImage img;
    try {
        if (!h5::exists(m_file->openGroup("/"), std::string(name).substr(1) + "/image"))
            throw Error(ErrorKind::Input, m_path + ": the dump has no input image " + std::to_string(image));
        H5::Group g = m_file->openGroup(name);
        img.source = h5::stringAttr(g, "source");
        H5::DataSet ds = g.openDataSet("image");
        const auto d = h5::dims(ds);
        if (d.size() != 3 || d[2] != 3)
            throw Error(ErrorKind::Input, m_path + ": input image " + std::to_string(image) + " is not [H, W, 3]");
        img.height = static_cast<int>(d[0]);
        img.width = static_cast<int>(d[1]);
        img.rgb.resize(d[0] * d[1] * 3);
        ds.read(img.rgb.data(), H5::PredType::NATIVE_UINT8);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read input " + std::to_string(image) + " (" + e.getDetailMsg() + ")");
    }
    return img;
}

OutputPair DumpReader::outputs(int image) const {
    h5::Lock lock(h5::libraryMutex());
    char name[32];
    std::snprintf(name, sizeof name, "outputs/%04d", image);
    OutputPair out;
    try {
        H5::Group root = m_file->openGroup("/");
        if (!h5::exists(root, name))
            return out;
        H5::Group g = m_file->openGroup(std::string("/") + name);
        out.kind = h5::stringAttr(g, "kind");
        out.original = h5::readFloats(g.openDataSet("original"));
        out.quantized = h5::readFloats(g.openDataSet("quantized"));
        if (h5::exists(g, "matches"))
            out.matches = h5::readFloats(g.openDataSet("matches"));
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read outputs of image " + std::to_string(image) + " (" +
                                          e.getDetailMsg() + ")");
    }
    return out;
}

bool DumpReader::hasBench() const {
    h5::Lock lock(h5::libraryMutex());
    return H5Lexists(m_file->getId(), "bench", H5P_DEFAULT) > 0;
}

bool DumpReader::hasEval() const {
    h5::Lock lock(h5::libraryMutex());
    return H5Lexists(m_file->getId(), "eval", H5P_DEFAULT) > 0;
}

EvalData DumpReader::eval() const {
    h5::Lock lock(h5::libraryMutex());
    EvalData e;
    try {
        H5::Group g = m_file->openGroup("/eval");
        const char* names[2] = {"original", "quantized"};
        for (int s = 0; s < 2; ++s) {
            e.map[s] = h5::doubleAttr(g, std::string(names[s]) + "_map", -1);
            e.map50[s] = h5::doubleAttr(g, std::string(names[s]) + "_map50", -1);
        }
        e.deltaMean = h5::doubleAttr(g, "per_image_delta_mean", 0);
        e.deltaStd = h5::doubleAttr(g, "per_image_delta_std", 0);
        e.images = static_cast<int>(h5::intAttr(g, "images", 0));
        e.annotations = h5::stringAttr(g, "annotations");
    } catch (const H5::Exception& ex) {
        throw Error(ErrorKind::Input, m_path + ": cannot read /eval (" + ex.getDetailMsg() + ")");
    }
    return e;
}

BenchData DumpReader::bench() const {
    h5::Lock lock(h5::libraryMutex());
    BenchData b;
    try {
        H5::Group g = m_file->openGroup("/bench");
        const char* sides[2] = {"original", "quantized"};
        for (int s = 0; s < 2; ++s) {
            b.fileBytes[s] = h5::intAttr(g, std::string(sides[s]) + "_file_bytes", 0);
            b.parameterBytes[s] = h5::intAttr(g, std::string(sides[s]) + "_parameter_bytes", 0);
            b.medianMs[s] = h5::readFloats(g.openDataSet(std::string("median_ms_") + sides[s]));
            b.peakMiB[s] = h5::readFloats(g.openDataSet(std::string("peak_mib_") + sides[s]));
        }
        b.width = static_cast<int>(h5::intAttr(g, "width", 0));
        b.height = static_cast<int>(h5::intAttr(g, "height", 0));
        b.threads = static_cast<int>(h5::intAttr(g, "threads", 0));
        H5::DataSet ds = g.openDataSet("batch");
        b.batch.resize(static_cast<std::size_t>(ds.getSpace().getSimpleExtentNpoints()));
        if (!b.batch.empty())
            ds.read(b.batch.data(), H5::PredType::NATIVE_INT64);
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Input, m_path + ": cannot read /bench (" + e.getDetailMsg() + ")");
    }
    return b;
}

} // namespace qs
