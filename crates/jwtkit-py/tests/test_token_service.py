"""jwtkit.TokenService from Python: issue, verify, refresh with rotation and
reuse detection, revoke, on the memory store and on real Redis and Redis
Cluster, sync and from asyncio.

This is the refresh-token pattern of docs/from-pyjwt.md section 10 end to
end. The Redis tests use the servers `scripts/test.sh` starts (`. .services/
env.sh`); with JWTKIT_REQUIRE_SERVICES=1 a missing server is a failure,
never a skip.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import os
import threading
import uuid

import jwt as pyjwt
import pytest

import jwtkit

ISSUER = "https://auth.example.com"
AUDIENCE = "my-api"


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
def key_store(tmp_path):
    store = jwtkit.KeyStore.open(f"file:{tmp_path / 'keys'}")
    store.init("ES256")
    return store


@pytest.fixture
def refresh_secret():
    return os.urandom(32)


def make_service(key_store, backend: str, secret: bytes, **kwargs) -> "jwtkit.TokenService":
    """A service on the memory store, Redis, or Redis Cluster (a fresh key prefix per test)."""
    if backend == "memory":
        return jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, **kwargs)
    if backend == "redis":
        spec = service("JWTKIT_TEST_REDIS_URL", "Redis")
    else:
        spec = service("JWTKIT_TEST_REDIS_CLUSTER", "Redis Cluster")
    return jwtkit.TokenService(
        key_store,
        issuer=ISSUER,
        audience=AUDIENCE,
        refresh_store=spec,
        refresh_key=secret,
        refresh_prefix=f"jwtkit-py-test:{uuid.uuid4().hex}:",
        **kwargs,
    )


BACKENDS = ["memory", "redis", "redis-cluster"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_issue_refresh_replay_revokes_the_session_then_logout(key_store, refresh_secret, backend):
    tokens = make_service(key_store, backend, refresh_secret)

    # issue("alice")
    login = tokens.issue("alice", {"scope": "read"})
    assert login["token_type"] == "Bearer"
    assert login["expires_in"] == 900 == tokens.access_ttl
    claims = tokens.verify(login["access_token"])
    assert claims["sub"] == "alice" and claims["scope"] == "read"
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 900
    assert pyjwt.get_unverified_header(login["access_token"])["typ"] == "at+jwt"
    assert pyjwt.get_unverified_header(login["refresh_token"])["typ"] == "refresh+jwt"

    # rotate(refresh): a new pair in the same session, with the same claims.
    second = tokens.refresh(login["refresh_token"])
    assert second["session"] == login["session"]
    assert second["refresh_token"] != login["refresh_token"]
    assert tokens.verify(second["access_token"])["scope"] == "read"

    # A replay of the used token: reuse, and the whole session is revoked.
    with pytest.raises(jwtkit.InvalidGrantError) as err:
        tokens.refresh(login["refresh_token"])
    assert err.value.kind == "invalid_grant" and err.value.reason == "reused"
    assert isinstance(err.value, jwtkit.InvalidTokenError)
    with pytest.raises(jwtkit.InvalidGrantError) as err:
        tokens.refresh(second["refresh_token"])
    assert err.value.reason == "revoked"
    # Access tokens stay valid until they expire (short by design).
    assert tokens.verify(second["access_token"])["sub"] == "alice"

    # Logout: revoke a session by its refresh token; once.
    other = tokens.issue("alice")
    assert tokens.revoke(other["refresh_token"]) is True
    assert tokens.revoke(other["refresh_token"]) is False
    with pytest.raises(jwtkit.InvalidGrantError) as err:
        tokens.refresh(other["refresh_token"])
    assert err.value.reason == "revoked"

    # Logout everywhere.
    a, b = tokens.issue("carol"), tokens.issue("carol")
    assert tokens.revoke_subject("carol") == 2
    for pair in (a, b):
        with pytest.raises(jwtkit.InvalidGrantError):
            tokens.refresh(pair["refresh_token"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_access_and_refresh_tokens_never_pass_as_each_other(key_store, refresh_secret, backend):
    tokens = make_service(key_store, backend, refresh_secret)
    pair = tokens.issue("bob")
    with pytest.raises(jwtkit.InvalidGrantError) as err:
        tokens.refresh(pair["access_token"])
    assert err.value.reason == "invalid"
    with pytest.raises(jwtkit.InvalidTokenError) as err:
        tokens.verify(pair["refresh_token"])
    assert not isinstance(err.value, jwtkit.InvalidGrantError)
    # The session is untouched by the refused attempts.
    assert tokens.refresh(pair["refresh_token"])["session"] == pair["session"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_of_concurrent_refreshes_of_one_token_exactly_one_wins(key_store, refresh_secret, backend):
    tokens = make_service(key_store, backend, refresh_secret)
    pair = tokens.issue("dave")
    results, lock = [], threading.Lock()
    start = threading.Barrier(16)

    def attempt():
        start.wait()
        try:
            outcome = ("ok", tokens.refresh(pair["refresh_token"]))
        except jwtkit.InvalidGrantError as e:
            outcome = ("refused", e.reason)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for kind, r in results if kind == "ok"]
    refusals = [r for kind, r in results if kind == "refused"]
    assert len(wins) == 1, results
    assert len(refusals) == 15 and set(refusals) <= {"reused", "revoked"}
    # The race was a reuse: the winner's successor is revoked too.
    with pytest.raises(jwtkit.InvalidGrantError):
        tokens.refresh(wins[0]["refresh_token"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_variants_from_asyncio(key_store, refresh_secret, backend):
    tokens = make_service(key_store, backend, refresh_secret)

    async def main():
        pairs = await asyncio.gather(*(tokens.issue_async(f"user-{i}", {"n": i}) for i in range(10)))
        claims = await asyncio.gather(*(tokens.verify_async(p["access_token"]) for p in pairs))
        assert [c["n"] for c in claims] == list(range(10))
        # Eight concurrent refreshes of one token: one wins, the rest are reuse.
        outcomes = await asyncio.gather(
            *(tokens.refresh_async(pairs[0]["refresh_token"]) for _ in range(8)), return_exceptions=True
        )
        wins = [o for o in outcomes if isinstance(o, dict)]
        refused = [o for o in outcomes if isinstance(o, jwtkit.InvalidGrantError)]
        assert len(wins) == 1 and len(refused) == 7, outcomes
        assert await tokens.revoke_async(pairs[1]["refresh_token"]) is True
        assert await tokens.revoke_subject_async("user-2") == 1
        with pytest.raises(jwtkit.InvalidGrantError):
            await tokens.refresh_async(pairs[2]["refresh_token"])
        with pytest.raises(jwtkit.InvalidTokenError):
            await tokens.verify_async("not.a.token")
        jwks = await tokens.jwks_async()
        assert await tokens.rotate_if_due_async() is None
        return jwks

    jwks = asyncio.run(main())
    assert {k["kid"] for k in jwks["keys"]} == {k["kid"] for k in key_store.jwks()["keys"]}


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
def test_sessions_on_redis_are_shared_between_instances(key_store, refresh_secret, backend):
    one = make_service(key_store, backend, refresh_secret)
    spec = service("JWTKIT_TEST_REDIS_URL" if backend == "redis" else "JWTKIT_TEST_REDIS_CLUSTER", backend)
    prefix = f"jwtkit-py-shared:{uuid.uuid4().hex}:"
    a = jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, refresh_store=spec,
                            refresh_key=base64.urlsafe_b64encode(refresh_secret).decode().rstrip("="),
                            refresh_prefix=prefix)
    # A list of URLs is a cluster's seed nodes; a str is one server (or comma-separated seeds).
    other_spec = spec.split(",") if backend == "redis-cluster" else spec
    b = jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, refresh_store=other_spec,
                            refresh_key=refresh_secret, refresh_prefix=prefix)
    pair = a.issue("erin")
    refreshed = b.refresh(pair["refresh_token"])        # the other instance knows the session
    assert a.verify(refreshed["access_token"])["sub"] == "erin"
    with pytest.raises(jwtkit.InvalidGrantError) as err:
        a.refresh(pair["refresh_token"])                 # and a replay on either is reuse
    assert err.value.reason == "reused"
    # Another prefix is another store: the session is unknown there.
    with pytest.raises(jwtkit.InvalidGrantError) as err:
        one.refresh(refreshed["refresh_token"])
    assert err.value.reason == "unknown"


def test_a_refresh_key_file_is_created_once_and_reused(key_store, tmp_path):
    spec = service("JWTKIT_TEST_REDIS_URL", "Redis")
    path = tmp_path / "secrets" / "refresh.key"
    prefix = f"jwtkit-py-keyfile:{uuid.uuid4().hex}:"
    a = jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, refresh_store=spec,
                            refresh_key_file=path, refresh_prefix=prefix)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    pair = a.issue("frank")
    b = jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, refresh_store=spec,
                            refresh_key_file=str(path), refresh_prefix=prefix)
    assert b.refresh(pair["refresh_token"])["session"] == pair["session"]


def test_the_service_follows_a_rotation_of_its_key_store(tmp_path):
    store = jwtkit.KeyStore.open(f"file:{tmp_path / 'keys'}")
    first = store.init("ES256")
    tokens = jwtkit.TokenService(store, issuer=ISSUER, audience=AUDIENCE)
    before = tokens.issue("gina")
    store.rotate()
    # Another instance rotated: a kid the service has not loaded is loaded on first sight.
    after = tokens.issue("gina")
    assert pyjwt.get_unverified_header(after["access_token"])["kid"] == first["pending"]
    assert tokens.verify(after["access_token"])["sub"] == "gina"
    assert tokens.verify(before["access_token"])["sub"] == "gina"  # within the grace
    tokens.reload_keys()
    assert first["active"] in {k["kid"] for k in tokens.jwks()["keys"]}


def test_init_algorithm_initializes_an_empty_store(tmp_path):
    store = jwtkit.KeyStore.open(f"file:{tmp_path / 'keys'}")
    tokens = jwtkit.TokenService(store, issuer=ISSUER, audience=AUDIENCE, init_algorithm="EdDSA",
                                 access_ttl=datetime.timedelta(minutes=5), refresh_ttl=3600, leeway=30)
    assert store.active()["alg"] == "EdDSA"
    assert tokens.access_ttl == 300 and tokens.refresh_ttl == 3600
    pair = tokens.issue("hank")
    assert pair["expires_in"] == 300
    assert repr(tokens).startswith("TokenService(issuer=")


def test_settings_are_checked_and_name_what_is_wrong(key_store, tmp_path):
    with pytest.raises(jwtkit.ConfigurationError) as err:
        jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, access_ttl=3600, refresh_ttl=600)
    assert err.value.kind == "config" and "refresh_ttl" in str(err.value)
    with pytest.raises(jwtkit.ConfigurationError) as err:
        jwtkit.TokenService(key_store, issuer="", audience=AUDIENCE)
    assert "issuer" in str(err.value)
    with pytest.raises(jwtkit.ConfigurationError) as err:
        jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, refresh_store="redis://127.0.0.1:1/")
    assert "refresh_key" in str(err.value)
    with pytest.raises(jwtkit.ConfigurationError) as err:
        jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, refresh_store="postgres://pw@db/x")
    assert "pw@" not in str(err.value)
    with pytest.raises(jwtkit.ConfigurationError) as err:
        jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, refresh_key=b"short")
    assert "32" in str(err.value)
    with pytest.raises(jwtkit.ConfigurationError):
        jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, refresh_key=b"x" * 32,
                            refresh_key_file=tmp_path / "k")
    with pytest.raises(jwtkit.ConfigurationError):
        jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, refresh_prefix="p:")
    with pytest.raises(jwtkit.ConfigurationError) as err:
        jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, reuse_grace=120)
    assert "reuse_grace" in str(err.value)
    uninitialized = jwtkit.KeyStore.open(f"file:{tmp_path / 'empty'}")
    with pytest.raises(jwtkit.KeyStoreError) as err:
        jwtkit.TokenService(uninitialized, issuer=ISSUER, audience=AUDIENCE)
    assert err.value.kind == "not_initialized"


def test_redis_that_is_down_is_a_retryable_backend_error(key_store, refresh_secret):
    with pytest.raises(jwtkit.PyJWTError) as err:
        jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, refresh_store="redis://127.0.0.1:1/",
                            refresh_key=refresh_secret)
    assert not isinstance(err.value, jwtkit.InvalidTokenError)
    assert err.value.kind in {"unavailable", "timeout", "backend"}


def test_issue_refuses_reserved_and_oversized_claims(key_store):
    tokens = jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(jwtkit.ConfigurationError) as err:
        tokens.issue("ivan", {"exp": 1})
    assert err.value.kind == "invalid_request" and "exp" in str(err.value)
    with pytest.raises(jwtkit.ConfigurationError) as err:
        tokens.issue("ivan", {"blob": "x" * 5000})
    assert err.value.kind == "invalid_request"
    with pytest.raises(TypeError):
        tokens.issue("ivan", ["scope"])


def test_reuse_grace_gives_a_retrying_client_the_same_successor(key_store):
    tokens = jwtkit.TokenService(key_store, issuer=ISSUER, audience=AUDIENCE, reuse_grace=5)
    pair = tokens.issue("judy")
    first = tokens.refresh(pair["refresh_token"])
    retry = tokens.refresh(pair["refresh_token"])  # the response was lost; the client retries
    assert retry["refresh_token"] == first["refresh_token"]


def test_background_maintenance_rotates_when_the_policy_says_so(tmp_path):
    import time

    uri = f"file:{tmp_path / 'keys'}"
    t0 = 1_800_000_000
    first = jwtkit.KeyStore.open(uri, now=t0).init("ES256", {"rotate_after": 7 * 86_400})
    # Eight days later (the store's clock): a rotation is overdue.
    late = jwtkit.KeyStore.open(uri, now=t0 + 8 * 86_400)
    tokens = jwtkit.TokenService(late, issuer=ISSUER, audience=AUDIENCE)
    task = tokens.start_maintenance(datetime.timedelta(seconds=1))
    assert task.running
    deadline = time.monotonic() + 10
    while late.active()["kid"] == first["active"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert late.active()["kid"] == first["pending"]
    # The service reloaded its keys: its new tokens name the new key and verify.
    pair = tokens.issue("kate")
    assert pyjwt.get_unverified_header(pair["access_token"])["kid"] == first["pending"]
    assert tokens.verify(pair["access_token"])["sub"] == "kate"
    task.stop()
    assert not task.running
    with pytest.raises(ValueError):
        tokens.start_maintenance(-5)
