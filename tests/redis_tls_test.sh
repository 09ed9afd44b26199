#!/usr/bin/env bash
# README's stunnel recipe for a TLS-only Redis, run as written: a CA and a
# server certificate from openssl, a redis-server that listens only on a
# tls-port and asks a password, README's stunnel.conf (only the Redis
# address and the CA file replaced), and fraud-detector through it. The
# seed's alerts and totals must come out, and the state must be in the TLS
# Redis. A tunnel that expects another host name must get nowhere.
# Usage: tests/redis_tls_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
. "$root/tests/lib.sh"
fraud_init redis-tls
work=$WORK
for tool in openssl stunnel4; do
  command -v "$tool" >/dev/null || { echo "$tool not found (make test installs it)" >&2; exit 1; }
done

# A CA, and a certificate for redis.example signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=fraud-test-ca" \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=redis.example" \
  -keyout "$work/redis.key" -out "$work/redis.csr" 2>/dev/null
printf 'subjectAltName=DNS:redis.example\n' >"$work/san.ext"
openssl x509 -req -in "$work/redis.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -days 2 -extfile "$work/san.ext" -out "$work/redis.crt" 2>/dev/null

password=tls-test-password
tls_port=$(free_port)
redis-server --port 0 --tls-port "$tls_port" --bind 127.0.0.1 --dir "$work" --save '' \
  --appendonly no --tls-cert-file "$work/redis.crt" --tls-key-file "$work/redis.key" \
  --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no --requirepass "$password" \
  >"$work/redis.log" 2>&1 &
fraud_track $!
tls_cli() { redis-cli --tls --cacert "$work/ca.crt" --sni redis.example -p "$tls_port" \
  --no-auth-warning -a "$password" "$@"; }
for _ in $(seq 100); do tls_cli ping >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(tls_cli ping)" = PONG ] || { echo "TLS redis-server did not start" >&2; cat "$work/redis.log" >&2; exit 1; }

# README's block, with this test's Redis and CA in place of the examples.
sed -n '/<!-- redis-tls:begin -->/,/<!-- redis-tls:end -->/p' "$root/README.md" \
  | grep -v '^<!--' | grep -v '^```' >"$work/readme-stunnel.conf"
grep -q '^connect = redis.example:6380$' "$work/readme-stunnel.conf" \
  || { echo "README's stunnel block not found" >&2; exit 1; }
tunnel() { # config-name local-port check-host
  sed -e "s|^accept = 127.0.0.1:6379$|accept = 127.0.0.1:$2|" \
      -e "s|^connect = redis.example:6380$|connect = 127.0.0.1:$tls_port|" \
      -e "s|^CAfile = .*|CAfile = $work/ca.crt|" \
      -e "s|^checkHost = redis.example$|checkHost = $3|" \
      "$work/readme-stunnel.conf" >"$work/$1.conf"
  stunnel4 "$work/$1.conf" >"$work/$1.log" 2>&1 &
  fraud_track $!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0; sleep 0.1; done
  echo "stunnel did not start" >&2; cat "$work/$1.log" >&2; return 1
}
local_port=$(free_port)
tunnel stunnel "$local_port" redis.example
[ "$(redis-cli -p "$local_port" --no-auth-warning -a "$password" ping)" = PONG ] \
  || { echo "FAIL: no PONG through the tunnel" >&2; cat "$work/stunnel.log" >&2; exit 1; }

# A tunnel that expects another name must not reach Redis.
wrong_port=$(free_port)
tunnel wrong-host "$wrong_port" redis.other.example
if [ "$(redis-cli -p "$wrong_port" --no-auth-warning -a "$password" ping 2>/dev/null)" = PONG ]; then
  echo "FAIL: stunnel accepted a certificate for another host" >&2; exit 1
fi

start_dev_broker payments:3 fraud-alerts:1 payments-dlq:1
"$BUILD/fraud-detector" -X "kafka.bootstrap.servers=$BROKER" -X http.listen=off \
  -X "redis.url=redis://:$password@127.0.0.1:$local_port" >"$work/service.log" 2>&1 &
svc=$!
fraud_track $svc
kcat -P -b "$BROKER" -t payments -K: -l "$root/tests/data/seed-payments.txt"
retry_until 2 '"rule":"amount_jump"' "$work/alerts" \
  "kcat -C -b '$BROKER' -t fraud-alerts -o beginning -e -q" \
  || { echo "FAIL: the seed's alerts did not come" >&2; tail -n 20 "$work/service.log" >&2; exit 1; }
grep -q '"user_id":"user1","amount":110000,' "$work/alerts" && grep -q '"user_id":"user2","amount":120000,' "$work/alerts" \
  || { echo "FAIL: not the seed's alerts" >&2; cat "$work/alerts" >&2; exit 1; }
total() { # user -> "cum count" read over TLS, straight from the TLS-only server
  local key
  key=$(tls_cli --scan --pattern "fraud:{*}:user:$1")
  [ -n "$key" ] && echo "$(tls_cli hget "$key" cum) $(tls_cli hget "$key" count)"
}
for _ in $(seq 100); do [ "$(total user2)" = "133000 4" ] && break; sleep 0.1; done
[ "$(total user1)" = "122000 3" ] && [ "$(total user2)" = "133000 4" ] \
  || { echo "FAIL: totals $(total user1) / $(total user2)" >&2; exit 1; }
kill -TERM $svc
status=0
wait $svc || status=$?
[ "$status" = 0 ] || { echo "FAIL: fraud-detector exited $status" >&2; tail "$work/service.log" >&2; exit 1; }
echo "Redis over TLS through README's stunnel recipe OK"
