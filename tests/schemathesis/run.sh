#!/usr/bin/env bash
# Schemathesis against a live `assent` (issue 15, "Prove it"): generates requests from
# GET /v1/openapi.json with two tenants' admin tokens and fails on any 5xx or any
# response the document does not describe (status, content type, body schema), and on
# one tenant reading the other's objects. SQLite always; PostgreSQL too when
# ASSENT_TEST_POSTGRES_URL is set (as a plain role owning a fresh database).
#
# Knobs: ASSENT_BIN (a built binary; default: build target/debug/assent),
# SCHEMATHESIS_MAX_EXAMPLES (default 20), SCHEMATHESIS_WORKERS (default 2),
# SCHEMATHESIS_SEED, SCHEMATHESIS_REPORT_DIR (keep the JUnit/NDJSON reports there),
# SCHEMATHESIS_CHECKS (e.g. `all` to explore), SCHEMATHESIS_EXTRA_ARGS (more flags).
set -euo pipefail

# One field of the JSON object on stdin (python3 is on every machine; jq may not be).
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
cd "$(dirname "$0")/../.."
root="$PWD"
target="${CARGO_TARGET_DIR:-$root/target}"
here="$root/tests/schemathesis"

# Python 3.11 before 3.11.8 can fail parsing in two threads at once ("AST constructor
# recursion depth mismatch", CPython gh-106905), which hypothesis does with two workers:
# prefer a newer Python, else run one worker.
python=""
for candidate in python3.13 python3.12 "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 2>/dev/null | tail -n1)" python3; do
  if [ -n "$candidate" ] && "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    python="$candidate"
    break
  fi
done
workers="${SCHEMATHESIS_WORKERS:-2}"
if [ -z "$python" ]; then
  python=python3
  workers="${SCHEMATHESIS_WORKERS:-1}"
fi

# The venv lives in the target dir: rebuilt only when the pin or the Python changes.
venv="$target/schemathesis-venv"
stamp="$venv/.requirements"
want="$(cat "$here/requirements.txt"; "$python" --version)"
if [ "$want" != "$(cat "$stamp" 2>/dev/null)" ]; then
  echo "== schemathesis: installing $(grep -v '^#' "$here/requirements.txt") into $venv with $("$python" --version)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" >"$stamp"
fi
st="$venv/bin/schemathesis"

bin="${ASSENT_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --locked --quiet -p assent --bin assent
  bin="$target/debug/assent"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

server=""
pg_admin=""
pg_name=""
work=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=""
  if [ -n "$pg_name" ]; then
    psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_name WITH (FORCE)" -c "DROP ROLE IF EXISTS $pg_name" >/dev/null || true
  fi
  pg_name=""
  [ -n "$work" ] && rm -rf "$work"
  work=""
}
trap cleanup EXIT

