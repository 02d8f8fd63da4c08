#!/usr/bin/env bash
# Every row of BENCHMARKS.md's table on both backends in one run, printed as one table:
# the import (600,000 NDJSON lines, with the rate of each tenth), consent checks by
# external_ref, email and subject_id, durable consent events, emails to a local SMTP
# server, and the /u and /p pages. A release server on a fresh data directory or a
# fresh PostgreSQL database (as a plain role), seeded through the API.
#   ./bench.sh                       # SQLite, then PostgreSQL
#   ./bench.sh sqlite|postgres [URL] # one backend (URL: a PostgreSQL superuser, used
#                                    # only to create and drop the role and database)
# Environment: SUBJECTS (100000), PURPOSES (5), BENCH_SECONDS (20 per measurement),
# CONCURRENCY (32), MESSAGES (10000 emails), PORT (18181); ONLY (import|checks|events:
# the API part alone, no emails or pages), CHECK_BY (external_ref,email,subject_id).
# Needs wrk (Debian package `wrk`) for the pages.
set -euo pipefail
cd "$(dirname "$0")"
backends="${1:-sqlite postgres}"
admin="${2:-postgres://postgres@127.0.0.1:5432/test}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --locked -p assent -p assent-tests \
  --bin assent --bin assent-bench --bin assent-notify-bench
out="$(mktemp -d)"
echo "== $(nproc) cores, $(uname -m), commit $(git rev-parse --short HEAD); logs in $out"

api_part() { # the server benchmark: import, checks, events, peak memory
  local backend=$1 port=${PORT:-18181}
  source ./bench-server.sh
  target/release/assent-bench --base "http://$ASSENT_LISTEN" --client-id "$id" --client-secret "$secret" \
    --subjects "${SUBJECTS:-100000}" --purposes "${PURPOSES:-5}" --seconds "${BENCH_SECONDS:-20}" \
    --concurrency "${CONCURRENCY:-32}" --check-by "${CHECK_BY:-external_ref,email,subject_id}" \
    ${ONLY:+--only "$ONLY"}
  echo "server peak resident memory: $(grep VmHWM /proc/$server/status | awk '{print $2/1024 " MB"}')"
}

for backend in $backends; do
  echo "== $backend: import, checks, events"
  (api_part "$backend") | tee "$out/$backend.api"
  [ -n "${ONLY:-}" ] && continue
  echo "== $backend: emails"
  pg=(); [ "$backend" = postgres ] && pg=(--postgres --concurrency 2 --pool 64)
  ASSENT_TEST_POSTGRES_URL="$admin" target/release/assent-notify-bench email \
    --messages "${MESSAGES:-10000}" "${pg[@]}" | tee "$out/$backend.email"
  echo "== $backend: pages"
  SKIP_BUILD=1 PORT=$(( ${PORT:-18181} + 1 )) ./bench-pages.sh "$backend" "$admin" | tee "$out/$backend.pages"
done

# One table: a column per backend.
row() { # label, a function and its arguments; the function gets the backend first
  local label=$1 f=$2; shift 2
  printf '| %s |' "$label"
  for backend in $backends; do printf ' %s |' "$("$f" "$backend" "$@" 2>/dev/null || true)"; done
  echo
}
api() { grep -h -- "$2" "$out/$1.api" | head -1; }
rate() { api "$1" "$2" | sed -n 's/.*: \([0-9]*\/s\) over.*p99 \([0-9.]*\) max.*/\1, p99 \2 ms/p'; }
import_rate() { api "$1" '^import:' | sed -n 's/.*= \([0-9]*\) rows\/s.*/\1 rows\/s/p'; }
tenths() { grep -h '^import tenth' "$out/$1.api" | sed 's/.* at \([0-9]*\) rows\/s/\1/' | awk 'NR==1{f=$1} {l=$1} END{if (NR) printf "%s → %s rows/s (%.0f %%)", f, l, 100*l/f}'; }
emails() { grep -h '^email:' "$out/$1.email" | sed 's/.*= \([0-9]*\) emails\/s.*/\1\/s/'; }
page() { awk -v p="/$2/" '$1=="--" && index($3,p){on=1} on && /99%/{q=$2} on && /Non-2xx/{bad=$NF} on && /Requests\/sec/{printf "%.0f/s, p99 %s%s", $2, q, (bad ? ", " bad " not 2xx" : ""); exit}' "$out/$1.pages"; }
ledger() { api "$1" '^ledger verification' | sed 's/ledger verification: //'; }
rss() { api "$1" 'peak resident' | sed 's/.*: //'; }
table() {
  echo
  printf '| Path |'; for b in $backends; do printf ' %s |' "$b"; done; echo
  printf '|---|'; for _ in $backends; do printf -- '---|'; done; echo
  row "Import (NDJSON, subjects + grants)" import_rate
  row "Import, first → last tenth" tenths
  row "Consent check by external_ref" rate 'checks by external_ref'
  row "Consent check by email" rate 'checks by email'
  row "Consent check by subject_id" rate 'checks by subject_id'
  row "Consent events (durable)" rate 'consent events'
  row "Emails to a local SMTP server" emails
  row "/u page" page u
  row "/p page" page p
  row "/s page" page s
  row "Ledger after the run" ledger
  row "Server peak RSS" rss
}
table
