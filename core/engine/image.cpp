#include "image.h"

#include "error.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio> // before jpeglib.h, which uses FILE
#include <jpeglib.h>
#include <jerror.h> // libjpeg's message codes

#include <algorithm>
#include <csetjmp>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace qs {

namespace fs = std::filesystem;

namespace {

// libjpeg reports a truncated or corrupt file as a warning on stderr and returns grey or
// garbage pixels; OpenCV passes that on as a good image. So JPEG files are decoded once
// more here, with every warning an error.
struct StrictJpegErrors {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    std::string problem;
};

extern "C" void jpegFail(j_common_ptr info) {
    auto* e = reinterpret_cast<StrictJpegErrors*>(info->err);
    char text[JMSG_LENGTH_MAX];
    info->err->format_message(info, text);
    e->problem = text;
    std::longjmp(e->jump, 1);
}

extern "C" void jpegMessage(j_common_ptr info, int level) {
    if (level >= 0)
        return; // trace messages
    // warnings that mean pixels are missing or wrong; others (an unknown JFIF revision,
    // odd Adobe or ICC data) leave the image intact. Extraneous bytes before a marker is
    // what overwritten entropy-coded data gives (measured: 40 bytes zeroed or randomised
    // mid-file), so it counts as damage although some encoders leave such bytes harmlessly.
    switch (info->err->msg_code) {
    case JWRN_EXTRANEOUS_DATA:
    case JWRN_JPEG_EOF:       // premature end of file: the rest is grey
    case JWRN_HIT_MARKER:     // premature end of a data segment
    case JWRN_MUST_RESYNC:    // corrupt data, decoder resynchronised
    case JWRN_HUFF_BAD_CODE:  // corrupt entropy-coded data
    case JWRN_NOT_SEQUENTIAL: // scans out of order
        jpegFail(info);
        break;
    default:
        break;
    }
}

bool isJpeg(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    unsigned char magic[3] = {0, 0, 0};
    in.read(reinterpret_cast<char*>(magic), 3);
    return in && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF;
}

// "" when the whole JPEG decodes without a warning, else libjpeg's message.
std::string jpegProblem(const std::string& path) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (!file)
        return "cannot open";
    jpeg_decompress_struct info;
    StrictJpegErrors errors;
    info.err = jpeg_std_error(&errors.mgr);
    errors.mgr.error_exit = jpegFail;
    errors.mgr.emit_message = jpegMessage;
    jpeg_create_decompress(&info);
    if (setjmp(errors.jump) == 0) { // no C++ objects with destructors live across the jump
        jpeg_stdio_src(&info, file);
        jpeg_read_header(&info, TRUE);
        jpeg_start_decompress(&info);
        const std::size_t row = static_cast<std::size_t>(info.output_width) * info.output_components;
        JSAMPARRAY buffer = (*info.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&info), JPOOL_IMAGE,
                                                      static_cast<JDIMENSION>(row), 1);
        while (info.output_scanline < info.output_height)
            jpeg_read_scanlines(&info, buffer, 1);
        jpeg_finish_decompress(&info);
    }
    jpeg_destroy_decompress(&info);
    std::fclose(file);
    return errors.problem;
}

} // namespace

void checkImageFile(const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
        throw Error(ErrorKind::Input, path + ": no such image file");
    if (isJpeg(path)) {
        const std::string problem = jpegProblem(path);
        if (!problem.empty())
            throw Error(ErrorKind::Input, path + ": damaged JPEG (" + problem + ")");
    }
}

Image loadImage(const std::string& path, const Preprocess& pre) {
    checkImageFile(path);
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
