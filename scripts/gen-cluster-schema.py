#!/usr/bin/env python3
"""Writes crates/http/src/cluster_schema.json: the JSON types of a cluster document
(ClusterDescription20240805 of the official description), which Tessera checks every stored
cluster body against. Run from the repository root with the description beside it:
    python3 scripts/gen-cluster-schema.py ../shared/reference/atlas-admin-api-v2-subset.yaml
Only types are kept (object properties, array items, string/boolean/integer/number), so a
cluster Tessera stores is always one a typed client can decode."""
import json
import sys

import yaml

spec = yaml.safe_load(open(sys.argv[1]))
schemas = spec["components"]["schemas"]


def walk(s, depth=0):
    if "$ref" in s:
        if depth > 8:
            return {}
        return walk(schemas[s["$ref"].split("/")[-1]], depth + 1)
    for key in ("allOf", "oneOf", "anyOf"):
        if key in s:
            merged = {"type": "object", "properties": {}}
            for part in s[key]:
                w = walk(part, depth + 1)
                if w.get("type") != "object":
                    return w
                merged["properties"].update(w.get("properties", {}))
            for k, v in s.get("properties", {}).items():
                merged["properties"][k] = walk(v, depth + 1)
            return merged
    t = s.get("type")
    if t == "array":
        return {"type": "array", "items": walk(s.get("items", {}), depth + 1)}
    if t == "object" or "properties" in s:
        return {
            "type": "object",
            "properties": {k: walk(v, depth + 1) for k, v in s.get("properties", {}).items()},
        }
    if t in ("string", "boolean", "integer", "number"):
        return {"type": t}
    return {}


out = walk(schemas["ClusterDescription20240805"])
json.dump(out, open("crates/http/src/cluster_schema.json", "w"), indent=1, sort_keys=True)
print("wrote crates/http/src/cluster_schema.json")
