#!/usr/bin/env bash
# jwtkit's test command (the README's, and CI's via .ci/run). On a fresh
# machine it installs what it needs, then runs, failing fast:
#
#   1. cargo fmt --all --check
#   2. cargo clippy --workspace --all-targets --all-features -- -D warnings
#   3. cargo doc (warnings are errors); cargo deny check (offline RustSec
#      snapshot when the live DB is unreachable)
#   4. starts Redis, a 3-node Redis Cluster, OpenBao and moto on 127.0.0.1 (scripts/services.sh)
#   5. cargo test --workspace --all-features
#   6. the Python package crates/jwtkit-py (a cargo workspace of its own):
#      built into the test venv with maturin, its pytest suite run against
#      the same servers (its fmt, clippy and deny run with steps 1-3)
#
# and stops every server it started when it exits, also on failure or Ctrl-C.
#
#   scripts/test.sh                      everything (what CI runs)
#   scripts/test.sh --quick              only steps 4-5
#   scripts/test.sh -- -p jwt-refresh    extra arguments for cargo test; a package
#                                        selection (-p/--package) also narrows clippy
#
# See docs/testing.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The cargo-deny this deny.toml was written and verified with. An installed
# cargo-deny at least as new as the minimum is used as it is.
CARGO_DENY_VERSION=0.20.2
CARGO_DENY_MIN=0.20.0
# cargo-deny keeps the default RustSec database in a folder named after a hash
# of its URL; the offline snapshot must be put exactly there (OFFLINE.md).
ADVISORY_DB_DIR=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691
ADVISORY_SNAPSHOT=${JWTKIT_ADVISORY_SNAPSHOT:-$ROOT/../shared/advisory-db}
PY_MANIFEST=$ROOT/crates/jwtkit-py/Cargo.toml

usage() {
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
}

quick=0
cargo_test_args=()
while (($#)); do
    case $1 in
        --quick) quick=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        --)
            shift
            cargo_test_args=("$@")
            break
            ;;
        *)
            printf 'test.sh: unknown option %s (cargo test arguments go after --)\n\n' "$1" >&2
            usage >&2
            exit 2
            ;;
    esac
    shift
done

# Package selection among the cargo test arguments (up to a second `--`, after
# which they belong to the test binaries). With one, clippy and cargo test
# check only those packages instead of the whole workspace.
packages=()
for ((i = 0; i < ${#cargo_test_args[@]}; i++)); do
    a=${cargo_test_args[i]}
    case $a in
        --) break ;;
        -p | --package) packages+=("$a" "${cargo_test_args[i + 1]:-}") ;;
        -p?* | --package=*) packages+=("$a") ;;
    esac
