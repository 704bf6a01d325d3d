#!/usr/bin/env bash
# Load test of `jwtkit serve` on loopback: /userinfo verification, /token
# refresh (Redis refresh store) and /introspect, each at a fixed concurrency
# for a fixed time, reporting throughput and latency; any unexpected answer
# fails it. Then the cost of metrics: /userinfo against a server with
# `--metrics-listen` and one without, in alternating runs, medians and spread.
#
#   scripts/load-test.sh                    # 32 connections, 20 s per phase, 3 runs each for metrics
#   CONCURRENCY=64 LOAD_SECONDS=30 METRICS_RUNS=5 scripts/load-test.sh
#   METRICS_RUNS=0 scripts/load-test.sh     # skip the metrics comparison
#
# /userinfo and refresh are driven by jwtkit-loadgen (the figures of
# docs/performance.md); /introspect, and /userinfo next to it, by wrk
# (installed with apt-get when missing), which spends less CPU of its own on
# the two shared cores than a reqwest client: the figures of the two tools
# are compared only with each other. The metrics comparison uses wrk too,
# so that the server's own cost dominates what is measured.
#
# Builds release binaries, starts Redis (scripts/services.sh) unless
# JWTKIT_TEST_REDIS_URL is set, and stops everything it started.
# Figures and the command are recorded in docs/performance.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CONCURRENCY=${CONCURRENCY:-32}
SECONDS_PER_PHASE=${LOAD_SECONDS:-20}
METRICS_RUNS=${METRICS_RUNS:-3}
WRK_THREADS=${WRK_THREADS:-2}

if ! command -v wrk >/dev/null; then
    echo "load-test: installing wrk (Debian package)" >&2
    if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
    $sudo apt-get install -y -q wrk >&2 || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q wrk >&2; }
fi

cargo build --release -q -p jwtkit-cli -p jwtkit-loadgen
work=$(mktemp -d)
serve_pids=()
started_services=0
cleanup() {
    for pid in "${serve_pids[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
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
JWTKIT_INTROSPECTION_TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '=+/\n')
export JWTKIT_ADMIN_TOKEN JWTKIT_INTROSPECTION_TOKEN

# start_serve NAME [ARGS...]: starts a `jwtkit serve` in its own directory
# (its own key store), sets URL_<NAME> (and METRICS_<NAME> with --metrics-listen).
start_serve() {
    local name=$1
    shift
    mkdir -p "$work/$name"
    (cd "$work/$name" && exec "$ROOT/target/release/jwtkit" serve --listen 127.0.0.1:0 \
        --refresh "$JWTKIT_TEST_REDIS_URL" --refresh-prefix "jwtkit-load-$$-$name:" \
        --log-format json "$@" >"$work/$name/serve.out" 2>"$work/$name/serve.log") &
    serve_pids+=($!)
    printf -v "PID_$name" '%s' "$!"
    local url=
    for _ in $(seq 1 100); do
        url=$(sed -n 's/^jwtkit serve: listening on \(http:[^ ]*\)$/\1/p' "$work/$name/serve.out" 2>/dev/null || true)
        [ -n "$url" ] && break
        sleep 0.1
    done
    [ -n "$url" ] || { echo "load-test: jwtkit serve ($name) did not start:" >&2; tail -20 "$work/$name/serve.log" >&2; exit 1; }
    printf -v "URL_$name" '%s' "$url"
    printf -v "METRICS_$name" '%s' "$(sed -n 's/^jwtkit serve: metrics on \(http:[^ ]*\)$/\1/p' "$work/$name/serve.out")"
}

