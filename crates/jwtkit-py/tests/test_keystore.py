"""jwtkit.KeyStore: file, env, KMS (moto) and Vault (OpenBao) stores from Python.

Signing with the active key, the JWKS, rotation under the policy with the
grace period, the audit, and verification of what the store signed, with
PyJWT checking the tokens against the published JWKS too.

The KMS and Vault tests use the servers `scripts/test.sh` starts
(`. .services/env.sh`); with JWTKIT_REQUIRE_SERVICES=1 a missing server is a
failure, never a skip.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import time
import uuid

import jwt as pyjwt
import pytest

import jwtkit

DAY = 86_400
T0 = 1_800_000_000  # a fixed "now" for the stores whose clock the tests drive


def service(var: str, what: str) -> str:
    """The value of a service variable; a failure when services are required."""
    value = os.environ.get(var, "").strip()
    if value:
        return value
    message = f"{what} is not available: {var} is not set (run scripts/test.sh, or . .services/env.sh)"
    if os.environ.get("JWTKIT_REQUIRE_SERVICES") == "1":
        pytest.fail(message + "; JWTKIT_REQUIRE_SERVICES=1, so this is a failure, not a skip")
    pytest.skip(message)


@pytest.fixture
def store_dir(tmp_path):
    return f"file:{tmp_path / 'keys'}"


def pyjwt_verify(token: str, jwks: dict, **kwargs) -> dict:
    """PyJWT's own verification of `token` against a JWKS `jwks`."""
    kid = pyjwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    key = pyjwt.PyJWK(jwk)
    return pyjwt.decode(token, key, algorithms=[jwk["alg"]], **kwargs)


# --- opening -------------------------------------------------------------


def test_open_refuses_unknown_schemes_and_names_the_supported_ones():
    with pytest.raises(jwtkit.ConfigurationError) as err:
        jwtkit.KeyStore.open("ftp://example.com/keys")
    assert err.value.kind == "invalid_uri"
    assert "file:" in str(err.value) and "vault+https:" in str(err.value)
    with pytest.raises(jwtkit.ConfigurationError) as err:
        jwtkit.KeyStore.open("no-scheme")
    assert err.value.kind == "invalid_uri"


def test_an_uninitialized_store_says_so(store_dir):
    store = jwtkit.KeyStore.open(store_dir)
    assert store.backend == "file"
    with pytest.raises(jwtkit.KeyStoreError) as err:
        store.sign({"sub": "alice"})
    assert err.value.kind == "not_initialized"
    assert err.value.retryable is False


# --- init, sign, jwks, verify --------------------------------------------


def test_init_sign_and_verify_with_the_store_and_with_pyjwt(store_dir):
    store = jwtkit.KeyStore.open(store_dir)
    report = store.init("ES256", {"rotate_after": 7 * DAY, "max_token_lifetime": 900,
                                  "verify_grace": datetime.timedelta(hours=2)})
    assert report["previous"] is None
    assert report["active"] != report["pending"]
    assert store.active() == {"kid": report["active"], "alg": "ES256"}
    policy = store.policy()
    assert policy["rotate_after"] == 7 * DAY
    assert policy["max_token_lifetime"] == 900
    assert policy["verify_grace"] == 7200
    assert "ES256" in policy["allowed_algorithms"]

    token = store.sign({"sub": "alice", "aud": "my-api", "scope": "read"})
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": report["active"]}

    claims = store.verify(token, audience="my-api")
    assert claims["sub"] == "alice" and claims["scope"] == "read"
    # The policy fills iat and exp: exp is exactly max_token_lifetime later.
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - time.time()) < 60

    jwks = store.jwks()
    assert sorted(k["kid"] for k in jwks["keys"]) == sorted([report["active"], report["pending"]])
    assert all("d" not in k for k in jwks["keys"]), "the JWKS holds public keys only"
    assert pyjwt_verify(token, jwks, audience="my-api")["sub"] == "alice"

    keys = store.keys()
    assert {k["kid"]: k["state"] for k in keys} == {report["active"]: "active", report["pending"]: "pending"}


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA", "RS256", "PS256"])
def test_every_algorithm_family_signs_tokens_pyjwt_accepts(tmp_path, alg):
    store = jwtkit.KeyStore.open(f"file:{tmp_path / alg}")
    store.init(alg, {"allowed_algorithms": [alg]})
    token = store.sign({"sub": "bob"})
    assert pyjwt.get_unverified_header(token)["alg"] == alg
    assert pyjwt_verify(token, store.jwks())["sub"] == "bob"
    assert store.verify(token)["sub"] == "bob"


