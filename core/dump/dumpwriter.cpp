#include "dumpwriter.h"

#include "error.h"
#include "fileutil.h"
#include "h5util.h"
#include "halffloat.h"
#include "sections.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace qs {

const char* toString(Side side) { return side == Side::Original ? "original" : "quantized"; }

namespace {

// Where image 0's activation number `seq` of one side waits until the layers are paired.
std::string stagingPath(Side side, int seq) {
    return std::string(layout::kStaging) + "/" + toString(side) + "/" + layout::indexName(seq);
}

std::string shapeText(const std::vector<std::int64_t>& shape) {
    std::ostringstream out;
    out << '[';
    for (std::size_t i = 0; i < shape.size(); ++i)
        out << (i ? "," : "") << shape[i];
    out << ']';
    return out.str();
}

// Chunks of one channel (or of as many channels as make ~64 KiB when planes are small),
// one image deep: reading one channel of one image touches one chunk.
std::vector<hsize_t> chunkDims(const std::vector<hsize_t>& dims, std::size_t elementBytes) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;
    if (dims.size() >= 3) {
        hsize_t plane = 1;
        for (std::size_t i = 2; i < dims.size(); ++i)
            plane *= dims[i];
        const hsize_t target = std::max<hsize_t>(1, (64u << 10) / (plane * elementBytes));
        chunk[1] = std::min<hsize_t>(dims[1], target);
    }
    return chunk;
}

} // namespace

DumpWriter::DumpWriter(std::string finalPath, DumpWriterOptions options)
    : m_finalPath(std::move(finalPath)), m_options(options) {
    m_tempPath = partialPath(m_finalPath);
    std::error_code ec;
    const auto parent = std::filesystem::absolute(m_finalPath, ec).parent_path();
    if (!std::filesystem::is_directory(parent, ec))
        throw Error(ErrorKind::Output, m_finalPath + ": output directory " + parent.string() +
                                           " does not exist");
    if (std::filesystem::is_directory(m_finalPath, ec))
        throw Error(ErrorKind::Output, m_finalPath + ": is a directory");
    if (::access(parent.c_str(), W_OK) != 0)
        throw Error(ErrorKind::Output, m_finalPath + ": output directory is not writable");
    h5::Lock lock(h5::libraryMutex());
    try {
        m_file = std::make_unique<H5::H5File>(m_tempPath, H5F_ACC_TRUNC);
        writeDumpHeader(*m_file, m_options.storage, m_options.images);
        m_file->createGroup(layout::kStaging);
        for (Side side : {Side::Original, Side::Quantized})
            m_file->createGroup(std::string(layout::kStaging) + "/" + toString(side));
    } catch (const H5::Exception& e) {
        abandon();
        throw Error(ErrorKind::Output, m_finalPath + ": cannot create dump (" + h5::describe(e) + ")");
    }
    m_thread = std::thread([this] { writerLoop(); });
}

DumpWriter::~DumpWriter() {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_stop = true;
    }
    m_changed.notify_all();
    if (m_thread.joinable())
        m_thread.join();
    if (!m_committed)
        abandon();
}

void DumpWriter::closeScratch() noexcept {
    if (m_scratchFd >= 0)
        ::close(m_scratchFd);
    m_scratchFd = -1;
    if (!m_scratchPath.empty())
        std::remove(m_scratchPath.c_str());
}

namespace {
void readFully(int fd, void* to, std::size_t bytes, std::int64_t offset, const std::string& path) {
    auto* p = static_cast<char*>(to);
    while (bytes > 0) {
        const ssize_t n = ::pread(fd, p, bytes, static_cast<off_t>(offset));
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            throw Error(ErrorKind::Output, path + ": cannot read back the scratch file (" +
                                               (n < 0 ? std::string(std::strerror(errno)) : "short read") + ")");
        }
        p += n;
        bytes -= static_cast<std::size_t>(n);
        offset += n;
    }
}

void writeFully(int fd, const void* from, std::size_t bytes, std::int64_t offset, const std::string& path) {
    const auto* p = static_cast<const char*>(from);
    while (bytes > 0) {
        const ssize_t n = ::pwrite(fd, p, bytes, static_cast<off_t>(offset));
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            throw Error(ErrorKind::Output, path + ": write failed (" +
                                               (n < 0 ? std::string(std::strerror(errno)) : "nothing written") +
                                               "; disk full or file size limit?)");
        }
        p += n;
        bytes -= static_cast<std::size_t>(n);
        offset += n;
    }
}
} // namespace

