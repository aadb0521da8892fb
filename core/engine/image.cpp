#include "image.h"

#include "error.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

namespace qs {

namespace fs = std::filesystem;

Image loadImage(const std::string& path, const Preprocess& pre) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
        throw Error(ErrorKind::Input, path + ": no such image file");
    cv::Mat bgr;
    try {
        bgr = cv::imread(path, cv::IMREAD_COLOR);
    } catch (const cv::Exception& e) {
        throw Error(ErrorKind::Input, path + ": cannot decode image (" + firstLine(e.what()) + ")");
    }
    if (bgr.empty())
        throw Error(ErrorKind::Input, path + ": not a readable JPEG/PNG/BMP image");

    const int originalWidth = bgr.cols, originalHeight = bgr.rows;
    if (pre.size && (pre.size->width != bgr.cols || pre.size->height != bgr.rows)) {
        cv::Mat resized;
        const bool shrinking = pre.size->width < bgr.cols && pre.size->height < bgr.rows;
        cv::resize(bgr, resized, cv::Size(pre.size->width, pre.size->height), 0, 0,
                   shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
        bgr = resized;
    }
    Image img;
    img.source = path;
    img.width = bgr.cols;
    img.height = bgr.rows;
    img.originalWidth = originalWidth;
    img.originalHeight = originalHeight;
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    img.rgb.assign(rgb.data, rgb.data + static_cast<std::size_t>(rgb.total()) * 3);

    const std::size_t plane = static_cast<std::size_t>(img.width) * img.height;
    img.chw.resize(3 * plane);
    const std::array<float, 3> mean = pre.mean.value_or(std::array<float, 3>{0, 0, 0});
    const std::array<float, 3> stdv = pre.std.value_or(std::array<float, 3>{1, 1, 1});
    for (int c = 0; c < 3; ++c) {
        const int srcChannel = pre.bgr ? 2 - c : c; // index into RGB pixels
        float* out = img.chw.data() + static_cast<std::size_t>(c) * plane;
        for (std::size_t p = 0; p < plane; ++p) {
            const float v = img.rgb[p * 3 + static_cast<std::size_t>(srcChannel)] / 255.0f;
            out[p] = (v - mean[static_cast<std::size_t>(c)]) / stdv[static_cast<std::size_t>(c)];
        }
    }
    return img;
}

std::vector<std::string> listImages(const std::string& directory) {
    std::error_code ec;
    if (!fs::is_directory(directory, ec))
        throw Error(ErrorKind::Input, directory + ": not a directory");
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
        if (!entry.is_regular_file())
            continue;
        std::string ext = entry.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp")
            files.push_back(entry.path().string());
    }
    if (ec)
        throw Error(ErrorKind::Input, directory + ": cannot list directory (" + ec.message() + ")");
    if (files.empty())
        throw Error(ErrorKind::Input, directory + ": no .jpg, .jpeg, .png or .bmp images in it");
    std::sort(files.begin(), files.end());
    return files;
}

} // namespace qs
