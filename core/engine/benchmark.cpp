#include "benchmark.h"

#include "childprocess.h"
#include "dumpupdate.h"
#include "dumpwriter.h"
#include "error.h"
#include "sections.h"

#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

namespace qs {

namespace {

long long memAvailableKiB() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    long long value = 0;
    std::string unit;
    while (in >> key >> value >> unit)
        if (key == "MemAvailable:")
            return value;
    return 0;
}

} // namespace

std::string readAllAndClose(int fd) {
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        text.append(buf, static_cast<std::size_t>(n));
    close(fd);
    return text;
}

long long residentKiB() {
    std::ifstream in("/proc/self/status");
    std::string key;
    while (in >> key) {
        if (key == "VmRSS:") {
            long long kib = 0;
            in >> kib;
            return kib;
        }
        in.ignore(1 << 12, '\n');
    }
    return 0;
}

namespace {

Image benchImage(const std::string& path, Size2 size) {
    Preprocess pre;
    pre.size = size;
    if (!path.empty())
        return loadImage(path, pre);
    Image img; // mid-grey
    img.source = "<grey>";
    img.width = img.originalWidth = size.width;
    img.height = img.originalHeight = size.height;
    img.rgb.assign(static_cast<std::size_t>(size.width) * size.height * 3, 128);
    img.chw.assign(static_cast<std::size_t>(size.width) * size.height * 3, 128.0f / 255.0f);
    return img;
}

struct ChildOutcome {
    bool ok = false;
    bool outOfMemory = false;
    std::string message;
    double modelMiB = 0, peakMiB = 0;
};

ChildOutcome runProbe(const std::vector<std::string>& args, long long limitBytes) {
    // stdout (one short JSON line) through the pipe; stderr into a temporary file, so that
    // a chatty child (LibTorch warnings) can never block on a full pipe nobody reads yet
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> errHolder(std::tmpfile(), &std::fclose);
    std::FILE* errFile = errHolder.get();
    if (!errFile)
        throw Error(ErrorKind::Internal, "bench: cannot create a temporary file");
    std::vector<char*> argv;
    for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const ChildResult child = runChild([&](int fd) { // only async-signal-safe calls until exec
        struct rlimit lim;
        lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(limitBytes);
        setrlimit(RLIMIT_DATA, &lim);
        dup2(fd, STDOUT_FILENO);
        dup2(fileno(errFile), STDERR_FILENO);
        close(fd);
        execv(argv[0], argv.data());
        _exit(127);
    });
    std::rewind(errFile);
    const std::string stderrText = readAllAndClose(dup(fileno(errFile)));
    const std::string& stdoutText = child.output;
    ChildOutcome r;
    if (!child.exited) {
        r.outOfMemory = child.signal == SIGKILL;
        r.message = "child killed by signal " + std::to_string(child.signal) +
                    (r.outOfMemory ? " (out of memory)" : "");
        return r;
    }
    const int code = child.code;
    if (code == 3) {
        r.outOfMemory = true;
        r.message = "out of memory";
        return r;
    }
    if (code != 0) {
        r.message = code == 127 ? "cannot run " + args[0] : lastLine(stderrText);
        return r;
    }
    const auto j = nlohmann::json::parse(stdoutText, nullptr, false);
    if (j.is_discarded() || !j.contains("peak_kib")) {
        r.message = "memory probe printed no result";
        return r;
    }
    r.ok = true;
    r.modelMiB = j["model_kib"].get<double>() / 1024.0;
    r.peakMiB = j["peak_kib"].get<double>() / 1024.0;
    return r;
}

double slope(const std::vector<double>& x, const std::vector<double>& y) {
    if (x.size() < 2)
        return 0;
    double mx = 0, my = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        mx += x[i];
        my += y[i];
    }
    mx /= static_cast<double>(x.size());
    my /= static_cast<double>(x.size());
    double num = 0, den = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        num += (x[i] - mx) * (y[i] - my);
        den += (x[i] - mx) * (x[i] - mx);
    }
    return den > 0 ? num / den : 0;
}

} // namespace

int benchChild(const std::string& modelPath, int batch, const std::string& imagePath, Size2 size,
               const ModelOptions& options) {
    try {
        configureRuntime(options);
        ModelOptions mo = options;
        mo.tapOps = 0;
        const Image image = benchImage(imagePath, size);
        auto model = loadModel(modelPath, mo);
        const long long modelKiB = residentKiB();
        model->runBatch(image, batch);
        model->runBatch(image, batch);
        struct rusage usage {};
        getrusage(RUSAGE_SELF, &usage);
        std::printf("{\"model_kib\": %lld, \"peak_kib\": %ld}\n", modelKiB, usage.ru_maxrss);
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return e.kind() == ErrorKind::OutOfMemory ? 3 : 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "out of memory\n");
        return 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}

