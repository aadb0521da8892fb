#!/usr/bin/env bash
# Regenerates the figures in README.md and docs/ with the project's own commands.
# Run from the repository root after a build (./run.sh demo).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/dev}
export XDG_CONFIG_HOME=$(mktemp -d)  # default window layout, not the user's saved one
cli=$build/app/cli/quantscope-cli
gui=$build/app/gui/quantscope
dump=$build/docs-demo.h5
# the demo detector, float vs INT8, on four images of the generated test split
images=()
for i in 0 1 2 3; do images+=(--image "$build/data/test/00000$i.png"); done
"$cli" compare --original tools/weights/demo_frcnn_float.pt --quantized tools/weights/demo_frcnn_int8_fx.pt \
    "${images[@]}" --out "$dump" --quiet >/dev/null
shot() { QT_QPA_PLATFORM=offscreen "$gui" --screenshot "docs/images/$1.png" "${@:2}" "$dump" >/dev/null; }
shot main-window
shot main-window-1280x720 --window-size 1280x720
shot detections --tab detections
shot output-error --tab output
shot histogram --tab histogram
shot graph --tab graph
shot images --tab images
rm -rf "$build/docs-export"
"$cli" export "$dump" --kind hexbin --format png --width 900 --height 700 --out "$build/docs-export" >/dev/null
cp "$build/docs-export/hexbin.png" docs/images/demo-hexbin.png
echo "figures written to docs/images"
