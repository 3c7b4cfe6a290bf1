#!/usr/bin/env python3
"""The REST API's role matrix, driven by the OpenAPI description (run by ops/schemathesis.sh).

Every operation of schemas/openapi.json is called once without a token and once with each
token given, and the answer is held against the operation's `x-cistern-role` (the least role
that may call it, which a unit test in src/api/mod.rs checks against the server's policy table)
and the token's scope:

- no token: 401 `unauthorized` with `WWW-Authenticate: Bearer` (public operations are skipped);
- a role below the operation's: 403 `forbidden`;
- a role that suffices but a scope that does not (`read` allows reads only, `operate` also the
  changes an operator may make): 403 `out_of_scope`;
- otherwise: anything but 401 and 403 (path parameters are schema-valid ids that name nothing,
  and bodies are `{}`, so an allowed call ends in 400, 404, 409 or 422 without changing
  anything);

and the description must document 401 for every protected operation and 403 for every one that
some token is refused. Exits 1 on any mismatch.

Usage: rest_roles.py --url BASE --spec schemas/openapi.json --token ROLE[/SCOPE]=TOKEN ...
"""

import argparse
import json
import re
import sys
import urllib.error
import urllib.request

ROLES = ["viewer", "operator", "rule-author", "admin"]
# The scope a token of each role gets when its creator names none (`Scope::of_role`).
DEFAULT_SCOPE = {"viewer": "read", "operator": "operate", "rule-author": "admin", "admin": "admin"}
METHODS = ["get", "post", "put", "patch", "delete"]
# Schema-valid values that name nothing on the demo, tried in order against a parameter's pattern.
CANDIDATES = ["x1", "WO-000001", "x1@room", "1", "x1.rhai", "nothing"]


def decision(role, scope, needed, read):
    """None when allowed, else the error code the policy answers with."""
    if ROLES.index(role) < ROLES.index(needed):
        return "forbidden"
    if read or scope == "admin" or (scope == "operate" and ROLES.index(needed) <= 1):
        return None
    return "out_of_scope"


def value_for(param):
    schema = param.get("schema", {})
    if "example" in param:
        return str(param["example"])
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("type") == "integer":
        return str(max(1, schema.get("minimum", 1)))
    pattern = schema.get("pattern")
    for c in CANDIDATES:
        if pattern is None or re.search(pattern, c):
            return c
    return "x1"


def concrete(path, op, item):
    params = {p["name"]: p for p in item.get("parameters", []) + op.get("parameters", [])}
    def fill(m):
        p = params.get(m.group(1), {"name": m.group(1)})
        return urllib.request.quote(value_for(p), safe="")
    return re.sub(r"\{([^}]+)\}", fill, path)


def call(url, method, token, op):
    body = None
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    rb = op.get("requestBody")
    if rb:
        content = rb.get("content", {})
        ctype = "application/json" if "application/json" in content else next(iter(content), "application/json")
        headers["Content-Type"] = ctype
        body = b"{}" if ctype == "application/json" else b""
    req = urllib.request.Request(url, data=body, method=method.upper(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def error_code(raw):
    try:
        return json.loads(raw)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--token", action="append", default=[], help="ROLE[/SCOPE]=TOKEN")
    args = ap.parse_args()
    doc = json.load(open(args.spec, encoding="utf-8"))
    principals = []
    for t in args.token:
        who, token = t.split("=", 1)
        role, _, scope = who.partition("/")
        if role not in ROLES:
            sys.exit(f"rest_roles.py: unknown role {role}")
        principals.append((who, role, scope or DEFAULT_SCOPE[role], token))

    failures = []
    calls = 0
    tally = {who: {"allowed": 0, "refused": 0} for who, *_ in principals}
    operations = 0
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            needed = op.get("x-cistern-role")
            name = f"{method.upper()} {path}"
            if needed == "public":
                continue
            if needed not in ROLES:
                failures.append(f"{name}: x-cistern-role {needed!r} is not a role")
                continue
            operations += 1
            url = args.url.rstrip("/") + concrete(path, op, item)
            documented = set(op.get("responses", {}))
            if "401" not in documented:
                failures.append(f"{name}: 401 is not documented")
            status, headers, raw = call(url, method, None, op)
            calls += 1
            if status != 401 or error_code(raw) != "unauthorized" or "Bearer" not in (headers.get("WWW-Authenticate") or ""):
                failures.append(f"{name} without a token: {status} {raw[:200]!r} (want 401 unauthorized, WWW-Authenticate: Bearer)")
            read = method == "get"
            for who, role, scope, token in principals:
                want = decision(role, scope, needed, read)
                status, _, raw = call(url, method, token, op)
                calls += 1
                if want is None:
                    tally[who]["allowed"] += 1
                    if status in (401, 403):
                        failures.append(f"{name} as {who}: {status} {raw[:200]!r} (the policy allows it)")
                else:
                    tally[who]["refused"] += 1
                    if "403" not in documented:
                        failures.append(f"{name}: 403 is not documented, but {who} is refused")
                    if status != 403 or error_code(raw) != want:
                        failures.append(f"{name} as {who}: {status} {raw[:200]!r} (want 403 {want})")

    for who, t in tally.items():
        print(f"rest_roles.py: {who}: {t['allowed']} operations allowed, {t['refused']} refused, as the policy says"
              if not any(f" as {who}:" in f for f in failures) else f"rest_roles.py: {who}: see the failures below")
    print(f"rest_roles.py: {operations} protected operations, {len(principals)} tokens, {calls} calls, {len(failures)} failures")
    for f in sorted(set(failures)):
        print(f"  FAIL {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