void DumpWriter::abandon() noexcept {
    h5::Lock lock(h5::libraryMutex());
    closeScratch();
    if (m_error) {
        // After a failed write (disk full) HDF5 cannot flush, a failed H5Fclose leaves the
        // file half closed, and closing it again crashes inside HDF5 1.10. So the handles
        // are deliberately left open (the descriptor goes with the process) and only the
        // file name is removed.
        new std::vector<H5::DataSet>[2]{std::move(m_datasets[0]), std::move(m_datasets[1])};
        m_file.release();
    } else {
        for (auto& side : m_datasets)
            side.clear();
        try {
            if (m_file)
                m_file->close();
        } catch (...) {
            m_file.release(); // same reason as above
        }
    }
    std::remove(m_tempPath.c_str());
}

std::exception_ptr DumpWriter::error() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_error;
}

void DumpWriter::writerLoop() {
    for (;;) {
        Task task;
        {
            std::unique_lock<std::mutex> lock(m_mutex);
            m_changed.wait(lock, [&] { return m_stop || !m_queue.empty(); });
            if (m_queue.empty())
                return; // stopping and nothing left
            task = std::move(m_queue.front());
            m_queue.pop_front();
            m_busy = true;
        }
        bool failedBefore;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            failedBefore = static_cast<bool>(m_error);
        }
        std::exception_ptr error;
        if (!failedBefore) { // after an error, drop the rest: the dump is abandoned anyway
            try {
                h5::Lock lock(h5::libraryMutex());
                task.fn(*m_file);
            } catch (const Error&) {
                error = std::current_exception();
            } catch (const H5::Exception& e) {
                error = std::make_exception_ptr(Error(
                    ErrorKind::Output, m_tempPath + ": write failed (" + h5::describe(e) +
                                           "; disk full or file size limit?)"));
            } catch (const std::exception& e) {
                error = std::make_exception_ptr(
                    Error(ErrorKind::Output, m_tempPath + ": write failed (" + e.what() + ")"));
            }
        }
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            if (error && !m_error)
                m_error = error;
            m_queuedBytes -= task.bytes;
            ++m_done;
            m_busy = false;
        }
        m_changed.notify_all();
    }
}

std::uint64_t DumpWriter::post(std::function<void(H5::H5File&)> fn, std::size_t bytes) {
    std::unique_lock<std::mutex> lock(m_mutex);
    // Wait for room, unless the queue is empty (one item larger than the bound still passes).
    m_changed.wait(lock, [&] {
        return m_error || m_queuedBytes == 0 || m_queuedBytes + bytes <= m_options.queueBytes;
    });
    if (m_error)
        std::rethrow_exception(m_error);
    m_queuedBytes += bytes;
    m_queue.push_back({std::move(fn), bytes});
    const std::uint64_t ticket = ++m_posted;
    lock.unlock();
    m_changed.notify_all();
    return ticket;
}

void DumpWriter::waitFor(std::uint64_t ticket) {
    std::unique_lock<std::mutex> lock(m_mutex);
    m_changed.wait(lock, [&] { return m_error || m_done >= ticket; });
    if (m_error)
        std::rethrow_exception(m_error);
}

std::uint64_t DumpWriter::postKeep(int image, int row) {
    return post([this, image, row](H5::H5File&) {
        std::vector<char> buffer;
        for (int side = 0; side < 2; ++side) {
            for (std::size_t seq = 0; seq < m_datasets[side].size(); ++seq) {
                H5::DataSet& to = m_datasets[side][seq];
                if (to.getId() <= 0 || seq >= m_scratchSlots[side].size() || m_scratchSlots[side][seq].offset < 0)
                    continue; // a layer not stored after image 0
                const ScratchSlot& slot = m_scratchSlots[side][seq];
                buffer.resize(static_cast<std::size_t>(slot.bytes));
                readFully(m_scratchFd, buffer.data(), buffer.size(), slot.offset + (image % 2) * slot.bytes,
                          m_scratchPath);
                auto d = h5::dims(to);
                std::vector<hsize_t> start(d.size(), 0), count = d;
                count[0] = 1;
                start[0] = static_cast<hsize_t>(row);
                H5::DataSpace mem(static_cast<int>(count.size()), count.data());
                H5::DataSpace toSpace = to.getSpace();
                toSpace.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
                const H5::DataType& memType = slot.half ? static_cast<const H5::DataType&>(h5::halfType())
                                                        : H5::PredType::NATIVE_FLOAT;
                to.write(buffer.data(), memType, mem, toSpace);
            }
        }
    });
}

