#!/usr/bin/env bash
# make demo: the whole story on loopback, in a temporary directory.
#
#   dev broker (librdkafka's mock cluster) + redis-server + fraud-detector,
#   the seed's seven payments produced with kcat, the alert topic consumed
#   with kcat, each alert printed as one JSON line.
#
# Everything started here is stopped on exit, whatever happens.
# Usage: tests/demo.sh [BUILD_DIR]   (exit 0 when exactly the two seed alerts arrive)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
BUILD="$(cd "${1:-$here/../build}" && pwd)"
. "$here/lib.sh"
fraud_init demo
build=$BUILD work=$WORK

echo "== starting the dev broker (librdkafka mock cluster)"
start_dev_broker payments:3 fraud-alerts:1 payments-dlq:1
echo "   broker at $BROKER"

echo "== starting redis-server"
start_redis
echo "   redis at 127.0.0.1:$REDIS_PORT"

echo "== starting fraud-detector"
HTTP_PORT=$(free_port)
"$build/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" \
  -X "redis.url=redis://127.0.0.1:$REDIS_PORT" -X "http.listen=127.0.0.1:$HTTP_PORT" \
  >"$work/service.log" 2>&1 &
svc=$!
fraud_track $svc

echo "== producing the seed's seven payments with kcat"
cat >"$work/seed-payments.txt" <<'SEED'
user1:{"user_id":"user1","amount":5000}
user2:{"user_id":"user2","amount":2000}
user1:{"user_id":"user1","amount":7000}
user2:{"user_id":"user2","amount":8000}
user1:{"user_id":"user1","amount":110000}
user2:{"user_id":"user2","amount":3000}
user2:{"user_id":"user2","amount":120000}
SEED
kcat -P -b "$BROKER" -t payments -K: -l "$work/seed-payments.txt"

echo "== alerts on fraud-alerts (kcat -C), one JSON line each"
# -c 2: stop after the two alerts; the timeout guards a broken build.
timeout 60 kcat -C -b "$BROKER" -t fraud-alerts -o beginning -c 2 -q \
  >"$work/alerts.jsonl" 2>"$work/kcat.log" || true
cat "$work/alerts.jsonl"

echo "== what the service reports (curl /metrics and /users/user1 on 127.0.0.1:$HTTP_PORT)"
curl -s "http://127.0.0.1:$HTTP_PORT/metrics" >"$work/metrics.txt"
grep -E '^fraud_(events_total\{result="(valid|dead_letter)"\}|alerts_total|cached_users)' \
  "$work/metrics.txt" | sed 's/^/   /'
printf '   '; curl -s "http://127.0.0.1:$HTTP_PORT/users/user1"; echo

echo "== stopping fraud-detector (SIGTERM)"
kill -TERM "$svc"
status=0
wait "$svc" || status=$?
echo "   exit status $status"
echo "== final state in Redis"
for u in user1 user2; do
  key=$(redis-cli -p "$REDIS_PORT" --scan --pattern "fraud:{*}:user:$u")
  printf '   %s = ' "$key"
  redis-cli -p "$REDIS_PORT" hgetall "$key" | paste -sd' '
done

count=$(grep -c '"rule":"amount_jump"' "$work/alerts.jsonl" || true)
# Alerts are counted when raised, so the metric agrees with the topic at once.
counted=$(sed -n 's/^fraud_alerts_total{rule="amount_jump"} //p' "$work/metrics.txt")
if [ "$count" != 2 ] || [ "$counted" != 2 ] || [ "$status" != 0 ]; then
  echo "demo FAILED: $count alerts, fraud_alerts_total says ${counted:-nothing}, service exit $status; service log:" >&2
  tail -n 30 "$work/service.log" >&2
  exit 1
fi
echo "== demo OK: 2 alerts, as the seed expects"
