#!/usr/bin/env bash
# Data-set scale: compare --keep-activations 4 over growing image counts (time per image,
# peak memory, dump size: flat in the number of images?) and N shards run one after another
# against one run over the same images (the per-shard fixed cost), for the YOLO demo pair
# and the ResNet-50-FPN pair. Prints a table for docs/scale.md; asserts nothing.
# Run from the repository root:  bench/scale.sh [demo|r50|all]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/dev}
which=${1:-all}
cli=$build/app/cli/quantscope-cli
cmake --preset dev >/dev/null
targets=(quantscope-cli test_models)
[[ $which != demo ]] && targets+=(bench_models)
cmake --build --preset dev --target "${targets[@]}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# one compare: seconds, peak RSS (MiB), dump MB
run() { # out args...
    local out=$1
    shift
    /usr/bin/time -f "%e %M" -o "$work/time" "$cli" compare "$@" --out "$out" --quiet >/dev/null
    read -r seconds kib <"$work/time"
    printf "%8.1f s %8.0f MiB %9.1f MB" "$seconds" "$((kib / 1024))" "$(du -m --apparent-size "$out" | cut -f1)"
}

images() { # dir count source...: count images cycled from the sources
    local dir=$1 count=$2
    shift 2
    mkdir -p "$dir"
    local sources=("$@") i
    for ((i = 0; i < count; ++i)); do
        cp "${sources[$((i % ${#sources[@]}))]}" "$dir/$(printf %06d $i).png"
    done
}

pair() { # name original quantized threads sources... (with counts in $counts)
    local name=$1 original=$2 quantized=$3 threads=$4
    shift 4
    echo "== $name, --keep-activations 4, $threads thread(s)"
    local n
    for n in $counts; do
        rm -rf "$work/img"
        images "$work/img" "$n" "$@"
        printf "  %4d images  " "$n"
        run "$work/k.h5" --original "$original" --quantized "$quantized" --images "$work/img" \
            --threads "$threads" --keep-activations 4
        echo
    done
    local last=${counts##* }
    printf "  %4d images, --keep-activations all  " "$last"
    run "$work/all.h5" --original "$original" --quantized "$quantized" --images "$work/img" --threads "$threads"
    echo
    rm -f "$work/all.h5"
    echo "  $shards shards of the $last images, one after another:"
    local i total=0
    for ((i = 0; i < shards; ++i)); do
        printf "    shard %d/%d  " "$i" "$shards"
        run "$work/s$i.h5" --original "$original" --quantized "$quantized" --images "$work/img" \
            --threads "$threads" --keep-activations 4 --shard "$i/$shards"
        total=$(awk -v a="$total" -v b="$(cut -d' ' -f1 "$work/time")" 'BEGIN { print a + b }')
        echo
    done
    echo "    shards in all: $total s"
    /usr/bin/time -f "%e %M" -o "$work/time" "$cli" merge "$work"/s*.h5 --out "$work/merged.h5" --quiet >/dev/null
    echo "    merge: $(cut -d' ' -f1 "$work/time") s"
    rm -f "$work"/s*.h5 "$work/merged.h5" "$work/k.h5"
}

if [[ $which == demo || $which == all ]]; then
    counts="16 64 256" shards=4 pair "YOLO demo (320x320), float vs FX INT8" \
        tools/weights/demo_yolo_v8.pt tools/weights/demo_yolo_v8_int8_fx.pt 2 "$build"/data/test/*.png
fi
if [[ $which == r50 || $which == all ]]; then
    "$build/bench/bench_recording" --help >/dev/null 2>&1 || cmake --build --preset dev --target bench_recording
    /usr/bin/python3 - "$work/r50.png" <<'PY'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
Image.fromarray(rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)).save(sys.argv[1])
PY
    counts="6 12 24" shards=2 pair "ResNet-50-FPN (480x640), float vs FX INT8 body" \
        "$build/models/frcnn_r50_fpn.pt" "$build/models/frcnn_r50_fpn_fx_int8.pt" 2 "$work/r50.png"
fi
