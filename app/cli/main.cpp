// quantscope-cli: the command line. Exit codes: 0 success, 1 failure, 2 usage error.

#include "commands.h"
#include "error.h"
#include "h5util.h"
#include "progressbar.h"

#include "model.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>

namespace {
// Leaves without running library exit handlers: after a failed write, HDF5 1.10's own
// clean-up of the abandoned file handle can crash (see DumpWriter::abandon).
int exitNow(int code) {
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(code);
}
} // namespace

int main(int argc, char** argv) {
    qs::h5::prepareLibrary();
    qs::cli::installSignalHandlers(); // Ctrl-C while LibTorch loads still cancels cleanly
    CLI::App app{"QuantScope: where INT8 quantization hurts a CNN, layer by layer", "quantscope-cli"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("quantscope-cli ") + QS_VERSION);
    bool verbose = false;
    app.add_flag("--verbose", verbose, "Also print LibTorch's own warnings (dropped otherwise)");
    app.fallthrough(); // --verbose may follow the subcommand

    qs::cli::CompareArgs compareArgs;
    qs::cli::addCompare(app, compareArgs);
    qs::cli::InspectArgs inspectArgs;
    qs::cli::addInspect(app, inspectArgs);
    qs::cli::EvalArgs evalArgs;
    qs::cli::addEval(app, evalArgs);
    qs::cli::QuantizeArgs quantizeArgs;
    qs::cli::addQuantize(app, quantizeArgs);
    qs::cli::BenchArgs benchArgs;
    qs::cli::addBench(app, benchArgs);
    qs::cli::ExportArgs exportArgs;
    qs::cli::addExport(app, exportArgs);
    qs::cli::MergeArgs mergeArgs;
    qs::cli::addMerge(app, mergeArgs);
    qs::cli::BenchChildArgs benchChildArgs;
    qs::cli::addBenchChild(app, benchChildArgs);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e); // prints the message
        return 2;
    }

    qs::routeLibraryWarnings(verbose, "quantscope-cli");
    try {
        if (app.got_subcommand("compare"))
            return qs::cli::runCompare(compareArgs);
        if (app.got_subcommand("inspect"))
            return qs::cli::runInspect(inspectArgs);
        if (app.got_subcommand("eval"))
            return qs::cli::runEval(evalArgs);
        if (app.got_subcommand("quantize"))
            return qs::cli::runQuantize(quantizeArgs);
        if (app.got_subcommand("bench"))
            return qs::cli::runBench(benchArgs);
        if (app.got_subcommand("export"))
            return qs::cli::runExport(exportArgs, argv[0]);
        if (app.got_subcommand("merge"))
            return qs::cli::runMerge(mergeArgs);
        if (app.got_subcommand("_bench-child"))
            return qs::cli::runBenchChild(benchChildArgs);
    } catch (const qs::Error& e) {
        if (e.kind() == qs::ErrorKind::Cancelled) {
            std::fprintf(stderr, "quantscope-cli: %s\n", e.what());
            return exitNow(qs::cli::interrupted() ? 130 : 1); // 128 + SIGINT, as shells expect
        }
        std::fprintf(stderr, "quantscope-cli: error: %s\n", e.what());
        return exitNow(e.kind() == qs::ErrorKind::Usage ? 2 : 1);
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "quantscope-cli: error: out of memory\n");
        return exitNow(1);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "quantscope-cli: internal error: %s\n", e.what());
        return exitNow(1);
    }
    return 2;
}
