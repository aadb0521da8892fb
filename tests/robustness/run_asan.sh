#!/usr/bin/env bash
# The dump-reader, GUI and damaged-dump corpus tests again, on binaries built with
# AddressSanitizer and UBSan (CMake preset "asan"). Called by `./run.sh test` after the
# main suite, whose fixtures (the dumps in build/dev/tests) it reuses.
#   usage: tests/robustness/run_asan.sh [ASAN_BUILD_DIR] [DEV_BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
asan=${1:-build/asan}
dev=${2:-build/dev}
export QT_QPA_PLATFORM=offscreen
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export QS_TEST_DUMP=$dev/tests/gui-demo.h5 QS_TEST_DETECTOR_DUMP=$dev/tests/gui-detector.h5
export QS_TEST_MODELS=$dev/models QS_CLI=$asan/app/cli/quantscope-cli
for f in "$QS_TEST_DUMP" "$QS_TEST_DETECTOR_DUMP"; do
  [ -f "$f" ] || { echo "run_asan.sh: $f is missing: run the main suite first" >&2; exit 1; }
done
echo "== asan: test_dumpsections"
"$asan/tests/test_dumpsections"
echo "== asan: test_mainwindow"
"$asan/tests/test_mainwindow"
echo "== asan: damaged-dump corpus"
/usr/bin/python3 tests/robustness/test_bad_dumps.py --sanitized \
  --cli "$asan/app/cli/quantscope-cli" --gui "$asan/app/gui/quantscope" \
  --good "$QS_TEST_DUMP" --regressions tests/robustness/regressions
echo "asan: clean"
