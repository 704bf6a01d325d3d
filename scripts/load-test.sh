#!/usr/bin/env bash
# Load test of `jwtkit serve` on loopback: /userinfo verification and /token
# refresh (Redis refresh store), each at a fixed concurrency for a fixed time,
# reporting throughput and p50/p99 latency; any unexpected answer fails it.
#
#   scripts/load-test.sh                    # 32 connections, 20 s per phase
#   CONCURRENCY=64 LOAD_SECONDS=30 scripts/load-test.sh
#
# Builds release binaries, starts Redis (scripts/services.sh) unless
# JWTKIT_TEST_REDIS_URL is set, and stops everything it started.
# Figures and the command are recorded in docs/performance.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CONCURRENCY=${CONCURRENCY:-32}
SECONDS_PER_PHASE=${LOAD_SECONDS:-20}

cargo build --release -q -p jwtkit-cli -p jwtkit-loadgen
work=$(mktemp -d)
serve_pid=
started_services=0
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
    ((started_services)) && bash scripts/services.sh stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${JWTKIT_TEST_REDIS_URL:-}" ]; then
    if ! bash scripts/services.sh status >/dev/null 2>&1; then
        bash scripts/services.sh start >&2
        started_services=1
    fi
    # shellcheck source=/dev/null
    . "${JWTKIT_SERVICES_DIR:-$ROOT/.services}/env.sh"
fi

JWTKIT_ADMIN_TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '=+/\n')
export JWTKIT_ADMIN_TOKEN
prefix="jwtkit-load-$$:"
(cd "$work" && exec "$ROOT/target/release/jwtkit" serve --listen 127.0.0.1:0 \
    --refresh "$JWTKIT_TEST_REDIS_URL" --refresh-prefix "$prefix" --log-format json \
    >"$work/serve.out" 2>"$work/serve.log") &
serve_pid=$!
for _ in $(seq 1 100); do
    url=$(sed -n 's/^jwtkit serve: listening on \(http:[^ ]*\)$/\1/p' "$work/serve.out" 2>/dev/null || true)
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "${url:-}" ] || { echo "load-test: jwtkit serve did not start:" >&2; tail -20 "$work/serve.log" >&2; exit 1; }
echo "load-test: jwtkit serve at $url (Redis refresh store), concurrency $CONCURRENCY, ${SECONDS_PER_PHASE}s per phase" >&2

status=0
for mode in userinfo refresh; do
    "$ROOT/target/release/jwtkit-loadgen" --url "$url" --mode "$mode" \
        --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_PHASE" || status=1
done
exit "$status"
