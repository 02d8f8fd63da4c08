#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: a release server on SQLite (default) or PostgreSQL,
# seeded through the API, measured by assent-bench.
#   ./bench.sh sqlite            # or: ./bench.sh postgres [URL]
# Environment: SUBJECTS (100000), PURPOSES (5), BENCH_SECONDS (20), CONCURRENCY (32).
set -euo pipefail
cd "$(dirname "$0")"
backend="${1:-sqlite}"
cargo build --release --locked -p assent -p assent-tests --bin assent --bin assent-bench
work="$(mktemp -d)"
export ASSENT_DATA_DIR="$work/data" ASSENT_LISTEN=127.0.0.1:18181 ASSENT_LOG=warn
if [ "$backend" = postgres ]; then
  admin="${2:-postgres://postgres@127.0.0.1:5432/test}"
  db="assent_bench_$$"
  psql "$admin" -qc "CREATE DATABASE $db"
  export ASSENT_DATABASE_URL="${admin%/*}/$db"
fi
bin=target/release/assent
$bin tenant create --slug bench --name "Bench LLC" --json >/dev/null
key=$($bin apikey create --tenant bench --role admin --json)
id=$(echo "$key" | sed 's/.*"client_id":"\([^"]*\)".*/\1/')
secret=$(echo "$key" | sed 's/.*"client_secret":"\([^"]*\)".*/\1/')
$bin serve >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"; [ "$backend" = postgres ] && psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
for _ in $(seq 1 100); do curl -sf http://$ASSENT_LISTEN/readyz >/dev/null && break; sleep 0.1; done
echo "== $backend on $(nproc) cores, $(uname -m), commit $(git rev-parse --short HEAD)"
target/release/assent-bench --base "http://$ASSENT_LISTEN" --client-id "$id" --client-secret "$secret" \
  --subjects "${SUBJECTS:-100000}" --purposes "${PURPOSES:-5}" --seconds "${BENCH_SECONDS:-20}" --concurrency "${CONCURRENCY:-32}"
echo "server peak resident memory: $(grep VmHWM /proc/$server/status | awk '{print $2/1024 " MB"}')"
