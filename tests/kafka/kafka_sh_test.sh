#!/usr/bin/env bash
# tests/kafka/kafka.sh the way README tells a developer to use it: with a
# warm cache `fetch` downloads nothing, `start` prints a bootstrap address
# whose broker has the service's topics, and `stop` ends the broker.
# Usage: tests/kafka/kafka_sh_test.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
kafka="$root/tests/kafka/kafka.sh"
dir=$(mktemp -d /tmp/fraud-kafka-sh-XXXXXX)
trap '"$kafka" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

"$kafka" fetch 2>"$dir/fetch.err"
if grep -q resolving "$dir/fetch.err"; then
  echo "FAIL: fetch downloaded although the cache was warm" >&2; exit 1
fi
echo "fetch: cache warm, nothing downloaded"

bootstrap=$("$kafka" start "$dir" 2>"$dir/start.err") || { cat "$dir/start.err" >&2; exit 1; }
echo "start: $bootstrap"
kcat -L -b "$bootstrap" >"$dir/metadata"
for want in 'topic "payments" with 6 partitions' 'topic "fraud-alerts" with 6 partitions' \
            'topic "payments-dlq" with 1 partitions' 'topic "fraud-rules" with 1 partitions' \
            'topic "payment-totals" with 6 partitions' 'topic "payment-averages" with 6 partitions'; do
  grep -q "$want" "$dir/metadata" || { echo "FAIL: no $want" >&2; cat "$dir/metadata" >&2; exit 1; }
done
echo 'user1:5000' | kcat -P -b "$bootstrap" -t payments -K:
[ "$(kcat -C -b "$bootstrap" -t payments -o beginning -e -q -f '%k:%s\n')" = "user1:5000" ] \
  || { echo "FAIL: produced record not read back" >&2; exit 1; }

pid=$(cat "$dir/broker.pid")
"$kafka" stop "$dir"
if kill -0 "$pid" 2>/dev/null; then echo "FAIL: broker $pid still running after stop" >&2; exit 1; fi
echo "kafka.sh fetch/start/stop OK"
