"""Tokens made by PyJWT verify with jwtkit, and the other way, for every algorithm."""

from __future__ import annotations

import datetime

import jwt as pyjwt
import pytest

import jwtkit
from conftest import ALGORITHMS


def _claims():
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    return {"sub": "alice", "aud": "my-api", "iat": now, "exp": now + datetime.timedelta(minutes=5)}


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_pyjwt_signs_jwtkit_verifies(alg, crypto_keys):
    key, private_pem, public_pem = crypto_keys[alg]
    token = pyjwt.encode(_claims(), private_pem if not alg.startswith("HS") else key, algorithm=alg)
    claims = jwtkit.decode(token, public_pem, algorithms=[alg], audience="my-api")
    assert claims["sub"] == "alice"
    assert isinstance(claims["exp"], int)
    # With cryptography key objects as well.
    if not alg.startswith("HS"):
        claims = jwtkit.decode(token, key.public_key(), algorithms=[alg], audience="my-api")
        assert claims["aud"] == "my-api"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_jwtkit_signs_pyjwt_verifies(alg, crypto_keys):
    key, private_pem, public_pem = crypto_keys[alg]
    for signing_key in (private_pem, key):
        token = jwtkit.encode(_claims(), signing_key, algorithm=alg)
        claims = pyjwt.decode(token, public_pem, algorithms=[alg], audience="my-api")
        assert claims["sub"] == "alice"
        header = pyjwt.get_unverified_header(token)
        assert header["alg"] == alg
        if not alg.startswith("HS"):
            assert header["kid"]  # jwtkit's default: the key's RFC 7638 thumbprint


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_pyjws_payload_bytes_both_ways(alg, crypto_keys):
    key, private_pem, public_pem = crypto_keys[alg]
    token = jwtkit.PyJWS().encode(b"\x00any bytes\xff", private_pem, algorithm=alg)
    assert pyjwt.PyJWS().decode(token, public_pem, algorithms=[alg]) == b"\x00any bytes\xff"
    token = pyjwt.PyJWS().encode(b"hello", private_pem, algorithm=alg)
    assert jwtkit.PyJWS().decode(token, public_pem, algorithms=[alg]) == b"hello"


def test_openssl_keys_both_ways(openssl_keys):
    d = openssl_keys
    for alg, priv, pub in (("RS256", "rsa.pem", "rsa.pub.pem"), ("ES256", "ec.pem", "ec.pub.pem")):
        private_pem = (d / priv).read_text()
        public_pem = (d / pub).read_text()
        token = jwtkit.encode({"sub": "alice", "exp": 4102444800}, private_pem, algorithm=alg)
        assert pyjwt.decode(token, public_pem, algorithms=[alg])["sub"] == "alice"
        token = pyjwt.encode({"sub": "bob", "exp": 4102444800}, private_pem, algorithm=alg)
        assert jwtkit.decode(token, public_pem, algorithms=[alg])["sub"] == "bob"


def test_jwk_interop(crypto_keys):
    key, private_pem, public_pem = crypto_keys["ES256"]
    jwk_dict = pyjwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk_dict["kid"] = "k1"
    token = pyjwt.encode({"sub": "alice", "exp": 4102444800}, private_pem, algorithm="ES256", headers={"kid": "k1"})
    assert jwtkit.decode(token, jwtkit.PyJWK(jwk_dict), algorithms=["ES256"])["sub"] == "alice"
    # PyJWK.key is a cryptography object PyJWT takes too.
    assert pyjwt.decode(token, jwtkit.PyJWK(jwk_dict).key, algorithms=["ES256"])["sub"] == "alice"
