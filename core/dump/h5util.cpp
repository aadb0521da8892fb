#include "h5util.h"

#include "halffloat.h"

#include <new>

namespace qs::h5 {

void prepareLibrary() { H5dont_atexit(); }

std::recursive_mutex& libraryMutex() {
    static std::recursive_mutex mutex;
    return mutex;
}

namespace {
thread_local std::string lastCause;

herr_t innermost(unsigned n, const H5E_error2_t* err, void* out) {
    if (n == 0 && err && err->desc) // walked upward: entry 0 is where the failure began
        *static_cast<std::string*>(out) = err->desc;
    return 0;
}

herr_t recordCause(hid_t stack, void*) {
    lastCause.clear();
    H5Ewalk2(stack, H5E_WALK_UPWARD, innermost, &lastCause);
    return 0;
}
} // namespace

void quietErrors() { H5Eset_auto2(H5E_DEFAULT, recordCause, nullptr); }

Lock::Lock(std::recursive_mutex& mutex) : m_guard(mutex) {
    thread_local bool quiet = false;
    if (!quiet) {
        quietErrors();
        quiet = true;
    }
}

std::string describe(const H5::Exception& e) {
    std::string text = e.getDetailMsg();
    if (dynamic_cast<const DataError*>(&e))
        return text;
    std::string cause = lastCause;
    if (cause.find("Fletcher32") != std::string::npos || cause.find("checksum") != std::string::npos)
        cause = "checksum mismatch: the stored data is damaged";
    if (!cause.empty() && text.find(cause) == std::string::npos)
        text += (text.empty() ? "" : ": ") + cause;
    return text;
}

void resetLibraryMutexInChild() { new (&libraryMutex()) std::recursive_mutex(); }

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

H5::DSetCreatPropList checksummed(const std::vector<hsize_t>& chunk) {
    H5::DSetCreatPropList props;
    props.setChunk(static_cast<int>(chunk.size()), chunk.data());
    props.setFletcher32();
    return props;
}

namespace {
template <typename T>
void writeWhole(H5::Group& group, const std::string& name, const T* values, std::size_t n,
                std::vector<hsize_t> dims, const H5::DataType& fileType, const H5::DataType& memType) {
    if (dims.empty())
        dims = {n};
    H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
    if (n == 0) {
        group.createDataSet(name, fileType, space);
        return;
    }
    // [N, H, W] maps and other per-image stacks: one chunk per image, so that reading one
    // image's map reads (and checksums) only that image, and no chunk nears HDF5's 4 GiB
    std::vector<hsize_t> chunk = dims;
    if (chunk.size() >= 3)
        chunk[0] = 1;
    H5::DataSet ds = group.createDataSet(name, fileType, space, checksummed(chunk));
    ds.write(values, memType);
}
} // namespace

void writeFloats(H5::Group& group, const std::string& name, const std::vector<float>& values,
                 const std::vector<hsize_t>& dims) {
    writeWhole(group, name, values.data(), values.size(), dims, H5::PredType::IEEE_F32LE, H5::PredType::NATIVE_FLOAT);
}

void writeDoubles(H5::Group& group, const std::string& name, const std::vector<double>& values,
                  const std::vector<hsize_t>& dims) {
    writeWhole(group, name, values.data(), values.size(), dims, H5::PredType::IEEE_F64LE, H5::PredType::NATIVE_DOUBLE);
}

void writeBytes(H5::Group& group, const std::string& name, const std::vector<std::uint8_t>& values,
                const std::vector<hsize_t>& dims) {
    writeWhole(group, name, values.data(), values.size(), dims, H5::PredType::STD_U8LE, H5::PredType::NATIVE_UINT8);
}

void writeInts(H5::Group& group, const std::string& name, const std::vector<std::int64_t>& values) {
    writeWhole(group, name, values.data(), values.size(), {values.size()}, H5::PredType::STD_I64LE,
               H5::PredType::NATIVE_INT64);
}

void checkStorage(const H5::DataSet& dataset, hsize_t elements) {
    if (elements == 0)
        return;
    const hsize_t typeBytes = dataset.getDataType().getSize();
    H5::DSetCreatPropList props = dataset.getCreatePlist();
    const H5D_layout_t layout = props.getLayout();
    if (layout == H5D_CHUNKED) {
        // the chunk holding the last element must exist: a cheap test (one chunk-index
        // lookup, whatever the number of chunks) that the data was written to the end
        const auto d = dims(dataset);
        const int rank = props.getChunk(0, nullptr);
        std::vector<hsize_t> chunk(static_cast<std::size_t>(rank > 0 ? rank : 0));
        if (rank > 0)
            props.getChunk(rank, chunk.data());
        if (chunk.size() != d.size())
            throw DataError("checkStorage", "its chunks do not match its rank");
        // a chunk larger than a fixed-size dataset is a damaged layout message: libhdf5
        // would copy a chunk of that size into a buffer of the dataset's
        for (std::size_t i = 0; i < d.size(); ++i)
            if (chunk[i] == 0 || chunk[i] > std::max<hsize_t>(d[i], 1))
                throw DataError("checkStorage", "its chunk shape " + dimsText(chunk) + " does not fit its shape " +
                                                    dimsText(d));
        std::vector<hsize_t> last(d.size());
        for (std::size_t i = 0; i < d.size(); ++i)
            last[i] = d[i] == 0 || chunk[i] == 0 ? 0 : (d[i] - 1) / chunk[i] * chunk[i];
        unsigned filterMask = 0;
        haddr_t address = HADDR_UNDEF;
        hsize_t bytes = 0;
        if (H5Dget_chunk_info_by_coord(dataset.getId(), last.data(), &filterMask, &address, &bytes) < 0 ||
            address == HADDR_UNDEF)
            throw DataError("checkStorage", "its extent (" + std::to_string(elements) +
                                                " values) runs past the data stored for it");
    } else if (layout == H5D_COMPACT || layout == H5D_CONTIGUOUS) {
        const hsize_t capacity = dataset.getStorageSize() / (typeBytes ? typeBytes : 1);
        if (capacity < elements)
            throw DataError("checkStorage", "its extent (" + std::to_string(elements) +
                                                " values) is larger than the data stored for it (" +
                                                std::to_string(capacity) + ")");
    }
}

bool product(const std::vector<hsize_t>& dims, hsize_t limit, hsize_t& out) {
    hsize_t n = 1;
    for (hsize_t v : dims)
        if (__builtin_mul_overflow(n, v, &n) || n > limit)
            return false;
    out = n;
    return true;
}

std::vector<std::int64_t> readInts(const H5::Group& group, const std::string& name, const std::string& where) {
    if (!exists(group, name))
        throw DataError("readInts", where + ": " + name + " is missing");
    H5::DataSet ds = group.openDataSet(name);
    const auto d = dims(ds);
    if (d.size() != 1 || ds.getTypeClass() != H5T_INTEGER)
        throw DataError("readInts", where + ": " + name + " is not a vector of integers");
    checkStorage(ds, d[0]);
    std::vector<std::int64_t> values(d[0]);
    if (!values.empty())
        ds.read(values.data(), H5::PredType::NATIVE_INT64);
    return values;
}

std::string dimsText(const std::vector<hsize_t>& d) {
    std::string s = "[";
    for (std::size_t i = 0; i < d.size(); ++i)
        s += (i ? "x" : "") + std::to_string(d[i]);
    return s + "]";
}

std::vector<hsize_t> dims(const H5::DataSet& dataset) {
    H5::DataSpace space = dataset.getSpace();
    const int rank = space.getSimpleExtentNdims();
    std::vector<hsize_t> d(static_cast<std::size_t>(rank > 0 ? rank : 0));
    if (rank > 0)
        space.getSimpleExtentDims(d.data());
    return d;
}

namespace {
// The whole of a numeric dataset as T, refusing what cannot be real (see readFloats).
template <typename T>
std::vector<T> readWhole(const H5::DataSet& dataset, const H5::PredType& memType, const char* caller) {
    const hssize_t n = dataset.getSpace().getSimpleExtentNpoints();
    if (dataset.getTypeClass() != H5T_FLOAT && dataset.getTypeClass() != H5T_INTEGER)
        throw DataError(caller, "the dataset does not hold numbers");
    if (static_cast<hsize_t>(n > 0 ? n : 0) > kMaxReadElements)
        throw DataError(caller, "the dataset is larger than any we write");
    checkStorage(dataset, static_cast<hsize_t>(n > 0 ? n : 0));
    std::vector<T> values(static_cast<std::size_t>(n > 0 ? n : 0));
    if (!values.empty())
        dataset.read(values.data(), memType);
    return values;
}
} // namespace

std::vector<float> readFloats(const H5::DataSet& dataset) {
    return readWhole<float>(dataset, H5::PredType::NATIVE_FLOAT, "readFloats");
}

std::vector<double> readDoubles(const H5::DataSet& dataset) {
    return readWhole<double>(dataset, H5::PredType::NATIVE_DOUBLE, "readDoubles");
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
    const H5T_class_t type = dataset.getTypeClass();
    const std::size_t typeBytes = dataset.getDataType().getSize();
    if (type != H5T_FLOAT || (typeBytes != 2 && typeBytes != 4))
        throw DataError("readHyperslab", "the dataset is not float16 or float32");
    hsize_t n = 0;
    if (!product(count, kMaxReadElements, n))
        throw DataError("readHyperslab", "the slab is larger than any layer can be");
    H5::DataSpace fileSpace = dataset.getSpace();
    fileSpace.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
    H5::DataSpace memSpace(static_cast<int>(count.size()), count.data());
    std::vector<float> out(n);
    if (typeBytes == 2) { // our float16: HDF5's soft conversion is slow
        std::vector<std::uint16_t> raw(n);
        dataset.read(raw.data(), halfType(), memSpace, fileSpace);
        halfToFloat(raw.data(), out.data(), n);
    } else {
        dataset.read(out.data(), H5::PredType::NATIVE_FLOAT, memSpace, fileSpace);
    }
    return out;
}
} // namespace

namespace {
std::vector<hsize_t> slabDims(const H5::DataSet& dataset, int image, int channel) {
    const auto d = dims(dataset);
    if (d.empty())
        throw DataError("readSlab", "the dataset has no dimensions");
    if (image < 0 || static_cast<hsize_t>(image) >= d[0])
        throw DataError("readSlab", "it holds " + std::to_string(d[0]) + " images, not image " +
                                                    std::to_string(image + 1));
    if (channel >= 0 && d.size() >= 2 && static_cast<hsize_t>(channel) >= d[1])
        throw DataError("readSlab", "it has no channel " + std::to_string(channel));
    return d;
}
} // namespace

std::vector<float> readImageSlab(const H5::DataSet& dataset, int image) {
    const auto d = slabDims(dataset, image, -1);
    std::vector<hsize_t> start(d.size(), 0), count = d;
    start[0] = static_cast<hsize_t>(image);
    count[0] = 1;
    return readHyperslab(dataset, start, count);
}

std::vector<float> readSlab(const H5::DataSet& dataset, int image, int channel) {
    const auto d = slabDims(dataset, image, channel);
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
