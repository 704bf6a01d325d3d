#!/usr/bin/env bash
# Load test of `jwtkit serve` on loopback: /userinfo verification, /token
# refresh (Redis refresh store) and /introspect, each at a fixed concurrency
# for a fixed time, reporting throughput and latency; any unexpected answer
# fails it. Then the cost of metrics: /userinfo against a server with
# `--metrics-listen` and one without, in alternating runs, medians and spread.
# Then the cost of DPoP: /userinfo with a DPoP-bound token and a fresh proof
# per request against /userinfo with a bearer token, on one server, in
# alternating runs, medians and spread.
#
#   scripts/load-test.sh                    # 32 connections, 20 s per phase, 3 runs each for metrics and DPoP
#   CONCURRENCY=64 LOAD_SECONDS=30 METRICS_RUNS=5 scripts/load-test.sh
#   METRICS_RUNS=0 scripts/load-test.sh     # skip the metrics comparison
#   DPOP_RUNS=0 scripts/load-test.sh        # skip the DPoP comparison
#   DPOP_ONLY=1 DPOP_RUNS=5 scripts/load-test.sh   # the DPoP comparison alone (no wrk needed)
#   DPOP_STORES=redis scripts/load-test.sh  # DPoP with the Redis replay cache only (default: redis memory)
#   DPOP_SERVE_ARGS="--token-cache-entries 0" DPOP_ONLY=1 scripts/load-test.sh   # extra serve options for the DPoP servers
#
# /userinfo and refresh are driven by jwtkit-loadgen (the figures of
# docs/performance.md); /introspect, and /userinfo next to it, by wrk
# (installed with apt-get when missing), which spends less CPU of its own on
# the two shared cores than a reqwest client: the figures of the two tools
# are compared only with each other. The metrics comparison uses wrk too,
# so that the server's own cost dominates what is measured. The DPoP
# comparison uses jwtkit-loadgen on both sides (wrk cannot sign a proof per
# request), so both sides carry the same client; the proofs' signing is
# client work on the same two cores, which is why it reports the server's
# CPU time per request (and the client's) next to the throughput.
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
DPOP_RUNS=${DPOP_RUNS:-3}
DPOP_ONLY=${DPOP_ONLY:-0}
DPOP_STORES=${DPOP_STORES:-redis memory}
read -r -a dpop_serve_args <<<"${DPOP_SERVE_ARGS:-}"
WRK_THREADS=${WRK_THREADS:-2}
if ((DPOP_ONLY)); then
    METRICS_RUNS=0
    ((DPOP_RUNS > 0)) || { echo "load-test: DPOP_ONLY=1 needs DPOP_RUNS above 0" >&2; exit 2; }
fi

