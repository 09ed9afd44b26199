#!/usr/bin/env bash
# A real Prometheus (Debian's package) scrapes a running fraud-detector with
# the alert rules loaded; every PromQL expression of the Grafana dashboard
# (docker/grafana/fraud-detector.json) must return data through Prometheus's
# HTTP API, and every alert rule must load and evaluate. So neither the
# dashboard nor the rules can drift from the metric names.
# Usage: tests/monitoring_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
. "$root/tests/lib.sh"
fraud_init monitoring
work=$WORK
command -v prometheus >/dev/null || { echo "prometheus not found (make test installs it)" >&2; exit 1; }

start_dev_broker payments:3 fraud-alerts:1 payments-dlq:1
start_redis
svc_port=$(free_port)
"$BUILD/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" -X "redis.url=redis://127.0.0.1:$REDIS_PORT" \
  -X "http.listen=127.0.0.1:$svc_port" -X kafka.consumer.statistics.interval.ms=1000 \
  >"$work/service.log" 2>&1 &
fraud_track $!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$svc_port/healthz" >/dev/null && break; sleep 0.1; done
# Valid payments, one alert, one dead letter: every series has moved.
printf 'm1:5000\nm1:20000\nm2:{oops\nm2:12\n' | kcat -P -b "$BROKER" -t payments -K: 2>/dev/null

prom_port=$(free_port)
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $root/docker/prometheus/alerts.yml
scrape_configs:
  - job_name: fraud-detector
    static_configs:
      - targets: ["127.0.0.1:$svc_port"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
fraud_track $!
api="http://127.0.0.1:$prom_port/api/v1"
query() { curl -sf --get --data-urlencode "query=$1" "$api/query"; }
for _ in $(seq 300); do
  query 'up{job="fraud-detector"} == 1' 2>/dev/null | grep -q '"value"' && break
  sleep 0.1
done
query 'up{job="fraud-detector"} == 1' | grep -q '"value"' \
  || { echo "FAIL: Prometheus never scraped the service" >&2; tail -5 "$work/prometheus.log" >&2; exit 1; }
# rate() over [1m] needs two samples, and the lag its first statistics.
for _ in $(seq 100); do
  query 'fraud_consumer_lag' | grep -q '"value"' && [ "$(query 'count(rate(fraud_events_total[1m]))' | grep -c '"value"')" -ge 1 ] && break
  sleep 0.2
done
sleep 3

python3 - "$root/docker/grafana/fraud-detector.json" "$api" <<'PY'
import json, sys, urllib.parse, urllib.request
dashboard, api = sys.argv[1], sys.argv[2]
panels = [p for p in json.load(open(dashboard))["panels"] if p.get("type") != "row"]
failed = 0
for p in panels:
    for t in p["targets"]:
        url = api + "/query?" + urllib.parse.urlencode({"query": t["expr"]})
        answer = json.load(urllib.request.urlopen(url))
        if answer["status"] != "success" or not answer["data"]["result"]:
            print("FAIL: panel %r: %s returned no data" % (p["title"], t["expr"]), file=sys.stderr)
            failed += 1
if not failed:
    print("%d panels, every expression returned data" % len(panels))
rules = json.load(urllib.request.urlopen(api + "/rules"))["data"]["groups"]
loaded = [r for g in rules for r in g["rules"]]
bad = [r["name"] for r in loaded if r.get("health") != "ok"]
if len(loaded) < 7 or bad:
    print("FAIL: alert rules loaded %d, unhealthy %s" % (len(loaded), bad), file=sys.stderr)
    failed += 1
else:
    print("%d alert rules loaded and evaluating" % len(loaded))
sys.exit(1 if failed else 0)
PY
