#!/usr/bin/env bash
# Refresh-token rotation throughput on Redis, next to plain SET/GET at the same
# concurrency, in one run, so the ratio can be quoted (docs/refresh-tokens.md,
# "Performance"). A rotation is one EVALSHA round trip doing ~10 commands server-side.
#
#   scripts/bench-refresh.sh                  # Redis at $JWTKIT_TEST_REDIS_URL or 127.0.0.1:6379
#   BENCH_CONCURRENCY=50 BENCH_REQUESTS=200000 scripts/bench-refresh.sh
#
# Needs redis-benchmark (package redis-tools / redis) and a running Redis; it
# writes only keys under `jwtkit-bench:` (expiring within 2 minutes) and
# redis-benchmark's own `key:__rand_int__` keys.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

URL=${JWTKIT_TEST_REDIS_URL:-redis://127.0.0.1:6379/}
CONCURRENCY=${BENCH_CONCURRENCY:-50}
REQUESTS=${BENCH_REQUESTS:-200000}

# redis://[user:pass@]host:port[/db] -> host, port
hostport=${URL#*://}
hostport=${hostport##*@}
hostport=${hostport%%/*}
HOST=${hostport%:*}
PORT=${hostport##*:}
[[ $PORT == "$hostport" ]] && PORT=6379

command -v redis-benchmark >/dev/null || { echo "bench-refresh: redis-benchmark not found (install redis-tools)" >&2; exit 1; }
redis-cli -h "$HOST" -p "$PORT" ping >/dev/null 2>&1 || { echo "bench-refresh: no Redis at $HOST:$PORT" >&2; exit 1; }

echo "== machine: $(nproc) cores; Redis $(redis-cli -h "$HOST" -p "$PORT" info server | awk -F: '/^redis_version/{print $2}' | tr -d '\r') at $HOST:$PORT; concurrency $CONCURRENCY"
echo "== build the bench first (so compilation does not overlap the measurements)"
cargo bench -p jwt-refresh --bench rotate --no-run 2>&1 | tail -1

echo "== redis-benchmark -t set,get -c $CONCURRENCY -n $REQUESTS -q"
rb=$(redis-benchmark -h "$HOST" -p "$PORT" -t set,get -c "$CONCURRENCY" -n "$REQUESTS" -q 2>&1 | tr '\r' '\n' | grep -E '^(SET|GET):' | grep 'requests per second')
echo "$rb"
set_rps=$(awk '/^SET:/{print $2}' <<<"$rb")
get_rps=$(awk '/^GET:/{print $2}' <<<"$rb")

echo "== cargo bench -p jwt-refresh --bench rotate (criterion, concurrency $CONCURRENCY)"
out=$(JWTKIT_TEST_REDIS_URL=$URL JWTKIT_BENCH_CONCURRENCY=$CONCURRENCY \
    cargo bench -p jwt-refresh --bench rotate 2>&1)
echo "$out" | grep -E 'rotate/|time:|thrpt:|RESULT|SKIPPED'
rotate_ops=$(echo "$out" | sed -n 's/.*RESULT rotate_ops_per_sec=\([0-9]*\).*/\1/p')
[[ -n $rotate_ops ]] || { echo "bench-refresh: the rotate bench produced no result" >&2; exit 1; }
# criterion's throughput estimate: the middle of the first `thrpt: [lo mid hi]` line.
crit_ops=$(echo "$out" | awk '/thrpt:/ && !done {
    gsub(/[][]/, ""); v = $4; u = $5
    m = (u ~ /^K/) ? 1e3 : (u ~ /^M/) ? 1e6 : 1
    printf "%.0f", v * m; done = 1 }')

echo "== summary"
awk -v r="$rotate_ops" -v c="$crit_ops" -v s="$set_rps" -v g="$get_rps" 'BEGIN {
    printf "SET %.0f ops/s, GET %.0f ops/s\n", s, g
    printf "rotate %.0f ops/s (criterion estimate), %.0f ops/s (median of all samples)\n", c, r
    printf "rotate / SET = %.2f (criterion estimate), %.2f (median sample); target >= 0.50\n", c / s, r / s
}'
