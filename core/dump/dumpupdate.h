#pragma once
// Safe additions to a finished dump (bench --into, eval --into).

#include <H5Cpp.h>

#include <functional>
#include <string>

namespace qs {

// Adds to a complete dump without risking it: copies it to partialPath(path), runs
// fn on the copy under the HDF5 lock, and renames the copy over the original. Throws
// Error(Input) for a path that is no complete dump, Error(Output) when writing fails.
void updateDump(const std::string& path, const std::function<void(H5::H5File&)>& fn);

} // namespace qs
