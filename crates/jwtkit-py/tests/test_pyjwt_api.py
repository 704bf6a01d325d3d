"""Every public function and class of the PyJWT-shaped API, and where
jwtkit's strictness differs from PyJWT (each asserted)."""

from __future__ import annotations

import datetime
import json
import threading
import time
import uuid
from decimal import Decimal

import jwt as pyjwt
import pytest

import jwtkit as jwt
from conftest import SECRET

NOW = lambda: datetime.datetime.now(tz=datetime.timezone.utc)  # noqa: E731


def test_exception_hierarchy_matches_pyjwt():
    names = ["PyJWTError", "InvalidTokenError", "DecodeError", "InvalidSignatureError", "ExpiredSignatureError",
             "InvalidAudienceError", "InvalidIssuerError", "InvalidIssuedAtError", "ImmatureSignatureError",
             "InvalidKeyError", "InvalidAlgorithmError", "MissingRequiredClaimError", "PyJWKError",
             "PyJWKSetError", "PyJWKClientError", "PyJWKClientConnectionError", "InvalidSubjectError",
             "InvalidJTIError"]
    for name in names:
        ours, theirs = getattr(jwt, name), getattr(pyjwt.exceptions, name)
        assert [b.__name__ for b in ours.__mro__ if b.__module__.startswith("jwtkit")] == [
            b.__name__ for b in theirs.__mro__ if b.__module__.startswith("jwt")
        ], name
    assert issubclass(jwt.ConfigurationError, ValueError)
    assert issubclass(jwt.InvalidGrantError, jwt.InvalidTokenError)


def test_encode_decode_hs256_with_datetimes():
    now = NOW()
    token = jwt.encode({"sub": "alice", "iat": now, "exp": now + datetime.timedelta(minutes=15), "n": [1, 2.5, None, True]},
                       SECRET, algorithm="HS256")
    assert isinstance(token, str)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] == int(now.timestamp()) + 900
    assert claims["iat"] == int(now.timestamp())
    assert claims["n"] == [1, 2.5, None, True]
    # bytes secrets and bytes tokens too
    assert jwt.decode(token.encode(), SECRET.encode(), algorithms=["HS256"])["sub"] == "alice"


def test_decode_complete_and_unverified_header():
    token = jwt.encode({"sub": "a", "exp": 4102444800}, SECRET, algorithm="HS384", headers={"kid": "k1", "ver": 2})
    out = jwt.decode_complete(token, SECRET, algorithms=["HS384"])
    assert out["header"] == {"alg": "HS384", "typ": "JWT", "kid": "k1", "ver": 2}
    assert out["payload"] == {"sub": "a", "exp": 4102444800}
    assert isinstance(out["signature"], bytes) and len(out["signature"]) == 48
    assert jwt.get_unverified_header(token)["kid"] == "k1"
    assert pyjwt.get_unverified_header(token) == jwt.get_unverified_header(token)


def test_headers_alg_wins_and_typ_removed():
    token = jwt.encode({"exp": 4102444800}, SECRET, algorithm="HS256", headers={"alg": "HS512", "typ": None})
    assert jwt.get_unverified_header(token) == {"alg": "HS512"}


def test_json_encoder():
    class Enc(json.JSONEncoder):
        def default(self, o):
            if isinstance(o, Decimal):
                return str(o)
            return super().default(o)

    token = jwt.encode({"price": Decimal("1.10"), "exp": NOW() + datetime.timedelta(minutes=1)}, SECRET,
                       algorithm="HS256", json_encoder=Enc)
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["price"] == "1.10"
    with pytest.raises(TypeError, match="not JSON serializable"):
        jwt.encode({"price": Decimal("1")}, SECRET, algorithm="HS256")
    with pytest.raises(TypeError, match="Expecting a dict"):
        jwt.encode(["not", "a", "dict"], SECRET, algorithm="HS256")


def _tok(claims, alg="HS256"):
    return jwt.encode(claims, SECRET, algorithm=alg)


def _raw(claims):
    """A token jwtkit would not sign (a claim of the wrong type), made by PyJWT's PyJWS."""
    return pyjwt.api_jws.PyJWS().encode(json.dumps(claims).encode(), SECRET, algorithm="HS256")


