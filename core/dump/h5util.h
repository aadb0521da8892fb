#pragma once
// Small helpers over HDF5's C++ API shared by the dump writer and reader.

#include <H5Cpp.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace qs::h5 {

// Call first thing in main(), before any other HDF5 call: keeps HDF5 from closing
// still-open files at exit. After a failed write (disk full) HDF5 1.10 cannot close a
// file cleanly, and its exit-time cleanup would crash on it.
void prepareLibrary();

// Debian's libhdf5 is the serial build: no two threads may be inside the library at once.
// Every HDF5 call of ours runs under this lock (the writer thread per task, readers per
// call), so a dump can be read while another is being written.
std::recursive_mutex& libraryMutex();
using Lock = std::lock_guard<std::recursive_mutex>;

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

// 1-D or 2-D float dataset written in one go.
void writeFloats(H5::Group& group, const std::string& name, const std::vector<float>& values,
                 const std::vector<hsize_t>& dims);
std::vector<float> readFloats(const H5::DataSet& dataset);
std::vector<hsize_t> dims(const H5::DataSet& dataset);

bool exists(const H5::Group& group, const std::string& path);

// Image `image` (index along the first dimension) of a float16 or float32 dataset, as float.
std::vector<float> readImageSlab(const H5::DataSet& dataset, int image);
// Image `image`, channel `channel` (second dimension) of a dataset of rank >= 2, as float.
std::vector<float> readSlab(const H5::DataSet& dataset, int image, int channel);

} // namespace qs::h5
