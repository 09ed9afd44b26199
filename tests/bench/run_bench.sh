#!/usr/bin/env bash
# make bench: measurements, never assertions. Results go to
# BUILD_DIR/bench/results.json and a Markdown table on stdout.
set -euo pipefail
build="$(cd "${1:-build}" && pwd)"
out="$build/bench"
mkdir -p "$out"

echo "== cache memory per user (RSS growth / users), $(nproc) cores, $(uname -m)"
: >"$out/cache_memory.jsonl"
for n in 10000 100000 1000000; do
  "$build/tests/bench_cache_memory" "$n" | tee -a "$out/cache_memory.jsonl"
done
{
  echo '{"cache_memory": ['
  paste -sd, "$out/cache_memory.jsonl"
  echo ']}'
} >"$out/results.json"

echo
echo "| users | bytes per user | of which id | excluding id |"
echo "|---:|---:|---:|---:|"
sed -E 's/.*"users": ([0-9]+).*"bytes_per_user": ([0-9.]+).*"id_bytes": ([0-9]+).*"bytes_per_user_excluding_id": ([0-9.]+).*/| \1 | \2 | \3 | \4 |/' \
  "$out/cache_memory.jsonl"
echo
echo "results: $out/results.json"
