#!/usr/bin/env bash
# One end-to-end run of the real binary under valgrind's memcheck: the seed
# stream, dead letters and a clean SIGTERM shutdown. Any memory error or
# definite/possible leak fails it (--error-exitcode=1).
# Skipped (exit 77) when valgrind is not installed.
# Usage: tests/valgrind_e2e.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
command -v valgrind >/dev/null || { echo "SKIP: valgrind not installed" >&2; exit 77; }
work="$(mktemp -d /tmp/fraud-valgrind-XXXXXX)"
pids=()
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

"$build/fraud-mock-broker" -t payments:3 -t fraud-alerts:1 -t payments-dlq:1 \
  --bootstrap-file "$work/bootstrap" >"$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
BROKER=$(cat "$work/bootstrap")
port=$(( 20000 + RANDOM % 40000 ))
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no \
  >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

valgrind --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite,possible \
  --log-file="$work/valgrind.log" \
  "$build/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" \
  -X "redis.url=redis://127.0.0.1:$port" -X http.listen=off >"$work/service.log" 2>&1 &
svc=$!
pids+=($svc)

kcat -P -b "$BROKER" -t payments -K: -l "$root/tests/data/seed-payments.txt"
printf 'bad:{oops\nbad:-5\nbad:1.234567\n' | kcat -P -b "$BROKER" -t payments -K:
alerts=0 dead=0
for _ in $(seq 240); do
  alerts=$(kcat -C -b "$BROKER" -t fraud-alerts -o beginning -e -q 2>/dev/null | grep -c amount_jump || true)
  dead=$(kcat -C -b "$BROKER" -t payments-dlq -o beginning -e -q 2>/dev/null | wc -l)
  [ "$alerts" -ge 2 ] && [ "$dead" -ge 3 ] && break
  sleep 0.5
done
kill -TERM "$svc"
status=0
wait "$svc" || status=$?
pids=("${pids[@]:0:2}")
grep -E 'ERROR SUMMARY|definitely lost|possibly lost|in use at exit' "$work/valgrind.log" | sed 's/^==[0-9]*== /   /'
[ "$alerts" = 2 ] || { echo "FAIL: $alerts alerts, want 2" >&2; tail -20 "$work/service.log" >&2; exit 1; }
[ "$dead" = 3 ] || { echo "FAIL: $dead dead letters, want 3" >&2; exit 1; }
if [ "$status" != 0 ]; then
  echo "FAIL: exit status $status under valgrind" >&2
  grep -A25 -E 'Invalid|uninitialised|definitely lost in|possibly lost in' "$work/valgrind.log" | head -80 >&2
  exit 1
fi
echo "valgrind: seed, dead letters and shutdown clean"
