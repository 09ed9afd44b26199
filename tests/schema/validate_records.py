#!/usr/bin/python3
"""Validates records against fraud-detector's JSON Schemas (draft 2020-12).

Reads lines "<schema>\t<key>\t<json>" from stdin, where <schema> names a file
schemas/<schema>.v1.schema.json (for dead-letter-headers the JSON is the
record's headers as an object). A rule-update record is also checked against
the variant of the rule its key names. A schema name written "!name" means
the record must fail that schema (an example of bad input).

  --require a,b,...   each of these schemas must have had at least one record
  --cover a,b,...     every property these schemas declare (and each alert
                      variant's params) must have appeared in some record, so
                      a schema cannot describe a field no encoder writes

Exits 1 on the first kind of failure, naming the record and the reason.
Uses Debian's python3-jsonschema; no network (every $ref resolves locally).
"""
import argparse
import json
import os
import re
import sys

import jsonschema
from jsonschema import Draft202012Validator


def load_schemas(directory):
    store, by_name = {}, {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".v1.schema.json"):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            schema = json.load(f)
        Draft202012Validator.check_schema(schema)
        store[schema["$id"]] = schema
        by_name[name[: -len(".v1.schema.json")]] = schema
    return store, by_name


def declared(schema):
    """Property paths a schema declares: top level, and params of each variant."""
    paths = set(schema.get("properties", {}))
    for variant in schema.get("$defs", {}).values():
        props = variant.get("properties", {})
        paths.update(p for p in props if p != "params")
        for p in props.get("params", {}).get("properties", {}):
            paths.add("params." + p)
    for p in schema.get("properties", {}).get("params", {}).get("properties", {}):
        paths.add("params." + p)
    return paths


def seen_paths(record):
    paths = set(record)
    if isinstance(record.get("params"), dict):
        paths.update("params." + p for p in record["params"])
    return paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("schema_dir")
    ap.add_argument("--require", default="")
    ap.add_argument("--cover", default="")
    args = ap.parse_args()
    store, by_name = load_schemas(args.schema_dir)
    validators = {}
    for name, schema in by_name.items():
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        validators[name] = Draft202012Validator(schema, resolver=resolver)
    counts = {name: 0 for name in by_name}
    seen = {name: set() for name in by_name}
    failures = 0
    for n, line in enumerate(sys.stdin, 1):
        line = line.rstrip("\n")
        if not line:
            continue
        name, key, text = line.split("\t", 2)
        must_fail = name.startswith("!")
        name = name.lstrip("!")
        if name not in validators:
            print(f"line {n}: no schema named {name!r}", file=sys.stderr)
            return 1
        try:
            record = json.loads(text)
        except ValueError as e:
            if must_fail:
                continue
            print(f"line {n}: {name} record is not JSON ({e}): {text}", file=sys.stderr)
            failures += 1
            continue
        errors = list(validators[name].iter_errors(record))
        if name == "rule-update" and not errors:
            # A fixed rule's id is its type; any other id is an aggregate instance.
            fixed = {"amount_jump", "cumulative_limit", "small_then_large", "count_average",
                     "velocity"}
            variant = by_name[name]["$defs"].get(key if key in fixed else "aggregate")
            if variant is None or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key or ""):
                errors = [f"key {key!r} names no rule"]
            else:
                sub = Draft202012Validator(variant, resolver=validators[name].resolver)
                errors = list(sub.iter_errors(record))
        if must_fail:
            if not errors:
                print(f"line {n}: {name}: an example of bad input passes the schema: {text}",
                      file=sys.stderr)
                failures += 1
            continue
        for e in errors:
            where = "/".join(str(p) for p in getattr(e, "absolute_path", []))
            print(f"line {n}: {name} record fails its schema at '{where}': "
                  f"{getattr(e, 'message', e)}\n  record: {text}", file=sys.stderr)
            failures += 1
        counts[name] += 1
        if isinstance(record, dict):
            seen[name] |= seen_paths(record)
    for name in filter(None, args.require.split(",")):
        if counts.get(name, 0) == 0:
            print(f"no {name} record was validated", file=sys.stderr)
            failures += 1
    for name in filter(None, args.cover.split(",")):
        missing = declared(by_name[name]) - seen[name]
        if missing:
            print(f"{name}: the schema declares {sorted(missing)}, which no record had",
                  file=sys.stderr)
            failures += 1
    summary = ", ".join(f"{name} {c}" for name, c in sorted(counts.items()) if c)
    print(f"validated: {summary}; {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
