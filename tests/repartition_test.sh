#!/usr/bin/env bash
# fraud-repartition on a real Apache Kafka broker (the mock cluster cannot
# add partitions): 60 users pay 10 times on 3 partitions, the topic grows to
# 6, the tool moves the users whose keys now hash elsewhere, and 10 more
# payments each must land on exactly the state the first 10 left. Before
# that, the tool must refuse a partition that is not drained and a
# partitioner the producers do not use, changing nothing.
# Usage: tests/repartition_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
. "$root/tests/lib.sh"
fraud_init repartition
work=$WORK
kafka_dir="$work/kafka"
# The service first, while the broker is up: with the broker gone its
# commit on revoke waits about 45 s for a coordinator.
trap 'fraud_stop_tracked; "$root/tests/kafka/kafka.sh" stop "$kafka_dir" >/dev/null 2>&1 || true; fraud_cleanup' EXIT

start_redis
BROKER=$("$root/tests/kafka/kafka.sh" start "$kafka_dir" payments:3 fraud-alerts:1 payments-dlq:1)
settings=(-X "kafka.bootstrap.servers=$BROKER" -X "redis.url=redis://127.0.0.1:$REDIS_PORT")
service() {
  "$BUILD/fraud-detector" "${settings[@]}" -X http.listen=off >>"$work/service.log" 2>&1 &
  svc=$!
  fraud_track $svc
}
stop_service() {
  kill -TERM $svc
  local status=0
  wait $svc || status=$?
  [ "$status" = 0 ] || { echo "FAIL: fraud-detector exited $status" >&2; tail "$work/service.log" >&2; exit 1; }
}
applied() { # the sum of every partition's checkpoint
  local sum=0 k
  for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern 'fraud:{payments/*}:checkpoint'); do
    sum=$((sum + $(redis-cli -p "$REDIS_PORT" get "$k")))
  done
  echo $sum
}
wait_applied() {
  for _ in $(seq 600); do [ "$(applied)" = "$1" ] && return 0; sleep 0.1; done
  echo "FAIL: $(applied) payments applied, expected $1" >&2; tail "$work/service.log" >&2; exit 1
}
repartition() { "$BUILD/fraud-repartition" "${settings[@]}" "$@"; }
round() { # amount: every user pays it 10 times (kcat's partitioner: consistent_random)
  for _ in $(seq 10); do for u in $(seq 60); do echo "u$u:$1"; done; done \
    | kcat -P -b "$BROKER" -t payments -K:
}

service
round 10
wait_applied 600
stop_service

# Not drained: a payment the service has not applied yet.
echo 'u1:10' | kcat -P -b "$BROKER" -t payments -K:
if repartition --from 3 --partitioner consistent_random >"$work/out" 2>&1; then
  echo "FAIL: repartitioned a partition that was not drained" >&2; exit 1
fi
grep -q "let the service finish" "$work/out" || { cat "$work/out" >&2; exit 1; }
service
wait_applied 601
stop_service

"$root/tests/kafka/kafka.sh" partitions "$BROKER" payments 6
# The producers (kcat) hash with consistent_random, not murmur2_random.
if repartition --from 3 --partitioner murmur2_random >"$work/out" 2>&1; then
  echo "FAIL: repartitioned with the wrong partitioner" >&2; exit 1
fi
grep -q "do not use that partitioner" "$work/out" || { cat "$work/out" >&2; exit 1; }

repartition --from 3 --partitioner consistent_random --dry-run | tee "$work/plan"
moving=$(sed -n 's/.*: \([0-9]*\) user(s) to move.*/\1/p' "$work/plan" | head -n 1)
[ "${moving:-0}" -gt 0 ] || { echo "FAIL: no user to move from 3 to 6 partitions?" >&2; exit 1; }
repartition --from 3 --partitioner consistent_random | tee "$work/moved"
grep -q "moved $moving user(s)" "$work/moved" || { echo "FAIL: did not move $moving" >&2; exit 1; }
# Once more: nothing left to move, every user found where it belongs.
repartition --from 3 --partitioner consistent_random | tee "$work/again"
grep -q ": 0 user(s) to move, $((60 - moving)) stay, $moving moved before" "$work/again" \
  || { echo "FAIL: a second run found work" >&2; exit 1; }

# Each user pays 10 more on the 6 partitions: the totals must go on from the first round's.
service
round 100
wait_applied 1201
stop_service
for u in $(seq 60); do
  keys=$(redis-cli -p "$REDIS_PORT" --scan --pattern "fraud:{payments/*}:user:u$u")
  [ "$(wc -w <<<"$keys")" = 1 ] || { echo "FAIL: u$u has keys: $keys" >&2; exit 1; }
  want_count=20 want_cum=1100
  [ "$u" = 1 ] && want_count=21 want_cum=1110
  got="$(redis-cli -p "$REDIS_PORT" hget "$keys" count) $(redis-cli -p "$REDIS_PORT" hget "$keys" cum)"
  [ "$got" = "$want_count $want_cum" ] || { echo "FAIL: u$u has count/cum $got, expected $want_count $want_cum" >&2; exit 1; }
done
echo "repartition from 3 to 6 partitions: $moving of 60 users moved, every total exact"
