#!/usr/bin/env bash
# The website script's endpoints under load (BENCHMARKS.md, "Website banner"): a release
# server on SQLite (default) or PostgreSQL with a published banner, and wrk against
#   GET  /c/bench/config     what every page view of every visitor reads (target ≥ 10,000/s)
#   POST /c/bench/consents   a new visitor's answer, one row each (target ≥ 2,000/s)
#   ./bench-website.sh sqlite            # or: ./bench-website.sh postgres [URL]
# Needs wrk (Debian package `wrk`). Environment: SECONDS_EACH (15), CONNECTIONS (32).
set -euo pipefail
cd "$(dirname "$0")"
backend="${1:-sqlite}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p assent --bin assent
# Each request comes from another address (X-Forwarded-For, trusted for the run), so
# the per-address limit does not answer wrk with 429s.
port="${PORT:-18183}"
export ASSENT_PUBLIC_RATE_LIMIT=100000 ASSENT_TRUST_FORWARDED_FOR=true ASSENT_PUBLIC_URL=http://127.0.0.1:$port
admin="${2:-postgres://postgres@127.0.0.1:5432/test}"
source ./bench-server.sh
token=$(curl -s -u "$id:$secret" -d grant_type=client_credentials $base/v1/auth/token \
  | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
api() { curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
for code in web_analytics web_ads web_personal processing; do
  api -d "{\"code\":\"$code\",\"name\":{\"ru\":\"$code\",\"en\":\"$code\"},\"legal_basis\":\"consent\",\"data_categories\":[\"email\"],\"channels\":[],\"retention_days\":30}" $base/v1/purposes >/dev/null
done
origin=https://shop.example
api -X PUT -d "{\"categories\":[{\"code\":\"necessary\"},{\"code\":\"analytics\",\"purpose\":\"web_analytics\"},{\"code\":\"marketing\",\"purpose\":\"web_ads\"},{\"code\":\"personalisation\",\"purpose\":\"web_personal\"}],\"origins\":[\"$origin\"],\"policy_url\":\"https://shop.example/privacy\",\"forms\":{\"signup\":{\"consents\":[{\"purpose\":\"processing\",\"required\":true,\"text\":{\"ru\":\"Согласие на обработку\",\"en\":\"Consent to processing\"},\"document_url\":\"https://shop.example/consent\",\"document_version\":\"1\"}]}}}" \
  $base/v1/banner >/dev/null
cat > "$work/config.lua" <<LUA
wrk.headers["Origin"] = "$origin"
LUA
cat > "$work/answers.lua" <<LUA
local kinds = {
  '{"version":1,"kind":"accept","lang":"ru"}',
  '{"version":1,"kind":"reject","lang":"ru"}',
  '{"version":1,"kind":"customise","granted":["analytics"],"lang":"en"}',
}
request = function()
  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  wrk.headers["Origin"] = "$origin"
  wrk.headers["Content-Type"] = "application/json"
  return wrk.format("POST", nil, nil, kinds[math.random(1, 3)])
end
LUA
echo "== $backend on $(nproc) cores, $(uname -m), commit $(git rev-parse --short HEAD)"
echo "-- GET /c/bench/config"
wrk -t2 -c"${CONNECTIONS:-32}" -d"${SECONDS_EACH:-15}"s --latency -s "$work/config.lua" "$base/c/bench/config" | grep -E "Latency|50%|99%|Requests/sec|Non-2xx"
echo "-- POST /c/bench/consents (a new visitor each)"
wrk -t2 -c"${CONNECTIONS:-32}" -d"${SECONDS_EACH:-15}"s --latency -s "$work/answers.lua" "$base/c/bench/consents" | grep -E "Latency|50%|99%|Requests/sec|Non-2xx"
echo "-- recorded: $(api "$base/v1/banner/stats" | grep -o '"accept":[0-9]*' | head -1) (analytics row)"
ps -o rss= -p $server | awk '{printf "-- server RSS %.0f MB\n", $1/1024}'