void DumpWriter::drain() {
    std::unique_lock<std::mutex> lock(m_mutex);
    m_changed.wait(lock, [&] { return m_error || (m_queue.empty() && !m_busy); });
    if (m_error)
        std::rethrow_exception(m_error);
}

void DumpWriter::beginPass(Side side, int image, std::function<void()> check) {
    m_side = side;
    m_image = image;
    m_check = std::move(check);
    m_records.clear();
}

void DumpWriter::push(Activation a) {
    // Errors thrown here travel through the TorchScript interpreter, which rewraps them
    // as plain runtime errors; keep the original so the caller can report it as it was.
    try {
        pushChecked(std::move(a));
    } catch (...) {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (!m_pushError)
            m_pushError = std::current_exception();
        throw;
    }
}

std::exception_ptr DumpWriter::pushError() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_pushError;
}

void DumpWriter::pushChecked(Activation a) {
    if (m_check)
        m_check();
    const int seq = static_cast<int>(m_records.size());
    TapRecord record{a.module, a.call, a.op, {}, a.site};
    if (!a.shape.empty())
        record.shape.assign(a.shape.begin() + 1, a.shape.end());
    if (m_image > 0) { // later images must repeat the first image's layers exactly
        const auto& first = m_firstRecords[static_cast<int>(m_side)];
        if (seq >= static_cast<int>(first.size()) || first[static_cast<std::size_t>(seq)].module != record.module)
            throw Error(ErrorKind::Input,
                        std::string("the ") + toString(m_side) + " model ran a different sequence of " +
                            "layers on image " + std::to_string(m_image + 1) + " than on the first image (at " +
                            record.module + "); data-dependent control flow is not supported");
        if (first[static_cast<std::size_t>(seq)].shape != record.shape)
            throw Error(ErrorKind::Input,
                        std::string("layer ") + record.module + " of the " + toString(m_side) +
                            " model has shape " + shapeText(record.shape) + " on image " +
                            std::to_string(m_image + 1) + " but " +
                            shapeText(first[static_cast<std::size_t>(seq)].shape) +
                            " on the first; give --size so that every image has the same size");
    }
    if (a.shape.empty() || a.shape[0] != 1)
        throw Error(ErrorKind::Internal, "tap at " + record.module + " recorded shape " +
                                             shapeText(a.shape) + ", expected a batch of one");
    m_records.push_back(record);
    const auto& dropped = m_dropped[static_cast<int>(m_side)];
    if (m_image > 0 && static_cast<std::size_t>(seq) < dropped.size() && dropped[static_cast<std::size_t>(seq)])
        return; // a layer the caller did not select
    const std::size_t bytes = a.bytes();
    post([this, side = m_side, image = m_image, seq, act = std::move(a)](H5::H5File&) {
        writeActivation(side, image, seq, act);
    }, bytes);
}

std::vector<TapRecord> DumpWriter::endPass() {
    m_check = nullptr;
    if (m_image == 0) {
        m_firstRecords[static_cast<int>(m_side)] = m_records;
    } else if (m_records.size() != m_firstRecords[static_cast<int>(m_side)].size()) {
        throw Error(ErrorKind::Input, std::string("the ") + toString(m_side) + " model ran " +
                                          std::to_string(m_records.size()) + " layers on image " +
                                          std::to_string(m_image + 1) + " but " +
                                          std::to_string(m_firstRecords[static_cast<int>(m_side)].size()) +
                                          " on the first");
    }
    return m_records;
}

int DumpWriter::keptImages() const {
    return m_options.keptImages < 0 ? m_options.images : std::min(m_options.keptImages, m_options.images);
}

H5::DataSet DumpWriter::activationDataset(Side side, int seq) const {
    return m_datasets[static_cast<int>(side)].at(static_cast<std::size_t>(seq));
}

