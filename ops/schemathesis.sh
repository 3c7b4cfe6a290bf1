#!/usr/bin/env bash
# The REST API against its own OpenAPI description, for every role: starts `cistern demo` (4
# rooms, a copy of the rule library, a fresh data directory) on a free port, issues one API token
# per role (viewer, operator, rule-author, admin: each with the scope its role gets by default),
# then
#   1. ops/rest_roles.py: every operation once with every role's token and every scope, against
#      the `x-cistern-role` the description gives it (allowed: neither 401 nor 403; forbidden: 403
#      with the documented error body; no token: 401), and
#   2. schemathesis (every check, positive and negative data) over every operation, once per role.
# Exits non-zero when either finds a failure, or when a role's token no longer authenticates
# after its run (a run that ended up testing 401s only would prove nothing).
# ops/schemathesis.toml lists the refusals of schema-valid requests that depend on state, and why.
#
# Usage: ops/schemathesis.sh [CISTERN_BINARY] [EXTRA ARGS...]
#   default binary: target/debug/cistern; extra arguments go to every `schemathesis run`, e.g.
#   `--max-examples 50`. SCHEMATHESIS_ROLES (default "viewer operator rule-author admin") picks
#   the roles schemathesis runs as; SCHEMATHESIS_NONADMIN_ARGS are added to the runs of every
#   role but admin (ops/test.sh: `--phases examples,coverage`, since what those runs add to the
#   admin's is the 401s and 403s).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/debug/cistern}"
shift || true
roles="${SCHEMATHESIS_ROLES:-viewer operator rule-author admin}"
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
# API tokens, not sessions: schemathesis calls logout, which would end a session. All are issued
# before any run, since a run may change the admin's password or end the session.
issue() { # NAME ROLE [SCOPE] -> prints "ID TOKEN"
  local scope=""
  [ -n "${3:-}" ] && scope=",\"scope\":\"$3\""
  curl -sf -X POST "$base/api/v1/tokens" -H "authorization: Bearer $session" -H 'content-type: application/json' \
    -d "{\"name\":\"$1\",\"role\":\"$2\"$scope}" | python3 -c 'import json,sys; t=json.load(sys.stdin); print(t["id"], t["token"])'
}
declare -A token
for role in viewer operator rule-author admin; do
  read -r _ token[$role] < <(issue "schemathesis-$role" "$role")
done
# The role matrix also checks the narrower scopes of an admin's token.
read -r _ admin_read < <(issue schemathesis-admin-read admin read)
read -r _ admin_operate < <(issue schemathesis-admin-operate admin operate)
echo "ops/schemathesis.sh: $base"

failed=()
python3 ops/rest_roles.py --url "$base" --spec schemas/openapi.json \
  --token "viewer=${token[viewer]}" --token "operator=${token[operator]}" \
  --token "rule-author=${token[rule-author]}" --token "admin=${token[admin]}" \
  --token "admin/read=$admin_read" --token "admin/operate=$admin_operate" || failed+=(role-matrix)

for role in $roles; do
  [ -n "${token[$role]:-}" ] || { echo "ops/schemathesis.sh: unknown role $role" >&2; exit 2; }
  # DELETE /api/v1/tokens/{id} revokes a token of its own (the stateful phase would otherwise
  # take an id from GET /api/v1/tokens, perhaps the run's own, and test 401s from then on).
  read -r revocable _ < <(issue "schemathesis-$role-revocable" viewer)
  role_args=()
  # shellcheck disable=SC2206 # word-split on purpose: a list of arguments
  [ "$role" != admin ] && role_args=(${SCHEMATHESIS_NONADMIN_ARGS:-})
  echo "ops/schemathesis.sh: schemathesis as $role ${role_args[*]}"
  CISTERN_ST_REVOCABLE_TOKEN="$revocable" \
    schemathesis --config-file ops/schemathesis.toml run schemas/openapi.json --url "$base" \
    -H "Authorization: Bearer ${token[$role]}" \
    --checks all --no-color --seed 18 --generation-database none "$@" "${role_args[@]}" || failed+=("$role")
  status="$(curl -s -o /dev/null -w '%{http_code}' "$base/api/v1/auth/me" -H "Authorization: Bearer ${token[$role]}")"
  if [ "$status" != 200 ]; then
    echo "ops/schemathesis.sh: the $role token answers $status after its run: the run did not test as $role" >&2
    failed+=("$role-token")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "ops/schemathesis.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "ops/schemathesis.sh: passed (role matrix; schemathesis as: $roles)"
