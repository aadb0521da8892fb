#pragma once
// Small helpers over HDF5's C++ API shared by the dump writer and reader.

#include <H5Cpp.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace qs::h5 {

// What our own checks throw (an extent larger than its storage, a slab out of range):
// an H5::Exception so that callers handle it with libhdf5's own, but never decorated
// with libhdf5's last error.
class DataError : public H5::Exception {
public:
    DataError(const std::string& func, const std::string& message) : H5::Exception(func, message) {}
};


// Call first thing in main(), before any other HDF5 call: keeps HDF5 from closing
// still-open files at exit. After a failed write (disk full) HDF5 1.10 cannot close a
// file cleanly, and its exit-time cleanup would crash on it.
void prepareLibrary();

// Debian's libhdf5 is built thread-safe but its C++ API is outside that guarantee, so no
// two threads of ours are inside the library at once: every HDF5 call of ours runs under
// this lock (the writer thread per task, readers per call), and a dump can still be read
// while another is being written.
std::recursive_mutex& libraryMutex();
// The lock every HDF5 call of ours runs under. It also makes libhdf5 quiet on the calling
// thread (see quietErrors: Debian's libhdf5 is built thread-safe, where that setting is
// per thread), so no reader thread ever prints HDF5's error stack.
class Lock {
public:
    explicit Lock(std::recursive_mutex& mutex);
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

private:
    std::lock_guard<std::recursive_mutex> m_guard;
};
// In a child forked while this thread held the lock: the lock records its owner by
// thread id, which the child's thread does not share, so the child starts a fresh one.
void resetLibraryMutexInChild();

// Makes libhdf5 print nothing on the calling thread and remember, per thread, the
// innermost message of the last failed call (what went wrong, e.g. a checksum mismatch,
// where H5::Exception only says which API call failed). Lock calls it once per thread.
void quietErrors();
// "H5Dread failed: checksum mismatch (the stored data is damaged)" and the like.
std::string describe(const H5::Exception& e);

// IEEE binary16, little endian: h5py reads it as numpy float16, h5dump prints it.
const H5::FloatType& halfType();

void setAttr(H5::H5Object& obj, const std::string& name, const std::string& value);
void setAttr(H5::H5Object& obj, const std::string& name, double value);
void setAttr(H5::H5Object& obj, const std::string& name, std::int64_t value);
void setAttr(H5::H5Object& obj, const std::string& name, const std::vector<std::int64_t>& value);

bool hasAttr(const H5::H5Object& obj, const std::string& name);
std::string stringAttr(const H5::H5Object& obj, const std::string& name, const std::string& fallback = {});
double doubleAttr(const H5::H5Object& obj, const std::string& name, double fallback);
std::int64_t intAttr(const H5::H5Object& obj, const std::string& name, std::int64_t fallback);
std::vector<std::int64_t> intsAttr(const H5::H5Object& obj, const std::string& name);

// Creation properties of every non-empty dataset we write: chunked as given, with
// HDF5's Fletcher32 checksum filter (a damaged chunk fails to read instead of reading
// as wrong numbers). h5py and h5dump verify it too.
H5::DSetCreatPropList checksummed(const std::vector<hsize_t>& chunk);

// Datasets written in one go (one checksummed chunk; empty ones have no chunk).
void writeFloats(H5::Group& group, const std::string& name, const std::vector<float>& values,
                 const std::vector<hsize_t>& dims);
void writeDoubles(H5::Group& group, const std::string& name, const std::vector<double>& values,
                  const std::vector<hsize_t>& dims);
void writeBytes(H5::Group& group, const std::string& name, const std::vector<std::uint8_t>& values,
                const std::vector<hsize_t>& dims);
void writeInts(H5::Group& group, const std::string& name, const std::vector<std::int64_t>& values);

// Whole-dataset reads. They refuse (DataError, a message saying why) a
// dataset whose extent claims more elements than its file holds storage for, so a
// damaged extent cannot make them allocate gigabytes.
std::vector<float> readFloats(const H5::DataSet& dataset);
// The whole of a numeric dataset as double (bounded as readFloats).
std::vector<double> readDoubles(const H5::DataSet& dataset);
// A 1-D integer dataset; Error(Input) naming `where` and `name` when missing or not 1-D.
std::vector<std::int64_t> readInts(const H5::Group& group, const std::string& name, const std::string& where);
std::vector<hsize_t> dims(const H5::DataSet& dataset);
// "[4x16x40x40]", "[]" for a scalar: dataset shapes in messages.
std::string dimsText(const std::vector<hsize_t>& dims);
// Throws DataError when `dataset` cannot hold `elements` elements in the storage the file
// gives it (contiguous: its bytes; chunked: the chunk holding its last element exists).
void checkStorage(const H5::DataSet& dataset, hsize_t elements);

// The most elements one read may return (2^32 floats, 16 GiB): beyond it the extent is
// damaged, not a layer.
constexpr hsize_t kMaxReadElements = hsize_t{1} << 32;
// The product of `dims` in `out`; false when it overflows or exceeds `limit`.
bool product(const std::vector<hsize_t>& dims, hsize_t limit, hsize_t& out);

bool exists(const H5::Group& group, const std::string& path);

// Image `image` (index along the first dimension) of a float16 or float32 dataset, as float.
std::vector<float> readImageSlab(const H5::DataSet& dataset, int image);
// Image `image`, channel `channel` (second dimension) of a dataset of rank >= 2, as float.
std::vector<float> readSlab(const H5::DataSet& dataset, int image, int channel);

} // namespace qs::h5