void DumpWriter::readActivation(Side side, int seq, int image, std::vector<float>& out,
                                std::vector<std::uint16_t>& raw) const {
    if (image < keptImages()) {
        h5::Lock lock(h5::libraryMutex());
        try {
            out = h5::readImageSlab(m_datasets[static_cast<int>(side)].at(static_cast<std::size_t>(seq)), image);
            return;
        } catch (const H5::Exception& e) {
            throw Error(ErrorKind::Output, m_tempPath + ": cannot read back image " + std::to_string(image) +
                                               " for its metrics (" + h5::describe(e) + ")");
        }
    }
    const ScratchSlot& slot = m_scratchSlots[static_cast<int>(side)].at(static_cast<std::size_t>(seq));
    const std::int64_t offset = slot.offset + (image % 2) * slot.bytes;
    if (!slot.half) {
        out.resize(static_cast<std::size_t>(slot.bytes) / sizeof(float));
        readFully(m_scratchFd, out.data(), static_cast<std::size_t>(slot.bytes), offset, m_scratchPath);
        return;
    }
    raw.resize(static_cast<std::size_t>(slot.bytes) / 2);
    readFully(m_scratchFd, raw.data(), static_cast<std::size_t>(slot.bytes), offset, m_scratchPath);
    out.resize(raw.size());
    halfToFloat(raw.data(), out.data(), raw.size());
}

