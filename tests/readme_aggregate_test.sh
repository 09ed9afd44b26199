#!/usr/bin/env bash
# Runs README's aggregate-rule lines, verbatim, against a dev broker, a
# redis-server and fraud-detector following a rules topic: two aggregate
# instances created, one paused, one deleted, GET /rules after each step,
# and the alerts they lead to. KAFKA=real runs it on a real Apache Kafka
# broker (tests/kafka) instead of the dev broker.
# Usage: [KAFKA=real] tests/readme_aggregate_test.sh BUILD_DIR
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
. "$root/tests/lib.sh"
fraud_init readme-aggregate
work=$WORK

readme_block readme-aggregate >"$work/lines"
[ "$(grep -c fraud-rules "$work/lines")" -ge 4 ] || { echo "README aggregate block not found" >&2; exit 1; }

topics=(payments:3 fraud-alerts:1 payments-dlq:1 fraud-rules:1)
if [ "${KAFKA:-dev}" = real ]; then
  kafka_dir="$work/kafka"
  # The service first, while the broker is up: with the broker gone its
  # commit on revoke waits about 45 s for a coordinator.
  trap 'fraud_stop_tracked; "$root/tests/kafka/kafka.sh" stop "$kafka_dir" >/dev/null 2>&1 || true; fraud_cleanup' EXIT
  BROKER=$("$root/tests/kafka/kafka.sh" start "$kafka_dir" "${topics[@]}")
else
  start_dev_broker "${topics[@]}"
fi
export BROKER
start_redis
HTTP="127.0.0.1:$(free_port)"
export HTTP

"$BUILD/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" -X "http.listen=$HTTP" \
  -X "redis.url=redis://127.0.0.1:$REDIS_PORT" -X rules.topic=fraud-rules >"$work/service.log" 2>&1 &
fraud_track $!
for _ in $(seq 300); do grep -q "assigned" "$work/service.log" && break; sleep 0.1; done

rule_changes() { grep -c -e " created from fraud-rules" -e " updated from fraud-rules" -e " deleted from fraud-rules" "$work/service.log" || true; }

# What GET /rules must say after each step: the instances and their states.
rules_step=0
check_rules() { # file
  rules_step=$((rules_step + 1))
  python3 - "$1" "$rules_step" <<'PY'
import json, sys
rules = {r["id"]: r for r in json.load(open(sys.argv[1]))["rules"]}
step = int(sys.argv[2])
assert rules["amount_jump"]["state"] == "active" and rules["amount_jump"]["origin"] == "default", rules["amount_jump"]
assert rules["velocity"]["state"] == "disabled", rules["velocity"]
want = {1: {"sum_10m": "active", "sum_24h": "active"},
        2: {"sum_10m": "paused", "sum_24h": "active"},
        3: {"sum_10m": "paused"},
        4: {"sum_10m": "paused"},
        5: {"sum_10m": "active", "burst": "active"}}[step]
got = {k: v["state"] for k, v in rules.items() if k not in
       ("amount_jump", "cumulative_limit", "small_then_large", "count_average", "velocity")}
assert got == want, (step, got, want)
ten = rules["sum_10m"]
assert ten["params"] == {"function": "sum", "operator": ">", "limit": 7000 if step >= 4 else 5000,
                         "window_ms": 600000, "max_events": 1000, "cooldown_ms": 600000}, ten
if "burst" in rules:
    assert rules["burst"]["type"] == "velocity", rules["burst"]
    assert rules["burst"]["params"] == {"max_count": 1, "window_ms": 60000}, rules["burst"]
assert ten["origin"].startswith("topic fraud-rules [0] offset "), ten
if "sum_24h" in rules:
    assert rules["sum_24h"]["params"]["window_ms"] == 86400000, rules["sum_24h"]
print("GET /rules step %d: %s" % (step, got))
PY
}