def test_each_rejection_class_and_kind():
    past = int(time.time()) - 3600
    cases = [
        (_tok({"exp": past}), {}, jwt.ExpiredSignatureError, "expired"),
        (_tok({"exp": 4102444800, "nbf": 4102444000}), {}, jwt.ImmatureSignatureError, "immature"),
        (_tok({"exp": 4102444800, "aud": "other"}), {"audience": "my-api"}, jwt.InvalidAudienceError, "invalid_audience"),
        (_tok({"exp": 4102444800, "aud": "my-api"}), {}, jwt.InvalidAudienceError, "invalid_audience"),
        (_tok({"exp": 4102444800, "iss": "evil"}), {"issuer": "good"}, jwt.InvalidIssuerError, "invalid_issuer"),
        (_tok({"exp": 4102444800, "sub": "bob"}), {"subject": "alice"}, jwt.InvalidSubjectError, "invalid_subject"),
        (_raw({"exp": 4102444800, "iat": "yesterday"}), {}, jwt.InvalidIssuedAtError, "invalid_claim"),
        (_raw({"exp": 4102444800, "jti": 5}), {}, jwt.InvalidJTIError, "invalid_claim"),
        (_tok({"exp": 4102444800}), {"options": {"require": ["exp", "iss"]}}, jwt.MissingRequiredClaimError, "missing_claim"),
        (_tok({"sub": "no exp"}), {}, jwt.MissingRequiredClaimError, "missing_claim"),
        (_tok({"exp": 4102444800})[:-2] + "AA", {}, jwt.InvalidSignatureError, "invalid_signature"),
        ("not.a.token", {}, jwt.DecodeError, "malformed"),
        ("Bearer abc", {}, jwt.DecodeError, "malformed"),
        (_tok({"exp": 4102444800}, "HS512"), {}, jwt.InvalidAlgorithmError, "invalid_algorithm"),
        (pyjwt.encode({"sub": "m"}, None, algorithm="none"), {}, jwt.InvalidAlgorithmError, "invalid_algorithm"),
    ]
    for token, kwargs, cls, kind in cases:
        with pytest.raises(cls) as info:
            jwt.decode(token, SECRET, algorithms=kwargs.pop("algorithms", ["HS256"]), **kwargs)
        assert info.value.kind == kind, (token, info.value)
        assert isinstance(info.value, jwt.InvalidTokenError)
    # jwtkit does not sign what its verifier would refuse.
    with pytest.raises(jwt.ConfigurationError, match="iat"):
        jwt.encode({"iat": "yesterday"}, SECRET)
    with pytest.raises(jwt.MissingRequiredClaimError) as info:
        jwt.decode(_tok({"exp": 4102444800}), SECRET, algorithms=["HS256"], options={"require": ["iss"]})
    assert info.value.claim == "iss"
    assert "iss" in str(info.value)


def test_audience_issuer_lists_subject_and_leeway():
    token = _tok({"exp": int(time.time()) - 5, "aud": ["a", "b"], "iss": "i2", "sub": "alice"})
    kwargs = dict(algorithms=["HS256"], audience=["x", "b"], issuer=("i1", "i2"), subject="alice")
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, SECRET, **kwargs)
    assert jwt.decode(token, SECRET, leeway=60, **kwargs)["sub"] == "alice"
    assert jwt.decode(token, SECRET, leeway=datetime.timedelta(seconds=60), **kwargs)["sub"] == "alice"
    with pytest.raises(jwt.ConfigurationError):
        jwt.decode(token, SECRET, leeway=-1, **kwargs)


def test_optional_exp_is_explicit():
    token = _tok({"sub": "forever"})
    assert jwt.decode(token, SECRET, algorithms=["HS256"], options={"optional_exp": True})["sub"] == "forever"


