#!/usr/bin/env bash
# Regenerates the figures in README.md and docs/ with the project's own commands.
# Run from the repository root after a build (./run.sh demo).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/dev}
cli=$build/app/cli/quantscope-cli
gui=$build/app/gui/quantscope
models=$build/models
dump=$build/docs-demo.h5
"$cli" compare --original "$models/demo_cnn_float.pt" --quantized "$models/demo_cnn_int8.pt" \
    --images "$models/images" --out "$dump" --quiet >/dev/null
QT_QPA_PLATFORM=offscreen "$gui" --screenshot docs/images/main-window.png "$dump"
"$cli" export "$dump" --layer features.0 --kind abs --format png --width 900 --height 700 --out docs/images >/dev/null
mv docs/images/0000_features.0_abs.png docs/images/demo-features0-abs.png
echo "figures written to docs/images"