def test_datetime_claims_and_header_parameters(store_dir):
    store = jwtkit.KeyStore.open(store_dir)
    store.init("ES256")
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    token = store.sign(
        {"sub": "alice", "exp": now + datetime.timedelta(minutes=10), "nbf": now - datetime.timedelta(seconds=5)},
        headers={"typ": "at+jwt", "x-tenant": "acme"},
    )
    header = pyjwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["x-tenant"] == "acme"
    claims = store.verifier(typ="at+jwt").verify(token)
    assert claims["exp"] == int((now + datetime.timedelta(minutes=10)).timestamp())
    # A verifier expecting another typ refuses it.
    with pytest.raises(jwtkit.InvalidTokenError) as err:
        store.verifier(typ="JWT").verify(token)
    assert err.value.kind == "invalid_type"
    # typ=None leaves it out.
    bare = store.sign({"sub": "alice"}, headers={"typ": None})
    assert "typ" not in pyjwt.get_unverified_header(bare)


@pytest.mark.parametrize("name", ["alg", "kid", "jku", "x5u", "jwk", "x5c", "crit", "b64"])
def test_header_parameters_the_store_decides_or_verifiers_refuse_are_refused(store_dir, name):
    store = jwtkit.KeyStore.open(store_dir)
    store.init("ES256")
    with pytest.raises(jwtkit.ConfigurationError) as err:
        store.sign({"sub": "alice"}, headers={name: "x"})
    assert name in str(err.value)


def test_the_policy_bounds_exp(store_dir):
    store = jwtkit.KeyStore.open(store_dir)
    store.init("ES256", {"max_token_lifetime": 600, "verify_grace": 3600})
    now = int(time.time())
    with pytest.raises(jwtkit.KeyStoreError) as err:
        store.sign({"sub": "alice", "exp": now + 3600})
    assert err.value.kind == "policy_violation"
    assert "max_token_lifetime = 600s" in str(err.value)
    with pytest.raises(jwtkit.InvalidTokenError) as err:
        store.sign({"sub": "alice", "exp": now - 10})
    assert err.value.kind == "invalid_claim" and "born expired" in str(err.value)
    with pytest.raises(jwtkit.InvalidTokenError) as err:
        store.sign({"sub": "alice", "exp": "tomorrow"})
    assert err.value.kind == "invalid_claim"
    with pytest.raises(TypeError):
        store.sign(["not", "a", "dict"])
    with pytest.raises(TypeError):
        store.sign({"sub": object()})


def test_policy_and_algorithm_arguments_are_checked(store_dir):
    store = jwtkit.KeyStore.open(store_dir)
    with pytest.raises(jwtkit.ConfigurationError) as err:
        store.init("ES256", {"rotate_every": 10})
    assert "rotate_every" in str(err.value) and "rotate_after" in str(err.value)
    with pytest.raises(jwtkit.ConfigurationError) as err:
        store.init("ES256", {"max_token_lifetime": 3600, "verify_grace": 600})
    assert err.value.kind == "invalid_config" and "verify_grace" in str(err.value)
    with pytest.raises(jwtkit.InvalidAlgorithmError):
        store.init("es256")
    with pytest.raises(ValueError):
        store.init("ES256", {"rotate_after": -1})
    with pytest.raises(ValueError):
        store.init("ES256", {"rotate_after": datetime.timedelta(seconds=1.5)})
    # Nothing was written by the refused calls.
    report = store.init("ES256")
    with pytest.raises(jwtkit.KeyStoreError) as err:
        store.init("ES256")
    assert err.value.kind == "already_initialized"
    assert store.active()["kid"] == report["active"]


