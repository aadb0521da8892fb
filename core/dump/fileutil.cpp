#include "fileutil.h"

#include "error.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <system_error>

namespace qs {

std::string partialPath(const std::string& finalPath) {
    return finalPath + ".partial-" + std::to_string(::getpid());
}

void commitFile(const std::string& temporaryPath, const std::string& finalPath) {
    std::error_code ec;
    std::filesystem::rename(temporaryPath, finalPath, ec);
    if (ec) {
        std::remove(temporaryPath.c_str());
        throw Error(ErrorKind::Output, finalPath + ": cannot rename the finished file from " + temporaryPath + " (" +
                                           ec.message() + ")");
    }
}

void writeAtomically(const std::string& finalPath, const std::function<void(const std::string&)>& write) {
    const std::string temp = partialPath(finalPath);
    try {
        write(temp);
    } catch (...) {
        std::remove(temp.c_str());
        throw;
    }
    commitFile(temp, finalPath);
}

} // namespace qs
