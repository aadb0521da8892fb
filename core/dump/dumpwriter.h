#pragma once
// Writes a dump (format in docs/dump-format.md). All HDF5 calls of a run happen on one
// writer thread fed by a queue bounded in bytes, so memory stays flat however many
// layers a model has, and the model thread only waits when the disk falls behind.
// The file is written under a temporary name ("<out>.partial-<pid>") and renamed only
// by commit(); destroying an uncommitted writer removes the temporary file.

#include "activation.h"
#include "layout.h"
#include "matching.h"
#include "sections.h"

#include <H5Cpp.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace qs {

struct DumpWriterOptions {
    StorageType storage = StorageType::F16;
    int gzip = 0;                            // 0 = no compression, 1..9 = deflate level
    std::size_t queueBytes = 256u << 20;     // bound of the writer queue
    int images = 1;                          // N: how many images the run has
    // compare --keep-activations K: the dump's activation datasets (and unmatched calls')
    // have K rows, filled by the first K images; a later image's activations go to a
    // two-image scratch file next to it (row image % 2, so one image can be read back while
    // the next is written), removed at the end. K = 0 keeps none (zero-row datasets that
    // still carry the layers' attributes). -1: all.
    int keptImages = -1;
};

class DumpWriter : public ActivationSink {
public:
    DumpWriter(std::string finalPath, DumpWriterOptions options);
    ~DumpWriter() override;
    DumpWriter(const DumpWriter&) = delete;
    DumpWriter& operator=(const DumpWriter&) = delete;

    const std::string& temporaryPath() const { return m_tempPath; }

    // One forward pass of one model on one image. `check` runs on every push (model
    // thread) and may throw (cancel). Returns the pass's records in execution order.
    void beginPass(Side side, int image, std::function<void()> check);
    void push(Activation activation) override;
    std::vector<TapRecord> endPass();

    // Runs fn on the writer thread, in order with the activations pushed before it.
    // Returns its ticket: waitFor(ticket) returns once fn and everything before it is done.
    std::uint64_t post(std::function<void(H5::H5File&)> fn, std::size_t bytes = 0);
    // Waits until everything posted is written; rethrows the writer's first error.
    void drain();
    // Waits until the task of `ticket` (and all before it) is done, from any thread;
    // rethrows the writer's first error.
    void waitFor(std::uint64_t ticket);
    // compare --keep worst: posts a copy of image `image`'s activations (every activation
    // the dump stores, from the scratch file) into the dump's row `row`. Returns its ticket.
    std::uint64_t postKeep(int image, int row);

    // After the first image: moves each kept pair's datasets to
    // /layers/<k>/{original,quantized}, deletes those of the dropped pairs (layers a
    // --layers filter did not select) and moves the rest to /unmatched/<side>/<seq>. Later
    // passes write straight to those datasets and skip the dropped layers.
    void placeLayers(const std::vector<LayerPair>& kept, const std::vector<std::string>& names,
                     const std::vector<LayerPair>& dropped);

    // The smallest and largest finite value written for activation `seq` (execution order
    // on image 0) of one side, over all images so far. Call after drain().
    ValueRange valueRange(Side side, int seq) const;

    // Image `image` of activation `seq` (execution order) as float, read back from where
    // it was written: the dump's row for images < K (under the HDF5 lock, taken here), the
    // scratch file's row image % 2 otherwise (plain reads, no lock). Call from any thread
    // once the image's writes are done (waitFor).
    // Into `out` (and `raw`, for f16), reusing their memory: the metrics worker reads
    // every layer of every image, and fresh buffers of tens of MB each would cost page
    // faults and zeroing every time.
    void readActivation(Side side, int seq, int image, std::vector<float>& out, std::vector<std::uint16_t>& raw) const;
    // The dump's dataset of activation `seq` (for its attributes and shape). Under the
    // HDF5 lock, once image 0 is written.
    H5::DataSet activationDataset(Side side, int seq) const;
    int keptImages() const;

    // The file, for the caller's own reads and writes once drain() has returned.
    H5::H5File& file() { return *m_file; }

    // Marks the dump complete, closes it and renames it to its final name.
    void commit();

    // Error recorded by the writer thread, if any (for errors that surface elsewhere first).
    std::exception_ptr error() const;
    // First error thrown by push() (cancel, shape mismatch, write failure), if any.
    std::exception_ptr pushError() const;

private:
    struct Task {
        std::function<void(H5::H5File&)> fn;
        std::size_t bytes = 0;
    };
    void pushChecked(Activation activation);
    void writerLoop();
    void writeActivation(Side side, int image, int seq, const Activation& a);
    void abandon() noexcept;
    void closeScratch() noexcept; // and remove it

    std::string m_finalPath, m_tempPath;
    DumpWriterOptions m_options;
    std::unique_ptr<H5::H5File> m_file;
    bool m_committed = false;

    // pass state (model thread)
    Side m_side = Side::Original;
    int m_image = 0;
    std::function<void()> m_check;
    std::vector<TapRecord> m_records;
    std::vector<TapRecord> m_firstRecords[2]; // records of image 0, per side
    std::vector<bool> m_dropped[2];           // by seq: not written after image 0

    // writer thread state
    std::vector<H5::DataSet> m_datasets[2]; // by seq
    // Images past keptImages: a plain file of two rows per activation (row image % 2),
    // laid out on the first such image: where each activation's rows start, and their size.
    struct ScratchSlot {
        std::int64_t offset = -1, bytes = 0;
        bool half = true;
    };
    int m_scratchFd = -1;
    std::string m_scratchPath;
    std::int64_t m_scratchEnd = 0;
    std::vector<ScratchSlot> m_scratchSlots[2]; // by seq
    std::vector<ValueRange> m_ranges[2];     // by seq
    std::thread m_thread;
    mutable std::mutex m_mutex;
    std::condition_variable m_changed;
    std::deque<Task> m_queue;
    std::size_t m_queuedBytes = 0;
    std::uint64_t m_posted = 0, m_done = 0; // tickets handed out, tasks finished (run or dropped)
    bool m_busy = false;
    bool m_stop = false;
    std::exception_ptr m_error;
    std::exception_ptr m_pushError;
};

} // namespace qs
