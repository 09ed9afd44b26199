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
build="$(cd "${1:-$here/../build}" && pwd)"
work="$(mktemp -d /tmp/fraud-demo-XXXXXX)"
pids=()

cleanup() {
  # Newest first: the service must leave the group while the broker is up.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  # A port nobody answers on; bash's /dev/tcp tells us when one is taken.
  local port
  for _ in $(seq 50); do
    port=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  echo "no free port found" >&2; return 1
}

echo "== starting the dev broker (librdkafka mock cluster)"
"$build/fraud-mock-broker" -t payments:3 -t fraud-alerts:1 -t payments-dlq:1 \
  --bootstrap-file "$work/bootstrap" >"$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
[ -s "$work/bootstrap" ] || { echo "broker did not start" >&2; cat "$work/broker.log" >&2; exit 1; }
BROKER=$(cat "$work/bootstrap")
echo "   broker at $BROKER"

echo "== starting redis-server"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$work" --save '' \
  --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1
done
echo "   redis at 127.0.0.1:$REDIS_PORT"

echo "== starting fraud-detector"
HTTP_PORT=$(free_port)
"$build/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" \
  -X "redis.url=redis://127.0.0.1:$REDIS_PORT" -X "http.listen=127.0.0.1:$HTTP_PORT" \
  >"$work/service.log" 2>&1 &
svc=$!
pids+=($svc)

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
curl -s "http://127.0.0.1:$HTTP_PORT/metrics" \
  | grep -E '^fraud_(events_total\{result="(valid|dead_letter)"\}|alerts_total|cached_users)' \
  | sed 's/^/   /'
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
if [ "$count" != 2 ] || [ "$status" != 0 ]; then
  echo "demo FAILED: $count alerts, service exit $status; service log:" >&2
  tail -n 30 "$work/service.log" >&2
  exit 1
fi
echo "== demo OK: 2 alerts, as the seed expects"
