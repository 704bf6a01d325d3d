#!/usr/bin/env bash
# Runs jwt-core's benches: criterion (jwtkit vs the bare aws-lc-rs
# primitive vs jsonwebtoken, all in one run; a table of its medians and
# ratios), then the alternating-rounds comparison (benches/versus.rs), whose
# per-round ratios hold up on a noisy machine.
#
#   scripts/bench-core.sh                 every algorithm (~5 minutes)
#   JWTKIT_BENCH_ALGS=HS256,ES256 scripts/bench-core.sh
#
# The figures in docs/performance.md come from this script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rm -rf target/criterion/sign_* target/criterion/verify_*
cargo bench -p jwt-core --bench sign_verify >&2
python3 - <<'PY'
import json, os, glob
rows = {}
for path in glob.glob("target/criterion/*/*/new/estimates.json"):
    parts = path.split(os.sep)
    group, impl = parts[2], parts[3]
    if not (group.startswith("sign_") or group.startswith("verify_")):
        continue
    op, alg = group.split("_", 1)
    median = json.load(open(path))["median"]["point_estimate"]
    rows.setdefault((alg, op), {})[impl] = median
order = ["HS256","HS384","HS512","RS256","RS384","RS512","PS256","PS384","PS512","ES256","ES384","ES512","EdDSA"]
def fmt(ns):
    return f"{ns/1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"
print("| alg | op | jwtkit | primitive | jsonwebtoken | jwtkit / primitive | jwtkit / jsonwebtoken |")
print("|---|---|---|---|---|---|---|")
for alg in order:
    for op in ["sign", "verify"]:
        r = rows.get((alg, op))
        if not r or "jwtkit" not in r:
            continue
        j = r.get("jsonwebtoken")
        print(f"| {alg} | {op} | {fmt(r['jwtkit'])} | {fmt(r['primitive'])} | {fmt(j) if j else 'n/a'} | "
              f"{r['jwtkit']/r['primitive']:.2f} | {(r['jwtkit']/j) if j else float('nan'):.2f} |")
PY
echo
echo "Alternating rounds (benches/versus.rs):"
cargo bench -q -p jwt-core --bench versus 2>/dev/null
