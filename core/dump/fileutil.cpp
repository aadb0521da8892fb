#include "fileutil.h"

#include "error.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <system_error>

namespace qs {

void ensureRoom(const std::string& path, std::size_t bytes) {
    constexpr unsigned long long margin = 16ull << 20; // metadata, chunk index, attributes
    struct stat st {};
    const unsigned long long size = ::stat(path.c_str(), &st) == 0 ? static_cast<unsigned long long>(st.st_size) : 0;
    struct rlimit limit {};
    if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
        size + bytes + margin > limit.rlim_cur)
        throw Error(ErrorKind::Output, path + ": write failed: the process's file size limit (" +
                                           std::to_string(limit.rlim_cur >> 20) + " MiB) would be exceeded");
    struct statvfs fs {};
    const std::string dir = std::filesystem::absolute(path).parent_path().string();
    if (::statvfs(dir.c_str(), &fs) == 0) {
        const unsigned long long free = static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize;
        if (free < bytes + margin)
            throw Error(ErrorKind::Output, path + ": write failed: disk full (" + std::to_string(free >> 20) +
                                               " MiB free, the next write needs " +
                                               std::to_string((bytes + margin) >> 20) + " MiB)");
    }
}

void checkOutputPath(const std::string& out, const std::vector<std::pair<std::string, std::string>>& inputs) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status status = fs::status(out, ec);
    if (!fs::exists(status))
        return; // a new file: nothing to protect
    if (fs::is_directory(status))
        throw Error(ErrorKind::Output, out + ": is a directory");
    if (!fs::is_regular_file(status))
        throw Error(ErrorKind::Output, out + ": not a regular file (a device, FIFO or socket); refusing to replace it");
    for (const auto& [what, path] : inputs)
        if (fs::equivalent(out, path, ec))
            throw Error(ErrorKind::Usage, out + ": is also the input " + what + " (" + path +
                                              "); refusing to overwrite it");
}

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

std::string nowIso8601() {
    const std::time_t t = std::time(nullptr);
    char buf[32];
    std::tm utc{};
    gmtime_r(&t, &utc);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return buf;
}

} // namespace qs
