#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   ./run.sh demo   install dependencies, build, compare the bundled demo pair
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

if [ "$what" = demo ]; then
  cmake --build --preset dev --target quantscope-cli demo_models
  models=$build/models
  out=$build/demo-run.h5
  "$build/app/cli/quantscope-cli" compare \
      --original "$models/demo_cnn_float.pt" --quantized "$models/demo_cnn_int8.pt" \
      --images "$models/images" --out "$out" --threads 2
  "$build/app/cli/quantscope-cli" inspect "$out" --top 10
  echo
  echo "dump: $out   (reopen with: $build/app/cli/quantscope-cli inspect $out)"
else
  cmake --build --preset dev
  ctest --test-dir "$build" --output-on-failure --timeout 1800
fi
