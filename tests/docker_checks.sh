#!/usr/bin/env bash
# What this machine can check about the Docker path without a Docker engine:
#  1. docker-compose.yml validates (Debian's docker-compose, `config -q`);
#  2. the Dockerfile and compose file pin every image, run as non-root and
#     have health checks;
#  3. the fraud-detector service's compose environment holds only known
#     config keys, and the binary accepts exactly that environment.
# Usage: tests/docker_checks.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
cd "$root"
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== 1. compose file validates"
command -v docker-compose >/dev/null || fail "docker-compose missing (make deps installs it)"
docker-compose -f docker-compose.yml config -q
config=$(docker-compose -f docker-compose.yml config)

echo "== 2. images pinned, non-root, health checks"
dockerfile=docker/Dockerfile
grep -E '^FROM ' "$dockerfile" | while read -r _ image _; do
  case "$image" in
    *:latest|*:*latest*) fail "$dockerfile: $image uses latest" ;;
    *:*[0-9]*) echo "   pinned: $image" ;;
    *) fail "$dockerfile: $image has no version tag" ;;
  esac
done
[ "$(grep -c '^FROM ' "$dockerfile")" -ge 2 ] || fail "$dockerfile is not multi-stage"
# Continuation lines joined, then the text after the last FROM.
final_stage=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dockerfile" \
  | awk '/^FROM /{stage=""} {stage = stage $0 "\n"} END{printf "%s", stage}')
grep -qE '^USER +[^r0 ]' <<<"$final_stage" || fail "final stage has no non-root USER"
grep -q '^HEALTHCHECK .*healthz' <<<"$final_stage" || fail "final stage has no HEALTHCHECK on /healthz"
grep -q '^ENTRYPOINT \["fraud-detector"\]' <<<"$final_stage" || fail "ENTRYPOINT is not [\"fraud-detector\"]"
[ -f .dockerignore ] || fail ".dockerignore missing"
grep -E '^ +image: ' <<<"$config" | awk '{print $2}' | while read -r image; do
  case "$image" in
    *:latest) fail "compose image $image uses latest" ;;
    *:*[0-9]*) echo "   pinned: $image" ;;
    *) fail "compose image $image has no version tag" ;;
  esac
done
for svc in kafka redis fraud-detector; do
  awk -v s="  $svc:" '$0 == s {on=1; next} /^  [a-z]/ {on=0} on' <<<"$config" \
    | grep -q 'healthcheck:\|condition: service_healthy' || fail "$svc has no healthcheck/health dependency"
done

echo "== 3. the service accepts the compose environment"
env_lines=$(awk '$0 == "  fraud-detector:" {on=1; next} /^  [a-z]/ {on=0}
                 on && /^    environment:/ {env=1; next} on && /^    [a-z]/ {env=0}
                 on && env {sub(/^ +/, ""); print}' <<<"$config")
[ -n "$env_lines" ] || fail "no environment found for fraud-detector"
vars=()
while IFS= read -r line; do
  key=${line%%:*}
  value=${line#*: }
  case "$key" in FRAUD_*) ;; *) fail "compose sets $key, which is not a FRAUD_ setting" ;; esac
  vars+=("$key=$value")
done <<<"$env_lines"
echo "   ${#vars[@]} FRAUD_* variables"
dump=$(env -i "${vars[@]}" "$build/fraud-detector" --dump-config) \
  || fail "fraud-detector refused the compose environment"
grep -q '^kafka.bootstrap.servers=kafka:9092$' <<<"$dump" || fail "bootstrap servers not applied"
grep -q '^redis.url=redis://:\*\*\*@redis:6379/0$' <<<"$dump" || fail "redis password not masked"

echo "== 4. the monitoring profile"
for svc in prometheus grafana; do
  awk -v s="  $svc:" '$0 == s {on=1; next} /^  [a-z]/ {on=0} on' <<<"$config" \
    | grep -q -- '- monitoring' || fail "$svc is not in the monitoring profile"
done
# Every file the profile mounts is in the repository.
grep -oE '\./docker/[a-z/._-]+' docker-compose.yml | sort -u | while read -r path; do
  [ -e "$path" ] || fail "compose mounts $path, which does not exist"
  echo "   mounted: $path"
done
if command -v promtool >/dev/null; then
  sed "s|/etc/prometheus/alerts.yml|$root/docker/prometheus/alerts.yml|" \
    docker/prometheus/prometheus.yml >"${TMPDIR:-/tmp}/fraud-prometheus-$$.yml"
  promtool check config "${TMPDIR:-/tmp}/fraud-prometheus-$$.yml" >/dev/null \
    || fail "docker/prometheus/prometheus.yml does not pass promtool check config"
  rm -f "${TMPDIR:-/tmp}/fraud-prometheus-$$.yml"
  echo "   prometheus.yml passes promtool check config"
fi
# The dashboard refers to the provisioned datasource.
python3 - <<'PY' || fail "the dashboard and the provisioned datasource disagree"
import json, re
uid = re.search(r"uid: (\S+)", open("docker/grafana/provisioning/datasources/prometheus.yml").read()).group(1)
panels = json.load(open("docker/grafana/fraud-detector.json"))["panels"]
uids = {p["datasource"]["uid"] for p in panels if "datasource" in p}
assert uids == {uid}, (uids, uid)
PY
echo "docker checks OK"
