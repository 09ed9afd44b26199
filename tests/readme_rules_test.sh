#!/usr/bin/env bash
# Runs README's "Rules at run time with kcat" lines, verbatim, against a dev
# broker, a redis-server and fraud-detector following a rules topic, and
# checks the alerts, averages and running totals they lead to.
# Usage: tests/readme_rules_test.sh BUILD_DIR
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
. "$root/tests/lib.sh"
fraud_init readme-rules
work=$WORK

readme_block readme-rules >"$work/lines"
[ "$(grep -c fraud-rules "$work/lines")" -ge 4 ] || { echo "README rules block not found" >&2; exit 1; }

start_dev_broker payments:3 fraud-alerts:1 payments-dlq:1 fraud-rules:1 payment-totals:3 \
  payment-averages:1
export BROKER
start_redis

"$BUILD/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" -X http.listen=off \
  -X "redis.url=redis://127.0.0.1:$REDIS_PORT" -X rules.topic=fraud-rules \
  -X totals.topic=payment-totals -X averages.topic=payment-averages >"$work/service.log" 2>&1 &
fraud_track $!
for _ in $(seq 100); do grep -q "assigned" "$work/service.log" && break; sleep 0.1; done

rule_updates() { grep -c -e "updated from fraud-rules" -e "returned to the config" "$work/service.log" || true; }

cd "$root"
n=0
while IFS= read -r line; do
  n=$((n + 1))
  echo "README line: $line"
  case "$line" in
    *"-t fraud-rules"*)
      run_rule_line "$line" rule_updates || { tail "$work/service.log" >&2; exit 1; } ;;
    *"-t payments"*)
      # A rule applies from the service's next batch: let these payments be
      # applied before the next line changes a rule.
      run_payment_line "$line" || exit 1 ;;
    *"-t fraud-alerts"*)
      retry_until 5 '"rule":' "$work/out.$n" "$line"
      for want in '"rule":"amount_jump","rule_id":"amount_jump","user_id":"user5"' \
                  '"rule":"amount_jump","rule_id":"amount_jump","user_id":"user6"' '"rule":"small_then_large","rule_id":"small_then_large","user_id":"user6"' \
                  '"rule":"cumulative_limit","rule_id":"cumulative_limit","user_id":"user8".*"limit":1000,"cumulative_amount":1000,' \
                  '"rule":"velocity","rule_id":"velocity","user_id":"user9".*"payments_in_window":4,'; do
        [ "$(grep -c -- "$want" "$work/out.$n")" = 1 ] || { echo "FAIL: want one alert matching $want" >&2; cat "$work/out.$n" >&2; exit 1; }
      done
      grep -q '"user_id":"user5".*"diff":-800.*"params":{"threshold":500,"direction":"both"}' "$work/out.$n" \
        || { echo "FAIL: user5's decrease alert" >&2; exit 1; } ;;
    *"-t payment-averages"*)
      retry_until 4 '"average_id"' "$work/out.$n" "$line"
      grep -q '"user_id":"user7","average":17,' "$work/out.$n" || { echo "FAIL: user7's average" >&2; exit 1; }
      grep -q '"user_id":"user8","average":500,' "$work/out.$n" || { echo "FAIL: user8's average" >&2; exit 1; }
      [ "$(grep -c '"user_id":"user9","average":1,' "$work/out.$n")" = 2 ] || { echo "FAIL: user9's averages" >&2; exit 1; } ;;
    *"-t payment-totals"*)
      retry_until 1 '^user7 {"user_id":"user7","schema_version":1,"cumulative_amount":35,"event_count":2}$' "$work/out.$n" "$line"
      for want in 'user5 .*"cumulative_amount":3200,"event_count":2' 'user6 .*"cumulative_amount":600.5,"event_count":2' \
                  'user8 .*"cumulative_amount":1050,"event_count":3' 'user9 .*"cumulative_amount":4,"event_count":4'; do
        grep "^${want%% *} " "$work/out.$n" | tail -n 1 | grep -q "$want" \
          || { echo "FAIL: last total of ${want%% *}" >&2; cat "$work/out.$n" >&2; exit 1; }
      done ;;
    *) echo "unexpected README line: $line" >&2; exit 1 ;;
  esac
  [ -f "$work/out.$n" ] && cat "$work/out.$n"
done <"$work/lines"
grep -q "amount_jump returned to the config" "$work/service.log" || { echo "FAIL: tombstone" >&2; exit 1; }
echo "README rules lines OK"