done
if ((${#packages[@]})); then scope=("${packages[@]}"); else scope=(--workspace); fi

step() {
    printf '\n==> %s\n' "$*" >&2
}
fail() {
    printf '\ntest.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

# --- clean-up: stop the servers this run started, whatever happens ---------

services_started=0
cleanup() {
    local rc=$?
    if ((services_started)); then
        # Quiet on success so cargo test's summary stays the last output.
        if ((rc == 0)); then
            bash scripts/services.sh stop --quiet
        else
            bash scripts/services.sh stop || true
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools --------------------------------------------------------------------

# A fresh login shell on the image may not have rustup's bin directory on PATH.
if ! command -v cargo >/dev/null && [[ -f ${CARGO_HOME:-$HOME/.cargo}/env ]]; then
    # shellcheck source=/dev/null
    . "${CARGO_HOME:-$HOME/.cargo}/env"
fi
command -v cargo >/dev/null || fail "cargo is not installed (install Rust with rustup)"

# A full run writes about 8 GB under target/ (the test binaries, the release
# binaries the CLI tests run, the Python extension): say so up front rather
# than fail with "No space left on device" in the middle of a link.
target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$target_dir"
free_kb=$(df -Pk "$target_dir" | awk 'NR == 2 { print $4 }')
if [[ $free_kb =~ ^[0-9]+$ ]] && ((free_kb < 10 * 1024 * 1024)); then
    printf 'test.sh: warning: %s MB free for %s; a full run needs about 10 GB (free some space, or point CARGO_TARGET_DIR at a larger disk)\n' \
        "$((free_kb / 1024))" "$target_dir" >&2
fi

# rustfmt/clippy come with the toolchain; rustup can add them when missing.
ensure_component() {
    local sub=$1 component=$2
    cargo "$sub" --version >/dev/null 2>&1 && return
    printf 'test.sh: cargo %s missing: rustup component add %s\n' "$sub" "$component" >&2
    rustup component add "$component" >&2 || fail "cargo $sub is missing and \`rustup component add $component\` failed"
}

version_at_least() {
    [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]
}

ensure_cargo_deny() {
    local have=""
    if cargo deny --version >/dev/null 2>&1; then
        have=$(cargo deny --version | awk '{print $2}')
        version_at_least "$have" "$CARGO_DENY_MIN" && return
        printf 'test.sh: cargo-deny %s is older than %s\n' "$have" "$CARGO_DENY_MIN" >&2
    fi
    printf 'test.sh: installing cargo-deny %s (a few minutes on 2 cores)\n' "$CARGO_DENY_VERSION" >&2
    cargo install --locked cargo-deny --version "$CARGO_DENY_VERSION" ||
        fail "cargo install --locked cargo-deny --version $CARGO_DENY_VERSION"
}

# Puts the RustSec snapshot from ../shared/advisory-db where cargo-deny looks
# for its database, as a git repository (shared/advisory-db/OFFLINE.md). A
# marker file says the folder is this copy, so a later run with network drops
# it and lets cargo-deny clone the live database instead.
install_advisory_snapshot() {
    [[ -f $ADVISORY_SNAPSHOT/SNAPSHOT ]] ||
        fail "the live RustSec database is unreachable and there is no offline snapshot at $ADVISORY_SNAPSHOT"
    rm -rf "$ADVISORY_DB_DIR"
    mkdir -p "$ADVISORY_DB_DIR"
    cp -r "$ADVISORY_SNAPSHOT"/. "$ADVISORY_DB_DIR"/
    : >"$ADVISORY_DB_DIR/.jwtkit-offline-snapshot"
    (
        cd "$ADVISORY_DB_DIR"
        git init -q
        git add -A
        git -c user.name=ci -c user.email=ci@localhost commit -qm snapshot
    ) || fail "could not set up the offline advisory database in $ADVISORY_DB_DIR"
    printf 'test.sh: using the offline RustSec snapshot: %s\n' "$(head -n1 "$ADVISORY_SNAPSHOT/SNAPSHOT")" >&2
}

run_cargo_deny() {
    ensure_cargo_deny
    if [[ ${JWTKIT_DENY_OFFLINE:-0} != 1 ]]; then
        [[ -f $ADVISORY_DB_DIR/.jwtkit-offline-snapshot ]] && rm -rf "$ADVISORY_DB_DIR"
        # Bounded: an unreachable network must not eat CI's time.
        if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
            cargo deny check || fail "cargo deny check (see deny.toml for the policy)"
            return
        fi
        printf 'test.sh: the live RustSec database is unreachable\n' >&2
    fi
    install_advisory_snapshot
    # --offline needs every crate's manifest locally; crates.io is reachable.
    cargo fetch || fail "cargo fetch"
    cargo deny --offline check || fail "cargo deny --offline check (see deny.toml for the policy)"
}

# --- checks -------------------------------------------------------------------

if ((!quick)); then
    step "cargo fmt --all --check"
    ensure_component fmt rustfmt
    cargo fmt --all --check || fail "cargo fmt: run \`cargo fmt --all\` and commit the result"

    step "cargo clippy ${scope[*]} --all-targets --all-features -- -D warnings"
    ensure_component clippy clippy
    cargo clippy "${scope[@]}" --all-targets --all-features -- -D warnings ||
        fail "cargo clippy: fix the warnings above"

    # Every public item is documented and every intra-doc link resolves.
    # (jwtkit-cli is a binary whose doc path collides with the jwtkit library's.)
    step "cargo doc --workspace --exclude jwtkit-cli --no-deps --all-features (RUSTDOCFLAGS=-D warnings)"
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --exclude jwtkit-cli --no-deps --all-features ||
        fail "cargo doc: fix the documentation warnings above"

    step "cargo deny check"
    run_cargo_deny

    # The Python package is a workspace of its own (pyo3's extension-module
    # feature must not reach the other crates' test binaries).
    step "crates/jwtkit-py: cargo fmt --check, cargo clippy -D warnings, cargo deny"
    cargo fmt --manifest-path "$PY_MANIFEST" --check ||
        fail "cargo fmt (crates/jwtkit-py): run \`cargo fmt --manifest-path $PY_MANIFEST\`"
    PYO3_PYTHON=$(command -v python3) CARGO_TARGET_DIR="$ROOT/target" \
        cargo clippy --manifest-path "$PY_MANIFEST" --all-targets -- -D warnings ||
        fail "cargo clippy (crates/jwtkit-py): fix the warnings above"
    cargo fetch --manifest-path "$PY_MANIFEST" || fail "cargo fetch (crates/jwtkit-py)"
    cargo deny --manifest-path "$PY_MANIFEST" --offline check ||
        fail "cargo deny (crates/jwtkit-py; see deny.toml for the policy)"
fi

# --- servers ------------------------------------------------------------------

step "starting Redis, Redis Cluster, OpenBao and moto on 127.0.0.1 (scripts/services.sh)"
if bash scripts/services.sh status >/dev/null 2>&1; then
    # A developer's own `scripts/services.sh start`: use it and leave it up.
    printf 'test.sh: using the servers already started by scripts/services.sh (left running)\n' >&2
else
    services_started=1
    bash scripts/services.sh start || fail "a test server did not start (its log is above)"
fi

# --- tests --------------------------------------------------------------------

if ((${#packages[@]})); then test_scope=(); else test_scope=(--workspace); fi
test_cmd=(cargo test "${test_scope[@]}" --all-features "${cargo_test_args[@]}")
step "${test_cmd[*]}"
# In a subshell, so the dummy AWS credentials in env.sh reach only the tests.
# The output is also kept, to close with one total over every test binary:
# cargo's own last line is the last binary's (often a crate with 0 doctests).
test_log=$(mktemp)
set +e
(
    # shellcheck source=/dev/null
    . "${JWTKIT_SERVICES_DIR:-$ROOT/.services}/env.sh"
    exec "${test_cmd[@]}"
) 2>&1 | tee "$test_log"
test_status=${PIPESTATUS[0]}
set -e
totals=$(awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped", p, f, i }' "$test_log")
rm -f "$test_log"
((test_status == 0)) || fail "cargo test ($totals)"

# --- the Python package ---------------------------------------------------------

# Only with the whole suite (a package selection narrows the run to Rust).
py_totals="not run (a package selection was given)"
if ((${#packages[@]} == 0)); then
    step "crates/jwtkit-py: maturin develop into the test venv, then pytest"
    py_log=$(mktemp)
    set +e
    (
        # shellcheck source=/dev/null
        . "${JWTKIT_SERVICES_DIR:-$ROOT/.services}/env.sh"
        venv=$(dirname "$(dirname "$JWTKIT_TEST_PYTHON")")
        export VIRTUAL_ENV=$venv PATH=$venv/bin:$PATH CARGO_TARGET_DIR=$ROOT/target
        maturin develop --quiet -m "$PY_MANIFEST" || exit 1
        cd "$ROOT/crates/jwtkit-py" && exec python -m pytest -q -p no:cacheprovider tests
    ) 2>&1 | tee "$py_log"
    py_status=${PIPESTATUS[0]}
    set -e
    py_totals=$(tail -n 5 "$py_log" | grep -Eo '[0-9]+ (passed|failed|skipped|errors?)' | paste -sd, - || true)
    rm -f "$py_log"
    ((py_status == 0)) || fail "pytest (crates/jwtkit-py: ${py_totals:-no summary})"
fi
printf '\ntest.sh: every test binary, added up:\n%s\n' "$totals"
printf 'test.sh: the Python package (pytest): %s\n' "$py_totals"