# Runs one backend; prints a summary line and returns schemathesis' exit code.
run_backend() {
  local backend="$1"
  work="$(mktemp -d)"
  local port
  port="$(free_port)"
  export ASSENT_DATA_DIR="$work/data" ASSENT_LISTEN="127.0.0.1:$port" ASSENT_LOG=warn
  unset ASSENT_DATABASE_URL
  if [ "$backend" = postgres ]; then
    pg_admin="$ASSENT_TEST_POSTGRES_URL"
    pg_name="assent_st_${port}_$$"
    # A plain role that owns its database: no superuser, no BYPASSRLS, so row-level
    # security applies as in production.
    psql "$pg_admin" -qc "CREATE ROLE $pg_name LOGIN PASSWORD '$pg_name' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE" \
      -c "CREATE DATABASE $pg_name OWNER $pg_name" >/dev/null
    local hostpart="${pg_admin#*://}"
    hostpart="${hostpart#*@}"
    export ASSENT_DATABASE_URL="postgres://$pg_name:$pg_name@${hostpart%/*}/$pg_name"
  fi

  local base="http://$ASSENT_LISTEN"
  local auth="$work/auth.json" tokens=()
  for slug in alpha beta; do
    "$bin" tenant create --slug "$slug" --name "Schemathesis $slug" --json >/dev/null
  done
  "$bin" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 200); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "$base/readyz" >/dev/null || { echo "assent did not start:"; cat "$work/server.log"; return 1; }
  for slug in alpha beta; do
    local key id secret
    key="$("$bin" apikey create --tenant "$slug" --role admin --json)"
    id="$(json_field client_id <<<"$key")"
    secret="$(json_field client_secret <<<"$key")"
    tokens+=("$(curl -sf -u "$id:$secret" -d grant_type=client_credentials "$base/v1/auth/token" | json_field access_token)")
  done
  # A subject and a purpose of `alpha` for the hooks to refer to: bodies naming an
  # unknown one are refused, and a generator cannot guess a real id.
  local alpha_auth="Authorization: Bearer ${tokens[0]}"
  ASSENT_ST_PURPOSE=st_fixture
  curl -sf -H "$alpha_auth" -H 'Content-Type: application/json' "$base/v1/purposes" -d '{"code": "st_fixture",
    "name": {"ru": "Фикстура", "en": "Fixture"}, "legal_basis": "consent", "channels": ["email"],
    "data_categories": ["email"], "retention_days": 365}' >/dev/null
  ASSENT_ST_SUBJECT_ID="$(curl -sf -H "$alpha_auth" -H 'Content-Type: application/json' "$base/v1/subjects" \
    -d '{"external_ref": "st-fixture", "email": "fixture@example.com"}' | json_field id)"
  # A banner of `alpha` and one visitor's answer to it: linking needs a visitor id the
  # company issued (a MAC under the installation's key), which no generator can make.
  curl -sf -X PUT -H "$alpha_auth" -H 'Content-Type: application/json' "$base/v1/banner" \
    -d '{"categories": [{"code": "necessary"}], "origins": ["https://st.example"]}' >/dev/null
  ASSENT_ST_VISITOR="$(curl -sf -H 'Origin: https://st.example' -H 'Content-Type: application/json' \
    "$base/c/alpha/consents" -d '{"version": 1, "kind": "accept"}' | json_field visitor_id)"
  # A purpose on a contract and a recipient of it: a disclosure of the fixture subject
  # needs a legal basis in force and a recipient in the register.
  curl -sf -H "$alpha_auth" -H 'Content-Type: application/json' "$base/v1/purposes" -d '{"code": "st_contract",
    "name": {"ru": "Договор", "en": "Contract"}, "legal_basis": "contract", "channels": ["email"],
    "data_categories": ["email"], "retention_days": 365}' >/dev/null
  ASSENT_ST_RECIPIENT="$(curl -sf -H "$alpha_auth" -H 'Content-Type: application/json' "$base/v1/recipients" \
    -d '{"name": "St Processor", "kind": "processor", "country": "RU", "contract": {"number": "P-1", "date": "2026-01-01"},
    "purposes": ["st_contract"], "data_categories": ["email"]}' | json_field id)"
  curl -sf -X PUT -H "$alpha_auth" -H 'Content-Type: application/json' "$base/v1/operator" \
    -d '{"name": "ООО «Альфа»", "address": "Москва", "inn": "7707083893", "ogrn": "1027700132195",
    "responsible": {"name": "Иванова Анна", "contact": "dpo@alpha.example"}, "database_country": "RU",
    "database_location": "Москва", "protection_measures": ["шифрование"], "subject_categories": ["клиенты"],
    "processing_started_on": "2020-01-01"}' >/dev/null
  export ASSENT_ST_PURPOSE ASSENT_ST_SUBJECT_ID ASSENT_ST_VISITOR ASSENT_ST_RECIPIENT
  # Web Fuzzing Commons auth: two users whose objects must stay apart.
  python3 - "Bearer ${tokens[0]}" "Bearer ${tokens[1]}" >"$auth" <<'PY'
import json, sys
print(json.dumps({"auth": [
    {"name": name, "fixedHeaders": [{"name": "Authorization", "value": value}]}
    for name, value in (("alpha", sys.argv[1]), ("beta", sys.argv[2]))]}))
PY
  cat >"$work/schemathesis.toml" <<TOML
[auth.wfc]
path = "$auth"
peers = ["alpha", "beta"]
TOML

  # What must hold: no 5xx; status, content type, headers and body as documented; 405
  # for methods a path does not have; neither tenant reads the other's objects.
  # positive_data_acceptance: a request the document calls valid is not refused (4xx).
  local checks=not_a_server_error,status_code_conformance,content_type_conformance
  checks+=,response_schema_conformance,response_headers_conformance,unsupported_method
  checks+=,allow_header_conformance,object_level_authorization,positive_data_acceptance
  local report="${SCHEMATHESIS_REPORT_DIR:-$work/report}/$backend"
  local rc=0
  local seed=()
  [ -n "${SCHEMATHESIS_SEED:-}" ] && seed=(--seed "$SCHEMATHESIS_SEED")
  echo "== schemathesis on $backend ($base)"
  # From the temp dir: schemathesis keeps its cache in the working directory.
  (cd "$work" && PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=hooks "$st" --config-file "$work/schemathesis.toml" run "$base/v1/openapi.json" \
    --checks "${SCHEMATHESIS_CHECKS:-$checks}" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-20}" \
    --workers "$workers" \
    --phases examples,coverage,fuzzing,stateful \
    --generation-database none \
    --request-timeout 30 \
    --suppress-health-check all \
    --warnings off \
    --no-color \
    --report junit,ndjson --report-dir "$report" \
    ${SCHEMATHESIS_EXTRA_ARGS:-} "${seed[@]}") || rc=$?
  if grep -q "panicked" "$work/server.log"; then
    echo "== assent panicked during the run:"; grep -A3 "panicked" "$work/server.log" | head -40
    rc=1
  fi
  cleanup
  return "$rc"
}

status=0
run_backend sqlite || status=1
if [ -n "${ASSENT_TEST_POSTGRES_URL:-}" ]; then
  run_backend postgres || status=1
fi
exit "$status"
