#pragma once
// Files that appear only when complete: every output (dumps, models, COCO results) is
// written under a temporary name next to its final one and renamed over it at the end, so
// a failure or Ctrl-C never leaves a half-written file under the real name and never
// touches a file the user already has.

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace qs {

// "<path>.partial-<pid>": where a file is written before it takes its name.
std::string partialPath(const std::string& finalPath);

// Renames a finished temporary file to its final name (atomic on one file system). On
// failure removes the temporary file and throws Error(Output) naming `finalPath`.
void commitFile(const std::string& temporaryPath, const std::string& finalPath);

// write(temporaryPath) writes the whole file, then it is committed; if write throws, the
// temporary file is removed and the exception passes on.
void writeAtomically(const std::string& finalPath, const std::function<void(const std::string&)>& write);

// Refuses, before anything is written, an output that is an existing non-regular file
// (device, FIFO, socket, directory) or the same file as one of `inputs` ({what, path}:
// what names it in the message, e.g. "--original"), however either is spelt.
void checkOutputPath(const std::string& out, const std::vector<std::pair<std::string, std::string>>& inputs);

// Refuses a write of `bytes` more into `path` that cannot fit (the process's file size
// limit, free disk space) with Error(Output) naming the reason, before the write is tried:
// libraries report such failures as "Input/output error", and HDF5 1.10 cannot close a
// file cleanly after one.
void ensureRoom(const std::string& path, std::size_t bytes);

// The current time as ISO 8601 UTC ("2026-11-30T16:06:11Z"), as dumps record it.
std::string nowIso8601();

} // namespace qs