def test_verify_checks_audience_issuer_and_expiry(tmp_path):
    uri = f"file:{tmp_path / 'keys'}"
    # Sign two hours ago, on a store whose clock says so.
    past = jwtkit.KeyStore.open(uri, now=int(time.time()) - 7200)
    past.init("ES256")
    old = past.sign({"sub": "alice", "aud": "my-api", "iss": "https://auth.example.com"})
    store = jwtkit.KeyStore.open(uri)
    with pytest.raises(jwtkit.ExpiredSignatureError) as err:
        store.verify(old, audience="my-api")
    assert err.value.kind == "expired"

    token = store.sign({"sub": "alice", "aud": "my-api", "iss": "https://auth.example.com"})
    verifier = store.verifier(audience=["other-api", "my-api"], issuer="https://auth.example.com", leeway=30)
    assert verifier.verify(token)["sub"] == "alice"
    assert verifier.kids() and store.active()["kid"] in verifier.kids()
    with pytest.raises(jwtkit.InvalidAudienceError):
        store.verify(token, audience="billing")
    with pytest.raises(jwtkit.InvalidAudienceError):
        store.verify(token)  # a token with `aud` needs an audience to check
    with pytest.raises(jwtkit.InvalidIssuerError):
        store.verify(token, audience="my-api", issuer="https://evil.example.com")
    with pytest.raises(jwtkit.DecodeError):
        store.verify("Bearer " + token, audience="my-api")
    # A token of another store's key is unknown here.
    other = jwtkit.KeyStore.open(f"file:{tmp_path / 'other'}")
    other.init("ES256")
    with pytest.raises(jwtkit.InvalidTokenError) as err:
        verifier.verify(other.sign({"sub": "mallory", "aud": "my-api", "iss": "https://auth.example.com"}))
    assert err.value.kind == "unknown_key"


# --- rotation, grace, retirement, audit -----------------------------------


def test_rotation_keeps_old_tokens_valid_through_the_grace_then_retires_the_key(tmp_path):
    uri = f"file:{tmp_path / 'keys'}"
    policy = {"rotate_after": 30 * DAY, "prepublish": DAY, "verify_grace": DAY, "max_token_lifetime": 3600}
    store = jwtkit.KeyStore.open(uri, now=T0)
    first = store.init("ES256", policy)
    old_token = store.sign({"sub": "alice"})

    # Not due yet: nothing changes.
    at_day_2 = jwtkit.KeyStore.open(uri, now=T0 + 2 * DAY)
    assert at_day_2.rotate_if_due() == {"rotated": None, "retired": []}

    # A conditional rotation against a kid that no longer signs is a conflict.
    with pytest.raises(jwtkit.KeyStoreError) as err:
        at_day_2.rotate(if_active="not-the-active-kid")
    assert err.value.kind == "conflict"

    # Signed by the old key just before the rotation; lives an hour.
    pre_rotation = at_day_2.sign({"sub": "alice"})
    assert pyjwt.get_unverified_header(pre_rotation)["kid"] == first["active"]

    report = at_day_2.rotate(if_active=first["active"])
    assert report["previous"] == first["active"]
    assert report["active"] == first["pending"]
    assert report["previous_retire_at"] == T0 + 2 * DAY + DAY
    assert report["published_for_secs"] == 2 * DAY
    new_token = at_day_2.sign({"sub": "alice", "exp": T0 + 2 * DAY + 600})
    assert pyjwt.get_unverified_header(new_token)["kid"] == first["pending"]

    # During the grace the old key still verifies and is still published.
    during = jwtkit.KeyStore.open(uri, now=T0 + 2 * DAY + 60)
    states = {k["kid"]: k["state"] for k in during.keys()}
    assert states[first["active"]] == "retiring" and states[first["pending"]] == "active"
    assert first["active"] in {k["kid"] for k in during.jwks()["keys"]}
    assert during.verify(pre_rotation)["sub"] == "alice"
    assert during.verify(new_token)["sub"] == "alice"
    with pytest.raises(jwtkit.ExpiredSignatureError):
        during.verify(old_token)  # signed at T0, an hour of life

    # After the grace: unpublished, refused as an unknown key, then retired.
    after = jwtkit.KeyStore.open(uri, now=T0 + 3 * DAY + 1)
    assert first["active"] not in {k["kid"] for k in after.jwks()["keys"]}
    with pytest.raises(jwtkit.InvalidTokenError) as err:
        after.verify(pre_rotation)
    assert err.value.kind == "unknown_key"
    audit = after.audit()
    assert audit["compliant"] is False
    finding = next(f for f in audit["findings"] if f["finding"] == "retiring_past_grace")
    assert finding["kid"] == first["active"] and "store.retire_expired()" in finding["message"]
    assert "jwtkit " not in finding["message"] and "::" not in finding["message"]
    assert after.retire_expired() == [first["active"]]
    assert after.audit()["compliant"] is True
    assert {k["kid"]: k["state"] for k in after.keys()}[first["active"]] == "retired"


