#include "h5util.h"

#include "halffloat.h"

namespace qs::h5 {

void prepareLibrary() { H5dont_atexit(); }

std::recursive_mutex& libraryMutex() {
    static std::recursive_mutex mutex;
    return mutex;
}

const H5::FloatType& halfType() {
    static const H5::FloatType type = [] {
        H5::FloatType t(H5::PredType::IEEE_F32LE);
        t.setFields(15, 10, 5, 0, 10); // sign bit, exponent at 10 (5 bits), mantissa 10 bits
        t.setSize(2);
        t.setEbias(15);
        return t;
    }();
    return type;
}

namespace {
H5::Attribute recreate(H5::H5Object& obj, const std::string& name, const H5::DataType& type,
                       const H5::DataSpace& space) {
    if (obj.attrExists(name))
        obj.removeAttr(name);
    return obj.createAttribute(name, type, space);
}
} // namespace

void setAttr(H5::H5Object& obj, const std::string& name, const std::string& value) {
    // variable-length UTF-8: h5py reads it as str, h5dump prints it
    H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
    type.setCset(H5T_CSET_UTF8);
    recreate(obj, name, type, H5::DataSpace(H5S_SCALAR)).write(type, value);
}

void setAttr(H5::H5Object& obj, const std::string& name, double value) {
    recreate(obj, name, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR))
        .write(H5::PredType::NATIVE_DOUBLE, &value);
}

void setAttr(H5::H5Object& obj, const std::string& name, std::int64_t value) {
    recreate(obj, name, H5::PredType::NATIVE_INT64, H5::DataSpace(H5S_SCALAR))
        .write(H5::PredType::NATIVE_INT64, &value);
}

void setAttr(H5::H5Object& obj, const std::string& name, const std::vector<std::int64_t>& value) {
    const hsize_t n = value.size();
    H5::DataSpace space = n ? H5::DataSpace(1, &n) : H5::DataSpace(H5S_NULL);
    auto attr = recreate(obj, name, H5::PredType::NATIVE_INT64, space);
    if (n)
        attr.write(H5::PredType::NATIVE_INT64, value.data());
}

bool hasAttr(const H5::H5Object& obj, const std::string& name) { return obj.attrExists(name); }

std::string stringAttr(const H5::H5Object& obj, const std::string& name, const std::string& fallback) {
    if (!obj.attrExists(name))
        return fallback;
    H5::Attribute attr = obj.openAttribute(name);
    H5::DataType type = attr.getDataType();
    if (type.getClass() != H5T_STRING)
        return fallback;
    std::string value;
    attr.read(attr.getStrType(), value);
    return value;
}

double doubleAttr(const H5::H5Object& obj, const std::string& name, double fallback) {
    if (!obj.attrExists(name))
        return fallback;
    H5::Attribute attr = obj.openAttribute(name);
    if (attr.getTypeClass() != H5T_FLOAT && attr.getTypeClass() != H5T_INTEGER)
        return fallback;
    double value = fallback;
    attr.read(H5::PredType::NATIVE_DOUBLE, &value);
    return value;
}

std::int64_t intAttr(const H5::H5Object& obj, const std::string& name, std::int64_t fallback) {
    if (!obj.attrExists(name))
        return fallback;
    H5::Attribute attr = obj.openAttribute(name);
    if (attr.getTypeClass() != H5T_INTEGER)
        return fallback;
    std::int64_t value = fallback;
    attr.read(H5::PredType::NATIVE_INT64, &value);
    return value;
}

std::vector<std::int64_t> intsAttr(const H5::H5Object& obj, const std::string& name) {
    if (!obj.attrExists(name))
        return {};
    H5::Attribute attr = obj.openAttribute(name);
    if (attr.getTypeClass() != H5T_INTEGER)
        return {};
    const hssize_t n = attr.getSpace().getSimpleExtentNpoints();
    std::vector<std::int64_t> values(static_cast<std::size_t>(n > 0 ? n : 0));
    if (!values.empty())
        attr.read(H5::PredType::NATIVE_INT64, values.data());
    return values;
}

void writeFloats(H5::Group& group, const std::string& name, const std::vector<float>& values,
                 const std::vector<hsize_t>& dims) {
    H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
    H5::DataSet ds = group.createDataSet(name, H5::PredType::IEEE_F32LE, space);
    if (!values.empty())
        ds.write(values.data(), H5::PredType::NATIVE_FLOAT);
}

std::vector<hsize_t> dims(const H5::DataSet& dataset) {
    H5::DataSpace space = dataset.getSpace();
    const int rank = space.getSimpleExtentNdims();
    std::vector<hsize_t> d(static_cast<std::size_t>(rank > 0 ? rank : 0));
    if (rank > 0)
        space.getSimpleExtentDims(d.data());
    return d;
}

std::vector<float> readFloats(const H5::DataSet& dataset) {
    const hssize_t n = dataset.getSpace().getSimpleExtentNpoints();
    std::vector<float> values(static_cast<std::size_t>(n > 0 ? n : 0));
    if (!values.empty())
        dataset.read(values.data(), H5::PredType::NATIVE_FLOAT);
    return values;
}

bool exists(const H5::Group& group, const std::string& path) {
    // H5Lexists on each component, so that a missing parent is not an error
    std::string partial;
    std::size_t start = 0;
    while (start <= path.size()) {
        const std::size_t end = path.find('/', start);
        partial += (partial.empty() ? "" : "/") + path.substr(start, end - start);
        if (H5Lexists(group.getId(), partial.c_str(), H5P_DEFAULT) <= 0)
            return false;
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    return true;
}

namespace {
std::vector<float> readHyperslab(const H5::DataSet& dataset, const std::vector<hsize_t>& start,
                                 const std::vector<hsize_t>& count) {
    H5::DataSpace fileSpace = dataset.getSpace();
    fileSpace.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
    H5::DataSpace memSpace(static_cast<int>(count.size()), count.data());
    std::size_t n = 1;
    for (auto c : count)
        n *= c;
    std::vector<float> out(n);
    if (dataset.getDataType().getSize() == 2) { // our float16: HDF5's soft conversion is slow
        std::vector<std::uint16_t> raw(n);
        dataset.read(raw.data(), halfType(), memSpace, fileSpace);
        halfToFloat(raw.data(), out.data(), n);
    } else {
        dataset.read(out.data(), H5::PredType::NATIVE_FLOAT, memSpace, fileSpace);
    }
    return out;
}
} // namespace

std::vector<float> readImageSlab(const H5::DataSet& dataset, int image) {
    const auto d = dims(dataset);
    std::vector<hsize_t> start(d.size(), 0), count = d;
    start[0] = static_cast<hsize_t>(image);
    count[0] = 1;
    return readHyperslab(dataset, start, count);
}

std::vector<float> readSlab(const H5::DataSet& dataset, int image, int channel) {
    const auto d = dims(dataset);
    std::vector<hsize_t> start(d.size(), 0), count = d;
    start[0] = static_cast<hsize_t>(image);
    count[0] = 1;
    if (d.size() >= 2) {
        start[1] = static_cast<hsize_t>(channel);
        count[1] = 1;
    }
    return readHyperslab(dataset, start, count);
}

} // namespace qs::h5