void DumpWriter::writeActivation(Side side, int image, int seq, const Activation& a) {
    const bool half = a.type == StorageType::F16;
    const H5::DataType& memType =
        half ? static_cast<const H5::DataType&>(h5::halfType()) : H5::PredType::NATIVE_FLOAT;
    auto& ranges = m_ranges[static_cast<int>(side)];
    if (static_cast<int>(ranges.size()) <= seq)
        ranges.resize(static_cast<std::size_t>(seq) + 1);
    ranges[static_cast<std::size_t>(seq)].add(a);
    auto& datasets = m_datasets[static_cast<int>(side)];
    std::vector<hsize_t> dims(a.shape.begin(), a.shape.end());
    dims[0] = static_cast<hsize_t>(keptImages());
    if (image == 0) {
        H5::DSetCreatPropList props;
        if (dims[0] > 0) { // --keep-activations none: an empty, contiguous dataset
            const auto chunk = chunkDims(dims, half ? 2 : 4);
            props.setChunk(static_cast<int>(chunk.size()), chunk.data());
            if (m_options.gzip > 0) {
                props.setShuffle();
                props.setDeflate(m_options.gzip);
            }
            props.setFletcher32(); // a damaged chunk fails to read instead of showing wrong values
        }
        H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
        const H5::DataType& fileType =
            half ? static_cast<const H5::DataType&>(h5::halfType()) : H5::PredType::IEEE_F32LE;
        const std::string path = stagingPath(side, seq);
        // Whole chunks are always written at once, so HDF5's chunk cache (1 MiB per open
        // dataset by default, ~150 MiB for a detector) would only hold memory.
        H5::DSetAccPropList access;
        access.setChunkCache(0, 0, 1.0);
        H5::DataSet ds = m_file->createDataSet(path, fileType, space, props, access);
        writeActivationAttributes(ds, a);
        if (static_cast<int>(datasets.size()) <= seq)
            datasets.resize(static_cast<std::size_t>(seq) + 1);
        datasets[static_cast<std::size_t>(seq)] = ds;
    }
    if (image >= keptImages()) { // two images' worth in the scratch file, row image % 2
        if (m_scratchFd < 0) {
            m_scratchPath = m_tempPath + ".scratch";
            m_scratchFd = ::open(m_scratchPath.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (m_scratchFd < 0)
                throw Error(ErrorKind::Output, m_scratchPath + ": cannot create the scratch file (" +
                                                   std::strerror(errno) + ")");
        }
        auto& slots = m_scratchSlots[static_cast<int>(side)];
        if (static_cast<int>(slots.size()) <= seq)
            slots.resize(static_cast<std::size_t>(seq) + 1);
        ScratchSlot& slot = slots[static_cast<std::size_t>(seq)];
        if (slot.offset < 0) {
            slot.offset = m_scratchEnd;
            slot.bytes = static_cast<std::int64_t>(a.bytes());
            slot.half = half;
            m_scratchEnd += 2 * slot.bytes;
        }
        ensureRoom(m_scratchPath, a.bytes());
        writeFully(m_scratchFd, a.data.get(), a.bytes(), slot.offset + (image % 2) * slot.bytes, m_scratchPath);
        return;
    }
    ensureRoom(m_tempPath, a.bytes());
    H5::DataSet& ds = datasets.at(static_cast<std::size_t>(seq));
    H5::DataSpace fileSpace = ds.getSpace();
    std::vector<hsize_t> start(dims.size(), 0), count(a.shape.begin(), a.shape.end());
    start[0] = static_cast<hsize_t>(image);
    fileSpace.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
    H5::DataSpace memSpace(static_cast<int>(count.size()), count.data());
    ds.write(a.data.get(), memType, memSpace, fileSpace);
}

void DumpWriter::placeLayers(const std::vector<LayerPair>& pairs, const std::vector<std::string>& names,
                             const std::vector<LayerPair>& dropped) {
    for (int side = 0; side < 2; ++side)
        m_dropped[side].assign(m_firstRecords[side].size(), false);
    for (const auto& p : dropped) {
        m_dropped[0].at(static_cast<std::size_t>(p.original)) = true;
        m_dropped[1].at(static_cast<std::size_t>(p.quantized)) = true;
    }
    post([this, pairs, names, dropped](H5::H5File& file) {
        file.createGroup(layout::kLayers);
        std::vector<bool> moved[2];
        moved[0].assign(m_datasets[0].size(), false);
        moved[1].assign(m_datasets[1].size(), false);
        for (const auto& p : dropped) {
            const int seqs[2] = {p.original, p.quantized};
            for (int side = 0; side < 2; ++side) {
                const std::string path = stagingPath(Side(side), seqs[side]);
                if (H5Ldelete(file.getId(), path.c_str(), H5P_DEFAULT) < 0)
                    throw Error(ErrorKind::Output, m_tempPath + ": cannot delete " + path);
                m_datasets[side].at(static_cast<std::size_t>(seqs[side])) = H5::DataSet();
                moved[side][static_cast<std::size_t>(seqs[side])] = true;
            }
        }
        for (std::size_t k = 0; k < pairs.size(); ++k) {
            const std::string group = layout::child(layout::kLayers, static_cast<int>(k));
            H5::Group g = file.createGroup(group);
            writeLayerPlacement(g, static_cast<int>(k), names.at(k), pairs[k].method);
            const int seqs[2] = {pairs[k].original, pairs[k].quantized};
            for (int side = 0; side < 2; ++side) {
                const std::string from = stagingPath(Side(side), seqs[side]);
                const std::string to = group + "/" + toString(Side(side));
                if (H5Lmove(file.getId(), from.c_str(), file.getId(), to.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
                    throw Error(ErrorKind::Output, m_tempPath + ": cannot move " + from + " to " + to);
                moved[side][static_cast<std::size_t>(seqs[side])] = true;
            }
        }
        file.createGroup(layout::kUnmatched);
        for (int side = 0; side < 2; ++side) {
            const std::string dir = std::string(layout::kUnmatched) + "/" + toString(Side(side));
            file.createGroup(dir);
            for (std::size_t seq = 0; seq < moved[side].size(); ++seq) {
                if (moved[side][seq])
                    continue;
                const std::string from = stagingPath(Side(side), static_cast<int>(seq));
                const std::string to = dir + "/" + layout::indexName(static_cast<int>(seq));
                if (H5Lmove(file.getId(), from.c_str(), file.getId(), to.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
                    throw Error(ErrorKind::Output, m_tempPath + ": cannot move " + from);
            }
        }
        H5Ldelete(file.getId(), layout::kStaging, H5P_DEFAULT);
    });
}

ValueRange DumpWriter::valueRange(Side side, int seq) const {
    const auto& ranges = m_ranges[static_cast<int>(side)];
    return seq >= 0 && static_cast<std::size_t>(seq) < ranges.size() ? ranges[static_cast<std::size_t>(seq)]
                                                                     : ValueRange{};
}

void DumpWriter::commit() {
    drain();
    h5::Lock lock(h5::libraryMutex());
    closeScratch();
    try {
        for (auto& side : m_datasets)
            side.clear();
        markComplete(*m_file);
        m_file->flush(H5F_SCOPE_GLOBAL);
        m_file->close();
    } catch (const H5::Exception& e) {
        throw Error(ErrorKind::Output, m_tempPath + ": cannot finish the dump (" + h5::describe(e) + ")");
    }
    commitFile(m_tempPath, m_finalPath);
    m_committed = true;
}

} // namespace qs
