#!/usr/bin/env bash
# What a running fraud-detector writes, read back with kcat, against the
# schemas under schemas/: alerts of every rule, averages, running totals, a
# late payment and dead letters. The same records carry the headers README
# promises: CloudEvents (output.cloudevents=true) and the W3C trace context
# of the payment that caused them.
# Usage: tests/schema/schema_records_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
. "$root/tests/lib.sh"
fraud_init schema-records
work=$WORK
py=/usr/bin/python3

start_dev_broker payments:3 fraud-alerts:1 payments-dlq:1 payment-averages:1 payment-totals:1 \
  payments-late:1 fraud-rules:1
start_redis
group=fraud-schema
"$BUILD/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" -X http.listen=off \
  -X "redis.url=redis://127.0.0.1:$REDIS_PORT" -X group.id=$group \
  -X averages.topic=payment-averages -X totals.topic=payment-totals -X late.topic=payments-late \
  -X rules.topic=fraud-rules -X output.cloudevents=true -X time.max.out.of.orderness.ms=1000 \
  -X rule.cumulative_limit.enabled=true -X rule.cumulative_limit.limit=1000 \
  -X rule.small_then_large.enabled=true -X rule.velocity.enabled=true \
  -X rule.velocity.max.count=3 -X rule.count_average.enabled=true \
  -X rule.sum_1m.type=aggregate -X rule.sum_1m.limit=20000 -X rule.sum_1m.cooldown.ms=60000 \
  >"$work/service.log" 2>&1 &
fraud_track $!
for _ in $(seq 100); do grep -q "assigned" "$work/service.log" && break; sleep 0.1; done

traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
tracestate=congo=t61rcWkgMzE
t=$(( $(date +%s) * 1000 ))
# u1, traced: small then large, a jump, the limit crossed and a sum above
# 20000 within the minute (aggregate), a fourth payment within it
# (velocity), two averages, then one 8 s late.
cat >"$work/u1" <<JSON
u1:{"user_id":"u1","amount":"0.50","event_id":"e1","timestamp":$t}
u1:{"user_id":"u1","amount":600,"event_id":"e2","timestamp":$((t + 1000))}
u1:{"user_id":"u1","amount":20000,"event_id":"e3","timestamp":$((t + 2000))}
u1:{"user_id":"u1","amount":1,"timestamp":$((t + 3000))}
u1:{"user_id":"u1","amount":2,"event_id":7,"timestamp":$((t - 5000))}
u2:12abc
JSON
kcat -P -b "$BROKER" -t payments -K: -H "traceparent=$traceparent" -H "tracestate=$tracestate" \
  -l "$work/u1"
echo 'u3:5' | kcat -P -b "$BROKER" -t payments -K:
echo 'velocity:{"max.count": 0}' | kcat -P -b "$BROKER" -t fraud-rules -K:

count() { kcat -C -b "$BROKER" -t "$1" -o beginning -e -q 2>/dev/null | wc -l; }
for _ in $(seq 150); do
  [ "$(count fraud-alerts)" -ge 4 ] && [ "$(count payment-averages)" -ge 2 ] &&
    [ "$(count payments-late)" -ge 1 ] && [ "$(count payments-dlq)" -ge 2 ] &&
    [ "$(count payment-totals)" -ge 2 ] && break
  sleep 0.2
done
for topic in fraud-alerts payment-averages payment-totals payments-late payments-dlq; do
  kcat -C -b "$BROKER" -t "$topic" -o beginning -e -q -J >"$work/$topic.json"
  echo "$topic: $(wc -l <"$work/$topic.json") record(s)"
done

# Each kcat -J envelope as a validator line; the headers checked here.
"$py" - "$work" "$traceparent" "$tracestate" "$group" >"$work/records" <<'PY'
import json, re, sys
work, traceparent, tracestate, group = sys.argv[1:5]
schemas = {"fraud-alerts": "alert", "payment-averages": "average", "payment-totals": "total",
           "payments-late": "late-payment", "payments-dlq": "dead-letter-headers"}
ce_types = {"payment-averages": "fraud.average", "payment-totals": "fraud.total",
            "payments-late": "fraud.late"}
def fail(msg):
    sys.exit("FAIL: " + msg)
for topic, schema in schemas.items():
    for line in open(f"{work}/{topic}.json", encoding="utf-8"):
        env = json.loads(line)
        h = env.get("headers") or []
        headers = dict(zip(h[0::2], h[1::2]))
        if schema == "dead-letter-headers":
            print(f"{schema}\t{env['key']}\t{json.dumps(headers)}")
            traced = env["key"] == "u2"
        else:
            print(f"{schema}\t{env['key']}\t{env['payload']}")
            value = json.loads(env["payload"])
            record_id = value.get("alert_id") or value.get("average_id") or value.get("late_id")
            want_type = (f"fraud.alert.{value['rule']}" if schema == "alert"
                         else ce_types[topic])
            if headers.get("ce_specversion") != "1.0" or headers.get("ce_type") != want_type \
                    or headers.get("ce_source") != f"/fraud-detector/{group}" \
                    or headers.get("content-type") != "application/json":
                fail(f"{topic}: CloudEvents headers {headers}")
            if schema != "total":
                if headers.get("ce_id") != record_id:
                    fail(f"{topic}: ce_id {headers.get('ce_id')} is not {record_id}")
                t = value["detected_at"]
                want_time = (__import__("datetime").datetime.utcfromtimestamp(t // 1000)
                             .strftime("%Y-%m-%dT%H:%M:%S") + f".{t % 1000:03d}Z")
                if headers.get("ce_time") != want_time:
                    fail(f"{topic}: ce_time {headers.get('ce_time')}, detected_at {t}")
            elif not re.fullmatch(r"payments/\d+/\d+/totals", headers.get("ce_id", "")):
                fail(f"{topic}: ce_id {headers.get('ce_id')}")
            traced = env["key"] == "u1"
        if traced and (headers.get("traceparent") != traceparent
                       or headers.get("tracestate") != tracestate):
            fail(f"{topic}: {env['key']}'s record lost its trace context: {headers}")
        if not traced and ("traceparent" in headers or "tracestate" in headers):
            fail(f"{topic}: {env['key']}'s record has a trace context it never had: {headers}")
PY
"$py" "$root/tests/schema/validate_records.py" "$root/schemas" \
  --require alert,average,late-payment,total,dead-letter-headers --cover alert <"$work/records"
grep -q $'^alert\tu1\t.*"rule":"velocity"' "$work/records" || { echo "FAIL: no velocity alert" >&2; exit 1; }
echo "service records OK"
