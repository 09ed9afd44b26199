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
BUILD=$build
. "$root/tests/lib.sh"
fraud_init valgrind
work=$WORK
start_dev_broker payments:3 fraud-alerts:1 payments-dlq:1
start_redis
port=$REDIS_PORT

valgrind --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite,possible \
  --log-file="$work/valgrind.log" \
  "$build/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" \
  -X "redis.url=redis://127.0.0.1:$port" -X http.listen=off >"$work/service.log" 2>&1 &
svc=$!
fraud_track $svc

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
grep -E 'ERROR SUMMARY|definitely lost|possibly lost|in use at exit' "$work/valgrind.log" | sed 's/^==[0-9]*== /   /'
[ "$alerts" = 2 ] || { echo "FAIL: $alerts alerts, want 2" >&2; tail -20 "$work/service.log" >&2; exit 1; }
[ "$dead" = 3 ] || { echo "FAIL: $dead dead letters, want 3" >&2; exit 1; }
if [ "$status" != 0 ]; then
  echo "FAIL: exit status $status under valgrind" >&2
  grep -A25 -E 'Invalid|uninitialised|definitely lost in|possibly lost in' "$work/valgrind.log" | head -80 >&2
  exit 1
fi
echo "valgrind: seed, dead letters and shutdown clean"
