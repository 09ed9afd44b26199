#!/usr/bin/python3
"""Prints the example records of README.md and the seed as validate_records.py
lines ("<schema>\t<key>\t<json>"):
  - each ```json block right after a "<!-- schema: NAME -->" line;
  - each payment and rule record that README's kcat blocks produce with
    echo 'key:value' or printf 'key:value\n...', by topic (payments: payment;
    fraud-rules: rule-update, tombstones left out); one under a comment
    saying it is "not valid" is printed as "!payment": it must fail;
  - every line of tests/data/seed-payments.txt ("key:json").
Exits 1 when README has no marked block, so a renamed marker cannot make
the test pass on nothing."""
import json
import re
import sys

readme_path, seed_path = sys.argv[1], sys.argv[2]
lines = open(readme_path, encoding="utf-8").read().split("\n")
out, marked = [], 0
i = 0
while i < len(lines):
    m = re.match(r"^<!-- schema: ([a-z-]+) -->$", lines[i])
    if m:
        if lines[i + 1].strip() != "```json":
            sys.exit(f"README line {i + 2}: a ```json block must follow the schema marker")
        j = i + 2
        while lines[j].strip() != "```":
            j += 1
        text = "\n".join(lines[i + 2 : j])
        out.append((m.group(1), "", json.dumps(json.loads(text), separators=(",", ":"))))
        marked += 1
        i = j
    i += 1

topics = {"payments": "payment", "fraud-rules": "rule-update"}
for n, line in enumerate(lines):
    m = re.search(r"""(echo|printf) '([^']*)' \| kcat -P .*-t ([a-z-]+) -K:( |$)""", line)
    if not m or m.group(3) not in topics or line.rstrip().endswith("-Z"):
        continue
    body = m.group(2).replace("\\n", "\n")
    # README's examples of bad input must fail their schema ("!").
    bad = "not valid" in lines[n - 1]
    for rec in filter(None, body.split("\n")):
        key, value = rec.split(":", 1)
        out.append((("!" if bad else "") + topics[m.group(3)], key, value))

for rec in open(seed_path, encoding="utf-8").read().split("\n"):
    if rec:
        key, value = rec.split(":", 1)
        out.append(("payment", key, value))

if marked == 0:
    sys.exit("README has no <!-- schema: NAME --> example")
for name, key, value in out:
    print(f"{name}\t{key}\t{value}")