def test_audit_reports_an_overdue_rotation_and_rotate_if_due_fixes_it(tmp_path):
    uri = f"file:{tmp_path / 'keys'}"
    first = jwtkit.KeyStore.open(uri, now=T0).init("ES256", {"rotate_after": 7 * DAY})
    fresh = jwtkit.KeyStore.open(uri, now=T0 + DAY).audit()
    assert fresh == {
        "now": T0 + DAY,
        "findings": [],
        "active": first["active"],
        "next_rotation_at": T0 + 7 * DAY,
        "next_signer": first["pending"],
        "compliant": True,
    }
    late = jwtkit.KeyStore.open(uri, now=T0 + 8 * DAY)
    audit = late.audit()
    assert [f["finding"] for f in audit["findings"]] == ["active_too_old"]
    assert audit["findings"][0]["age_secs"] == 8 * DAY
    assert "rotate_after" in audit["findings"][0]["message"]
    changes = late.rotate_if_due()
    assert changes["rotated"]["active"] == first["pending"]
    assert late.audit()["compliant"] is True


# --- env: read-only --------------------------------------------------------


def test_env_store_signs_with_the_variable_and_refuses_rotation(monkeypatch, tmp_path):
    source = jwtkit.KeyStore.open(f"file:{tmp_path / 'src'}")
    source.init("ES256")
    # A PEM key in the environment, as a twelve-factor service has it.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    name = "JWTKIT_PYTEST_KEY_" + uuid.uuid4().hex[:8].upper()
    monkeypatch.setenv(name, pem)
    monkeypatch.setenv(name + "_KID", "env-2026")
    store = jwtkit.KeyStore.open(f"env:{name}")
    assert store.backend == "env"
    assert store.active() == {"kid": "env-2026", "alg": "ES256"}
    token = store.sign({"sub": "alice"})
    assert pyjwt_verify(token, store.jwks())["sub"] == "alice"
    with pytest.raises(jwtkit.KeyStoreError) as err:
        store.rotate()
    assert err.value.kind == "read_only"
    with pytest.raises(jwtkit.ConfigurationError):
        jwtkit.KeyStore.open("env:1BAD")


# --- async -----------------------------------------------------------------


def test_async_variants_run_on_the_asyncio_loop(store_dir):
    store = jwtkit.KeyStore.open(store_dir)
    store.init("ES256")
    verifier = store.verifier(audience="my-api")

    async def main():
        tokens = await asyncio.gather(*(store.sign_async({"sub": f"user-{i}", "aud": "my-api"}) for i in range(20)))
        claims = await asyncio.gather(*(verifier.verify_async(t) for t in tokens))
        jwks = await store.jwks_async()
        return claims, jwks

    claims, jwks = asyncio.run(main())
    assert [c["sub"] for c in claims] == [f"user-{i}" for i in range(20)]
    assert len(jwks["keys"]) == 2

    async def refused():
        with pytest.raises(jwtkit.InvalidAudienceError):
            await store.verifier(audience="billing").verify_async(
                await store.sign_async({"sub": "x", "aud": "my-api"})
            )

    asyncio.run(refused())


