"""jwtkit next to PyJWT, in one process, alternating rounds.

Each case runs ROUNDS rounds; a round times N calls of jwtkit then N calls of
PyJWT (the order swapped every round, so drift and warm-up hit both alike).
Prints per-call medians, the spread (min-max of the rounds) and the speed-up
of the medians. Build the extension with --release first:

    maturin develop --release -m crates/jwtkit-py/Cargo.toml
    python crates/jwtkit-py/bench/bench_vs_pyjwt.py [--rounds 15] [--json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import jwtkit

SECRET = "a secret of at least 32 bytes, for HS256, in the bench"


def _pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pub_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def cases():
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    claims = {"sub": "alice", "iss": "https://auth.example.com", "aud": "my-api", "scope": "read write",
              "iat": int(now.timestamp()), "exp": int(now.timestamp()) + 3600}
    hs_token = pyjwt.encode(claims, SECRET, algorithm="HS256")
    dec_kw = dict(algorithms=["HS256"], audience="my-api", issuer="https://auth.example.com")

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = _pem(rsa_key)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem, ec_pub = _pem(ec_key), _pub_pem(ec_key)
    es_token = pyjwt.encode(claims, ec_pem, algorithm="ES256")
    es_kw = dict(algorithms=["ES256"], audience="my-api")

    return [
        # name, target, jwtkit call, PyJWT call, calls per round
        ("HS256 decode with claims", ">= 10x",
         lambda: jwtkit.decode(hs_token, SECRET, **dec_kw), lambda: pyjwt.decode(hs_token, SECRET, **dec_kw), 2000),
        ("RS256 encode, PEM bytes", ">= 3x",
         lambda: jwtkit.encode(claims, rsa_pem, algorithm="RS256"),
         lambda: pyjwt.encode(claims, rsa_pem, algorithm="RS256"), 40),
        ("RS256 encode, key objects", "within 1.2x",
         lambda: jwtkit.encode(claims, rsa_key, algorithm="RS256"),
         lambda: pyjwt.encode(claims, rsa_key, algorithm="RS256"), 40),
        ("ES256 encode, PEM bytes", ">= 2x",
         lambda: jwtkit.encode(claims, ec_pem, algorithm="ES256"),
         lambda: pyjwt.encode(claims, ec_pem, algorithm="ES256"), 400),
        ("ES256 decode, PEM bytes", ">= 2x",
         lambda: jwtkit.decode(es_token, ec_pub, **es_kw), lambda: pyjwt.decode(es_token, ec_pub, **es_kw), 400),
    ]


def timed(fn, n):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6  # µs per call


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    for name, target, ours, theirs, n in cases():
        ours(), theirs()  # warm-up (and key caches)
        a, b = [], []
        for r in range(args.rounds):
            if r % 2 == 0:
                a.append(timed(ours, n))
                b.append(timed(theirs, n))
            else:
                b.append(timed(theirs, n))
                a.append(timed(ours, n))
        ma, mb = statistics.median(a), statistics.median(b)
        results.append({"case": name, "target": target, "jwtkit_us": ma, "pyjwt_us": mb,
                        "jwtkit_spread": [min(a), max(a)], "pyjwt_spread": [min(b), max(b)],
                        "speedup": mb / ma})
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    print(f"{'case':28} {'jwtkit µs (min-max)':>24} {'PyJWT µs (min-max)':>26} {'speed-up':>9}  target")
    for r in results:
        print(f"{r['case']:28} {r['jwtkit_us']:8.2f} ({r['jwtkit_spread'][0]:.2f}-{r['jwtkit_spread'][1]:.2f})"
              f" {r['pyjwt_us']:9.2f} ({r['pyjwt_spread'][0]:.2f}-{r['pyjwt_spread'][1]:.2f})"
              f" {r['speedup']:8.2f}x  {r['target']}")
    print(f"Python {sys.version.split()[0]}, PyJWT {pyjwt.__version__}, {args.rounds} alternating rounds")


if __name__ == "__main__":
    main()