@pytest.mark.filterwarnings("ignore:The HMAC key is")
def test_strictness_differences_are_errors_that_say_so():
    token = _tok({"exp": 4102444800})
    with pytest.raises(jwt.DecodeError, match='"algorithms" argument') as info:
        jwt.decode(token, SECRET)
    assert info.value.kind == "config"
    with pytest.raises(jwt.ConfigurationError, match="dangerous_decode_unverified"):
        jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_signature": False})
    for switch in ("verify_exp", "verify_aud", "verify_iss", "verify_nbf", "verify_iat"):
        with pytest.raises(jwt.ConfigurationError, match=switch):
            jwt.decode(token, SECRET, algorithms=["HS256"], options={switch: False})
    # True is PyJWT's default and accepted.
    assert jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": True, "verify_signature": True})
    with pytest.raises(jwt.ConfigurationError, match="unknown option"):
        jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_everything": True})
    # Weak secrets: PyJWT's tutorials' "secret" is refused, signing and verifying.
    with pytest.raises(jwt.InvalidKeyError) as info:
        jwt.encode({"sub": "a"}, "secret", algorithm="HS256")
    assert info.value.kind == "weak_key"
    assert "32" in str(info.value)
    legacy = pyjwt.encode({"sub": "a", "exp": 4102444800}, "secret" * 4, algorithm="HS256")  # 24 bytes
    with pytest.raises(jwt.InvalidKeyError) as info:
        jwt.decode(legacy, "secret" * 4, algorithms=["HS256"])
    assert info.value.kind == "weak_key"
    assert not isinstance(info.value, jwt.InvalidTokenError)  # a setup error, not a rejection
    # An unknown algorithm name, and PyJWT's algorithm=None (unsigned).
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.encode({"sub": "a"}, SECRET, algorithm="HS999")
    with pytest.raises(jwt.InvalidAlgorithmError, match="none"):
        jwt.encode({"sub": "a"}, SECRET, algorithm=None)


def test_dangerous_decode_unverified():
    token = pyjwt.encode({"sub": "x", "exp": 1}, "other secret of enough length, 32 bytes+", algorithm="HS256")
    assert jwt.dangerous_decode_unverified(token) == {"sub": "x", "exp": 1}
    with pytest.raises(jwt.DecodeError):
        jwt.dangerous_decode_unverified("garbage")


def test_key_confusion_refused(crypto_keys):
    _, private_pem, public_pem = crypto_keys["RS256"]
    forged = pyjwt.api_jws.PyJWS()  # an attacker would HMAC with the public key bytes
    token = forged.encode(b'{"sub":"mallory","exp":4102444800}', b"x" * 64, algorithm="HS256")
    with pytest.raises(jwt.InvalidKeyError):
        jwt.decode(token, public_pem, algorithms=["HS256"])
    # Listing both families with a PEM key: the HS256 token is refused as an algorithm.
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(token, public_pem, algorithms=["HS256", "RS256"])
    # A cryptography key object for HMAC.
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"a": 1}, crypto_keys["RS256"][0], algorithm="HS256")


def test_pyjwt_class_default_options():
    obj = jwt.PyJWT(options={"require": ["sub"]})
    token = obj.encode({"exp": 4102444800}, SECRET)
    with pytest.raises(jwt.MissingRequiredClaimError):
        obj.decode(token, SECRET, algorithms=["HS256"])
    assert obj.decode(token, SECRET, algorithms=["HS256"], options={"require": []}) == {"exp": 4102444800}
    assert obj.decode_complete(token, SECRET, algorithms=["HS256"], options={"require": []})["payload"]["exp"] == 4102444800
    with pytest.raises(jwt.ConfigurationError):
        jwt.PyJWT(options={"verify_signature": False}).decode(token, SECRET, algorithms=["HS256"])


def test_pyjws_class():
    jws = jwt.PyJWS()
    token = jws.encode(b"payload", SECRET, algorithm="HS512", headers={"cty": "text/plain"})
    out = jws.decode_complete(token, SECRET, algorithms=["HS512"])
    assert out["payload"] == b"payload"
    assert out["header"]["cty"] == "text/plain"
    assert jws.get_unverified_header(token)["alg"] == "HS512"
    assert jwt.PyJWS(algorithms=["HS512"]).decode(token, SECRET) == b"payload"
    with pytest.raises(jwt.InvalidAlgorithmError):
        jws.decode(token, SECRET, algorithms=["HS256"])
    with pytest.raises(jwt.DecodeError):
        jws.decode(token, SECRET)
    with pytest.raises(jwt.ConfigurationError):
        jwt.PyJWS(options={"verify_signature": False})
    with pytest.raises(jwt.InvalidSignatureError):
        jws.decode(token[:-3] + "AAA", SECRET, algorithms=["HS512"])
    assert "EdDSA" in jws.get_algorithms()


def test_refused_header_parameters():
    with pytest.raises(jwt.ConfigurationError, match="jku"):
        jwt.encode({"a": 1}, SECRET, headers={"jku": "https://evil.example/jwks"})


