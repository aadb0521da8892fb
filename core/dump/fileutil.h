#pragma once
// Files that appear only when complete: every output (dumps, models, COCO results) is
// written under a temporary name next to its final one and renamed over it at the end, so
// a failure or Ctrl-C never leaves a half-written file under the real name and never
// touches a file the user already has.

#include <functional>
#include <string>

namespace qs {

// "<path>.partial-<pid>": where a file is written before it takes its name.
std::string partialPath(const std::string& finalPath);

// Renames a finished temporary file to its final name (atomic on one file system). On
// failure removes the temporary file and throws Error(Output) naming `finalPath`.
void commitFile(const std::string& temporaryPath, const std::string& finalPath);

// write(temporaryPath) writes the whole file, then it is committed; if write throws, the
// temporary file is removed and the exception passes on.
void writeAtomically(const std::string& finalPath, const std::function<void(const std::string&)>& write);

} // namespace qs