if ! ((DPOP_ONLY)) && ! command -v wrk >/dev/null; then
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
# (its own key store) on Redis (or on SERVE_REFRESH, e.g. `memory`), sets
# URL_<NAME> (and METRICS_<NAME> with --metrics-listen).
start_serve() {
    local name=$1
    shift
    mkdir -p "$work/$name"
    (cd "$work/$name" && exec "$ROOT/target/release/jwtkit" serve --listen 127.0.0.1:0 \
        --refresh "${SERVE_REFRESH:-$JWTKIT_TEST_REDIS_URL}" --refresh-prefix "jwtkit-load-$$-$name:" \
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

# CPU time (user + system) a server process has used, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)

# summary VALUES...: "median min max" of the values.
summary() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
        m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2;
        printf "%.2f %.2f %.2f", m, v[1], v[NR]}'
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

status=0
if ! ((DPOP_ONLY)); then
start_serve main
url=$URL_main
echo "load-test: jwtkit serve at $url (Redis refresh store), concurrency $CONCURRENCY, ${SECONDS_PER_PHASE}s per phase" >&2

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
fi

if ((METRICS_RUNS > 0)); then
    start_serve plain
    start_serve metered --metrics-listen 127.0.0.1:0
    token_plain=$(access_token "$URL_plain")
    token_metered=$(access_token "$URL_metered")
    off=()
    on=()
    off_cpu=()
    on_cpu=()
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

# dpop_compare STORE (redis | memory): /userinfo with a DPoP-bound token
# against a bearer one, DPOP_RUNS alternating pairs on one server whose
# refresh store, and so replay cache, is STORE.
dpop_compare() {
    local store=$1 name="dpop_$1" run order mode before out server_ticks report ok rps p50 client_s us cus
    # One server (DPoP `allowed`, the default, which takes both kinds of
    # token). On Redis the replay cache is the refresh store's Redis, one
    # SET NX PX per proof; on memory, an in-process map. Both sides run
    # jwtkit-loadgen with the same concurrency; each of its workers holds
    # one token, so after the first request the token itself is a
    # verified-token cache hit on both sides. A DPoP request adds the
    # proof's checks (parse, its jwk imported and hashed for the thumbprint,
    # one ES256 signature verification, htm/htu/iat/ath) and the
    # replay-cache write.
    if [ "$store" = memory ]; then
        SERVE_REFRESH=memory start_serve "$name" "${dpop_serve_args[@]}"
    else
        start_serve "$name" "${dpop_serve_args[@]}"
    fi
    local url_var="URL_$name" pid_var="PID_$name"
    local url=${!url_var} pid=${!pid_var}
    echo "load-test: DPoP against Bearer on $url ($store replay cache${DPOP_SERVE_ARGS:+, $DPOP_SERVE_ARGS}), $DPOP_RUNS alternating pairs of ${SECONDS_PER_PHASE}s" >&2
    local -A rps_of=() cpu_of=() client_of=()
    for run in $(seq 1 "$DPOP_RUNS"); do
        # Alternating, the order swapped every run (as for metrics).
        if ((run % 2)); then order="userinfo userinfo-dpop"; else order="userinfo-dpop userinfo"; fi
        for mode in $order; do
            before=$(cpu_ticks "$pid")
            # `times` in the subshell: the load generator's own CPU time.
            if ! out=$( (
                rc=0
                "$ROOT/target/release/jwtkit-loadgen" --url "$url" --mode "$mode" \
                    --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_PHASE" --json || rc=$?
                times
                exit "$rc"
            )); then
                echo "load-test: $mode ($store) failed: $out" >&2
                status=1
                continue
            fi
            server_ticks=$(($(cpu_ticks "$pid") - before))
            report=$(head -1 <<<"$out")
            ok=$(jq -r .ok <<<"$report")
            rps=$(jq -r .throughput_per_s <<<"$report")
            p50=$(jq -r .p50_ms <<<"$report")
            # The children line of `times`: "XmY.YYYs XmY.YYYs" (user, system).
            client_s=$(tail -1 <<<"$out" | awk '{
                s = 0
                for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); s += p[1] * 60 + p[2] }
                print s }')
            us=$(awk -v c="$server_ticks" -v t="$ticks" -v n="$ok" 'BEGIN {printf "%.2f", c / t / n * 1e6}')
            cus=$(awk -v c="$client_s" -v n="$ok" 'BEGIN {printf "%.2f", c / n * 1e6}')
            rps_of[$mode]+="$rps "
            cpu_of[$mode]+="$us "
            client_of[$mode]+="$cus "
            printf 'dpop %-6s %-13s run %d: %.0f req/s, p50 %.2f ms, %s us server CPU per request, %s us client CPU per request\n' \
                "$store" "$mode" "$run" "$rps" "$p50" "$us" "$cus"
        done
    done
    local m lo hi cm clo chi km klo khi label b_rps="" b_cpu="" d_rps="" d_cpu=""
    for mode in userinfo userinfo-dpop; do
        [ -n "${rps_of[$mode]:-}" ] || { status=1; continue; }
        # shellcheck disable=SC2086 # word splitting wanted: the runs' values
        read -r m lo hi <<<"$(summary ${rps_of[$mode]})"
        # shellcheck disable=SC2086
        read -r cm clo chi <<<"$(summary ${cpu_of[$mode]})"
        # shellcheck disable=SC2086
        read -r km klo khi <<<"$(summary ${client_of[$mode]})"
        if [ "$mode" = userinfo ]; then label=Bearer; b_rps=$m; b_cpu=$cm; else label=DPoP; d_rps=$m; d_cpu=$cm; fi
        printf '/userinfo (%s), %-6s median %.0f req/s (min %.0f, max %.0f), %s us server CPU/request (min %s, max %s), %s us client CPU/request (min %s, max %s), %d runs\n' \
            "$store" "$label:" "$m" "$lo" "$hi" "$cm" "$clo" "$chi" "$km" "$klo" "$khi" \
            "$(wc -w <<<"${rps_of[$mode]}")"
    done
    if [ -n "$b_rps" ] && [ -n "$d_rps" ]; then
        awk -v s="$store" -v br="$b_rps" -v dr="$d_rps" -v bc="$b_cpu" -v dc="$d_cpu" 'BEGIN {
            printf "DPoP cost (%s replay cache): %.1f %% of /userinfo throughput, +%.2f us (%.2fx) server CPU per request\n",
                s, (br - dr) / br * 100, dc - bc, dc / bc }'
    fi
}

if ((DPOP_RUNS > 0)); then
    for store in $DPOP_STORES; do
        case $store in
            redis | memory) dpop_compare "$store" ;;
            *) echo "load-test: DPOP_STORES: unknown store $store (redis or memory)" >&2; status=1 ;;
        esac
    done
fi
exit "$status"
