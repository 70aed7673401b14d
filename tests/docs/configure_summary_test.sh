#!/usr/bin/env bash
# Configure prints one line per optional dependency, found or not, and why:
#   -- pbm: CUPTI: ...   -- pbm: prometheus-cpp: ...   -- pbm: torch: ...
# Configures the source tree into a temporary folder (tests, examples and bench off: seconds) with
# the same compilers, PBM_WITH_TORCH=OFF (the torch line must then say off) and checks the lines.
# Usage: configure_summary_test.sh SOURCE_DIR CMAKE CXX_COMPILER CUDA_COMPILER
set -uo pipefail
source_dir=$1 cmake=$2 cxx=$3 cuda=$4
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
out=$("$cmake" -S "$source_dir" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CUDA_COMPILER="$cuda" \
      -DPBM_BUILD_TESTS=OFF -DPBM_BUILD_EXAMPLES=OFF -DPBM_BUILD_BENCH=OFF -DPBM_WITH_TORCH=OFF 2>&1)
rc=$?
grep -E '^-- pbm: ' <<<"$out"
[[ $rc -eq 0 ]] || { printf '%s\n' "$out" | tail -n 30; echo "FAIL: configure exited $rc"; exit 1; }
fail=0
for dep in CUPTI prometheus-cpp torch; do
  n=$(grep -cE "^-- pbm: $dep: (yes|no|off)( |:|$)" <<<"$out")
  [[ $n -eq 1 ]] || { echo "FAIL: $n configure lines '-- pbm: $dep: yes|no|off ...' (want one)"; fail=1; }
done
grep -qE '^-- pbm: torch: off .*PBM_WITH_TORCH=OFF' <<<"$out" ||
  { echo "FAIL: with PBM_WITH_TORCH=OFF the torch line does not say off and why"; fail=1; }
[[ $fail -eq 0 ]] && echo "OK: one line per optional dependency"
exit $fail
