#!/usr/bin/env bash
# The long steps of the scripts say what they do: scripts/setup shows apt's lines (no -qq, no
# >/dev/null on apt-get), scripts/sanitize and scripts/fuzz show their builds' progress (the build's
# output is not only sent to a log file). A static check of the scripts' text: running them takes
# minutes (apt, a sanitizer build, a clang build).
# Usage: scripts_progress_check.sh SOURCE_DIR
set -uo pipefail
dir=$1/scripts
fail=0
if grep -nE 'apt-get (update|install).*(-qq|>/dev/null)|-qq.*>/dev/null' "$dir/setup"; then
  echo "FAIL: scripts/setup silences apt (the lines above)"; fail=1
fi
for s in sanitize fuzz; do
  if grep -nE 'cmake --build[^|]*>"?\$build/build\.log' "$dir/$s"; then
    echo "FAIL: scripts/$s sends its build's progress only to a log file (the line above)"; fail=1
  fi
  grep -qE 'cmake --build.*\| *tee ' "$dir/$s" || { echo "FAIL: scripts/$s does not show its build's progress"; fail=1; }
done
[[ $fail -eq 0 ]] && echo "OK: apt's lines and the sanitizer and fuzz builds' progress are shown"
exit $fail
