#!/usr/bin/env bash
# The campaign benchmark (BENCHMARKS.md, "Issue 20"): a release server on SQLite
# (default) or PostgreSQL sending to an SMTP sink, and assent-campaign-bench driving
# it over HTTP: 100,000 people who agreed, a campaign started (audience resolved and
# queued), 1,000 withdrawals while it sends.
#   ./bench-campaign.sh sqlite            # or: ./bench-campaign.sh postgres [URL]
# Environment: PEOPLE (100000), WITHDRAWALS (1000).
set -euo pipefail
cd "$(dirname "$0")"
backend="${1:-sqlite}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p assent --bin assent -p assent-tests --bin assent-campaign-bench
port="${PORT:-18184}"
smtp="127.0.0.1:$((port + 1))"
export ASSENT_SMTP_URL="smtp://$smtp" ASSENT_MAIL_FROM="news@bench.example" ASSENT_PUBLIC_URL="https://assent.bench.example"
admin="${2:-postgres://postgres@127.0.0.1:5432/test}"
source ./bench-server.sh
echo "== $backend on $(nproc) cores, $(uname -m), commit $(git rev-parse --short HEAD)"
target/release/assent-campaign-bench --base "$base" --client-id "$id" --secret "$secret" \
  --smtp "$smtp" --pid "$server" --people "${PEOPLE:-100000}" --withdrawals "${WITHDRAWALS:-1000}"
