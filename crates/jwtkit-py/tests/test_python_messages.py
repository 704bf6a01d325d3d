"""A PyJWT user's review (issue 19): errors name the Python fix, malformed
tokens say which slip it was, and the attributes, options and helpers the
docs promise exist.

Each test fails without its fix: the messages used to name the `jwtkit`
command or a Rust API (`jwtkit keys generate`, `KeyStore::init`, `--key
FILE`, `.allow_long_access_ttl()`), `strict_aud` was refused, a refresh token
given to `TokenService.verify` was an "unknown key", and so on.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import jwtkit

T0 = 1_800_000_000
DAY = 86_400
SECRET = b"k" * 32


def assert_python_hint(message: str, *hints: str) -> None:
    """`message` names no `jwtkit` command, no Rust path and no CLI flag,
    and holds every one of `hints`."""
    assert not re.search(r"`jwtkit [a-z]", message), message
    assert "jwtkit store" not in message and "jwtkit keys" not in message, message
    assert "::" not in message, message
    assert not re.search(r"(?<![-\w])--[a-z]", message), message
    for hint in hints:
        assert hint in message, f"{hint!r} not in {message!r}"


def pem_public(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def store(tmp_path):
    s = jwtkit.KeyStore.open(f"file:{tmp_path}/keys")
    s.init("ES256", {"max_token_lifetime": 3 * DAY, "verify_grace": 4 * DAY})
    return s


# --- 2. Python fixes in error messages --------------------------------------


@pytest.mark.parametrize("alg,size", [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_a_short_hmac_secret_names_secrets_token_bytes(alg, size):
    with pytest.raises(jwtkit.InvalidKeyError) as encoding:
        jwtkit.encode({"sub": "a"}, "short", algorithm=alg)
    with pytest.raises(jwtkit.InvalidKeyError) as decoding:
        jwtkit.decode("a.b.c", "short", algorithms=[alg])
    for err in (encoding.value, decoding.value):
        assert err.kind == "weak_key"
        assert_python_hint(str(err), "the HMAC secret is 5 bytes", f"secrets.token_bytes({size})")


def test_a_small_rsa_key_names_cryptography():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(jwtkit.InvalidKeyError) as err:
        jwtkit.encode({"sub": "a"}, small, algorithm="RS256")
    assert err.value.kind == "weak_key"
    assert_python_hint(str(err.value), "2048 bits", "rsa.generate_private_key(public_exponent=65537, key_size=2048)")


def test_a_public_pem_as_hmac_secret_says_to_use_an_asymmetric_algorithm(rsa_key):
    with pytest.raises(jwtkit.InvalidKeyError) as err:
        jwtkit.decode("a.b.c", pem_public(rsa_key), algorithms=["HS256"])
    assert err.value.kind == "invalid_key"
    assert_python_hint(str(err.value), "algorithm-confusion", 'algorithms=["RS256"]', "secrets.token_bytes(32)")


def test_an_uninitialized_store_says_store_init(tmp_path):
    store = jwtkit.KeyStore.open(f"file:{tmp_path}/none")
    with pytest.raises(jwtkit.KeyStoreError) as err:
        store.active()
    assert err.value.kind == "not_initialized"
    assert_python_hint(str(err.value), "is not initialized", 'store.init("ES256")')


def test_a_token_service_on_an_empty_store_says_store_init_or_init_algorithm(tmp_path):
    store = jwtkit.KeyStore.open(f"file:{tmp_path}/none")
    with pytest.raises(jwtkit.PyJWTError) as err:
        jwtkit.TokenService(store, issuer="i", audience="a")
    assert_python_hint(str(err.value), 'store.init("ES256")', "init_algorithm")


def test_audit_findings_say_rotate_if_due(tmp_path):
    uri = f"file:{tmp_path}/keys"
    jwtkit.KeyStore.open(uri, now=T0).init("ES256", {"rotate_after": 7 * DAY})
    audit = jwtkit.KeyStore.open(uri, now=T0 + 8 * DAY).audit()
    (finding,) = [f for f in audit["findings"] if f["finding"] == "active_too_old"]
    assert_python_hint(finding["message"], "over rotate_after", "store.rotate_if_due()")


def test_token_service_settings_name_the_keyword_argument(store):
    with pytest.raises(jwtkit.ConfigurationError) as long_ttl:
        jwtkit.TokenService(store, issuer="i", audience="a", access_ttl=2 * DAY)
    assert_python_hint(str(long_ttl.value), "over 24 h", "allow_long_access_ttl=True")
    allowed = jwtkit.TokenService(store, issuer="i", audience="a", access_ttl=2 * DAY,
                                  refresh_ttl=30 * DAY, allow_long_access_ttl=True)
    assert allowed.access_ttl == 2 * DAY

    with pytest.raises(jwtkit.ConfigurationError) as grace:
        jwtkit.TokenService(store, issuer="i", audience="a", reuse_grace=120)
    assert_python_hint(str(grace.value), "reuse_grace", "leave reuse_grace out")

    with pytest.raises(jwtkit.ConfigurationError) as short_key:
        jwtkit.TokenService(store, issuer="i", audience="a", refresh_key=b"short")
    assert_python_hint(str(short_key.value), "the secret is 5 bytes", "secrets.token_bytes(32)")


# --- 3. malformed-token hints ------------------------------------------------


SLIPS = [
    ("Bearer {t}", "remove the `Bearer ` prefix"),
    ("bearer  {t}", "remove the `Bearer ` prefix"),
    ('"{t}"', "quotes"),
    ("{t}\n", ".strip()"),
    (" {t}", ".strip()"),
]


@pytest.mark.parametrize("shape,hint", SLIPS)
def test_decode_says_which_slip_made_the_token_malformed(shape, hint):
    token = shape.format(t=jwtkit.encode({"sub": "a", "exp": 4_000_000_000}, SECRET, algorithm="HS256"))
    with pytest.raises(jwtkit.DecodeError) as err:
        jwtkit.decode(token, SECRET, algorithms=["HS256"])
    assert err.value.kind == "malformed"
    assert hint in str(err.value), str(err.value)
    with pytest.raises(jwtkit.DecodeError) as unverified:
        jwtkit.get_unverified_header(token)
    assert hint in str(unverified.value)


def test_a_clean_malformed_token_gets_no_slip_hint():
    with pytest.raises(jwtkit.DecodeError) as err:
        jwtkit.decode("abc.def", SECRET, algorithms=["HS256"])
    assert "Bearer" not in str(err.value) and "strip" not in str(err.value)


def test_store_and_service_verify_give_the_slip_hints_too(store):
    token = store.sign({"sub": "a", "aud": "api"})
    with pytest.raises(jwtkit.DecodeError) as err:
        store.verify("Bearer " + token, audience="api")
    assert "remove the `Bearer ` prefix" in str(err.value)
    service = jwtkit.TokenService(store, issuer="i", audience="api")
    pair = service.issue("alice")
    with pytest.raises(jwtkit.DecodeError) as err:
        service.verify(pair["access_token"] + "\n")
    assert ".strip()" in str(err.value)


# --- 4. a str key for an asymmetric algorithm --------------------------------


def test_a_str_secret_for_rs256_says_what_rs256_needs():
    token = jwtkit.encode({"sub": "a", "exp": 4_000_000_000}, "s" * 32, algorithm="HS256")
    with pytest.raises(jwtkit.InvalidKeyError) as err:
        jwtkit.decode(token, "s" * 32, algorithms=["RS256"])
    message = str(err.value)
    assert "DER data" not in message
    assert_python_hint(message, "RS256 needs an RSA key", "read as DER or JWK text", 'algorithms=["HS256"]',
                       "file path")
    assert "existing file" not in message


def test_a_file_path_as_key_says_to_read_the_file(tmp_path, rsa_key):
    path = tmp_path / "rsa.pub.pem"
    path.write_text(pem_public(rsa_key))
    token = jwtkit.encode({"sub": "a", "exp": 4_000_000_000}, rsa_key, algorithm="RS256")
    with pytest.raises(jwtkit.InvalidKeyError) as err:
        jwtkit.decode(token, str(path), algorithms=["RS256"])
    assert "names an existing file" in str(err.value) and "open(path" in str(err.value)
    assert jwtkit.decode(token, path.read_bytes(), algorithms=["RS256"])["sub"] == "a"


# --- 5. documented exception attributes, and mypy -----------------------------


def test_exception_attributes_are_declared_and_retryable_is_a_bool(store):
    for cls in (jwtkit.PyJWTError, jwtkit.BackendError, jwtkit.InvalidGrantError, jwtkit.DecodeError):
        assert isinstance(cls.kind, str) and cls.retryable is False
    assert jwtkit.InvalidGrantError.reason == "invalid"
    assert jwtkit.InvalidGrantError.__annotations__["reason"] in (str, "str")
    service = jwtkit.TokenService(store, issuer="i", audience="a")
    with pytest.raises(jwtkit.InvalidGrantError) as err:
        service.refresh("not-a-token")
    assert err.value.retryable is False and isinstance(err.value.reason, str)
    with pytest.raises(jwtkit.InvalidAudienceError) as rejected:
        jwtkit.decode(jwtkit.encode({"aud": "x", "exp": 4_000_000_000}, SECRET), SECRET,
                      algorithms=["HS256"], audience="y")
    assert rejected.value.retryable is False


def python_blocks_under(heading: str) -> str:
    page = (Path(__file__).resolve().parents[3] / "docs" / "python.md").read_text()
    section = page.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    return "\n\n".join(re.findall(r"```python\n(.*?)```", section, re.S))


def test_mypy_accepts_the_token_service_snippet_and_the_attributes(tmp_path):
    """mypy (pinned in scripts/services-requirements.txt), default mode, on
    docs/python.md's token-service snippet and on code reading `reason`,
    `retryable` and `kind`."""
    snippet = python_blocks_under("The token service")
    assert "e.reason" in snippet
    (tmp_path / "snippet.py").write_text(snippet)
    (tmp_path / "attributes.py").write_text(textwrap.dedent("""
        import jwtkit

        def describe(e: jwtkit.PyJWTError) -> str:
            retry: bool = e.retryable
            return f"{e.kind} {retry}"

        def grant(e: jwtkit.InvalidGrantError) -> str:
            return e.reason + e.kind + str(e.retryable)

        def backend(e: jwtkit.BackendError) -> bool:
            return e.retryable

        jwk: dict = jwtkit.public_jwk(b"...", algorithm="ES256")
        key: jwtkit.PyJWK = jwtkit.PyJWK.from_key(b"...", kid="k1")
    """))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", os.devnull,
         "snippet.py", "attributes.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- 6. a refresh token given to TokenService.verify ---------------------------


def test_verify_of_a_refresh_token_says_to_send_the_access_token(store):
    service = jwtkit.TokenService(store, issuer="i", audience="a")
    pair = service.issue("alice")
    with pytest.raises(jwtkit.InvalidTokenError) as err:
        service.verify(pair["refresh_token"])
    message = str(err.value)
    assert err.value.kind == "invalid_type"
    assert "refresh token (typ refresh+jwt)" in message and "access_token" in message
    assert "no verification key" not in message


# --- 7. building a JWK -------------------------------------------------------


def test_public_jwk_gives_the_thumbprint_kid_jwtkit_signs_with(rsa_key):
    token = jwtkit.encode({"sub": "a", "exp": 4_000_000_000}, rsa_key, algorithm="RS256")
    jwk = jwtkit.public_jwk(rsa_key, algorithm="RS256")
    assert jwk["kid"] == jwtkit.get_unverified_header(token)["kid"]
    assert jwk["kty"] == "RSA" and jwk["alg"] == "RS256" and jwk["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
    # The same JWK from the public PEM; PyJWT verifies with it.
    assert jwtkit.public_jwk(pem_public(rsa_key), algorithm="RS256") == jwk
    assert pyjwt.decode(token, pyjwt.PyJWK(jwk).key, algorithms=["RS256"])["sub"] == "a"
    named = jwtkit.PyJWK.from_key(rsa_key.public_key(), kid="rsa-1")
    assert named.key_id == "rsa-1" and named.to_dict()["n"] == jwk["n"] and "alg" not in named.to_dict()


def test_public_jwk_refuses_secrets_and_misfit_algorithms(rsa_key):
    with pytest.raises(jwtkit.InvalidKeyError, match="never be published"):
        jwtkit.public_jwk(SECRET, algorithm="HS256")
    with pytest.raises(jwtkit.PyJWTError):
        jwtkit.public_jwk(rsa_key, algorithm="ES256")
    ed = ec.generate_private_key(ec.SECP384R1())
    assert jwtkit.public_jwk(ed)["crv"] == "P-384"


# --- 8. strict_aud -----------------------------------------------------------


def test_strict_aud_wants_one_str_aud_equal_to_audience():
    one = jwtkit.encode({"aud": "api", "exp": 4_000_000_000}, SECRET)
    listed = jwtkit.encode({"aud": ["api", "other"], "exp": 4_000_000_000}, SECRET)
    strict = {"strict_aud": True}
    assert jwtkit.decode(one, SECRET, algorithms=["HS256"], audience="api", options=strict)["aud"] == "api"
    assert jwtkit.decode(listed, SECRET, algorithms=["HS256"], audience="api")["aud"] == ["api", "other"]
    with pytest.raises(jwtkit.InvalidAudienceError, match=r"\(strict\)"):
        jwtkit.decode(listed, SECRET, algorithms=["HS256"], audience="api", options=strict)
    with pytest.raises(jwtkit.InvalidAudienceError, match=r"\(strict\)"):
        jwtkit.decode(one, SECRET, algorithms=["HS256"], audience=["api"], options=strict)
    with pytest.raises(jwtkit.InvalidAudienceError):
        jwtkit.decode(one, SECRET, algorithms=["HS256"], audience="billing", options=strict)
    # PyJWT agrees on each.
    assert pyjwt.decode(one, SECRET, algorithms=["HS256"], audience="api", options=strict)["aud"] == "api"
    with pytest.raises(pyjwt.InvalidAudienceError):
        pyjwt.decode(listed, SECRET, algorithms=["HS256"], audience="api", options=strict)


# --- 10. the refresh_key text ---------------------------------------------------


def test_refresh_key_text_forms(store):
    def build(key):
        return jwtkit.TokenService(store, issuer="i", audience="a", refresh_key=key)

    with pytest.raises(jwtkit.ConfigurationError) as plain:
        build("my plain secret password!")
    assert_python_hint(str(plain.value), "not base64url", "secrets.token_urlsafe(32)", "bytes")
    hex_text = secrets.token_hex(32)
    with pytest.raises(jwtkit.ConfigurationError) as hexed:
        build(hex_text)
    assert "64 hex digits" in str(hexed.value) and "bytes.fromhex" in str(hexed.value)
    assert hex_text not in str(hexed.value)  # a secret is never echoed
    build(bytes.fromhex(hex_text))
    build(secrets.token_urlsafe(32))
    build(secrets.token_bytes(32))


# --- 11. a policy refused because of a default --------------------------------


def test_a_policy_refused_by_a_default_names_it(tmp_path):
    store = jwtkit.KeyStore.open(f"file:{tmp_path}/keys")
    with pytest.raises(jwtkit.ConfigurationError) as err:
        store.init("ES256", {"rotate_after": 3600})
    assert "86400 s is the default prepublish" in str(err.value)
    assert 'set "prepublish"' in str(err.value)
    assert store.init("ES256", {"rotate_after": 3600, "prepublish": 600})["active"]


# --- 12. the default kid and a hand-built JWKS ----------------------------------


def test_pyjwkclient_explains_the_thumbprint_kid(jwks_server, rsa_key):
    jwk = jwtkit.public_jwk(rsa_key, algorithm="RS256")
    jwks_server.set({"keys": [dict(jwk, kid="my-key")]})
    token = jwtkit.encode({"sub": "a", "exp": 4_000_000_000}, rsa_key, algorithm="RS256")
    client = jwtkit.PyJWKClient(jwks_server.url)
    with pytest.raises(jwtkit.PyJWKClientError) as err:
        client.get_signing_key_from_jwt(token)
    assert err.value.kind == "unknown_key"
    assert "thumbprint" in str(err.value) and "jwtkit.public_jwk" in str(err.value)
    assert "'my-key'" in str(err.value)


# --- 13. the small ones ---------------------------------------------------------


def test_decode_documents_leeway_none():
    assert "leeway=None" in jwtkit.decode.__doc__
    assert "leeway=0" not in jwtkit.decode.__doc__


def test_durations_take_whole_floats_and_refuse_others_clearly(store):
    service = jwtkit.TokenService(store, issuer="i", audience="a", access_ttl=600.0)
    assert service.access_ttl == 600
    with pytest.raises(ValueError, match="whole number of seconds"):
        jwtkit.TokenService(store, issuer="i", audience="a", access_ttl=600.5)
    with pytest.raises(TypeError, match=r"access_ttl: .*int.*float.*timedelta.*not str"):
        jwtkit.TokenService(store, issuer="i", audience="a", access_ttl="600")
    with pytest.raises(jwtkit.ConfigurationError, match="at least 1 s"):
        service.start_maintenance(0)
    handle = service.start_maintenance(1.0)
    handle.stop()


def test_keystore_open_takes_a_datetime(tmp_path):
    uri = f"file:{tmp_path}/keys"
    jwtkit.KeyStore.open(uri, now=T0).init("ES256")
    when = datetime.datetime.fromtimestamp(T0 + 5, tz=datetime.timezone.utc)
    assert jwtkit.KeyStore.open(uri, now=when).audit()["now"] == T0 + 5
    with pytest.raises(TypeError, match="now must be"):
        jwtkit.KeyStore.open(uri, now="yesterday")


def test_the_package_namespace_holds_no_future_import():
    assert "annotations" not in dir(jwtkit)
    assert set(jwtkit.__all__) <= set(dir(jwtkit))
    assert "public_jwk" in jwtkit.__all__
    assert json.dumps(jwtkit.public_jwk(ec.generate_private_key(ec.SECP256R1())))
