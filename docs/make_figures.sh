#!/usr/bin/env bash
# Regenerates the figures in README.md and docs/ with the project's own commands.
# Run from the repository root after a build (./run.sh demo).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/dev}
export XDG_CONFIG_HOME=$(mktemp -d)  # default window layout, not the user's saved one
cli=$build/app/cli/quantscope-cli
gui=$build/app/gui/quantscope
models=$build/models
dump=$build/docs-demo.h5
"$cli" compare --original tools/weights/demo_frcnn_float.pt --quantized tools/weights/demo_frcnn_int8_fx.pt \
    --image tools/weights/images/scene_test_0.png --out "$dump" --quiet >/dev/null
QT_QPA_PLATFORM=offscreen "$gui" --screenshot docs/images/main-window.png "$dump"
QT_QPA_PLATFORM=offscreen "$gui" --screenshot docs/images/detections.png --tab detections "$dump"
QT_QPA_PLATFORM=offscreen "$gui" --screenshot docs/images/output-error.png --tab output "$dump"
rm -rf "$build/docs-export"
"$cli" export "$dump" --kind hexbin --format png --width 900 --height 700 --out "$build/docs-export" >/dev/null
cp "$build/docs-export/hexbin.png" docs/images/demo-hexbin.png
echo "figures written to docs/images"
