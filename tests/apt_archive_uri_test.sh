#!/usr/bin/env bash
# tests/apt_archive_uri.sh against made-up apt sources: deb822 and one-line
# forms, disabled stanzas, deb-src, options in brackets, and none at all.
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/apt_archive_uri.sh"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { APT_SOURCES_LIST="$dir/sources.list" APT_SOURCES_PARTS="$dir/parts" "$script" "$@"; }

mkdir -p "$dir/parts"
# Nothing at all: exit 1, one line on stderr, nothing on stdout.
if out=$(run bookworm 2>"$dir/err"); then fail "found '$out' in empty sources"; fi
[ "$(wc -l <"$dir/err")" = 1 ] || fail "expected one line on stderr, got: $(cat "$dir/err")"
[ -z "$out" ] || fail "printed '$out' with no source"

# One-line form, with options, after a deb-src line and another suite.
cat >"$dir/sources.list" <<'LIST'
# comment
deb-src http://src.invalid/debian bookworm main
deb http://other.invalid/debian bullseye main
deb [arch=amd64 signed-by=/k.gpg] http://one-line.invalid/debian/ bookworm main
LIST
[ "$(run bookworm)" = "http://one-line.invalid/debian" ] || fail "one-line form: $(run bookworm)"

# deb822 wins over the one-line form; a disabled stanza and a deb-src stanza
# are passed over; the suite must match exactly (not bookworm-security).
cat >"$dir/parts/debian.sources" <<'SOURCES'
Types: deb
URIs: http://security.invalid/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.invalid/debian
Suites: bookworm
Enabled: no

Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm

Types: deb
# a comment inside the stanza
URIs: http://deb822.invalid/debian
Suites: bookworm bookworm-updates
Components: main
SOURCES
[ "$(run bookworm)" = "http://deb822.invalid/debian" ] || fail "deb822 form: $(run bookworm)"
[ "$(run bookworm-security)" = "http://security.invalid/debian-security" ] || fail "other suite"
if run trixie >/dev/null 2>&1; then fail "found a source for trixie"; fi
echo "apt_archive_uri: all cases passed"
