"""Writes the Hetzner spec as the API serves it today: this copy predates the removal of
`server.datacenter` on 2026-07-01 (specs/README.md) and still lists it as required, so it is
taken out of every `required` list, as the contract tests do. Nothing else is changed.

usage: spec-as-served.py IN.json OUT.json"""

import json
import sys


def relax(node):
    if isinstance(node, dict):
        required = node.get("required")
        if isinstance(required, list) and "datacenter" in required:
            node["required"] = [r for r in required if r != "datacenter"]
        for value in node.values():
            relax(value)
    elif isinstance(node, list):
        for value in node:
            relax(value)


spec = json.load(open(sys.argv[1]))
relax(spec)
with open(sys.argv[2], "w") as out:
    json.dump(spec, out)