cd "$root"
n=0
while IFS= read -r line; do
  n=$((n + 1))
  echo "README line: $line"
  case "$line" in
    *"-t fraud-rules"*)
      run_rule_line "$line" rule_changes || { tail "$work/service.log" >&2; exit 1; } ;;
    *"-t payments"*)
      run_payment_line "$line" || exit 1 ;;
    *"/rules"*)
      bash -c "$line" >"$work/out.$n"
      check_rules "$work/out.$n" || { echo "FAIL: GET /rules" >&2; cat "$work/out.$n" >&2; exit 1; } ;;
    *"-t fraud-alerts"*)
      retry_until 2 '"rule":"aggregate"' "$work/out.$n" "$line"
      grep -q '"rule_id":"sum_10m","user_id":"user20","amount":2500,.*"value":5500,"payments_in_window":2,' "$work/out.$n" \
        || { echo "FAIL: sum_10m's alert" >&2; cat "$work/out.$n" >&2; exit 1; }
      grep -q '"rule_id":"sum_24h","user_id":"user20","amount":16000,.*"value":21500,"payments_in_window":3,' "$work/out.$n" \
        || { echo "FAIL: sum_24h's alert" >&2; cat "$work/out.$n" >&2; exit 1; }
      # sum_10m's cooldown held back its second crossing; paused, it said nothing of user21
      [ "$(wc -l <"$work/out.$n")" = 2 ] || { echo "FAIL: want exactly two aggregate alerts" >&2; cat "$work/out.$n" >&2; exit 1; } ;;
    *) echo "unexpected README line: $line" >&2; exit 1 ;;
  esac
  [ -f "$work/out.$n" ] && cat "$work/out.$n"
done <"$work/lines"
[ "$rules_step" = 3 ] || { echo "FAIL: GET /rules ran $rules_step times" >&2; exit 1; }

# Beyond README's lines: update the paused sum_10m, then resume it, and
# create a named instance of a fixed type, with GET /rules after each.
send_rule() { # key:json
  run_rule_line "echo '$1' | kcat -P -b \"\$BROKER\" -t fraud-rules -K:" rule_changes || exit 1
}
get_rules() { curl -s "http://$HTTP/rules" >"$work/rules.$1"; check_rules "$work/rules.$1"; }
send_rule 'sum_10m:{"type": "aggregate", "limit": "7000", "window.ms": 600000, "cooldown.ms": 600000, "state": "paused"}'
get_rules update
send_rule 'sum_10m:{"type": "aggregate", "limit": "7000", "window.ms": 600000, "cooldown.ms": 600000}'
send_rule 'burst:{"type": "velocity", "max.count": 1, "window.ms": 60000}'
get_rules resume
# resumed, sum_10m sees user21's 6000 kept while it was paused: 6000 + 1500 > 7000
printf 'user21:1500\nuser22:1\nuser22:1\n' | kcat -P -b "$BROKER" -t payments -K:
wait_user_count user22 2 || { echo "FAIL: user22 not applied" >&2; exit 1; }
retry_until 1 '"rule_id":"burst","user_id":"user22"' "$work/burst" \
  kcat -C -b "$BROKER" -t fraud-alerts -o beginning -e -q
grep -q '"rule":"velocity","rule_id":"burst","user_id":"user22",.*"payments_in_window":2,.*"params":{"max_count":1,"window_ms":60000}' "$work/burst" \
  || { echo "FAIL: burst's alert" >&2; cat "$work/burst" >&2; exit 1; }
grep -q '"rule":"aggregate","rule_id":"sum_10m","user_id":"user21","amount":1500,.*"value":7500,' "$work/burst" \
  || { echo "FAIL: resumed sum_10m's alert" >&2; grep user21 "$work/burst" >&2; exit 1; }
grep -q "sum_24h deleted from fraud-rules" "$work/service.log" || { echo "FAIL: deletion not logged" >&2; exit 1; }
key=$(redis-cli -p "$REDIS_PORT" --scan --pattern "fraud:{*}:user:user21")
inst=$(redis-cli -p "$REDIS_PORT" hget "$key" inst)
case "$inst" in sum_10m#*#aggregate#*:6000,*:1500*) ;; *) echo "FAIL: user21's inst field: $inst" >&2; exit 1 ;; esac
curl -s "http://$HTTP/metrics" >"$work/metrics"
grep -q '^fraud_rules_active{type="aggregate"} 1$' "$work/metrics" &&
  grep -q '^fraud_rules_active{type="velocity"} 1$' "$work/metrics" \
  || { echo "FAIL: fraud_rules_active" >&2; grep fraud_rules "$work/metrics" >&2; exit 1; }
echo "README aggregate lines OK"
