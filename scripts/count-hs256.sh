#!/usr/bin/env bash
# Counts instructions per HS256 verification with valgrind's callgrind:
# jwtkit, jsonwebtoken and the bare HMAC, same token, same claims checks.
# Instruction counts do not depend on what else the machine is doing, so
# this is the noise-free companion to the timed benches.
#
#   scripts/count-hs256.sh            20 000 verifications each
#   N=50000 scripts/count-hs256.sh
#
# Note: valgrind hides the CPU's SHA extensions, so SHA-256 runs its AVX
# code here and the HMAC is a larger share than in real time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
N="${N:-20000}"
cargo build --release -q -p jwt-core --example hs256_count
bin=target/release/examples/hs256_count
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
count() { # target iterations -> total instructions
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
declare -A per
for target in jwtkit jsonwebtoken hmac; do
    base="$(count "$target" 0)"
    total="$(count "$target" "$N")"
    per[$target]=$(( (total - base) / N ))
done
printf '| | instructions per verification |\n|---|---|\n'
for target in jwtkit jsonwebtoken hmac; do
    printf '| %s | %d |\n' "$target" "${per[$target]}"
done
python3 -c "print(f'\njwtkit / jsonwebtoken = {${per[jwtkit]}/${per[jsonwebtoken]}:.3f}')"
