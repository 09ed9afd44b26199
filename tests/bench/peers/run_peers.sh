#!/usr/bin/env bash
# make bench-peers: the same job, side by side, on the same real Apache Kafka
# broker (tests/kafka) and the same payments, each contender in its own
# consumer group, clocked the same way: by the broker timestamps
# (LogAppendTime) of its alert records (fraud-bench rate).
#   service   fraud-detector, Redis backend
#   flink     Apache Flink 2.2, DataStream KeyedProcessFunction with ValueState,
#             HashMap state backend, a checkpoint every second, local
#             MiniCluster, parallelism 2 (flink/)
#   kstreams  Kafka Streams 4.1, Processor API, RocksDB store, exactly_once_v2,
#             2 stream threads (kstreams/)
# The job: per-user previous and cumulative amounts, the amount_jump alert
# (amount - previous >= 10000), exact decimals. Every contender must raise the
# same number of alerts as the service, or the run says so.
# Measures, never asserts. Results: BUILD_DIR/bench/results-peers.json and a
# Markdown table on stdout.
# Usage: tests/bench/peers/run_peers.sh BUILD_DIR
#        (EVENTS=1000000 USERS=100000 PARTITIONS=8 REPS=3 PEERS="service flink kstreams")
# Needs java and javac (17+) and mvn; the peers' jars are resolved from Maven
# into $TEST_KAFKA_CACHE (default ~/.cache/fraud-detector) once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
out="$build/bench"
EVENTS=${EVENTS:-1000000}
USERS=${USERS:-100000}
PARTITIONS=${PARTITIONS:-8}
REPS=${REPS:-3}
PEERS=${PEERS:-service flink kstreams}
ALERT_RATIO=${ALERT_RATIO:-0.01}
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1
cache_root="${TEST_KAFKA_CACHE:-$HOME/.cache/fraud-detector}"
mkdir -p "$out"
BUILD=$build
. "$root/tests/lib.sh"
fraud_init bench-peers
work=$WORK
bench="$build/fraud-bench"

for tool in java javac mvn; do
  command -v "$tool" >/dev/null || { echo "bench-peers: $tool not found (a JDK 17+ and Maven)" >&2; exit 1; }
done

# --- the peers' jars and classes ------------------------------------------------
prepare_peer() { # name main-class -> sets PEER_CP
  local name=$1 class=$2 dir libs src
  dir="$cache_root/bench-peer-$name-$(sha256sum "$here/$name/pom.xml" | cut -c1-12)"
  libs="$dir/libs"
  src="$here/$name/src/main/java/bench/$class.java"
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if [ ! -f "$libs/.complete" ]; then
    echo "bench-peers: resolving the $name peer's jars from Maven into $libs" >&2
    rm -rf "$libs.tmp"
    mvn -B -q -f "$here/$name/pom.xml" "$DEPENDENCY_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$libs.tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 \
      || { echo "bench-peers: mvn could not resolve the $name peer's jars" >&2; exit 1; }
    rm -rf "$libs"; mv "$libs.tmp" "$libs"; touch "$libs/.complete"
  fi
  flock -u 9
  rm -rf "$work/classes-$name"; mkdir -p "$work/classes-$name"
  javac -nowarn -d "$work/classes-$name" -cp "$libs/*" "$src"
  PEER_CP="$work/classes-$name:$libs/*"
}
java_opts=(-Xms512m -Xmx2g -XX:+UseG1GC -Djava.awt.headless=true
           -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
case " $PEERS " in *" flink "*) prepare_peer flink FlinkPeer; FLINK_CP=$PEER_CP ;; esac
case " $PEERS " in *" kstreams "*) prepare_peer kstreams StreamsPeer; STREAMS_CP=$PEER_CP ;; esac

# --- servers ----------------------------------------------------------------------
topics=("payments:$PARTITIONS" payments-dlq:1)
for rep in $(seq "$REPS"); do
  for peer in $PEERS; do topics+=("alerts-$peer-$rep:$PARTITIONS:append"); done
done
mkdir -p "$work/kafka"
B=$("$root/tests/kafka/kafka.sh" start "$work/kafka" "${topics[@]}")
fraud_track "$(cat "$work/kafka/broker.pid")"
start_redis
RP=$REDIS_PORT

echo "== broker: Apache Kafka (tests/kafka, one KRaft node), $PARTITIONS partitions"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== $(java -version 2>&1 | head -n 1)"
echo "== producing $EVENTS payments over $USERS users (alert ratio $ALERT_RATIO)"
"$bench" produce -b "$B" -t payments --events "$EVENTS" --users "$USERS" \
  --alert-ratio "$ALERT_RATIO" --seed 11

