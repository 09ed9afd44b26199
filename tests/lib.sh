# Shared by the shell tests, the demo and the benchmark: servers on
# loopback in a work directory, all stopped (newest first, so the service
# leaves its group while the broker is still up) when the script exits.
# Source it, then call fraud_init; BUILD must be set.

fraud_init() { # sets WORK; installs the cleanup trap
  WORK="$(mktemp -d "/tmp/fraud-${1:-run}-XXXXXX")"
  FRAUD_PIDS=()
  trap fraud_cleanup EXIT
}

fraud_stop_tracked() { # newest first; a script with a real broker calls it before stopping it
  local i
  for ((i = ${#FRAUD_PIDS[@]} - 1; i >= 0; i--)); do
    kill "${FRAUD_PIDS[i]}" 2>/dev/null || true
    wait "${FRAUD_PIDS[i]}" 2>/dev/null || true
  done
}

fraud_cleanup() {
  fraud_stop_tracked
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}

fraud_track() { FRAUD_PIDS+=("$1"); }

free_port() { # [below] -> a loopback port nobody answers on, in 20000..below-1 (32000)
  local port below=${1:-32000}
  for _ in $(seq 50); do
    # Below the ephemeral range (32768-), where client sockets of the same
    # machine could already hold the port.
    port=$(( 20000 + RANDOM % (below - 20000) ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  echo "no free port found" >&2
  return 1
}

start_dev_broker() { # topic:partitions... -> sets BROKER
  local args=() t
  for t in "$@"; do args+=(-t "$t"); done
  "$BUILD/fraud-mock-broker" "${args[@]}" --bootstrap-file "$WORK/bootstrap" \
    >"$WORK/broker.log" 2>&1 &
  fraud_track $!
  BROKER_PID=$!
  for _ in $(seq 100); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
  [ -s "$WORK/bootstrap" ] || { echo "dev broker did not start" >&2; cat "$WORK/broker.log" >&2; return 1; }
  BROKER=$(cat "$WORK/bootstrap")
}

start_redis() { # -> sets REDIS_PORT
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save '' \
    --appendonly no >"$WORK/redis.log" 2>&1 &
  fraud_track $!
  REDIS_PID=$!
  for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis-server did not start" >&2
  return 1
}

start_redis_cluster() { # masters -> sets CLUSTER_PORTS (array) and CLUSTER_URL
  local i port dir nodes=()
  CLUSTER_PORTS=()
  for ((i = 0; i < $1; i++)); do
    # Its cluster bus listens on port + 10000, which must stay below the
    # ephemeral range too, where a client socket could hold it; and no two
    # nodes on one port.
    port=$(free_port 22768)
    while [[ " ${CLUSTER_PORTS[*]} " == *" $port "* ]]; do port=$(free_port 22768); done
    dir="$WORK/cluster-$i"; mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
      --cluster-enabled yes --cluster-node-timeout 2000 >"$dir/redis.log" 2>&1 &
    fraud_track $!
    CLUSTER_PORTS+=("$port"); nodes+=("127.0.0.1:$port")
  done
  for port in "${CLUSTER_PORTS[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
    >"$WORK/cluster-create.log" 2>&1 || { echo "redis-cli --cluster create failed" >&2; return 1; }
  for port in "${CLUSTER_PORTS[@]}"; do
    for _ in $(seq 100); do
      redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' && break
      sleep 0.1
    done
  done
  CLUSTER_URL="redis-cluster://$(IFS=,; echo "${nodes[*]}")"
}

readme_block() { # marker -> the shell lines of README's block, without fences and comments
  sed -n "/<!-- $1:begin -->/,/<!-- $1:end -->/p" "$root/README.md" \
    | grep -v '^<!--' | grep -v '^```' | grep -v '^#' | grep -v '^[[:space:]]*$'
}

wait_user_count() { # user want: waits until Redis (REDIS_PORT) counts want payments of user
  local key
  for _ in $(seq 100); do
    key=$(redis-cli -p "$REDIS_PORT" --scan --pattern "fraud:{*}:user:$1")
    [ -n "$key" ] && [ "$(redis-cli -p "$REDIS_PORT" hget "$key" count)" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

run_rule_line() { # line counter-function: runs a rules.topic line, waits for the counter to grow
  local before
  before=$("$2")
  bash -c "$1"
  for _ in $(seq 100); do [ "$("$2")" -gt "$before" ] && return 0; sleep 0.1; done
  echo "FAIL: rule not taken: $1" >&2
  return 1
}

run_payment_line() { # line: runs a payments line, waits until its first user has them all
  local user want
  bash -c "$1"
  user=$(grep -o 'user[0-9]*:' <<<"$1" | head -n 1)
  want=$(grep -o 'user[0-9]*:' <<<"$1" | wc -l)
  wait_user_count "${user%:}" "$want" || { echo "FAIL: ${user%:} not applied" >&2; return 1; }
}

retry_until() { # count regex file command... : runs command into file until regex matches count lines
  local need=$1 want=$2 out=$3 got=0
  shift 3
  for _ in $(seq 60); do
    bash -c "$*" >"$out" 2>/dev/null || true
    got=$(grep -c -- "$want" "$out" || true)
    [ "$got" -ge "$need" ] && break
    sleep 0.5
  done
  [ "$got" = "$need" ] || { echo "FAIL: expected $need line(s) with $want, got $got" >&2; cat "$out" >&2; return 1; }
}
