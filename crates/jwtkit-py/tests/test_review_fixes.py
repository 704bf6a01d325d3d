"""Findings of the security review of the Python package (issue 19), each
pinned: KeyStore leeway bounds (F3), DER/JWK public keys with mixed
algorithm lists (F5), exact big integers in verified claims (F6), payload
keys that collide after json.dumps' conversion (F7), PyJWT's
`enforce_minimum_key_length` option (F8). The fork fixes (F1) are in
test_fork.py."""

from __future__ import annotations

import base64
import datetime
import enum
import hashlib
import hmac
import json
import math
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import jwtkit

SECRET = b"k" * 40


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256(payload: bytes, key: bytes = SECRET) -> str:
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(payload)
    return signing_input + "." + _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


# --- F3: KeyStore leeway bounded like decode's ------------------------------


@pytest.fixture
def expired_token_and_store(tmp_path):
    old = jwtkit.KeyStore.open(f"file:{tmp_path / 'k'}", now=int(time.time()) - 30 * 86400)
    old.init("ES256", {"verify_grace": datetime.timedelta(days=365),
                       "rotate_after": datetime.timedelta(days=365)})
    token = old.sign({"sub": "a"})     # expired 30 days ago (+1 h)
    return token, jwtkit.KeyStore.open(f"file:{tmp_path / 'k'}")


@pytest.mark.parametrize("leeway", [2**64 - 1, 2**64, 10**30, 86400 * 365 + 1,
                                    datetime.timedelta(days=10**6), datetime.timedelta(days=366),
                                    float(86400 * 366)])
def test_keystore_leeway_over_one_year_is_refused(expired_token_and_store, leeway):
    token, store = expired_token_and_store
    with pytest.raises(jwtkit.ConfigurationError, match="one year") as e:
        store.verify(token, leeway=leeway)
    assert e.value.kind == "config"
    with pytest.raises(jwtkit.ConfigurationError, match="one year"):
        store.verifier(leeway=leeway)
    # The same maximum as jwtkit.decode's.
    with pytest.raises(jwtkit.ConfigurationError, match="one year"):
        jwtkit.decode("a.b.c", SECRET, algorithms=["HS256"], leeway=leeway)


@pytest.mark.parametrize("leeway", [-1, -0.5, math.nan, -math.inf, math.inf, datetime.timedelta(seconds=-1)])
def test_keystore_leeway_negative_or_nan_is_refused(expired_token_and_store, leeway):
    token, store = expired_token_and_store
    with pytest.raises(jwtkit.ConfigurationError):
        store.verify(token, leeway=leeway)
    with pytest.raises(jwtkit.ConfigurationError):
        store.verifier(leeway=leeway)


def test_keystore_leeway_within_bounds_still_works(expired_token_and_store):
    token, store = expired_token_and_store
    with pytest.raises(jwtkit.ExpiredSignatureError):
        store.verify(token, leeway=60)
    assert store.verify(token, leeway=datetime.timedelta(days=31))["sub"] == "a"
    assert store.verifier(leeway=86400 * 365).verify(token)["sub"] == "a"


# --- F5: DER / JWK text public keys with HS256 and RS256 allowed ------------


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_forms(key):
    public = key.public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk_text = pyjwt.algorithms.RSAAlgorithm.to_jwk(public)
    return {"der": der, "pem": pem, "jwk-str": jwk_text, "jwk-bytes": jwk_text.encode()}


@pytest.mark.parametrize("form", ["der", "pem", "jwk-str", "jwk-bytes"])
def test_a_public_key_with_mixed_algorithms_verifies_rs256(rsa_key, form):
    key = _public_forms(rsa_key)[form]
    token = jwtkit.encode({"sub": "a", "exp": 2_000_000_000}, rsa_key, algorithm="RS256")
    assert jwtkit.decode(token, key, algorithms=["HS256", "RS256"])["sub"] == "a"


@pytest.mark.parametrize("form", ["der", "pem", "jwk-str", "jwk-bytes"])
def test_an_hs256_token_signed_with_the_public_key_is_refused(rsa_key, form):
    key = _public_forms(rsa_key)[form]
    raw = key if isinstance(key, bytes) else key.encode()
    forged = _hs256(b'{"sub":"admin","exp":2000000000}', raw)
    with pytest.raises(jwtkit.InvalidTokenError) as e:
        jwtkit.decode(forged, key, algorithms=["HS256", "RS256"])
    assert not isinstance(e.value, jwtkit.ExpiredSignatureError)
    assert e.value.kind in ("invalid_algorithm", "invalid_key"), (e.value.kind, str(e.value))


def test_json_that_is_no_public_key_is_treated_as_with_hs256_alone():
    # JSON text that is no key stays the HMAC secret's bytes (as PyJWT takes
    # it); an `oct` JWK text is refused as a secret either way (jwt-core
    # refuses key-shaped secrets), never routed to the public-key path.
    plain = '{"not": "a key", "padding": "xxxxxxxxxxxxxxxxxxxxxxxx"}'
    token = _hs256(b'{"sub":"a","exp":2000000000}', plain.encode())
    assert jwtkit.decode(token, plain, algorithms=["HS256", "RS256"])["sub"] == "a"
    oct_jwk = '{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}'
    token = _hs256(b'{"sub":"a","exp":2000000000}', oct_jwk.encode())
    for algs in (["HS256"], ["HS256", "RS256"]):
        with pytest.raises(jwtkit.InvalidKeyError, match="HMAC secret is a JWK"):
            jwtkit.decode(token, oct_jwk, algorithms=algs)


