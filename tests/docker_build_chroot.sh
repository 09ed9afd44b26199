#!/usr/bin/env bash
# Runs docker/Dockerfile's stages without Docker: each FROM becomes a fresh
# Debian 12 (bookworm) root made by debootstrap, each RUN runs in it with
# chroot, WORKDIR and COPY (also COPY --from=<stage>) are done by hand. The
# final stage then runs as its USER: --version, every shared library
# resolved, and its HEALTHCHECK command against the running service. This
# catches a missing runtime library or build dependency before a user does.
#
# debian:12.8-slim is close to `debootstrap --variant=minbase bookworm`, not
# identical: slim drops docs and locales, which the build does not use.
# The base root is made once and cached (tarball) under
# ${FRAUD_CACHE_DIR:-~/.cache/fraud-detector}; later runs only unpack it.
# The archive is the one this machine's apt uses for bookworm
# (tests/apt_archive_uri.sh); DEBIAN_MIRROR overrides it. With neither, the
# check skips: the repository names no archive host of its own.
# Needs root (chroot, mount). Usage: tests/docker_build_chroot.sh BUILD_DIR
set -euo pipefail
root_dir="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root_dir/build}" && pwd)"
dockerfile="$root_dir/docker/Dockerfile"
cache="${FRAUD_CACHE_DIR:-$HOME/.cache/fraud-detector}"
work="$(mktemp -d /tmp/fraud-chroot-XXXXXX)"
mounts=()
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
  if grep -q " $work/" /proc/mounts; then
    echo "warning: something is still mounted under $work; not removing it" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the Dockerfile check needs root (chroot, mount); run make test as root" >&2
  exit 77
fi
command -v debootstrap >/dev/null || fail "debootstrap missing (make deps installs it)"
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ] && ! mirror=$("$root_dir/tests/apt_archive_uri.sh" bookworm 2>/dev/null); then
  echo "SKIP: no Debian archive for bookworm in this machine's apt sources, and DEBIAN_MIRROR is not set" >&2
  exit 77
fi

base="$cache/bookworm-minbase.tar.gz"
if [ ! -s "$base" ]; then
  echo "== making the Debian 12 base root from $mirror (once; cached in $base)"
  mkdir -p "$cache"
  debootstrap --variant=minbase bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  tar -czf "$base.tmp" -C "$work/base" . && mv "$base.tmp" "$base"
  rm -rf "$work/base"
fi

new_stage_root() { # $1: directory
  mkdir -p "$1"
  tar -xzf "$base" -C "$1"
  cp /etc/resolv.conf "$1/etc/resolv.conf"
  mount -t proc proc "$1/proc"; mounts+=("$1/proc")
  # /dev comes from debootstrap's own device nodes: nothing of the host's
  # is bound in, so removing the work directory can never reach it.
}

# Dockerfile lines with continuations joined.
mapfile -t lines < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dockerfile" | grep -vE '^\s*(#|$)')

declare -A stage_root
stage=0 current="" workdir="/" user=""
for line in "${lines[@]}"; do
  read -r instr rest <<<"$line"
  case "$instr" in
    FROM)
      stage=$((stage + 1)); current="$work/stage$stage"; workdir="/"; user=""
      name=$(sed -nE 's/.* [Aa][Ss] +([A-Za-z0-9_-]+)$/\1/p' <<<"$rest")
      echo "== stage $stage (${name:-final}): $rest -> debootstrap bookworm"
      new_stage_root "$current"
      [ -n "$name" ] && stage_root[$name]="$current" ;;
    WORKDIR)
      workdir="$rest"; mkdir -p "$current$workdir" ;;
    COPY)
      from="$root_dir"
      if [[ "$rest" == --from=* ]]; then
        src_stage=${rest%% *}; src_stage=${src_stage#--from=}; rest=${rest#* }
        from="${stage_root[$src_stage]}"
      fi
      read -r src dst <<<"$rest"
      [[ "$dst" == /* ]] || dst="$workdir/$dst"
      echo "   COPY $src -> $dst"
      if [ -d "$from/$src" ]; then mkdir -p "$current$dst"; cp -a "$from/$src/." "$current$dst/"
      else mkdir -p "$(dirname "$current$dst")"; [[ "$dst" == */ ]] && mkdir -p "$current$dst"
           cp -a "$from/$src" "$current$dst"; fi ;;
    RUN)
      echo "   RUN ${rest:0:100}..."
      chroot "$current" /bin/sh -c "cd '$workdir' && DEBIAN_FRONTEND=noninteractive $rest" \
        >"$work/run.log" 2>&1 || { tail -30 "$work/run.log" >&2; fail "RUN failed: $rest"; } ;;
    USER) user="$rest" ;;
    HEALTHCHECK) healthcheck="$rest" ;;
    ENV|EXPOSE|ENTRYPOINT|CMD|ARG|LABEL) ;;
    *) fail "unsupported Dockerfile instruction $instr" ;;
  esac
done

final="$current"
echo "== final stage: run as USER $user"
[ -n "$user" ] || fail "no USER in the final stage"
spec="$user:$user"
chroot --userspec="$spec" "$final" /usr/local/bin/fraud-detector --version
missing=$(chroot "$final" ldd /usr/local/bin/fraud-detector | grep 'not found' || true)
[ -z "$missing" ] || fail "libraries missing at run time: $missing"

echo "== HEALTHCHECK against the running service (dev broker on the host, memory backend)"
"$build/fraud-mock-broker" -t payments:1 -t fraud-alerts:1 -t payments-dlq:1 \
  --bootstrap-file "$work/bootstrap" >"$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
chroot --userspec="$spec" "$final" /usr/local/bin/fraud-detector \
  -c /etc/fraud-detector/fraud-detector.conf \
  -X "kafka.bootstrap.servers=$(cat "$work/bootstrap")" -X state.backend=memory \
  -X http.listen=127.0.0.1:8080 >"$work/service.log" 2>&1 &
pids+=($!)
check_cmd=$(sed -nE 's/.*CMD \[(.*)\]$/\1/p' <<<"${healthcheck:-}" | tr -d '",')
[ -n "$check_cmd" ] || fail "no HEALTHCHECK CMD [...] in the final stage"
ok=0
for _ in $(seq 100); do
  if chroot --userspec="$spec" "$final" $check_cmd 2>/dev/null; then ok=1; break; fi
  sleep 0.2
done
[ "$ok" = 1 ] || { tail -20 "$work/service.log" >&2; fail "HEALTHCHECK ($check_cmd) never passed"; }
echo "   HEALTHCHECK passed: $check_cmd"
echo "Dockerfile steps OK in a clean Debian 12 root"
