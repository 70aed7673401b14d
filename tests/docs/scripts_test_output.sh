#!/usr/bin/env bash
# scripts/test as a user reads it: CTest's summary line printed once, last; a test that runs longer
# than the heartbeat is named while it runs (the suite's slowest test, exporters.scrape_load, is a
# silent minute otherwise). Runs scripts/test on this build without building (PBM_TEST_NO_BUILD=1),
# selecting one test of about four seconds and a one-second heartbeat; its logs go to a temporary
# folder, never to the build's test-logs/ (a scripts/test run may be writing them).
# Usage: scripts_test_output.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
source_dir=$1 build_dir=$2
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
out=$(PBM_TEST_NO_BUILD=1 PBM_TEST_LOGS="$logs" PBM_TEST_HEARTBEAT_S=1 PBM_BUILD_DIR="$build_dir" \
      "$source_dir/scripts/test" -R '^example\.tile_pipeline_host_metrics$' 2>&1)
rc=$?
printf '%s\n' "$out"
echo "---- checks"
fail=0
summaries=$(grep -cE 'tests passed(, .* tests failed)? out of' <<<"$out")
[[ $summaries -eq 1 ]] || { echo "FAIL: CTest's summary line printed $summaries times (want once)"; fail=1; }
grep -qE 'tests passed(, .* tests failed)? out of' <<<"$(tail -n1 <<<"$out")" ||
  { echo "FAIL: the last line is not CTest's summary"; fail=1; }
grep -qE 'still running.*example\.tile_pipeline_host_metrics' <<<"$out" ||
  { echo "FAIL: no line named the test while it ran (silent while a long test runs)"; fail=1; }
[[ $rc -eq 0 ]] || { echo "FAIL: scripts/test exited $rc"; fail=1; }
[[ $fail -eq 0 ]] && echo "OK: summary once and last; the running test named while it ran"
exit $fail
