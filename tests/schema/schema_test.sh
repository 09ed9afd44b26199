#!/usr/bin/env bash
# The record schemas under schemas/ against what the service writes and
# what README shows, with Debian's python3-jsonschema as the validator.
# Usage: tests/schema/schema_test.sh BUILD_DIR encoders|readme
#   encoders: one record of every shape each encoder writes
#             (schema_samples); every schema field must appear in one, and a
#             record with a field the schema lacks must fail
#   readme:   README's example records, its kcat payments and rule records,
#             and the seed's payments
# The records of a running service are validated by schema_records_test.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
mode="${2:-encoders}"
py=/usr/bin/python3 # Debian's, with python3-jsonschema (make test installs it)
"$py" -c 'from jsonschema import Draft202012Validator' 2>/dev/null \
  || { echo "python3-jsonschema not found (make test installs it)" >&2; exit 1; }
validate=("$py" "$root/tests/schema/validate_records.py" "$root/schemas")
outputs=alert,average,late-payment,total,dead-letter-headers
work="$(mktemp -d /tmp/fraud-schema-XXXXXX)"
trap 'rm -rf "$work"' EXIT

case "$mode" in
encoders)
  "$BUILD/tests/schema_samples" >"$work/samples"
  "${validate[@]}" --require "$outputs" --cover "$outputs" <"$work/samples"
  # The guard itself: a field an encoder might add, that no schema has.
  head -n 1 "$work/samples" | sed 's/"rule":/"risk_score":0.9,"rule":/' >"$work/drifted"
  if "${validate[@]}" <"$work/drifted" 2>"$work/drift.err"; then
    echo "FAIL: an alert with a field its schema lacks passed" >&2; exit 1
  fi
  grep -q "risk_score" "$work/drift.err" || { cat "$work/drift.err" >&2; exit 1; }
  # ... and a schema field that no encoder writes.
  grep -v '"event_id"' "$work/samples" >"$work/no-event-id"
  if "${validate[@]}" --cover alert <"$work/no-event-id" 2>"$work/cover.err"; then
    echo "FAIL: a schema field no record had went unnoticed" >&2; exit 1
  fi
  grep -q "event_id" "$work/cover.err" || { cat "$work/cover.err" >&2; exit 1; }
  ;;
readme)
  "$py" "$root/tests/schema/readme_records.py" "$root/README.md" \
    "$root/tests/data/seed-payments.txt" >"$work/readme"
  "${validate[@]}" --require payment,alert,average,late-payment,rule-update <"$work/readme"
  ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac
echo "schemas OK ($mode)"
