#!/usr/bin/env bash
# make bench: measures, never asserts. Starts its own dev broker (librdkafka's
# mock cluster, partitions enough for the data) and redis-server on loopback,
# then measures, 3 repetitions each where it says so (median and min-max):
#   ceiling      a bare consumer with the service's consumer settings
#   redis/memory the service, first fetched payment to all state in Redis,
#                and its CPU time per payment (user + system, whole run);
#                the redis backend again with batch.overlap=false, and with
#                output.guarantee=exactly_once (Kafka transactions)
#   latency      payment produce -> alert record's timestamp, as a curve over
#                offered load (1k, 10k, 50% and 80% of the capacity), with the
#                service pinned to one core and the broker, Redis and load
#                generator to the other (taskset) when there are 2 cores
#   scaling      1, 2 and 3 instances in one group, and 1 instance on a
#                Redis Cluster of 3 masters; throughput at 10^3..10^6 users
#   failover     SIGKILL of one of 2 instances under live load -> the first
#                alert from a partition it owned, without and with static
#                membership (tests/bench/failover.sh; about 2 x 50 s)
#   clocks       small_then_large and velocity on, in event time and in
#                processing time, interleaved; and the default rule set with
#                two aggregate instances beside it (sum over 10 minutes > 5000,
#                count over a minute >= 20), interleaved with those
#   memory       service peak RSS; cache bytes per user at 1e4..1e6 users
# Results: BUILD_DIR/bench/results.json, a Markdown table on stdout, and
# BUILD_DIR/bench/throughput.png + latency.png when gnuplot is installed.
# Usage: tests/bench/run_bench.sh BUILD_DIR   (EVENTS=200000 USERS=10000;
#        BENCH_KAFKA=real for a real Apache Kafka broker instead of the mock)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
out="$build/bench"
EVENTS=${EVENTS:-200000}
# Extra service flags for every run (SERVICE_FLAGS) or the latency run only
# (LATENCY_FLAGS), e.g. -X kafka.consumer.fetch.wait.max.ms=10
SERVICE_FLAGS=${SERVICE_FLAGS:-}
# librdkafka's mock cluster answers an empty fetch only after the consumer's
# fetch.wait.max.ms (500 ms), even when data arrives meanwhile; a real broker
# answers as soon as there is data. So on the mock the latency runs shorten
# the wait, or they would measure the test double: without this, 1,000
# events/s read p50 261 ms on the mock (README, Performance).
if [ "${BENCH_KAFKA:-mock}" = real ]; then
  LATENCY_FLAGS=${LATENCY_FLAGS:-}
else
  LATENCY_FLAGS=${LATENCY_FLAGS--X kafka.consumer.fetch.wait.max.ms=5}
fi
USERS=${USERS:-10000}
REPS=${REPS:-3}
ALERT_RATIO=${ALERT_RATIO:-0.01}
mkdir -p "$out"
BUILD=$build
. "$root/tests/lib.sh"
fraud_init bench
work=$WORK
bench="$build/fraud-bench"
now() { date +%s.%N; }
# --- servers -----------------------------------------------------------------
LATENCY_SECONDS=${LATENCY_SECONDS:-10}
BENCH_TOPICS=(payments:12 fraud-alerts:6 payments-dlq:1 users-1000:12 users-100000:12
              users-1000000:12)
# On the real broker the latency runs' payments carry the broker's append
# time (LogAppendTime), so fraud-bench latency also reports the latency from
# Kafka having the payment to the alert: the service's own share. The mock
# cluster has no such setting.
append=""; [ "${BENCH_KAFKA:-mock}" = real ] && append=":append"
for i in 1 2 3 4; do BENCH_TOPICS+=("lat-payments-$i:6$append" "lat-alerts-$i:6"); done
for i in 1 2; do BENCH_TOPICS+=("failover-payments-$i:6" "failover-alerts-$i:6"); done
if [ "${BENCH_KAFKA:-mock}" = real ]; then
  # A real Apache Kafka broker (tests/kafka/kafka.sh; needs java and mvn).
  mkdir -p "$work/kafka"
  BROKER=$("$root/tests/kafka/kafka.sh" start "$work/kafka" "${BENCH_TOPICS[@]}")
  BROKER_PID=$(cat "$work/kafka/broker.pid")
  fraud_track "$BROKER_PID"
  broker_kind="Apache Kafka (tests/kafka, one KRaft node)"
