# Sourced by the bench scripts: starts a fresh release server with one tenant "bench"
# and an admin key, on SQLite or PostgreSQL, and removes everything on exit.
# Before sourcing set: backend (sqlite|postgres), admin (PostgreSQL URL, for postgres),
# port, and build any binaries needed. Sets: bin, id, secret, server, base, work.
work="$(mktemp -d)"
export ASSENT_DATA_DIR="$work/data" ASSENT_LISTEN="127.0.0.1:$port" ASSENT_LOG=warn
if [ "$backend" = postgres ]; then
  # As in production (deploy/postgres-init.sh): a plain role owning its database, so
  # row-level security holds; `admin` is only used to create and drop them.
  db="assent_bench_${port}_$$"
  psql "$admin" -qc "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'assent_bench')
    THEN CREATE ROLE assent_bench LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'assent_bench'; END IF; END \$\$"
  psql "$admin" -qc "CREATE DATABASE $db OWNER assent_bench"
  hostpart="${admin#*@}"
  export ASSENT_DATABASE_URL="postgres://assent_bench:assent_bench@${hostpart%/*}/$db"
fi
bin=target/release/assent
$bin tenant create --slug bench --name "Bench LLC" --json >/dev/null
key=$($bin apikey create --tenant bench --role admin --json)
id=$(echo "$key" | sed 's/.*"client_id":"\([^"]*\)".*/\1/')
secret=$(echo "$key" | sed 's/.*"client_secret":"\([^"]*\)".*/\1/')
$bin serve >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"; [ "$backend" = postgres ] && psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
base="http://$ASSENT_LISTEN"
for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
# The operator's details a 152-FZ consent document names: without them no consent is
# recorded (consent_document_incomplete).
optoken=$(curl -sf -u "$id:$secret" -d grant_type=client_credentials "$base/v1/auth/token" \
  | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
curl -sf -X PUT -H "Authorization: Bearer $optoken" -H 'Content-Type: application/json' "$base/v1/operator" \
  -d '{"name": "ООО «Бенч»", "address": "Москва", "inn": "7707083893", "ogrn": "1027700132195",
  "responsible": {"name": "Иванова Анна", "contact": "dpo@bench.example"}, "database_country": "RU",
  "database_location": "Москва", "protection_measures": ["шифрование"], "subject_categories": ["клиенты"],
  "processing_started_on": "2020-01-01"}' >/dev/null
