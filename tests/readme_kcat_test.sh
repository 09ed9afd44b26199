#!/usr/bin/env bash
# Runs the kcat lines of README's "Produce with kcat" block, verbatim, against
# a dev broker, a redis-server and fraud-detector, and checks what they show:
# the seed's two alerts and a dead letter with its reason.
# Usage: tests/readme_kcat_test.sh BUILD_DIR
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
. "$root/tests/lib.sh"
fraud_init readme
build=$BUILD work=$WORK

readme_block readme-kcat >"$work/lines"
[ "$(grep -c kcat "$work/lines")" -ge 5 ] || { echo "README kcat block not found" >&2; exit 1; }

start_dev_broker payments:3 fraud-alerts:1 payments-dlq:1
export BROKER
start_redis
port=$REDIS_PORT

"$build/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" \
  -X "redis.url=redis://127.0.0.1:$port" >"$work/service.log" 2>&1 &
svc=$!
fraud_track $svc

cd "$root"
n=0
while IFS= read -r line; do
  n=$((n + 1))
  case "$line" in
    *"kcat -P"*)
      echo "README line: $line"
      bash -c "$line" ;;
    *"kcat -C"*)
      echo "README line: $line"
      # Consume lines stop at the end of the topic (-e); repeat until the
      # service has caught up, with a deadline.
      if [[ "$line" == *fraud-alerts* ]]; then want='"rule":"amount_jump"'; need=2
      else want='fraud.dlq.reason=non_numeric_amount'; need=1; fi
      retry_until "$need" "$want" "$work/out.$n" "$line" || { tail -n 20 "$work/service.log" >&2; exit 1; }
      cat "$work/out.$n" ;;
    *) echo "unexpected README line: $line" >&2; exit 1 ;;
  esac
done <"$work/lines"
key=$(redis-cli -p "$port" --scan --pattern 'fraud:{*}:user:user3')
[ "$(redis-cli -p "$port" hget "$key" cum)" = 5000 ] || { echo "FAIL: user3 total" >&2; exit 1; }
kill -TERM "$svc"
status=0
wait "$svc" || status=$?
[ "$status" = 0 ] || { echo "FAIL: fraud-detector exited $status" >&2; exit 1; }
echo "README kcat lines OK"
