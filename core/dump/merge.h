#pragma once
// Merging the dumps of one comparison run in shards (compare --shard I/N) into the dump the
// unsharded run would have written: images in list order, activations and maps copied,
// layer and channel metrics from the summed statistics (never averages of averages),
// per-image metrics as they were, histograms binned anew over the union of the shards'
// value ranges. docs/scale.md.

#include "progress.h"

#include <string>
#include <vector>

namespace qs {

struct MergeReport {
    int shards = 0, images = 0, layers = 0;
    std::vector<std::string> dropped; // sections not merged (e.g. /bench), with why
};

// Throws Error(Input) naming the file when the shards are not parts of one run (another
// model pair, other settings, other layers), when a shard is given twice or one is
// missing; Error(Output) when `out` cannot be written. `out` appears only when complete.
MergeReport mergeDumps(const std::vector<std::string>& shards, const std::string& out, int threads,
                       const ProgressFn& progress);

} // namespace qs
