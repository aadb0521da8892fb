#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   ./run.sh demo   install dependencies, build, compare the bundled demo pair, export its
#                   figures, and open the GUI on it when a display is available
#   ./run.sh test   install dependencies, build, run the whole test suite
# Build directory: build/dev (CMake preset "dev"); reused when present.
set -euo pipefail
cd "$(dirname "$0")"

what=${1:-}
case "$what" in
  demo|test) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

bash packaging/install-deps.sh
cmake --preset dev >/dev/null
build=build/dev
cli=$build/app/cli/quantscope-cli

if [ "$what" = demo ]; then
  # the bundled demo: the trained demo Faster R-CNN and its PyTorch FX INT8 counterpart
  # (tools/weights, made by tools/train_detector.py) on a demo traffic scene
  cmake --build --preset dev --target quantscope-cli quantscope
  weights=tools/weights
  out=$build/demo-run.h5
  figures=$build/demo-figures
  "$cli" compare --original "$weights/demo_frcnn_float.pt" --quantized "$weights/demo_frcnn_int8_fx.pt" \
      --image "$weights/images/scene_test_0.png" --out "$out" --threads 2
  "$cli" inspect "$out" --top 10
  "$cli" export "$out" --all --kind abs --format png --out "$figures" >/dev/null
  "$cli" export "$out" --kind detections --format png --out "$figures" >/dev/null
  "$cli" export "$out" --kind hexbin --format png --out "$figures" >/dev/null
  echo
  echo "dump:    $out"
  echo "figures: $figures"
  if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    echo "opening the GUI…"
    exec "$build/app/gui/quantscope" "$out"
  else
    echo "(no display: open it later with $build/app/gui/quantscope $out)"
  fi
else
  cmake --build --preset dev
  ctest --test-dir "$build" --output-on-failure --timeout 1800
  # (the AddressSanitizer pass, tests/robustness/run_asan.sh, is not part of CI: see there)
fi
