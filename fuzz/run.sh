#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, one after another,
# starting from the seed corpora in fuzz/seeds (test vectors and test keys).
#
#   fuzz/run.sh            # 10 minutes per target
#   fuzz/run.sh 60 verify  # one target, one minute
#
# Needs `cargo install cargo-fuzz`. Builds without a sanitizer (`-s none`), so
# it works on the stable toolchain: the code under test is safe Rust, and what
# the fuzzers look for is panics, hangs and memory blow-ups.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(verify claims sign_verify jwk key_load remote_jwks)
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t for ${seconds}s" >&2
    cargo fuzz run -s none -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        2>&1 | tee "corpus/$t.log" | grep -E "^(#[0-9]+ +(DONE|INITED)|stat::|==|SUMMARY|panicked|Test unit written)" || true
done
