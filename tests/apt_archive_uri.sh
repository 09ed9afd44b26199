#!/usr/bin/env bash
# Prints the archive URI that this machine's apt uses for a Debian suite, so
# that a check which needs the archive (debootstrap, a backports install)
# goes exactly where apt goes, a proxy or a local mirror included. The
# repository names no archive host of its own.
#
# Reads the deb822 sources (*.sources: the URIs: of the first enabled stanza
# of Types: deb whose Suites: has the suite), then the one-line sources
# (sources.list and *.list: the first "deb [options] URI suite ..." line).
# Exit 0 with the URI on stdout; exit 1 with one line on stderr when no
# source names the suite.
#
# Usage: tests/apt_archive_uri.sh [SUITE]          (default: bookworm)
# APT_SOURCES_LIST and APT_SOURCES_PARTS point elsewhere, for tests.
set -euo pipefail
suite="${1:-bookworm}"
list="${APT_SOURCES_LIST:-/etc/apt/sources.list}"
parts="${APT_SOURCES_PARTS:-/etc/apt/sources.list.d}"

from_deb822() { # $1: a .sources file
  awk -v suite="$suite" '
    function flush() {
      if (is_deb && has_suite && enabled && uri != "") { print uri; found = 1; exit }
      is_deb = 0; has_suite = 0; enabled = 1; uri = ""
    }
    BEGIN { enabled = 1 }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    {
      field = tolower($1); sub(/:$/, "", field)
      if (field == "types")   { for (i = 2; i <= NF; i++) if ($i == "deb") is_deb = 1 }
      if (field == "suites")  { for (i = 2; i <= NF; i++) if ($i == suite) has_suite = 1 }
      if (field == "uris")    { uri = $2 }
      if (field == "enabled") { enabled = tolower($2) != "no" }
    }
    END { if (!found) flush() }
  ' "$1"
}

from_one_line() { # $1: a .list file
  awk -v suite="$suite" '
    /^[ \t]*deb[ \t]/ {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite) { print $i; exit }
    }
  ' "$1"
}

candidates=()
[ -d "$parts" ] && for f in "$parts"/*.sources; do [ -f "$f" ] && candidates+=("$f"); done
[ -f "$list" ] && candidates+=("$list")
[ -d "$parts" ] && for f in "$parts"/*.list; do [ -f "$f" ] && candidates+=("$f"); done

for f in "${candidates[@]}"; do
  case "$f" in
    *.sources) uri=$(from_deb822 "$f") ;;
    *) uri=$(from_one_line "$f") ;;
  esac
  if [ -n "$uri" ]; then
    echo "${uri%/}"
    exit 0
  fi
done
echo "no apt source for the '$suite' suite in $list or $parts/*.sources|*.list" >&2
exit 1
