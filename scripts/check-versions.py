#!/usr/bin/env python3
"""Asks a running Tessera for every operation of Atlas' descriptions that it serves, at every
version the description gives the operation, and reports each one answered 406 (a version
Tessera does not serve). A one-off check, not a test (it needs the descriptions, which the
repository does not carry):

    scripts/check-versions.py BASE_URL PUBLIC_KEY PRIVATE_KEY ORG_ID GROUP_ID DESCRIPTION.yaml...

An operation counts as served when Tessera's route table has its method and path: any
status but 404-for-an-unknown-route and 405 (so 400/404 for the placeholder ids are fine)."""
import re
import sys

import requests
import yaml
from requests.auth import HTTPDigestAuth

base, pub, priv, org, group, *specs = sys.argv[1:]
auth = HTTPDigestAuth(pub, priv)
fills = {"orgId": org, "groupId": group, "clusterName": "c1", "userName": "a@example.com",
         "teamName": "ops", "limitName": "atlas.project.deployment.clusters",
         "roleName": "r1", "databaseName": "admin", "username": "app",
         "entryValue": "192.0.2.1", "ipAddress": "192.0.2.1"}
bad, checked = [], 0
for spec in specs:
    d = yaml.safe_load(open(spec))
    for path, ops in d["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            versions = set()
            for r in op.get("responses", {}).values():
                for ct in r.get("content", {}):
                    m = re.match(r"application/vnd\.atlas\.(\d{4}-\d{2}-\d{2})\+json", ct)
                    if m:
                        versions.add(m.group(1))
            url = base + re.sub(r"\{(\w+)\}", lambda m: fills.get(m.group(1), "c" * 24), path)
            for v in sorted(versions):
                r = requests.request(method.upper(), url, auth=auth, json={} if method != "get" and method != "delete" else None,
                                     headers={"Accept": f"application/vnd.atlas.{v}+json"})
                if r.status_code == 405 or (r.status_code == 404 and "RESOURCE_NOT_FOUND" in r.text):
                    break  # not served
                checked += 1
                if r.status_code == 406:
                    bad.append(f"{method.upper()} {path} at {v}")
print(f"{checked} (operation, version) pairs served; {len(bad)} answered 406")
for b in bad:
    print("  406:", b)
