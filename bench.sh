#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: a release server on SQLite (default) or PostgreSQL,
# seeded through the API, measured by assent-bench.
#   ./bench.sh sqlite            # or: ./bench.sh postgres [URL]
# Environment: SUBJECTS (100000), PURPOSES (5), BENCH_SECONDS (20), CONCURRENCY (32),
# ONLY (import|checks|events: run only that measurement; import prints the rate of each
# tenth of the file), CHECK_BY (external_ref; comma-separated of external_ref,email,
# subject_id), PORT (18181).
set -euo pipefail
cd "$(dirname "$0")"
backend="${1:-sqlite}"
cargo build --release --locked -p assent -p assent-tests --bin assent --bin assent-bench
port="${PORT:-18181}"
admin="${2:-postgres://postgres@127.0.0.1:5432/test}"
source ./bench-server.sh
echo "== $backend on $(nproc) cores, $(uname -m), commit $(git rev-parse --short HEAD)"
target/release/assent-bench --base "http://$ASSENT_LISTEN" --client-id "$id" --client-secret "$secret" \
  --subjects "${SUBJECTS:-100000}" --purposes "${PURPOSES:-5}" --seconds "${BENCH_SECONDS:-20}" --concurrency "${CONCURRENCY:-32}" \
  --check-by "${CHECK_BY:-external_ref}" ${ONLY:+--only "$ONLY"}
echo "server peak resident memory: $(grep VmHWM /proc/$server/status | awk '{print $2/1024 " MB"}')"
