#!/usr/bin/env bash
# Runs README's recipes (jq on the alert topic, dead letters sent back after
# a fix) verbatim against a dev broker, a redis-server and fraud-detector,
# and checks what each shows.
# Usage: tests/readme_recipes_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
. "$root/tests/lib.sh"
fraud_init recipes
work=$WORK
command -v jq >/dev/null || { echo "jq not found (make test installs it)" >&2; exit 1; }

readme_block readme-recipes >"$work/lines"
[ "$(grep -c kcat "$work/lines")" -eq 5 ] || { echo "README recipes block not found" >&2; exit 1; }

start_dev_broker payments:3 fraud-alerts:1 payments-dlq:1
export BROKER
start_redis
service() { # extra -X flags...
  "$BUILD/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" -X http.listen=off \
    -X "redis.url=redis://127.0.0.1:$REDIS_PORT" "$@" >>"$work/service.log" 2>&1 &
  svc=$!
  fraud_track $svc
}
user_count() { # user -> its count in Redis, or empty
  local key
  key=$(redis-cli -p "$REDIS_PORT" --scan --pattern "fraud:{*}:user:$1")
  [ -n "$key" ] && redis-cli -p "$REDIS_PORT" hget "$key" count
}
wait_count() { # user count
  for _ in $(seq 300); do [ "$(user_count "$1")" = "$2" ] && return 0; sleep 0.1; done
  echo "FAIL: $1 has count '$(user_count "$1")', expected $2" >&2; tail -n 40 "$work/service.log" >&2; exit 1
}

# Two alerts, and one payment too large for a limit of 64 bytes.
service -X input.max.message.bytes=64
printf 'a:100\na:20000\nb:1\nb:50000\n' | kcat -P -b "$BROKER" -t payments -K:
echo 'big:{"user_id":"big","amount":"12.50","event_id":"a-long-event-id-0000000000000001"}' \
  | kcat -P -b "$BROKER" -t payments -K:
wait_count b 2
for _ in $(seq 100); do
  [ "$(kcat -C -b "$BROKER" -t payments-dlq -o beginning -e -q | wc -l)" = 1 ] && break; sleep 0.1
done
kill -TERM $svc; wait $svc
# The fix: the default limit. (A group of its own: librdkafka's mock
# coordinator can hold a rejoin of the same group for a session timeout;
# the Redis checkpoints keep it from applying anything twice.)
service -X group.id=fraud-detector-fixed

cd "$root"
n=0
while IFS= read -r line; do
  n=$((n + 1))
  echo "README line: $line"
  bash -c "$line" >"$work/out.$n"
  cat "$work/out.$n"
  case $n in
    1) [ "$(grep -c '"rule":"amount_jump"' "$work/out.$n")" = 2 ] || { echo "FAIL: one rule's alerts" >&2; exit 1; } ;;
    2) [ "$(awk -F'\t' 'NF == 5 && $2 == "amount_jump"' "$work/out.$n" | wc -l)" = 2 ] \
         || { echo "FAIL: TSV" >&2; exit 1; } ;;
    3) grep -qE '^ +2 amount_jump$' "$work/out.$n" || { echo "FAIL: count by rule" >&2; exit 1; } ;;
    4) [ ! -s "$work/out.$n" ] || { echo "FAIL: repeats reported where none are" >&2; exit 1; } ;;
    5) wait_count big 1 ;;
  esac
done <"$work/lines"
wait_count a 2 # nothing applied twice by the restarted service

# README's erasure line, verbatim: user1 pays, then is erased.
readme_block readme-erase >"$work/erase"
[ "$(wc -l <"$work/erase")" = 1 ] || { echo "README erasure block not found" >&2; exit 1; }
echo 'user1:250' | kcat -P -b "$BROKER" -t payments -K:
wait_count user1 1
echo "README line: $(cat "$work/erase")"
bash "$work/erase"
for _ in $(seq 100); do [ -z "$(user_count user1)" ] && break; sleep 0.1; done
[ -z "$(user_count user1)" ] || { echo "FAIL: user1 was not erased" >&2; exit 1; }
grep -q 'user user1 erased by the tombstone' "$work/service.log" || { echo "FAIL: erasure not logged" >&2; exit 1; }
kill -TERM $svc
status=0
wait $svc || status=$?
[ "$status" = 0 ] || { echo "FAIL: fraud-detector exited $status" >&2; exit 1; }
echo "README recipes OK"
