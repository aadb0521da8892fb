#include "dumpupdate.h"

#include "dumpreader.h"
#include "error.h"
#include "fileutil.h"
#include "h5util.h"

#include <filesystem>

namespace qs {

void updateDump(const std::string& path, const std::function<void(H5::H5File&)>& fn) {
    openDump(path); // refuses anything that is not a complete, readable dump
    writeAtomically(path, [&](const std::string& temp) {
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);
        if (ec)
            throw Error(ErrorKind::Output, path + ": cannot read its size (" + ec.message() + ")");
        ensureRoom(temp, static_cast<std::size_t>(size));
        std::filesystem::copy_file(path, temp, std::filesystem::copy_options::overwrite_existing, ec);
        if (ec)
            throw Error(ErrorKind::Output, path + ": cannot copy for writing (" + ec.message() + ")");
        try {
            h5::Lock lock(h5::libraryMutex());
            H5::H5File file(temp, H5F_ACC_RDWR);
            fn(file);
            file.close();
        } catch (const H5::Exception& e) {
            throw Error(ErrorKind::Output, path + ": cannot update (" + h5::describe(e) + ")");
        }
    });
}

} // namespace qs
