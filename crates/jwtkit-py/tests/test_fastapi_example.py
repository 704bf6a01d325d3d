"""examples/fastapi_app.py through FastAPI's TestClient: login, a protected
route (401 with WWW-Authenticate without a valid bearer token), refresh with
rotation, reuse detection, logout, the JWKS; on the memory store and on Redis.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import uuid

import jwt as pyjwt
import pytest

from fastapi.testclient import TestClient  # fastapi and httpx: test dependencies

import jwtkit

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "fastapi_app.py"


def load_example():
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(monkeypatch):
    monkeypatch.setenv("JWTKIT_DEMO_PASSWORD", "correct horse")
    return load_example()


def redis_url() -> str:
    value = os.environ.get("JWTKIT_TEST_REDIS_URL", "").strip()
    if value:
        return value
    message = "Redis is not available: JWTKIT_TEST_REDIS_URL is not set (run scripts/test.sh)"
    if os.environ.get("JWTKIT_REQUIRE_SERVICES") == "1":
        pytest.fail(message + "; JWTKIT_REQUIRE_SERVICES=1, so this is a failure, not a skip")
    pytest.skip(message)


@pytest.fixture(params=["memory", "redis"])
def client(request, example, tmp_path):
    store = jwtkit.KeyStore.open(f"file:{tmp_path / 'keys'}")
    extra = {}
    if request.param == "redis":
        extra = {"refresh_store": redis_url(), "refresh_key": os.urandom(32),
                 "refresh_prefix": f"jwtkit-py-fastapi:{uuid.uuid4().hex}:"}
    tokens = jwtkit.TokenService(store, issuer="https://demo.example.com", audience="demo-api",
                                 init_algorithm="ES256", **extra)
    with TestClient(example.create_app(tokens)) as c:
        yield c


def login(client) -> dict:
    r = client.post("/login", json={"username": "alice", "password": "correct horse"})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    return body


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_login_then_the_protected_route(client):
    pair = login(client)
    r = client.get("/me", headers=bearer(pair["access_token"]))
    assert r.status_code == 200
    assert r.json() == {"sub": "alice", "scope": "read"}


def test_wrong_password_gets_no_tokens(client):
    r = client.post("/login", json={"username": "alice", "password": "wrong"})
    assert r.status_code == 401
    assert "access_token" not in r.text


def test_the_protected_route_answers_401_with_a_bearer_challenge(client):
    r = client.get("/me")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'

    r = client.get("/me", headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")

    r = client.get("/me", headers=bearer("not.a.token"))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert 'error_description="malformed"' in r.headers["www-authenticate"]

    # A refresh token is not an access token.
    pair = login(client)
    r = client.get("/me", headers=bearer(pair["refresh_token"]))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]

    # A tampered access token.
    head, payload, sig = pair["access_token"].split(".")
    forged = pyjwt.utils.base64url_encode(b'{"sub":"mallory","aud":"demo-api","iss":"https://demo.example.com"}')
    r = client.get("/me", headers=bearer(f"{head}.{forged.decode()}.{sig}"))
    assert r.status_code == 401
    assert 'error_description="invalid_signature"' in r.headers["www-authenticate"]


def test_refresh_rotates_and_a_replay_revokes_the_session(client):
    pair = login(client)
    r = client.post("/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != pair["refresh_token"]
    assert client.get("/me", headers=bearer(second["access_token"])).status_code == 200

    replay = client.post("/refresh", json={"refresh_token": pair["refresh_token"]})
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert "already used" in replay.json()["error_description"]
    # The whole session went with it.
    r = client.post("/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_logout_revokes_the_session(client):
    pair = login(client)
    assert client.post("/logout", json={"refresh_token": pair["refresh_token"]}).json() == {"revoked": True}
    assert client.post("/logout", json={"refresh_token": pair["refresh_token"]}).json() == {"revoked": False}
    assert client.post("/logout", json={"refresh_token": "garbage"}).json() == {"revoked": False}
    r = client.post("/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 400


def test_the_jwks_verifies_the_access_tokens_with_pyjwt(client):
    pair = login(client)
    r = client.get("/.well-known/jwks.json")
    assert r.status_code == 200 and r.headers["cache-control"].startswith("public, max-age=")
    jwks = pyjwt.PyJWKSet.from_dict(r.json())
    kid = pyjwt.get_unverified_header(pair["access_token"])["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = pyjwt.decode(pair["access_token"], key, algorithms=["ES256"], audience="demo-api",
                          issuer="https://demo.example.com")
    assert claims["sub"] == "alice"


def test_the_module_app_builds_its_service_from_the_environment(example, monkeypatch, tmp_path):
    monkeypatch.setenv("JWTKIT_KEY_STORE", f"file:{tmp_path / 'env-keys'}")
    monkeypatch.setenv("JWTKIT_AUDIENCE", "env-api")
    with TestClient(example.app) as c:
        pair = login(c)
        assert c.get("/me", headers=bearer(pair["access_token"])).status_code == 200
        assert pyjwt.decode(pair["access_token"], options={"verify_signature": False})["aud"] == "env-api"