BenchReport runBenchmark(const BenchOptions& o, const ProgressFn& progress) {
    auto report = [&](const Progress& p) { reportProgress(progress, p); };
    if (o.batches.empty())
        throw Error(ErrorKind::Usage, "--batch: give at least one batch size");
    for (int b : o.batches)
        if (b <= 0 || b > 4096)
            throw Error(ErrorKind::Usage, "--batch: sizes must be between 1 and 4096");
    if (o.runs < 1)
        throw Error(ErrorKind::Usage, "--runs: at least 1");
    configureRuntime(o.model);
    ModelOptions mo = o.model;
    mo.tapOps = 0;
    BenchReport rep;
    const int n = o.baselinePath.empty() ? 2 : 3;
    rep.models = n;
    std::unique_ptr<Model> models[3] = {loadModel(o.originalPath, mo), loadModel(o.quantizedPath, mo),
                                        n == 3 ? loadModel(o.baselinePath, mo) : nullptr};
    const Image image = benchImage(o.imagePath, o.size);
    for (int s = 0; s < n; ++s) {
        rep.paths[s] = models[s]->info().path;
        rep.fileBytes[s] = models[s]->info().fileBytes;
        rep.parameterBytes[s] = models[s]->info().parameterBytes;
    }
    rep.width = image.width;
    rep.height = image.height;
    rep.threads = o.model.threads;
    rep.engine = o.model.engine;
    const long long limitMiB = o.memoryLimitMiB > 0 ? o.memoryLimitMiB : memAvailableKiB() * 85 / 100 / 1024;
    rep.memoryLimitMiB = static_cast<double>(limitMiB);

    std::vector<int> batches = o.batches;
    std::sort(batches.begin(), batches.end());
    batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
    const std::int64_t total = static_cast<std::int64_t>(batches.size()) * (n + n * (o.warmup + o.runs));
    std::int64_t done = 0;

    // 1. memory, each (model, batch) alone in a child process
    bool tooBig = false;
    for (int b : batches) {
        BatchResult r;
        r.batch = b;
        for (int s = 0; s < n; ++s) {
            report({"memory", done++, total, "batch " + std::to_string(b)});
            if (tooBig || !r.skipped.empty())
                continue;
            std::vector<std::string> args = {o.childExecutable, "_bench-child", "--model", rep.paths[s],
                                             "--batch", std::to_string(b), "--threads", std::to_string(o.model.threads),
                                             "--engine", o.model.engine, "--onnx-int8", toString(o.model.onnxInt8)};
            if (!o.imagePath.empty())
                args.insert(args.end(), {"--image", o.imagePath});
            args.insert(args.end(), {"--size", std::to_string(image.width) + "x" + std::to_string(image.height)});
            const ChildOutcome c = runProbe(args, limitMiB << 20);
            if (!c.ok) {
                r.skipped = std::string(s == 0 ? "original" : s == 1 ? "quantized" : "baseline") + ": " + c.message;
                if (c.outOfMemory)
                    tooBig = true; // larger batches will not fit either
                continue;
            }
            r.peakMiB[s] = c.peakMiB;
            r.modelMiB[s] = c.modelMiB;
        }
        if (r.skipped.empty() && tooBig)
            r.skipped = "larger than a batch that did not fit";
        rep.batches.push_back(r);
    }

    // 2. latency, interleaved: o, q, q, o, o, q ... (with a baseline b: o, q, b, b, q, o, ...)
    // so that drift hits all alike
    for (auto& r : rep.batches) {
        if (!r.skipped.empty()) {
            done += n * (o.warmup + o.runs);
            continue;
        }
        std::vector<double> ms[3];
        try {
            for (int w = 0; w < o.warmup; ++w)
                for (int s = 0; s < n; ++s) {
                    report({"latency", done++, total, "batch " + std::to_string(r.batch) + " warm-up"});
                    models[s]->runBatch(image, r.batch);
                }
            for (int run = 0; run < o.runs; ++run)
                for (int k = 0; k < n; ++k) {
                    const int s = (run % 2 == 0) ? k : n - 1 - k;
                    report({"latency", done++, total, "batch " + std::to_string(r.batch)});
                    const auto t = std::chrono::steady_clock::now();
                    models[s]->runBatch(image, r.batch);
                    ms[s].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
                }
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::OutOfMemory)
                throw;
            r.skipped = e.what();
            continue;
        }
        for (int s = 0; s < n; ++s) {
            std::sort(ms[s].begin(), ms[s].end());
            const std::size_t m = ms[s].size();
            r.medianMs[s] = m % 2 ? ms[s][m / 2] : 0.5 * (ms[s][m / 2 - 1] + ms[s][m / 2]);
            r.minMs[s] = ms[s].front();
            r.maxMs[s] = ms[s].back();
        }
        r.measured = true;
    }
    for (int s = 0; s < n; ++s) {
        std::vector<double> x, y;
        for (const auto& r : rep.batches)
            if (r.peakMiB[s] > 0) {
                x.push_back(r.batch);
                y.push_back(r.peakMiB[s]);
            }
        rep.mibPerImage[s] = slope(x, y);
    }
    report({"latency", total, total, ""});
    return rep;
}

void storeBenchmark(const std::string& dumpPath, const BenchReport& rep) {
    BenchData b;
    for (int s = 0; s < 2; ++s) {
        b.path[s] = rep.paths[s];
        b.fileBytes[s] = rep.fileBytes[s];
        b.parameterBytes[s] = rep.parameterBytes[s];
        b.mibPerImage[s] = rep.mibPerImage[s];
    }
    b.width = rep.width;
    b.height = rep.height;
    b.threads = rep.threads;
    b.engine = rep.engine;
    b.memoryLimitMiB = rep.memoryLimitMiB;
    for (const auto& r : rep.batches) {
        b.batch.push_back(r.batch);
        const auto timing = [&r](double v) { return r.measured ? static_cast<float>(v) : std::nanf(""); };
        for (int s = 0; s < 2; ++s) {
            b.medianMs[s].push_back(timing(r.medianMs[s]));
            b.minMs[s].push_back(timing(r.minMs[s]));
            b.maxMs[s].push_back(timing(r.maxMs[s]));
            b.peakMiB[s].push_back(static_cast<float>(r.peakMiB[s]));
            b.modelMiB[s].push_back(static_cast<float>(r.modelMiB[s]));
        }
    }
    updateDump(dumpPath, [&b](H5::H5File& file) { writeBench(file, b); });
}

} // namespace qs
