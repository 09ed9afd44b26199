#!/usr/bin/env bash
# The Prometheus alert rules (docker/prometheus/alerts.yml): promtool finds
# them valid, their unit tests pass (each rule fires when what it guards goes
# wrong, and stays quiet otherwise), and every runbook they point to is a
# section of README. integration_http checks they name exported series.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/docker/prometheus"
command -v promtool >/dev/null || { echo "promtool not found (Debian package prometheus; make test installs it)" >&2; exit 1; }
promtool check rules alerts.yml
promtool test rules alerts.test.yml
# GitHub's anchor of a heading: lower case, spaces to dashes, punctuation gone.
anchors=$(grep -E '^#{2,4} ' "$root/README.md" | sed -E 's/^#+ //' | tr 'A-Z' 'a-z' \
  | sed -E 's/[^a-z0-9 _-]//g; s/ /-/g')
missing=0
for anchor in $(grep -o 'README.md#[a-z0-9_-]*' alerts.yml | cut -d'#' -f2 | sort -u); do
  grep -qx -- "$anchor" <<<"$anchors" || { echo "runbook README.md#$anchor: no such section" >&2; missing=1; }
done
[ "$missing" = 0 ] && echo "every runbook is a README section"
