#!/usr/bin/env bash
# The public pages under load (BENCHMARKS.md, "Public pages"): a release server on
# SQLite (default) or PostgreSQL, one subject, and wrk against GET /u/{token} and
# GET /p/{token} and GET /s/{token} (what a mail scanner or a person opening a link costs).
#   ./bench-pages.sh sqlite            # or: ./bench-pages.sh postgres [URL]
# Needs wrk (Debian package `wrk`). Environment: SECONDS_EACH (15), CONNECTIONS (32).
set -euo pipefail
cd "$(dirname "$0")"
backend="${1:-sqlite}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p assent --bin assent
# The per-IP limit (at most 100,000 a minute) would answer wrk with 429s: each request
# comes from another address (X-Forwarded-For, trusted for the run), so this measures
# the pages themselves.
port="${PORT:-18182}"
export ASSENT_PUBLIC_RATE_LIMIT=100000 ASSENT_TRUST_FORWARDED_FOR=true ASSENT_PUBLIC_URL=http://127.0.0.1:$port
admin="${2:-postgres://postgres@127.0.0.1:5432/test}"
source ./bench-server.sh
token=$(curl -s -u "$id:$secret" -d grant_type=client_credentials $base/v1/auth/token \
  | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
api() { curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
for code in news offers tips; do
  api -d "{\"code\":\"$code\",\"name\":{\"ru\":\"$code\",\"en\":\"$code\"},\"legal_basis\":\"consent\",\"data_categories\":[\"email\"],\"channels\":[\"email\"],\"retention_days\":30}" $base/v1/purposes >/dev/null
done
subject=$(api -d '{"email":"bench@example.org","locale":"ru"}' $base/v1/subjects | sed 's/.*"id":"\([^"]*\)".*/\1/')
api -d '{"purpose":"news","action":"grant"}' $base/v1/subjects/$subject/consents >/dev/null
link() { api -d "{\"kind\":\"$1\",\"purpose\":\"news\"}" $base/v1/subjects/$subject/links | sed 's/.*"url":"\([^"]*\)".*/\1/'; }
u=$(link unsubscribe); p=$(link preferences)
# A survey invitation's answer page (/s/{token}), queued for tomorrow so nothing is sent.
api -d '{"code":"nps","kind":"nps","purpose":"news","question":{"ru":"Порекомендуете?","en":"Recommend?"},"follow_up":{"ru":"Почему?","en":"Why?"}}' $base/v1/surveys >/dev/null
tomorrow=$(date -u -d tomorrow +%Y-%m-%dT%H:%M:%SZ)
s=$(api -d "{\"subject_ids\":[\"$subject\"],\"send_at\":\"$tomorrow\"}" $base/v1/surveys/nps/invitations \
  | sed 's/.*"url":"\([^"]*\)".*/\1/')
cat > "$work/spread.lua" <<'LUA'
request = function()
  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  return wrk.format()
end
LUA
echo "== $backend on $(nproc) cores, $(uname -m), commit $(git rev-parse --short HEAD)"
for url in "$u" "$p" "$s"; do
  echo "-- GET ${url%%/${url##*/}}/{token}"
  wrk -t2 -c"${CONNECTIONS:-32}" -d"${SECONDS_EACH:-15}"s --latency -s "$work/spread.lua" "$url" | grep -E "Latency|50%|99%|Requests/sec|Non-2xx"
done