else
  start_dev_broker "${BENCH_TOPICS[@]}"
  broker_kind="librdkafka mock cluster (fraud-mock-broker)"
fi
B=$BROKER
start_redis
RP=$REDIS_PORT
redis() { redis-cli -p "$RP" "$@"; }

echo "== broker: $broker_kind"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB"
echo "== producing $EVENTS payments over $USERS users (alert ratio $ALERT_RATIO)"
"$bench" produce -b "$B" -t payments --events "$EVENTS" --users "$USERS" \
  --alert-ratio "$ALERT_RATIO" | tee "$work/produce.json"

# --- helpers -----------------------------------------------------------------
metric() { # port series -> value, 0 while the service is not answering yet
  local v
  v=$(curl -s "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s {print $2; exit}')
  echo "${v:-0}"
}
partitions_of() { # topic -> its partition count in BENCH_TOPICS
  local t
  for t in "${BENCH_TOPICS[@]}"; do
    t=${t%:append}
    [ "${t%:*}" = "$1" ] && { echo "${t##*:}"; return; }
  done
  echo 0
}
# Each partition's checkpoint by its key (-c follows a cluster's redirects).
# Not a SCAN for the pattern: over 10^6 users' keys that took about a second,
# inside the measured time.
checkpoint_sum() { # topic
  local port=${CHECKPOINT_PORTS:-$RP} parts p
  parts=$(partitions_of "$1")
  for ((p = 0; p < parts; p++)); do echo "GET fraud:{$1/$p}:checkpoint"; done |
    redis-cli -c -p "${port%% *}" | awk '{s += $1} END {print s + 0}'
}
# Pinning for the latency curve: the service on core 0, the rest on core 1.
SERVICE_CPUS=""
can_pin() { command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; }
pin_servers() { # cpu-list: every thread of the broker and Redis
  can_pin || return 0
  taskset -apc "$1" "$BROKER_PID" >/dev/null
  taskset -apc "$1" "$REDIS_PID" >/dev/null
}
cpu_seconds() { # pid -> user + system CPU seconds so far
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f\n", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null \
    || echo 0
}
# Sets SERVICE_PID (not echoed: a $(...) subshell would hide it from cleanup).
start_service() { # name port extra-args..., returns once /healthz answers
  local name=$1 port=$2 pid pin=(); shift 2
  [ -n "$SERVICE_CPUS" ] && pin=(taskset -c "$SERVICE_CPUS")
  "${pin[@]}" "$build/fraud-detector" -X "kafka.bootstrap.servers=$B" -X "redis.url=redis://127.0.0.1:$RP" \
    -X "http.listen=127.0.0.1:$port" -X log.level=warn $SERVICE_FLAGS "$@" >"$work/$name.log" 2>&1 &
  pid=$!
  fraud_track "$pid"
  SERVICE_PID=$pid
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: fraud-detector ($name) did not come up:" >&2
  tail -5 "$work/$name.log" >&2
  return 1
}
stop_service() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
peak_rss_kb() { awk '/VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Throughput of instances (their HTTP ports) over a topic: from the first
# consumed payment to all N applied (redis: sum of checkpoints = N).
measure() { # backend topic n ports...
  local backend=$1 topic=$2 n=$3; shift 3
  local first="" end="" count p deadline
  deadline=$(( $(date +%s) + 300 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    count=0
    for p in "$@"; do count=$(( count + $(metric "$p" 'fraud_events_total{result="valid"}') )); done
    if [ -z "$first" ] && [ "$count" -gt 0 ]; then first=$(now); fi
    if [ "$count" -ge "$n" ]; then
      if [ "$backend" = memory ] || [ "$(checkpoint_sum "$topic")" -ge "$n" ]; then end=$(now); break; fi
    fi
    sleep 0.02
  done
  [ -n "$end" ] || { echo "measure: timed out" >&2; return 1; }
  awk -v n="$n" -v a="$first" -v b="$end" 'BEGIN{printf "%.0f\n", n / (b - a)}'
}

summary() { # values... -> "median min max"
  printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END{printf "%d %d %d\n", v[int((NR+1)/2)], v[1], v[NR]}'
}

# --- ceiling -----------------------------------------------------------------
ceiling=()
for rep in $(seq "$REPS"); do
  v=$("$bench" consume -b "$B" -t payments --events "$EVENTS" -g "ceiling-$rep-$RANDOM" \
      | sed -E 's/.*"events_per_second": ([0-9]+).*/\1/')
  ceiling+=("$v"); echo "   ceiling rep $rep: $v events/s"
done

# --- service, both backends ----------------------------------------------------
run_service_reps() { # backend [extra-args...] -> values in $results, $cpu_us appended
  local backend=$1 port pid v; shift
  results=()
  for rep in $(seq "$REPS"); do
    redis flushall >/dev/null
    port=$(free_port)
    start_service "$backend-$rep" "$port" -X "group.id=bench-$backend-$rep-$RANDOM" \
      -X "state.backend=$backend" "$@"
    pid=$SERVICE_PID
    v=$(measure "$backend" payments "$EVENTS" "$port")
    rss=$(peak_rss_kb "$pid")
    us=$(awk -v c="$(cpu_seconds "$pid")" -v n="$EVENTS" 'BEGIN{printf "%.2f", c * 1e6 / n}')
    stop_service "$pid"
    results+=("$v"); cpu_us+=("$us")
    echo "   $backend $* rep $rep: $v events/s, $us us CPU per payment, peak RSS ${rss} kB"
  done
  last_rss=$rss
}
fsummary() { # values... -> median of decimals
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'
}
cpu_us=(); run_service_reps redis;  redis_tp=("${results[@]}"); redis_rss=$last_rss
redis_cpu=$(fsummary "${cpu_us[@]}")
cpu_us=(); run_service_reps memory; memory_tp=("${results[@]}"); memory_rss=$last_rss
memory_cpu=$(fsummary "${cpu_us[@]}")
# The engine's overlap against waiting for each step (batch.overlap=false).
cpu_us=(); run_service_reps redis -X batch.overlap=false; sequential_tp=("${results[@]}")
sequential_cpu=$(fsummary "${cpu_us[@]}")
# Each batch's records and offsets in one Kafka transaction.
cpu_us=(); run_service_reps redis -X output.guarantee=exactly_once; eos_tp=("${results[@]}")
eos_cpu=$(fsummary "${cpu_us[@]}")

# --- the clock of the window rules ----------------------------------------------------
# small_then_large and velocity on, in event time (the default) and in
# processing time, interleaved: what event time costs, side by side.
echo "== window rules on: event time against processing time; two aggregate instances"
clock_event=(); clock_processing=(); aggregate_tp=()
aggregates=(-X rule.sum_10m.type=aggregate -X rule.sum_10m.limit=5000
            -X rule.sum_10m.window.ms=600000 -X rule.n_1m.type=aggregate
            -X rule.n_1m.function=count -X rule.n_1m.operator=">=" -X rule.n_1m.limit=20
            -X rule.n_1m.window.ms=60000)
for rep in $(seq "$REPS"); do
  for clock in event processing aggregate; do
    redis flushall >/dev/null
    port=$(free_port)
    if [ "$clock" = aggregate ]; then
      start_service "aggregate-$rep" "$port" -X "group.id=bench-aggregate-$rep-$RANDOM" \
        "${aggregates[@]}"
    else
      start_service "clock-$clock-$rep" "$port" -X "group.id=bench-clock-$clock-$rep-$RANDOM" \
        -X "time.characteristic=$clock" -X rule.small_then_large.enabled=true \
        -X rule.velocity.enabled=true
    fi
    v=$(measure redis payments "$EVENTS" "$port")
    stop_service "$SERVICE_PID"
    case $clock in
      event) clock_event+=("$v") ;;
      processing) clock_processing+=("$v") ;;
      aggregate) aggregate_tp+=("$v") ;;
    esac
    echo "   $clock rep $rep: $v events/s"
  done
done
read -r ce_med ce_min ce_max <<<"$(summary "${clock_event[@]}")"
read -r cp_med cp_min cp_max <<<"$(summary "${clock_processing[@]}")"
read -r ag_med ag_min ag_max <<<"$(summary "${aggregate_tp[@]}")"

read -r c_med c_min c_max <<<"$(summary "${ceiling[@]}")"
read -r r_med r_min r_max <<<"$(summary "${redis_tp[@]}")"
read -r m_med m_min m_max <<<"$(summary "${memory_tp[@]}")"
read -r q_med q_min q_max <<<"$(summary "${sequential_tp[@]}")"
read -r x_med x_min x_max <<<"$(summary "${eos_tp[@]}")"

# --- latency against offered load --------------------------------------------------
# Capacity here is the pinned service's own (redis backend), so 50% and 80%
# mean the same thing whether or not the machine has a core to spare.
pinned=no
if can_pin; then pinned=yes; SERVICE_CPUS=0; pin_servers 1; fi
redis flushall >/dev/null
port=$(free_port)
start_service capacity "$port" -X "group.id=bench-capacity-$RANDOM"
pid=$SERVICE_PID
capacity=$(measure redis payments "$EVENTS" "$port")
stop_service "$pid"
echo "== latency against offered load (pinned: $pinned; capacity $capacity events/s; flags: ${LATENCY_FLAGS:-none})"
rates=(1000 10000 $(( capacity / 2 )) $(( capacity * 8 / 10 )))
lat_points=()
for i in 1 2 3 4; do
  rate=${rates[$((i - 1))]}
  lat_events=$(( rate * LATENCY_SECONDS ))
  redis flushall >/dev/null
  port=$(free_port)
  start_service "latency-$i" "$port" -X "input.topic=lat-payments-$i" \
    -X "alert.topic=lat-alerts-$i" -X "group.id=bench-latency-$i-$RANDOM" $LATENCY_FLAGS
  pid=$SERVICE_PID
  for _ in $(seq 300); do
    [ "$(metric "$port" fraud_assigned_partitions)" -gt 0 ] && break; sleep 0.1
  done
  # The curve is of a running instance: the first fetches after an
  # assignment (offsets, leader epochs) took the real broker 100-400 ms,
  # which was the p99 of a 10 s run. Measured apart: README, Performance.
  sleep 2
  gen=(); can_pin && gen=(taskset -c 1)
  "${gen[@]}" "$bench" produce -b "$B" -t "lat-payments-$i" --events "$lat_events" \
    --users "$USERS" --alert-ratio 0.05 --rate "$rate" --seed "$i" >"$work/lat-produce-$i.json"
  sleep 1
  expected_alerts=$(metric "$port" 'fraud_alerts_total{rule="amount_jump"}')
  l=$("$bench" latency -b "$B" -t "lat-alerts-$i" --events "$expected_alerts" -g "lat-$i-$RANDOM" \
      ${append:+--payments "lat-payments-$i"})
  stop_service "$pid"
  after=$(sed -nE 's/.*"p50_after_append_ms": ([0-9-]+).*"p99_after_append_ms": ([0-9-]+).*"p999_after_append_ms": ([0-9-]+).*/\1 \2 \3/p' <<<"$l")
  lat_points+=("$rate $(sed -E 's/.*"p50_ms": ([0-9-]+).*"p99_ms": ([0-9-]+).*"p999_ms": ([0-9-]+).*/\1 \2 \3/' <<<"$l") ${after:-null null null}")
  echo "   $rate events/s offered: $l"
done
SERVICE_CPUS=""
pin_servers "0-$(( $(nproc) - 1 ))"

# --- scaling ---------------------------------------------------------------------
echo "== scaling: 1, 2 and 3 instances in one group; 1 instance on a 3-master Redis Cluster"
scale_run() { # instances name extra-args... -> events/s
  local n=$1 name=$2 i ports=() pids=() v group="bench-$2-$RANDOM"; shift 2
  for ((i = 0; i < n; i++)); do
    ports+=("$(free_port)")
    start_service "$name-$i" "${ports[i]}" -X "group.id=$group" "$@"; pids+=("$SERVICE_PID")
  done
  v=$(measure redis payments "$EVENTS" "${ports[@]}")
  for i in "${pids[@]}"; do stop_service "$i"; done
  echo "$v"
}
instances_eps=()
for n in 1 2 3; do
  redis flushall >/dev/null
  instances_eps+=("$(scale_run "$n" "inst$n")")
  echo "   $n instance(s): ${instances_eps[n-1]} events/s"
done
start_redis_cluster 3
CHECKPOINT_PORTS="${CLUSTER_PORTS[*]}"
cluster_eps=$(scale_run 1 cluster -X "redis.url=$CLUSTER_URL")
CHECKPOINT_PORTS=""
echo "   1 instance, Redis Cluster of 3 masters: $cluster_eps events/s"

users_points=()
for u in 1000 100000 1000000; do
  "$bench" produce -b "$B" -t "users-$u" --events "$EVENTS" --users "$u" \
    --alert-ratio "$ALERT_RATIO" >/dev/null
  redis flushall >/dev/null
  port=$(free_port)
  start_service "users-$u" "$port" -X "input.topic=users-$u" -X "group.id=bench-u$u-$RANDOM"
  pid=$SERVICE_PID
  v=$(measure redis "users-$u" "$EVENTS" "$port")
  stop_service "$pid"
  users_points+=("$u $v"); echo "   $u users: $v events/s"
done
users_points+=("$USERS $r_med")

# --- failover ----------------------------------------------------------------------
. "$root/tests/bench/failover.sh"
echo "== failover: SIGKILL one of 2 instances under 2,000 payments/s"
failover_run 1 dynamic; failover_dynamic=$FAILOVER_RESULT
echo "   without static membership: $failover_dynamic s"
failover_run 2 static; failover_static=$FAILOVER_RESULT
echo "   with static membership: $failover_static s"
json_number() { if [ "$1" = none ]; then echo null; else echo "$1"; fi; }

# --- cache memory per user ---------------------------------------------------------
: >"$out/cache_memory.jsonl"
for n in 10000 100000 1000000; do "$build/tests/bench_cache_memory" "$n" >>"$out/cache_memory.jsonl"; done

# --- results -------------------------------------------------------------------------
ratio_r=$(awk -v a="$r_med" -v b="$c_med" 'BEGIN{printf "%.2f", a / b}')
ratio_m=$(awk -v a="$m_med" -v b="$c_med" 'BEGIN{printf "%.2f", a / b}')
per_user=$(sed -n 3p "$out/cache_memory.jsonl" | sed -E 's/.*"bytes_per_user_excluding_id": ([0-9.]+).*/\1/')
{
  echo "{"
  echo "  \"machine\": {\"cores\": $(nproc), \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\"},"
  echo "  \"broker\": \"$broker_kind\","
  echo "  \"events\": $EVENTS, \"users\": $USERS, \"repetitions\": $REPS,"
  echo "  \"ceiling_eps\": {\"median\": $c_med, \"min\": $c_min, \"max\": $c_max},"
  echo "  \"redis_eps\": {\"median\": $r_med, \"min\": $r_min, \"max\": $r_max, \"ratio\": $ratio_r},"
  echo "  \"memory_eps\": {\"median\": $m_med, \"min\": $m_min, \"max\": $m_max, \"ratio\": $ratio_m},"
  echo "  \"redis_without_overlap_eps\": {\"median\": $q_med, \"min\": $q_min, \"max\": $q_max, \"cpu_us_per_payment\": $sequential_cpu},"
  echo "  \"redis_exactly_once_eps\": {\"median\": $x_med, \"min\": $x_min, \"max\": $x_max, \"cpu_us_per_payment\": $eos_cpu},"
  echo "  \"cpu_us_per_payment\": {\"redis\": $redis_cpu, \"memory\": $memory_cpu},"
  echo "  \"window_rules_eps\": {\"event_time\": {\"median\": $ce_med, \"min\": $ce_min, \"max\": $ce_max}, \"processing_time\": {\"median\": $cp_med, \"min\": $cp_min, \"max\": $cp_max}},"
  echo "  \"two_aggregate_rules_eps\": {\"median\": $ag_med, \"min\": $ag_min, \"max\": $ag_max},"
  echo "  \"latency_curve\": {\"pinned\": \"$pinned\", \"capacity_eps\": $capacity, \"points\": [$(printf '%s\n' "${lat_points[@]}" | awk '{printf "%s{\"offered_eps\": %s, \"p50_ms\": %s, \"p99_ms\": %s, \"p999_ms\": %s, \"after_append\": {\"p50_ms\": %s, \"p99_ms\": %s, \"p999_ms\": %s}}", (NR > 1 ? ", " : ""), $1, $2, $3, $4, $5, $6, $7}')]},"
  echo "  \"instances_eps\": {\"1\": ${instances_eps[0]}, \"2\": ${instances_eps[1]}, \"3\": ${instances_eps[2]}, \"1_on_redis_cluster_3_masters\": $cluster_eps},"
  echo "  \"failover_seconds\": {\"dynamic\": $(json_number "$failover_dynamic"), \"static\": $(json_number "$failover_static")},"
  echo "  \"eps_by_users\": [$(printf '%s\n' "${users_points[@]}" | sort -n | awk '{printf "%s{\"users\": %s, \"eps\": %s}", (NR > 1 ? ", " : ""), $1, $2}')],"
  echo "  \"peak_rss_kb\": {\"redis\": $redis_rss, \"memory\": $memory_rss},"
  echo "  \"cache_memory\": [$(paste -sd, "$out/cache_memory.jsonl")]"
  echo "}"
} >"$out/results.json"

cat <<TABLE

| measure | median | min-max |
|---|---:|---:|
| ceiling: bare consumer, events/s | $c_med | $c_min-$c_max |
| service, redis backend, events/s | $r_med | $r_min-$r_max |
| service, memory backend, events/s | $m_med | $m_min-$m_max |
| service, redis backend, batch.overlap=false, events/s | $q_med | $q_min-$q_max |
| service, redis backend, output.guarantee=exactly_once, events/s | $x_med | $x_min-$x_max |
| **ratio redis / ceiling** | **$ratio_r** | |
| **ratio memory / ceiling** | **$ratio_m** | |
| service CPU per payment, redis / memory | $redis_cpu / $memory_cpu us | |
| window rules on, event time, events/s | $ce_med | $ce_min-$ce_max |
| window rules on, processing time, events/s | $cp_med | $cp_min-$cp_max |
| default rules + two aggregate instances, events/s | $ag_med | $ag_min-$ag_max |
| 1 / 2 / 3 instances, redis, events/s | ${instances_eps[0]} / ${instances_eps[1]} / ${instances_eps[2]} | (1 run each) |
| 1 instance, Redis Cluster of 3 masters, events/s | $cluster_eps | (1 run) |
| failover after SIGKILL, without / with static membership | $failover_dynamic / $failover_static s | (1 run) |
| peak RSS, redis / memory run ($USERS users) | $redis_rss / $memory_rss kB | |
| cache bytes per user at 10^6 users, without the id | $per_user | |

TABLE
printf '%s\n' "${users_points[@]}" | sort -n | awk 'BEGIN{print "| distinct users | events/s (redis) |\n|---:|---:|"} {print "| " $1 " | " $2 " |"}'
echo
echo "Latency, payment produce -> alert (pinned: $pinned, capacity $capacity events/s):"
echo
printf '%s\n' "${lat_points[@]}" | awk 'BEGIN{print "| offered events/s | p50 ms | p99 ms | p99.9 ms | after the payment was appended: p50 / p99 / p99.9 ms |\n|---:|---:|---:|---:|---:|"} {a = ($5 == "null") ? "-" : $5 " / " $6 " / " $7; print "| " $1 " | " $2 " | " $3 " | " $4 " | " a " |"}'

if command -v gnuplot >/dev/null; then
  after_plot=""
  [ -n "$append" ] && after_plot=", \"$work/latency.dat\" using 1:6 with linespoints lw 2 dt 2 title \"p99 after the payment's append\""
  printf '%s\n' "${users_points[@]}" | sort -n >"$work/users.dat"
  printf '%s\n' "${lat_points[@]}" >"$work/latency.dat"
  gnuplot <<PLOT
set terminal pngcairo size 800,450
set output "$out/throughput.png"
set title "fraud-detector throughput vs distinct users (redis backend; ceiling $c_med events/s)"
set logscale x
set xlabel "distinct users"; set ylabel "events per second"; set yrange [0:*]; set grid
plot "$work/users.dat" using 1:2 with linespoints lw 2 title "service", $c_med with lines dt 2 title "bare consumer ceiling"
set output "$out/latency.png"
set title "payment produce -> alert latency against offered load (pinned: $pinned, capacity $capacity/s)"
set xlabel "offered events per second"; set ylabel "ms"; set logscale y
plot "$work/latency.dat" using 1:2 with linespoints lw 2 title "p50", \\
     "$work/latency.dat" using 1:3 with linespoints lw 2 title "p99", \\
     "$work/latency.dat" using 1:4 with linespoints lw 2 title "p99.9"$after_plot
PLOT
  echo "plots: $out/throughput.png $out/latency.png"
fi
echo "results: $out/results.json"
