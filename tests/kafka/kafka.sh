#!/usr/bin/env bash
# A real, single-node Apache Kafka (KRaft, combined broker+controller) on
# 127.0.0.1 without Docker: its jars come from Maven Central (pom.xml next to
# this script) into a cache, and it runs with the machine's Java.
#
#   kafka.sh fetch                      resolve the jars (no download once cached)
#   kafka.sh start [DIR [T:N[:compact|:append]...]]  start in the background on free ports, wait
#                                       until ready, create the topics given (default: the
#                                       service's), print the bootstrap address (state and
#                                       logs in DIR)
#   kafka.sh stop DIR                   stop what `start` started, cleanly (SIGTERM)
#   kafka.sh topics BOOTSTRAP T:N[:compact|:append]...   create topics T with N partitions
#                                       (compacted, or stamped with LogAppendTime)
#   kafka.sh partitions BOOTSTRAP TOPIC N   grow TOPIC to N partitions
#   kafka.sh run DIR PORT CONTROLLER_PORT        format DIR if new, then run the broker in
#                                       the foreground (what the C test harness spawns)
#
# Cache: $TEST_KAFKA_CACHE, default ~/.cache/fraud-detector. Needs java (17+)
# and mvn on PATH.
set -euo pipefail

KAFKA_VERSION=4.1.1 # keep in step with pom.xml
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1
here="$(cd "$(dirname "$0")" && pwd)"
cache="${TEST_KAFKA_CACHE:-$HOME/.cache/fraud-detector}/kafka-$KAFKA_VERSION"
libs="$cache/libs"

die() { echo "kafka.sh: $*" >&2; exit 1; }

need_tools() {
  command -v java >/dev/null || die "java not found (Java 17 or later runs the broker)"
  command -v mvn >/dev/null || die "mvn not found (Maven resolves the broker's jars)"
}

fetch() {
  need_tools
  [ -f "$libs/.complete" ] && return 0
  mkdir -p "$cache"
  # One download at a time, even when several test processes start at once.
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -f "$libs/.complete" ]; then
    echo "kafka.sh: resolving Apache Kafka $KAFKA_VERSION jars from Maven into $libs" >&2
    rm -rf "$libs.tmp"
    # Maven 3.8 prints colour resets even in batch mode: strip them.
    mvn -B -q -f "$here/pom.xml" "$DEPENDENCY_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$libs.tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 \
      || die "mvn could not resolve the broker's jars"
    rm -rf "$libs"
    mv "$libs.tmp" "$libs"
    touch "$libs/.complete"
  fi
  flock -u 9
}

java_run() { # class args...
  java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/log4j2.properties" -cp "$libs/*" "$@"
}

write_properties() { # dir port controller_port
  cat >"$1/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$3
listeners=PLAINTEXT://127.0.0.1:$2,CONTROLLER://127.0.0.1:$3
advertised.listeners=PLAINTEXT://127.0.0.1:$2
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$1/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Tests restart killed members with a short session.timeout.ms (the default minimum is 6 s).
group.min.session.timeout.ms=1000
# A transaction left open past its timeout is aborted within a second, not ten, so
# the transactional tests see the abort while they wait for it.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
# Small segments, so retention and compaction act within a test.
log.segment.bytes=16777216
PROPS
}

run() { # dir port controller_port
  local dir=$1 port=$2 cport=$3
  fetch
  mkdir -p "$dir"
  write_properties "$dir" "$port" "$cport"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local id
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    java_run kafka.tools.StorageTool format --cluster-id="$id" --config "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "formatting the storage failed"; }
  fi
  echo "$$" >"$dir/broker.pid"
  LOG_DIR="$dir" exec java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/log4j2.properties" -Dkafka.logs.dir="$dir" \
    -cp "$libs/*" kafka.Kafka "$dir/server.properties"
}

free_port() {
  local port
  for _ in $(seq 50); do
    port=$(( 20000 + RANDOM % 12000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  die "no free port found"
}

wait_ready() { # bootstrap log
  for _ in $(seq 240); do
    if java_run org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --list >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  tail -n 30 "$2" >&2
  die "the broker at $1 did not become ready"
}

topics() { # bootstrap spec...
  local bootstrap=$1 spec name parts extra
  shift
  for spec in "$@"; do
    IFS=: read -r name parts extra <<<"$spec"
    local args=(--bootstrap-server "$bootstrap" --create --if-not-exists --topic "$name"
                --partitions "${parts:-1}" --replication-factor 1)
    [ "${extra:-}" = compact ] && args+=(--config cleanup.policy=compact)
    # The broker stamps each record as it appends it: bench-peers clocks
    # every contender by its alert records' broker timestamps.
    [ "${extra:-}" = append ] && args+=(--config message.timestamp.type=LogAppendTime)
    java_run org.apache.kafka.tools.TopicCommand "${args[@]}" >&2
  done
}

partitions() { # bootstrap topic count: grows the topic to count partitions
  java_run org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --alter --topic "$2" \
    --partitions "$3" >&2
}

start() { # [dir [topic specs]]
  local dir=${1:-} port cport
  shift || true
  local specs=("$@")
  [ ${#specs[@]} -gt 0 ] || specs=(payments:6 fraud-alerts:6 payments-dlq:1 fraud-rules:1:compact
                                   payment-totals:6:compact payment-averages:6)
  [ -n "$dir" ] || dir=$(mktemp -d /tmp/fraud-kafka-XXXXXX)
  mkdir -p "$dir"
  fetch
  port=$(free_port)
  cport=$(free_port)
  setsid "$0" run "$dir" "$port" "$cport" >"$dir/broker.log" 2>&1 </dev/null &
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  wait_ready "127.0.0.1:$port" "$dir/broker.log"
  topics "127.0.0.1:$port" "${specs[@]}"
  echo "kafka.sh: Apache Kafka $KAFKA_VERSION ready in $dir (stop: $0 stop $dir)" >&2
  echo "127.0.0.1:$port"
}

stop() { # dir
  local dir=${1:?usage: kafka.sh stop DIR} pid
  [ -f "$dir/broker.pid" ] || die "no broker.pid in $dir"
  pid=$(cat "$dir/broker.pid")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  echo "kafka.sh: broker $pid did not stop in 30 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

cmd=${1:-}
shift || true
case "$cmd" in
  fetch) fetch ;;
  run) [ $# = 3 ] || die "usage: kafka.sh run DIR PORT CONTROLLER_PORT"; run "$@" ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  topics) [ $# -ge 2 ] || die "usage: kafka.sh topics BOOTSTRAP T:N[:compact]..."; topics "$@" ;;
  partitions) [ $# = 3 ] || die "usage: kafka.sh partitions BOOTSTRAP TOPIC COUNT"; partitions "$@" ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
