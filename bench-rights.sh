#!/usr/bin/env bash
# Rights requests under load (BENCHMARKS.md, "Rights requests"): a release server on
# SQLite (default) or PostgreSQL with SUBJECTS people (half withdrew their consent 40
# days ago, half still consent), then
#   - a retention dry run over all of them and carrying it out (curl, timed once),
#   - wrk against GET /r/{slug} (the public form) and the staff export of one person.
#   ./bench-rights.sh sqlite            # or: ./bench-rights.sh postgres [URL]
# Needs wrk (Debian package `wrk`). Environment: SUBJECTS (2000), SECONDS_EACH (15),
# CONNECTIONS (32).
set -euo pipefail
cd "$(dirname "$0")"
backend="${1:-sqlite}"
n="${SUBJECTS:-2000}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --locked -p assent --bin assent
# The per-client limit would answer wrk with 429s: each request comes from another
# address (X-Forwarded-For, trusted here), so this measures the page itself.
export ASSENT_PUBLIC_RATE_LIMIT=100000 ASSENT_TRUST_FORWARDED_FOR=true ASSENT_PUBLIC_URL=http://127.0.0.1:18183
port=18183
admin="${2:-postgres://postgres@127.0.0.1:5432/test}"
source ./bench-server.sh
token=$(curl -s -u "$id:$secret" -d grant_type=client_credentials $base/v1/auth/token \
  | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
api() { curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
for code in news offers; do
  api -d "{\"code\":\"$code\",\"name\":{\"ru\":\"$code\",\"en\":\"$code\"},\"legal_basis\":\"consent\",\"data_categories\":[\"email\"],\"channels\":[\"email\"],\"retention_days\":365}" $base/v1/purposes >/dev/null
done
granted=$(date -u -d '60 days ago' +%Y-%m-%dT%H:%M:%SZ)
withdrawn=$(date -u -d '40 days ago' +%Y-%m-%dT%H:%M:%SZ)
for i in $(seq 1 "$n"); do
  echo "{\"type\":\"subject\",\"external_ref\":\"p$i\",\"email\":\"p$i@example.org\",\"full_name\":\"Person $i\"}"
  for p in news offers; do
    echo "{\"type\":\"consent\",\"external_ref\":\"p$i\",\"purpose\":\"$p\",\"action\":\"grant\",\"occurred_at\":\"$granted\"}"
    [ $((i % 2)) -eq 0 ] && echo "{\"type\":\"consent\",\"external_ref\":\"p$i\",\"purpose\":\"$p\",\"action\":\"withdraw\",\"occurred_at\":\"$withdrawn\"}"
  done
done > "$work/people.ndjson"
import=$(curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/x-ndjson' \
  --data-binary @"$work/people.ndjson" $base/v1/imports | sed 's/.*"id":"\([^"]*\)".*/\1/')
until api $base/v1/imports/$import | grep -q '"status":"\(done\|finished\|completed\)"'; do sleep 1; done
subject=$(api -X POST -d '{"external_ref":"p1"}' $base/v1/subjects/search | sed 's/.*"id":"\([^"]*\)".*/\1/')
request=$(api -d "{\"subject_id\":\"$subject\",\"type\":\"access\",\"representative\":true}" $base/v1/rights-requests \
  | sed 's/^{"id":"\([^"]*\)".*/\1/')
api -d '{"documents_approved":true}' $base/v1/rights-requests/$request/verify >/dev/null
echo "== $backend on $(nproc) cores, $(uname -m), commit $(git rev-parse --short HEAD), $n subjects"
echo "-- POST /v1/retention/runs (dry run)"
report=$(api -X POST -w '\n%{time_total}' $base/v1/retention/runs)
echo "due: $(echo "$report" | head -1 | grep -o '"keep_until"' | wc -l), seconds: $(echo "$report" | tail -1)"
act=$(echo "$report" | head -1 | sed 's/.*"act":{[^}]*"id":"\([^"]*\)".*/\1/')
echo "-- POST /v1/retention/runs/{id}/apply"
done=$(api -X POST -w '\n%{time_total}' $base/v1/retention/runs/$act/apply)
echo "seconds: $(echo "$done" | tail -1)"
echo "-- GET /r/{tenant_slug}"
cat > "$work/spread.lua" <<'LUA'
request = function()
  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  return wrk.format(nil)
end
LUA
wrk -t2 -c"${CONNECTIONS:-32}" -d"${SECONDS_EACH:-15}"s --latency -s "$work/spread.lua" "$base/r/bench" | grep -E "Latency|50%|99%|Requests/sec|Non-2xx"
echo "-- GET /v1/rights-requests/{id}/export"
wrk -t2 -c"${CONNECTIONS:-32}" -d"${SECONDS_EACH:-15}"s --latency -H "Authorization: Bearer $token" \
  "$base/v1/rights-requests/$request/export" | grep -E "Latency|50%|99%|Requests/sec|Non-2xx"