def test_pyjwk_and_set(crypto_keys):
    key, private_pem, _ = crypto_keys["EdDSA"]
    public_jwk = json.loads(pyjwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    private_jwk = json.loads(pyjwt.algorithms.OKPAlgorithm.to_jwk(key))
    pub = jwt.PyJWK(dict(public_jwk, kid="ed1"))
    priv = jwt.PyJWK.from_json(json.dumps(dict(private_jwk, kid="ed1")))
    assert (pub.key_type, pub.key_id, pub.algorithm_name) == ("OKP", "ed1", "EdDSA")
    token = jwt.encode({"sub": "alice", "exp": 4102444800}, priv, algorithm="EdDSA")
    assert jwt.decode(token, pub, algorithms=["EdDSA"])["sub"] == "alice"
    assert jwt.decode(token, pub.key, algorithms=["EdDSA"])["sub"] == "alice"
    oct_key = jwt.PyJWK({"kty": "oct", "k": pyjwt.utils.base64url_encode(SECRET.encode()).decode(), "alg": "HS256"})
    assert oct_key.key == SECRET.encode()
    assert oct_key.algorithm_name == "HS256"
    s = jwt.PyJWKSet.from_dict({"keys": [dict(public_jwk, kid="ed1"), {"kty": "EC", "crv": "P-999"}]})
    assert len(s.keys) == 1 and s["ed1"].key_id == "ed1"
    with pytest.raises(KeyError):
        s["nope"]
    with pytest.raises(jwt.PyJWKSetError):
        jwt.PyJWKSet([{"kty": "nope"}])
    with pytest.raises(jwt.PyJWKError):
        jwt.PyJWK({"kty": "RSA", "n": "AQAB"})


def test_jwks_client_on_loopback(crypto_keys, jwks_server):
    key, private_pem, _ = crypto_keys["RS256"]
    jwk_dict = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks_server.set({"keys": [dict(jwk_dict, kid="2024-05", alg="RS256", use="sig")]})
    # cooldown_duration=0: the unknown kid below refetches at once (the first
    # fetch starts the cooldown, as in PyJWT 2.10+); tests/test_jwks_client.py has the rest.
    client = jwt.PyJWKClient(jwks_server.url, lifespan=60, cooldown_duration=0)
    token = jwt.encode({"sub": "alice", "exp": 4102444800}, private_pem, algorithm="RS256", headers={"kid": "2024-05"})
    signing_key = client.get_signing_key_from_jwt(token)
    assert signing_key.key_id == "2024-05"
    assert jwt.decode(token, signing_key.key, algorithms=["RS256"])["sub"] == "alice"
    assert jwt.decode(token, signing_key, algorithms=["RS256"])["sub"] == "alice"
    assert client.get_signing_key("2024-05").key_id == "2024-05"
    assert [k.key_id for k in client.get_jwk_set().keys] == ["2024-05"]
    assert client.fetch_data()["keys"][0]["kid"] == "2024-05"
    fetched = jwks_server.hits
    client.get_signing_key("2024-05")
    assert jwks_server.hits == fetched  # cached
    # An unknown kid refetches once, then says which kids there are.
    with pytest.raises(jwt.PyJWKClientError) as info:
        client.get_signing_key("rotated-away")
    assert info.value.kind == "unknown_key" and "2024-05" in str(info.value)
    assert jwks_server.hits > fetched
    with pytest.raises(jwt.PyJWKClientConnectionError) as info:
        jwt.PyJWKClient("http://127.0.0.1:9/jwks.json").get_jwk_set()
    assert info.value.kind == "fetch"
    with pytest.raises(jwt.ConfigurationError) as info:
        jwt.PyJWKClient("http://example.com/jwks.json")
    assert info.value.kind == "invalid_uri"


def test_threads_verify_concurrently(crypto_keys):
    """Threads share the caches and verify at once (the GIL is released around the RSA operation): same answers, no deadlock."""
    _, private_pem, public_pem = crypto_keys["RS256"]
    token = jwt.encode({"sub": "t", "exp": 4102444800}, private_pem, algorithm="RS256")
    results = []

    def work():
        for _ in range(50):
            results.append(jwt.decode(token, public_pem, algorithms=["RS256"])["sub"])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["t"] * 200


def test_uuid_claims_need_an_encoder():
    with pytest.raises(TypeError):
        jwt.encode({"jti": uuid.uuid4()}, SECRET)


def test_cache_is_keyed_by_exact_key_bytes():
    """A cached verifier is never used for another key, even one byte apart."""
    token = _tok({"exp": 4102444800})
    assert jwt.decode(token, SECRET, algorithms=["HS256"])
    for other in (SECRET[:-1] + "?", SECRET + " ", SECRET.encode() + b"\x00"):
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, other, algorithms=["HS256"])
    # Same key, other settings: a separate verifier.
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(_tok({"exp": 4102444800, "iss": "a"}), SECRET, algorithms=["HS256"], issuer="b")
    assert jwt.decode(_tok({"exp": 4102444800, "iss": "a"}), SECRET, algorithms=["HS256"], issuer="a")


