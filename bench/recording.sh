#!/usr/bin/env bash
# Recording overhead and peak memory of `compare` vs plain forward passes, and the Python
# forward-hook + h5py peer, on scripted fasterrcnn_resnet50_fpn (random weights) at
# 480x640 with 2 threads. Figures for docs/performance.md. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/dev}
cmake --preset dev >/dev/null
cmake --build --preset dev --target bench_recording bench_models quantscope-cli
image=$build/bench-480x640.png
/usr/bin/python3 - "$image" <<'PY'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
Image.fromarray(rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)).save(sys.argv[1])
PY
"$build/bench/bench_recording" --original "$build/models/frcnn_r50_fpn.pt" \
    --quantized "$build/models/frcnn_r50_fpn_fx_int8.pt" --image "$image" --images "${IMAGES:-3}" \
    --threads 2 --out "$build/bench-recording.h5" --python-peer tools/python_peer.py "$@"
