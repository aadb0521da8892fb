#pragma once
// The one exception type that leaves core. Library exceptions (c10::Error,
// cv::Exception, H5::Exception) are caught at the core boundary and turned into
// an Error whose message names the file and the problem.

#include <stdexcept>
#include <string>

namespace qs {

enum class ErrorKind {
    Usage,     // the request itself is malformed (bad option value)
    Input,     // a model, image or dump given by the user is missing or unusable
    Output,    // the output cannot be written (permissions, disk full)
    Cancelled, // the user cancelled (progress callback returned false, Ctrl-C)
    OutOfMemory, // an allocation failed (a batch too large for the machine)
    Internal,  // a bug or an unexpected library failure
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message)
        : std::runtime_error(message), m_kind(kind) {}
    ErrorKind kind() const { return m_kind; }

private:
    ErrorKind m_kind;
};

// First line of a library message, trimmed: c10::Error carries whole backtraces.
std::string firstLine(const std::string& text);
// Last non-empty line: the TorchScript interpreter puts the actual error last.
std::string lastLine(const std::string& text);

} // namespace qs