def test_key_forms(crypto_keys):
    from cryptography.hazmat.primitives import serialization

    key, private_pem, public_pem = crypto_keys["ES384"]
    token = jwt.encode({"exp": 4102444800}, private_pem.decode(), algorithm="ES384")  # PEM as str
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for verify_key in (public_pem, public_pem.decode(), der, key.public_key(), key, private_pem):
        assert jwt.decode(token, verify_key, algorithms=["ES384"]) == {"exp": 4102444800}
    # The wrong curve for the algorithm.
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"exp": 4102444800}, private_pem, algorithm="ES256")
    with pytest.raises(jwt.InvalidKeyError):
        jwt.decode(token, b"\x30\x03garbage", algorithms=["ES384"])
    with pytest.raises(jwt.InvalidKeyError, match="ssh-keygen"):
        jwt.decode(token, "ssh-rsa AAAAB3NzaC1yc2E", algorithms=["RS256"])
    with pytest.raises(TypeError):
        jwt.decode(token, 12345, algorithms=["ES384"])
    with pytest.raises(jwt.InvalidKeyError):
        jwt.decode(token, None, algorithms=["ES384"])


def test_pyjwk_constructors_and_thumbprint(crypto_keys):
    key, private_pem, _ = crypto_keys["RS256"]
    public_jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    a = jwt.PyJWK.from_dict(public_jwk, algorithm="RS256")
    b = jwt.PyJWKSet.from_json(json.dumps({"keys": [dict(public_jwk, kid="r1")]}))["r1"]
    token = jwt.encode({"exp": 4102444800}, private_pem, algorithm="RS256")
    assert jwt.get_unverified_header(token)["kid"] == a.thumbprint  # RFC 7638, jwtkit's default kid
    assert a.algorithm_name == "RS256" and b.key_type == "RSA"
    assert jwt.decode(token, a, algorithms=["RS256"]) == {"exp": 4102444800}
    assert "PyJWK(" in repr(a) and public_jwk["n"] not in repr(a)
    # A JWK bound to another algorithm verifies nothing else.
    ps = jwt.PyJWK(dict(public_jwk, alg="PS256"))
    with pytest.raises((jwt.InvalidAlgorithmError, jwt.InvalidKeyError)) as info:
        jwt.decode(token, ps, algorithms=["RS256"])
    assert "PS256" in str(info.value)


def test_gil_is_released_while_signing():
    """A pure-Python thread keeps running while jwtkit signs with RSA-4096
    (milliseconds of Rust per call): with the GIL held it would stall."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    jwt.encode({"exp": 4102444800}, key, algorithm="RS256")  # warm the caches
    stop = threading.Event()
    count = [0]

    def spin():
        while not stop.is_set():
            count[0] += 1

    def progress_during(work):
        count[0] = 0
        stop.clear()
        t = threading.Thread(target=spin)
        t.start()
        started = time.perf_counter()
        work()
        elapsed = time.perf_counter() - started
        stop.set()
        t.join()
        return count[0] / elapsed

    def sign():
        for _ in range(20):
            jwt.encode({"exp": 4102444800}, key, algorithm="RS256")

    sign_time = time.perf_counter()
    sign()
    sign_time = time.perf_counter() - sign_time
    baseline = progress_during(lambda: time.sleep(sign_time))
    while_signing = progress_during(sign)
    # Held for the whole RSA operation, the spinner would get almost nothing
    # (about 2 % of its baseline, measured); released, it keeps about 60 %.
    # The bound sits well between the two, for a loaded 2-core CI machine.
    assert while_signing > 0.1 * baseline, (while_signing, baseline)
