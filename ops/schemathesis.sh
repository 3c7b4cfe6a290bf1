#!/usr/bin/env bash
# The REST API against its own OpenAPI description: starts `cistern demo` (4 rooms, a copy of the
# rule library, a fresh data directory) on a free port, issues an admin API token, and runs
# schemathesis (every check, positive and negative data) over every operation. Exits non-zero
# when schemathesis finds a failure. ops/schemathesis.toml lists the state-dependent refusals
# expected of schema-valid requests (a demo room takes no set-points, a script that does not compile). Usage: ops/schemathesis.sh [CISTERN_BINARY] [EXTRA ARGS...]
# (default binary: target/debug/cistern; extra arguments go to `schemathesis run`, e.g.
# `--max-examples 50`).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/debug/cistern}"
shift || true
command -v schemathesis >/dev/null 2>&1 || {
  echo "ops/schemathesis.sh: schemathesis is not installed (pip install schemathesis)" >&2
  exit 1
}

work="$(mktemp -d)"
demo_pid=""
cleanup() {
  if [ -n "$demo_pid" ]; then kill "$demo_pid" 2>/dev/null || true; wait "$demo_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/rules" "$work/data"
cp rules/library/*.rhai "$work/rules/"

password="schemathesis-admin-password"
"$bin" demo --rooms 4 --modbus-rooms 0 --http 127.0.0.1:0 --data "$work/data" --rules "$work/rules" \
  --admin-password "$password" >"$work/stdout" 2>"$work/stderr" &
demo_pid=$!

# The demo prints `ready http=http://127.0.0.1:PORT ...` on stdout once it serves.
base=""
for _ in $(seq 1 600); do
  base="$(sed -n 's/^ready .*http=\([^ ]*\).*/\1/p' "$work/stdout" | head -n 1)"
  [ -n "$base" ] && break
  kill -0 "$demo_pid" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "ops/schemathesis.sh: the demo was not ready within 60 s" >&2; cat "$work/stderr" >&2; exit 1; }

session="$(curl -sf -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"user\":\"admin\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
# An API token, not the session: schemathesis calls logout, which would end a session.
token="$(curl -sf -X POST "$base/api/v1/tokens" -H "authorization: Bearer $session" -H 'content-type: application/json' \
  -d '{"name":"schemathesis","role":"admin"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"

echo "ops/schemathesis.sh: $base"
schemathesis --config-file ops/schemathesis.toml run schemas/openapi.json --url "$base" -H "Authorization: Bearer $token" \
  --checks all --no-color --seed 18 --generation-database none "$@"
