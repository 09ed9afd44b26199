# Sourced by run_bench.sh: the failover measure. Two instances share a
# live load; one is killed with SIGKILL; the result is the time from the
# kill to the first alert from a partition that the killed one owned.
# Uses run_bench.sh's start_service, stop_service, metric, free_port, $B,
# $bench, $work and kcat.

# The partitions an instance owns, from its log's assigned/revoked lines
# ("assigned 3 partition(s) (COOPERATIVE rebalance): t[1] t[4] t[5]").
owned_partitions() { # log
  awk '/ kafka: (assigned|revoked) [0-9]+ partition/ {
         add = ($0 ~ / assigned /)
         for (i = 1; i <= NF; i++) if (match($i, /\[[0-9]+\]$/)) {
           p = substr($i, RSTART + 1, RLENGTH - 2); if (add) own[p] = 1; else delete own[p]
         }
       }
       END { for (p in own) printf "%s ", p }' "$1"
}

# Sets FAILOVER_RESULT to the seconds, or "none" (no alert within 180 s).
# Not in a $(...) subshell: the instances it starts must stay tracked.
failover_run() { # index static|dynamic
  local i=$1 kind=$2 group="bench-failover-$1-$RANDOM" pa pb pid_a pid_b gen parts killed
  local topic="failover-payments-$i" alerts="failover-alerts-$i" static_a=() static_b=()
  if [ "$kind" = static ]; then
    static_a=(-X "kafka.consumer.group.instance.id=failover-a-$i")
    static_b=(-X "kafka.consumer.group.instance.id=failover-b-$i")
  fi
  pa=$(free_port); pb=$(free_port)
  start_service "failover-a-$i" "$pa" -X "group.id=$group" -X "input.topic=$topic" \
    -X "alert.topic=$alerts" -X log.level=info "${static_a[@]}"
  pid_a=$SERVICE_PID
  start_service "failover-b-$i" "$pb" -X "group.id=$group" -X "input.topic=$topic" \
    -X "alert.topic=$alerts" -X log.level=info "${static_b[@]}"
  pid_b=$SERVICE_PID
  for _ in $(seq 600); do
    [ $(( $(metric "$pa" fraud_assigned_partitions) + $(metric "$pb" fraud_assigned_partitions) )) -eq 6 ] \
      && [ "$(metric "$pb" fraud_assigned_partitions)" -gt 0 ] && break
    sleep 0.1
  done
  # 1,000 users at 2,000 payments/s: every partition alerts many times a second.
  "$bench" produce -b "$B" -t "$topic" --events 400000 --users 1000 --alert-ratio 0.2 \
    --rate 2000 --seed "$i" >/dev/null &
  gen=$!
  fraud_track "$gen"
  sleep 5
  parts=$(owned_partitions "$work/failover-b-$i.log")
  killed=$(date +%s%3N)
  kill -KILL "$pid_b"
  wait "$pid_b" 2>/dev/null || true
  # The survivor takes the partitions over (after session.timeout.ms, when
  # the killed member's session expires); give its alerts 3 s to flow, stop
  # the load, then read the alert topic once, up to its end.
  local deadline=$(( $(date +%s) + 180 )) p all first=""
  while [ "$(date +%s)" -lt "$deadline" ]; do
    all=1
    for p in $parts; do
      case " $(owned_partitions "$work/failover-a-$i.log")" in *" $p "*) ;; *) all=0 ;; esac
    done
    [ "$all" = 1 ] && break
    sleep 0.5
  done
  sleep 3
  kill "$gen" 2>/dev/null || true
  wait "$gen" 2>/dev/null || true
  first=$(timeout 60 kcat -C -b "$B" -t "$alerts" -o beginning -e -q -f '%T %s\n' 2>/dev/null |
    awk -v after="$killed" -v parts=" $parts" '
      $1 > after { if (match($0, /"partition":[0-9]+/)) {
        p = substr($0, RSTART + 12, RLENGTH - 12)
        if (index(parts, " " p " ") && (best == "" || $1 < best)) best = $1 } }
      END { print best }') || true
  stop_service "$pid_a"
  FAILOVER_RESULT=none
  [ -z "$first" ] || FAILOVER_RESULT=$(awk -v a="$killed" -v b="$first" 'BEGIN{printf "%.1f", (b - a) / 1000}')
}