# --- remote backends: KMS (moto) and Vault (OpenBao) ------------------------


def remote_flow(store: "jwtkit.KeyStore") -> None:
    """init, sign, verify (by the store and by PyJWT), rotate, grace, audit."""
    first = store.init("ES256")
    token = store.sign({"sub": "alice", "aud": "my-api"})
    assert pyjwt.get_unverified_header(token)["kid"] == first["active"]
    assert pyjwt_verify(token, store.jwks(), audience="my-api")["sub"] == "alice"
    assert store.verify(token, audience="my-api")["sub"] == "alice"
    rotated = store.rotate()
    assert rotated["previous"] == first["active"] and rotated["active"] == first["pending"]
    # The old token still verifies during the grace; new tokens name the new key.
    assert store.verify(token, audience="my-api")["sub"] == "alice"
    newer = store.sign({"sub": "bob", "aud": "my-api"})
    assert pyjwt.get_unverified_header(newer)["kid"] == first["pending"]
    assert pyjwt_verify(newer, store.jwks(), audience="my-api")["sub"] == "bob"
    assert store.audit()["active"] == first["pending"]


def test_kms_store_through_moto(monkeypatch):
    endpoint = service("JWTKIT_TEST_KMS_ENDPOINT", "moto (the KMS API)")
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", endpoint)
    for var, default in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                         ("AWS_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true")]:
        monkeypatch.setenv(var, os.environ.get(var, default))
    store = jwtkit.KeyStore.open(f"kms:alias/jwtkit-py-{uuid.uuid4().hex[:12]}")
    assert store.backend == "aws-kms"
    remote_flow(store)


def test_vault_store_through_openbao(monkeypatch):
    addr = service("JWTKIT_TEST_VAULT_ADDR", "OpenBao (the Vault API)")
    token = service("JWTKIT_TEST_VAULT_TOKEN", "OpenBao's root token")
    monkeypatch.setenv("VAULT_TOKEN", token)
    host = addr.split("://", 1)[1].rstrip("/")
    store = jwtkit.KeyStore.open(f"vault+http://{host}/transit/jwtkit-py-{uuid.uuid4().hex[:12]}")
    assert store.backend == "vault"
    remote_flow(store)


def test_a_vault_uri_with_a_password_is_refused_without_showing_it():
    with pytest.raises(jwtkit.PyJWTError) as err:
        jwtkit.KeyStore.open("vault+http://user:s3cr3t-pa55@127.0.0.1:1/transit/k")
    assert "s3cr3t-pa55" not in str(err.value)


def test_jwks_round_trips_through_json(store_dir):
    store = jwtkit.KeyStore.open(store_dir)
    store.init("EdDSA", {"allowed_algorithms": ["EdDSA"]})
    text = json.dumps(store.jwks())
    keys = pyjwt.PyJWKSet.from_json(text)
    assert [k.key_id for k in keys.keys] == [k["kid"] for k in store.jwks()["keys"]]


# --- the GIL is released while a call waits ---------------------------------


def test_a_waiting_call_releases_the_gil(monkeypatch):
    """A Vault store served by a Python thread of this very process: the
    store's request can only be answered if the call waiting for it released
    the GIL (otherwise it would hang until its timeout)."""
    import http.server
    import threading

    seen = []

    class Sealed(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            body = b'{"errors":["Vault is sealed"]}'
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_LIST = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sealed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("VAULT_TOKEN", "not-a-real-token")
        store = jwtkit.KeyStore.open(f"vault+http://127.0.0.1:{server.server_port}/transit/gil-test")
        started = time.monotonic()
        with pytest.raises(jwtkit.PyJWTError) as err:
            store.active()
        assert time.monotonic() - started < 20
        assert seen, "the Python server thread never ran during the call"
        assert not isinstance(err.value, jwtkit.InvalidTokenError)
        assert "503" in str(err.value) or "sealed" in str(err.value).lower()
    finally:
        server.shutdown()
        server.server_close()
