#!/usr/bin/env bash
# The dump-reader and damaged-dump corpus tests again (the corpus runs the CLI and the GUI
# program on every damaged dump), on binaries built with AddressSanitizer and UBSan (CMake
# preset "asan"). Run it after the main suite (`./run.sh test`), whose fixtures (the dumps in
# build/dev/tests) it reuses:
#   cmake --preset asan && cmake --build --preset asan --target quantscope-cli quantscope test_dumpsections
#   tests/robustness/run_asan.sh
# It is not part of CI: under GCC 12's libasan, fork() from a multi-threaded process
# sometimes leaves openDump's validating child waiting on a sanitizer lock. The outcome is
# still an orderly exit 1, but with "stalled" instead of the real problem, so the corpus
# test's message checks fail now and then (seen in 1 of 3 runs, in the GUI program only).
#
# test_mainwindow is not run here: for the same reason it hangs about half the time under
# the sanitizer and load (it passes without the sanitizer, every time). Run it by hand with
#   QT_QPA_PLATFORM=offscreen QS_TEST_DUMP=build/dev/tests/gui-demo.h5 \
#   QS_TEST_DETECTOR_DUMP=build/dev/tests/gui-detector.h5 QS_TEST_MODELS=build/dev/models \
#   QS_CLI=build/asan/app/cli/quantscope-cli build/asan/tests/test_mainwindow
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
echo "== asan: damaged-dump corpus"
/usr/bin/python3 tests/robustness/test_bad_dumps.py --sanitized \
  --cli "$asan/app/cli/quantscope-cli" --gui "$asan/app/gui/quantscope" \
  --good "$QS_TEST_DUMP" --regressions tests/robustness/regressions
echo "asan: clean"