# --- F6: integers beyond 64 bits and -0 are exact ---------------------------


def test_big_integers_and_minus_zero_come_back_exact_as_with_pyjwt():
    exp = int(time.time()) + 600
    payload = (b'{"exp":%d,"id":123456789012345678901234567890,"neg":-98765432109876543210987,'
               b'"n":-0,"u64":18446744073709551615,"i64":-9223372036854775808,'
               b'"nested":{"list":[1,2,340282366920938463463374607431768211456,-0]},'
               b'"f":1.5,"e":1e30,"z":-0.0}' % exp)
    token = _hs256(payload)
    ours = jwtkit.decode(token, SECRET, algorithms=["HS256"])
    theirs = pyjwt.decode(token, SECRET, algorithms=["HS256"])
    assert ours == theirs
    assert ours["id"] == 123456789012345678901234567890 and type(ours["id"]) is int
    assert ours["neg"] == -98765432109876543210987 and type(ours["neg"]) is int
    assert ours["n"] == 0 and type(ours["n"]) is int
    assert type(ours["nested"]["list"][2]) is int and type(ours["nested"]["list"][3]) is int
    assert ours["u64"] == 2**64 - 1 and ours["i64"] == -2**63
    assert type(ours["e"]) is float and type(ours["f"]) is float
    assert type(ours["z"]) is float and math.copysign(1, ours["z"]) == -1
    complete = jwtkit.decode_complete(token, SECRET, algorithms=["HS256"])
    assert complete["payload"] == theirs and type(complete["payload"]["id"]) is int


def test_keystore_verify_returns_big_integers_exact(tmp_path):
    # A token signed with the store's active key by another tool (here
    # PyJWT, with the key file of the file store).
    store = jwtkit.KeyStore.open(f"file:{tmp_path / 'k'}")
    kid = store.init("ES256")["active"]
    pem = (tmp_path / "k" / f"{kid}.pem").read_bytes()
    claims = {"sub": "a", "exp": int(time.time()) + 600, "id": 123456789012345678901234567890, "n": [-2**70]}
    token = pyjwt.encode(claims, pem, algorithm="ES256", headers={"kid": kid})
    assert store.verify(token) == claims
    assert type(store.verify(token)["id"]) is int
    assert store.verifier().verify(token) == claims

    import asyncio
    async def main():
        return await store.verifier().verify_async(token)
    assert asyncio.run(main()) == claims


def test_ordinary_payloads_are_unchanged():
    token = _hs256(b'{"exp":2000000000,"a":1,"b":-5,"c":2.0,"d":1e3,"s":"12345678901234567890123"}')
    assert jwtkit.decode(token, SECRET, algorithms=["HS256"]) == pyjwt.decode(token, SECRET, algorithms=["HS256"])


# --- F7: payload keys that collide after json.dumps' conversion -------------


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize("payload, name", [
    ({1: "a", "1": "b"}, "1"),
    ({"admin": 1, True: "x", "true": "y"}, "true"),
    ({None: 1, "null": 2}, "null"),
    ({1.5: 1, "1.5": 2}, "1.5"),
    ({False: 1, "false": 2}, "false"),
    ({Color.RED: 1, "1": 2}, "1"),
    ({"outer": {2: "a", "2": "b"}}, "2"),
])
def test_keys_colliding_after_conversion_are_refused(payload, name):
    with pytest.raises(ValueError, match=f'both written as "{name}"'):
        jwtkit.encode(payload, SECRET)
    # json.dumps would indeed write the name twice.
    text = json.dumps(payload)
    assert text.count(f'"{name}"') == 2


@pytest.mark.parametrize("payload", [
    {1: "a", 2.5: "b", True: "c", None: "d", Color.RED: "e", "x": {3: "f"}},
    {float("nan"): 1, float("inf"): 2, -float("inf"): 3},
])
def test_non_str_keys_are_named_as_json_dumps_names_them(payload):
    token = jwtkit.encode(payload, SECRET)
    assert jwtkit.dangerous_decode_unverified(token) == json.loads(json.dumps(payload))


# --- F8: PyJWT's enforce_minimum_key_length option ---------------------------


def test_enforce_minimum_key_length_true_is_accepted():
    token = jwtkit.encode({"exp": 2_000_000_000}, SECRET)
    options = {"enforce_minimum_key_length": True}
    assert jwtkit.decode(token, SECRET, algorithms=["HS256"], options=options) == {"exp": 2_000_000_000}
    with pytest.raises(jwtkit.InvalidKeyError):
        jwtkit.decode(token, b"short", algorithms=["HS256"], options=options)


def test_enforce_minimum_key_length_false_is_refused_with_the_reason():
    token = jwtkit.encode({"exp": 2_000_000_000}, SECRET)
    with pytest.raises(jwtkit.ConfigurationError, match="always refuses keys shorter"):
        jwtkit.decode(token, SECRET, algorithms=["HS256"], options={"enforce_minimum_key_length": False})