# An access token of a fresh session on the server at $1.
access_token() {
    curl -sf -X POST "$1/token" -H "Authorization: Bearer $JWTKIT_ADMIN_TOKEN" \
        -H 'Content-Type: application/json' -d '{"sub":"load","claims":{"scope":"load"}}' |
        sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

# wrk_run URL (userinfo|introspect) ACCESS_TOKEN SECONDS: prints the
# requests per second; fails on any answer that is not 2xx, or on an
# introspection answer that is not active. The last run's output is in
# $work/wrk-MODE.last.
wrk_run() {
    local url=$1 mode=$2 token=$3 seconds=$4 out
    out=$(ACCESS="$token" MODE="$mode" wrk -t "$WRK_THREADS" -c "$CONCURRENCY" -d "${seconds}s" \
        --latency -s "$work/load.lua" "$url" 2>&1) || { echo "$out" >&2; return 1; }
    if grep -q 'Non-2xx or 3xx responses' <<<"$out" || grep -q 'inactive answers: [1-9]' <<<"$out"; then
        echo "load-test: unexpected answers from $mode:" >&2
        echo "$out" >&2
        return 1
    fi
    printf '%s\n' "$out" >"$work/wrk-$mode.last"
    awk '/requests in/ {print $1}' <<<"$out" >"$work/wrk-$mode.count"
    awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

cat >"$work/load.lua" <<'LUA'
-- GET /userinfo with the bearer access token, or POST /introspect of it
-- with the introspection token. Introspection answers that are not active
-- are counted: they would mean the load measured the wrong thing.
local mode = os.getenv("MODE")
local access = os.getenv("ACCESS")
if mode == "introspect" then
    wrk.method = "POST"
    wrk.path = "/introspect"
    wrk.body = "token=" .. access
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("JWTKIT_INTROSPECTION_TOKEN")
    inactive = 0
    function response(status, headers, body)
        if not string.find(body, '"active":true', 1, true) then
            inactive = inactive + 1
        end
    end
else
    wrk.method = "GET"
    wrk.path = "/userinfo"
    wrk.headers["Authorization"] = "Bearer " .. access
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
    local n = 0
    for _, t in ipairs(threads) do n = n + (t:get("inactive") or 0) end
    io.write(string.format("inactive answers: %d\n", n))
    io.write(string.format("p50 %.2f ms, p99 %.2f ms\n",
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA

start_serve main
url=$URL_main
echo "load-test: jwtkit serve at $url (Redis refresh store), concurrency $CONCURRENCY, ${SECONDS_PER_PHASE}s per phase" >&2

status=0
for mode in userinfo refresh; do
    "$ROOT/target/release/jwtkit-loadgen" --url "$url" --mode "$mode" \
        --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_PHASE" || status=1
done
access=$(access_token "$url")
[ -n "$access" ] || { echo "load-test: could not issue a token" >&2; exit 1; }
for mode in userinfo introspect; do
    if rps=$(wrk_run "$url" "$mode" "$access" "$SECONDS_PER_PHASE"); then
        printf 'wrk %s: %.0f req/s at concurrency %s, %s\n' "$mode" "$rps" "$CONCURRENCY" \
            "$(grep '^p50' "$work/wrk-$mode.last")"
    else
        status=1
    fi
done

if ((METRICS_RUNS > 0)); then
    start_serve plain
    start_serve metered --metrics-listen 127.0.0.1:0
    token_plain=$(access_token "$URL_plain")
    token_metered=$(access_token "$URL_metered")
    off=()
    on=()
    off_cpu=()
    on_cpu=()
    # CPU time (user + system) a server process has used, in clock ticks.
    cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
    ticks=$(getconf CLK_TCK)
    for run in $(seq 1 "$METRICS_RUNS"); do
        # Alternating, and the order swapped every run, so that a drift of
        # the machine (another process, thermal) weighs on both sides alike.
        if ((run % 2)); then order="plain metered"; else order="metered plain"; fi
        for side in $order; do
            # The server's CPU time per request next to the throughput:
            # other load on a shared machine moves the first much less.
            if [ "$side" = plain ]; then pid=$PID_plain; else pid=$PID_metered; fi
            before=$(cpu_ticks "$pid")
            if [ "$side" = plain ]; then
                rps=$(wrk_run "$URL_plain" userinfo "$token_plain" "$SECONDS_PER_PHASE") || { status=1; continue; }
            else
                rps=$(wrk_run "$URL_metered" userinfo "$token_metered" "$SECONDS_PER_PHASE") || { status=1; continue; }
            fi
            us=$(awk -v c="$(($(cpu_ticks "$pid") - before))" -v t="$ticks" -v n="$(cat "$work/wrk-userinfo.count")" \
                'BEGIN {printf "%.2f", c / t / n * 1e6}')
            if [ "$side" = plain ]; then off+=("$rps"); off_cpu+=("$us"); else on+=("$rps"); on_cpu+=("$us"); fi
            printf 'metrics %-3s run %d: %.0f req/s, %s us server CPU per request\n' \
                "$([ "$side" = plain ] && echo off || echo on)" "$run" "$rps" "$us"
        done
    done
    # The metered server counted what it answered.
    scraped=$(curl -sf "$METRICS_metered" | awk -F' ' '/^jwtkit_http_request_duration_seconds_count\{/ && /route="\/userinfo"/ && /status="2xx"/ {print $2}')
    echo "metrics: the metered server counts ${scraped:-no} /userinfo 2xx requests" >&2
    [ -n "$scraped" ] || status=1
    summary() {
        printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
            m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2;
            printf "%.2f %.2f %.2f", m, v[1], v[NR]}'
    }
    read -r off_median off_min off_max <<<"$(summary "${off[@]}")"
    read -r on_median on_min on_max <<<"$(summary "${on[@]}")"
    read -r off_cpu_median off_cpu_min off_cpu_max <<<"$(summary "${off_cpu[@]}")"
    read -r on_cpu_median on_cpu_min on_cpu_max <<<"$(summary "${on_cpu[@]}")"
    cost=$(awk -v a="$off_median" -v b="$on_median" 'BEGIN {printf "%.1f", (a - b) / a * 100}')
    cpu_cost=$(awk -v a="$off_cpu_median" -v b="$on_cpu_median" 'BEGIN {printf "%.1f", (b - a) / a * 100}')
    printf '/userinfo, metrics off: median %.0f req/s (min %.0f, max %.0f), %s us CPU/request (min %s, max %s), %d runs\n' \
        "$off_median" "$off_min" "$off_max" "$off_cpu_median" "$off_cpu_min" "$off_cpu_max" "${#off[@]}"
    printf '/userinfo, metrics on:  median %.0f req/s (min %.0f, max %.0f), %s us CPU/request (min %s, max %s), %d runs\n' \
        "$on_median" "$on_min" "$on_max" "$on_cpu_median" "$on_cpu_min" "$on_cpu_max" "${#on[@]}"
    printf 'metrics cost: %s %% of /userinfo throughput, %s %% more server CPU per request (target < 3 %%)\n' "$cost" "$cpu_cost"
fi
exit "$status"