metric() { # port series
  local v
  v=$(curl -s "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s {print $2; exit}')
  echo "${v:-0}"
}

# --- the contenders -----------------------------------------------------------------
# Each leaves its alert count in ALERTS and its rate in RATE.
run_service() { # rep
  local port pid
  redis-cli -p "$RP" flushall >/dev/null
  port=$(free_port)
  "$build/fraud-detector" -X "kafka.bootstrap.servers=$B" -X "redis.url=redis://127.0.0.1:$RP" \
    -X "http.listen=127.0.0.1:$port" -X log.level=warn -X "group.id=peer-service-$1-$RANDOM" \
    -X input.topic=payments -X "alert.topic=alerts-service-$1" >"$work/service-$1.log" 2>&1 &
  pid=$!
  fraud_track "$pid"
  local deadline=$(( $(date +%s) + 600 ))
  while [ "$(metric "$port" 'fraud_events_total{result="valid"}')" -lt "$EVENTS" ]; do
    [ "$(date +%s)" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null \
      || { echo "bench-peers: the service did not finish" >&2; tail -5 "$work/service-$1.log" >&2; return 1; }
    sleep 0.2
  done
  sleep 1 # its last alerts' acknowledgements
  ALERTS=$(metric "$port" 'fraud_alerts_total{rule="amount_jump"}')
  RATE=$("$bench" rate -b "$B" -t "alerts-service-$1" --events "$EVENTS" --alerts "$ALERTS" \
         -g "rate-service-$1")
  kill -TERM "$pid"; wait "$pid" || true
}

run_flink() { # rep
  local pid
  java "${java_opts[@]}" -cp "$FLINK_CP" bench.FlinkPeer "$B" payments "alerts-flink-$1" \
    "peer-flink-$1-$RANDOM" 2 >"$work/flink-$1.log" 2>&1 &
  pid=$!
  fraud_track "$pid"
  RATE=$("$bench" rate -b "$B" -t "alerts-flink-$1" --events "$EVENTS" --alerts "$EXPECTED" \
         -g "rate-flink-$1") || { tail -20 "$work/flink-$1.log" >&2; return 1; }
  wait "$pid" || { echo "bench-peers: the Flink job failed" >&2; tail -20 "$work/flink-$1.log" >&2; }
  ALERTS=$(sed -E 's/.*"alerts": ([0-9]+).*/\1/' <<<"$RATE")
}

run_kstreams() { # rep
  local pid
  java "${java_opts[@]}" -cp "$STREAMS_CP" bench.StreamsPeer "$B" payments "alerts-kstreams-$1" \
    "peer-kstreams-$1-$RANDOM" 2 "$work/kstreams-state-$1" >"$work/kstreams-$1.log" 2>&1 &
  pid=$!
  fraud_track "$pid"
  RATE=$("$bench" rate -b "$B" -t "alerts-kstreams-$1" --events "$EVENTS" --alerts "$EXPECTED" \
         -g "rate-kstreams-$1") || { tail -20 "$work/kstreams-$1.log" >&2; return 1; }
  kill -TERM "$pid"; wait "$pid" || true
  ALERTS=$(sed -E 's/.*"alerts": ([0-9]+).*/\1/' <<<"$RATE")
}

declare -A rates
EXPECTED=0
for rep in $(seq "$REPS"); do
  for peer in $PEERS; do
    "run_$peer" "$rep"
    [ "$peer" = service ] && EXPECTED=$ALERTS
    eps=$(sed -E 's/.*"events_per_second": ([0-9]+).*/\1/' <<<"$RATE")
    rates[$peer]="${rates[$peer]:-} $eps"
    note=""
    [ "$EXPECTED" -gt 0 ] && [ "$ALERTS" != "$EXPECTED" ] && note=" (MISMATCH: the service raised $EXPECTED)"
    echo "   rep $rep $peer: $eps events/s, $ALERTS alerts$note"
  done
done

# --- results ---------------------------------------------------------------------------
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
service_med=$(median ${rates[service]:-0})
{
  echo "{"
  echo "  \"machine\": {\"cores\": $(nproc), \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\"},"
  echo "  \"broker\": \"Apache Kafka (tests/kafka)\", \"events\": $EVENTS, \"users\": $USERS,"
  echo "  \"partitions\": $PARTITIONS, \"repetitions\": $REPS, \"alerts\": $EXPECTED,"
  echo "  \"events_per_second\": {"
  first=1
  for peer in $PEERS; do
    [ $first = 1 ] || echo ","
    first=0
    printf '    "%s": {"median": %s, "runs": [%s]}' "$peer" "$(median ${rates[$peer]})" \
      "$(tr ' ' '\n' <<<"${rates[$peer]}" | grep . | paste -sd, -)"
  done
  echo
  echo "  }"
  echo "}"
} >"$out/results-peers.json"

echo
echo "| contender | events/s (median of $REPS) | service / contender |"
echo "|---|---:|---:|"
for peer in $PEERS; do
  med=$(median ${rates[$peer]})
  echo "| $peer | $med | $(awk -v a="$service_med" -v b="$med" 'BEGIN{printf "%.2f", (b > 0 ? a / b : 0)}') |"
done
echo
echo "results: $out/results-peers.json"
