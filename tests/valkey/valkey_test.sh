#!/usr/bin/env bash
# The integration suites that exercise Redis itself (the store and its Lua
# step, outages, the exactly-once protocol and its outbox, erasure) against
# Valkey 8 instead of Redis, for users who move to Valkey. Valkey 8 is in Debian's bookworm-backports; that suite is added
# only here, in private apt directories (this machine's apt sources are not
# touched), at the archive address this machine's apt already uses for
# bookworm (tests/apt_archive_uri.sh). The valkey-server and valkey-tools
# packages are downloaded and unpacked (not installed) into
# ~/.cache/fraud-detector/valkey-<version> (or $TEST_TOOLS_CACHE), and the
# suite runs with redis-server and redis-cli on its PATH pointing at them.
# Usage: tests/valkey/valkey_test.sh BUILD_DIR [ctest arguments...]
#        (default: those suites; -L integration for every one)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
shift || true
[ $# -gt 0 ] || set -- -R 'integration_(store|state|exactly_once|erasure)$'
cache="${TEST_TOOLS_CACHE:-$HOME/.cache/fraud-detector}"
apt_dir="$(mktemp -d /tmp/fraud-valkey-apt-XXXXXX)"
trap 'rm -rf "$apt_dir"' EXIT

uri="$("$root/tests/apt_archive_uri.sh" bookworm)"
mkdir -p "$apt_dir/sources" "$apt_dir/lists/partial" "$apt_dir/debs"
cat >"$apt_dir/sources/backports.sources" <<SOURCES
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
apt_opts=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$apt_dir/sources"
          -o "Dir::State::Lists=$apt_dir/lists" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq
version="$(apt-cache "${apt_opts[@]}" policy valkey-server | awk '/Candidate:/ { print $2 }')"
case "$version" in
  8.*) ;;
  *) echo "FAIL: bookworm-backports offers valkey-server '$version', not Valkey 8" >&2; exit 1 ;;
esac
valkey="$cache/valkey-$version"
if [ ! -x "$valkey/usr/bin/valkey-server" ]; then
  (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download -qq \
     "valkey-server=$version" "valkey-tools=$version")
  rm -rf "$valkey" && mkdir -p "$valkey"
  for deb in "$apt_dir"/debs/*.deb; do dpkg-deb -x "$deb" "$valkey"; done
fi
mkdir -p "$valkey/shim"
ln -sf "$valkey/usr/bin/valkey-server" "$valkey/shim/redis-server"
ln -sf "$valkey/usr/bin/valkey-cli" "$valkey/shim/redis-cli"
export PATH="$valkey/shim:$PATH"
redis-server --version | grep -q '^Valkey server v=8\.' \
  || { echo "FAIL: redis-server on the PATH is not Valkey 8: $(redis-server --version)" >&2; exit 1; }
echo "== the integration suite against $(redis-server --version | cut -d' ' -f1-3)"
cd "$BUILD" && ctest --output-on-failure "$@"
