#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets with clang (ASan + UBSan) and runs
# each for FUZZ_SECONDS (default 60). New interesting inputs go to a scratch
# corpus; a crash leaves its input in BUILD/artifacts and fails the run:
# copy it to tests/fuzz/regressions/<target>/ once fixed.
# Usage: tests/fuzz/run_fuzz.sh [BUILD_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build-fuzz}"
seconds="${FUZZ_SECONDS:-60}"
clang=$(command -v clang-14 || command -v clang || true)
[ -n "$clang" ] || { echo "clang not found (make deps installs clang-14)" >&2; exit 1; }

CC="$clang" cmake -S "$root" -B "$build" -DFRAUD_FUZZ=ON -DBUILD_TESTING=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
mkdir -p "$build/artifacts"
status=0
for target in decode decode_properties decimal config http_path rule_update; do
  scratch="$build/corpus-$target"
  mkdir -p "$scratch"
  echo "== fuzz_$target for ${seconds}s (seed corpus: $(ls "$root/tests/fuzz/corpus/$target" | wc -l) inputs)"
  if ! "$build/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$build/artifacts/$target-" -print_final_stats=1 \
       "$scratch" "$root/tests/fuzz/corpus/$target" >"$build/fuzz-$target.log" 2>&1; then
    echo "   CRASH: see $build/fuzz-$target.log and $build/artifacts/" >&2
    tail -30 "$build/fuzz-$target.log" >&2
    status=1
  else
    grep -E 'stat::number_of_executed_units|cov:' "$build/fuzz-$target.log" | tail -2 | sed 's/^/   /'
  fi
done
exit $status
