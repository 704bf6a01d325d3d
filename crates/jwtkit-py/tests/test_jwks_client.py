"""PyJWKClient on jwt-keys' remote JWKS cache, against a loopback JWKS server:
kid rotation, unknown kids and the cooldown, stale-if-error, refused URLs and
redirects, PyJWT's settings, and interop with PyJWT's own PyJWKClient."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import jwtkit

EXP = 4102444800  # 2100-01-01


class JwksServer:
    """A loopback JWKS server whose document, status, headers and delay tests change."""

    def __init__(self):
        self.document = {"keys": []}
        self.status = 200
        self.extra_headers = {}
        self.delay = 0.0
        self.hits = 0
        self.request_headers = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.hits += 1
                outer.request_headers.append(dict(self.headers))
                if outer.delay:
                    time.sleep(outer.delay)
                body = json.dumps(outer.document).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                for name, value in outer.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.up = True

    def publish(self, *jwks):
        self.document = {"keys": list(jwks)}

    def down(self):
        if self.up:
            self.up = False
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def server():
    s = JwksServer()
    yield s
    s.down()


def rsa_pair(kid):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return key, dict(jwk, kid=kid, alg="RS256", use="sig")


@pytest.fixture(scope="module")
def keys():
    """kid -> (private key object, public JWK dict), for three RSA keys."""
    return {kid: rsa_pair(kid) for kid in ("k-2024", "k-2025", "k-2026")}


def token_for(keys, kid, sub="alice"):
    return jwtkit.encode({"sub": sub, "exp": EXP}, keys[kid][0], algorithm="RS256", headers={"kid": kid})


def test_a_key_is_found_by_the_tokens_kid_and_verifies(server, keys):
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url, lifespan=60)
    token = token_for(keys, "k-2024")
    signing_key = client.get_signing_key_from_jwt(token)
    assert isinstance(signing_key, jwtkit.PyJWK)
    assert signing_key.key_id == "k-2024" and signing_key.algorithm_name == "RS256"
    assert jwtkit.decode(token, signing_key, algorithms=["RS256"])["sub"] == "alice"
    assert jwtkit.decode(token, signing_key.key, algorithms=["RS256"])["sub"] == "alice"
    # Later lookups, of every kind, answer from jwt-keys' cache.
    assert client.get_signing_key("k-2024").key_id == "k-2024"
    assert [k.key_id for k in client.get_signing_keys()] == ["k-2024"]
    jwk_set = client.get_jwk_set()
    assert isinstance(jwk_set, jwtkit.PyJWKSet) and jwk_set["k-2024"].key_id == "k-2024"
    assert server.hits == 1 and client.fetch_count == 1
    # jwt-keys' request, not urllib's.
    sent = {k.lower(): v for k, v in server.request_headers[0].items()}
    assert sent["user-agent"].startswith("jwtkit-jwt-keys/")
    assert "application/jwk-set+json" in sent["accept"]


def test_a_rotated_in_kid_verifies_after_one_refetch(server, keys):
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url, cooldown_duration=0)
    assert client.get_signing_key("k-2024").key_id == "k-2024"
    assert server.hits == 1
    # The provider rotates: a new kid appears; a token signed with it arrives.
    server.publish(keys["k-2024"][1], keys["k-2025"][1])
    token = token_for(keys, "k-2025", sub="bob")
    signing_key = client.get_signing_key_from_jwt(token)
    assert signing_key.key_id == "k-2025"
    assert jwtkit.decode(token, signing_key, algorithms=["RS256"])["sub"] == "bob"
    assert server.hits == 2 and client.fetch_count == 2
    # The new set is cached: no further fetch.
    client.get_signing_key("k-2025")
    client.get_signing_key("k-2024")
    assert server.hits == 2


def test_a_kid_never_published_refetches_once_then_raises_with_kind(server, keys):
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url, cooldown_duration=0)
    with pytest.raises(jwtkit.PyJWKClientError) as info:
        client.get_signing_key_from_jwt(token_for(keys, "k-2026"))
    assert info.value.kind == "unknown_key"
    message = str(info.value)
    assert message.startswith('Unable to find a signing key that matches: "k-2026"'), message
    assert "'k-2024'" in message  # the kids the JWKS holds
    # The first fetch, then exactly one refetch for the unknown kid.
    assert server.hits == 2
    with pytest.raises(jwtkit.PyJWKClientError):
        client.get_signing_key("k-2026")
    assert server.hits == 3


def test_an_unknown_kid_within_the_cooldown_fetches_nothing(server, keys):
    """The first fetch starts the cooldown (30 s by default, as PyJWT 2.10+):
    a flood of made-up kids right after it causes no fetch."""
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url)
    client.get_signing_key("k-2024")
    for i in range(20):
        with pytest.raises(jwtkit.PyJWKClientError) as info:
            client.get_signing_key(f"made-up-{i}")
        assert info.value.kind == "unknown_key"
    assert server.hits == 1
    # An explicit refresh ignores the cooldown (PyJWT's refresh=True).
    server.publish(keys["k-2024"][1], keys["k-2025"][1])
    assert {k.key_id for k in client.get_signing_keys(refresh=True)} == {"k-2024", "k-2025"}
    assert server.hits == 2
    assert client.get_signing_key("k-2025").key_id == "k-2025"
    assert server.hits == 2


def test_a_server_down_after_the_first_fetch_still_serves_the_cached_keys(server, keys):
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url, lifespan=1, cooldown_duration=0)
    token = token_for(keys, "k-2024")
    assert client.get_signing_key_from_jwt(token).key_id == "k-2024"
    server.down()
    time.sleep(2.2)  # past the 1 s lifespan: refreshes fail from now on
    for _ in range(3):
        signing_key = client.get_signing_key_from_jwt(token)
        assert jwtkit.decode(token, signing_key, algorithms=["RS256"])["sub"] == "alice"
    assert [k.key_id for k in client.get_jwk_set().keys] == ["k-2024"]
    assert client.fetch_count == 1
    # An explicit refresh says that the server is down.
    with pytest.raises(jwtkit.PyJWKClientConnectionError) as info:
        client.get_jwk_set(refresh=True)
    assert info.value.kind == "fetch"
    # ...and the cached keys still answer after it.
    assert client.get_signing_key("k-2024").key_id == "k-2024"


def test_a_set_past_its_lifespan_answers_while_it_is_refreshed_in_the_background(server, keys):
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url, lifespan=1, cooldown_duration=0)
    client.get_signing_key("k-2024")
    server.publish(keys["k-2025"][1])  # k-2024 rotated out
    time.sleep(1.2)
    # The expired set answers this lookup; the refresh runs on jwt-keys' thread.
    assert client.get_signing_key("k-2024").key_id == "k-2024"
    deadline = time.monotonic() + 5
    while client.fetch_count < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.fetch_count == 2
    assert [k.key_id for k in client.get_jwk_set().keys] == ["k-2025"]
    with pytest.raises(jwtkit.PyJWKClientError):
        client.get_signing_key("k-2024")


def test_keys_past_max_stale_are_no_longer_served(server, keys):
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url, lifespan=1, cooldown_duration=0, max_stale=1)
    client.get_signing_key("k-2024")
    server.down()
    time.sleep(2.5)  # past lifespan + max_stale
    with pytest.raises(jwtkit.PyJWKClientConnectionError) as info:
        client.get_signing_key("k-2024")
    assert info.value.kind == "fetch"
    assert "127.0.0.1" in str(info.value)


def test_a_server_that_cannot_be_reached_is_a_connection_error():
    client = jwtkit.PyJWKClient("http://127.0.0.1:9/jwks.json")
    with pytest.raises(jwtkit.PyJWKClientConnectionError) as info:
        client.get_jwk_set()
    assert isinstance(info.value, jwtkit.PyJWKClientError)
    assert info.value.kind == "fetch"
    assert "http://127.0.0.1:9/jwks.json" in str(info.value) and "Connection refused" in str(info.value)
    # Within the cooldown after a failed first fetch, a lookup does not try again, and says so.
    with pytest.raises(jwtkit.PyJWKClientConnectionError) as info:
        client.get_signing_key("k")
    assert info.value.kind == "stale_keys"
    assert str(info.value).startswith("no key set has been fetched yet"), info.value
    assert "cooldown (30s)" in str(info.value)
    # An explicit fetch ignores the cooldown, and fails again.
    with pytest.raises(jwtkit.PyJWKClientConnectionError) as info:
        client.fetch_data()
    assert info.value.kind == "fetch"


def test_a_password_in_the_url_is_never_shown():
    client = jwtkit.PyJWKClient("http://user:hunter2@127.0.0.1:9/jwks.json")
    messages = [repr(client._remote)]
    for call in (client.get_jwk_set, lambda: client.get_signing_key("k"), lambda: client.get_signing_key("k")):
        with pytest.raises(jwtkit.PyJWKClientConnectionError) as info:
            call()
        messages.append(str(info.value))
    assert all("hunter2" not in m for m in messages), messages
    assert "***@127.0.0.1:9" in messages[1]


@pytest.mark.parametrize(
    "uri, says",
    [
        ("http://idp.example.com/.well-known/jwks.json", "only to a loopback address"),
        ("http://10.0.0.8/jwks.json", "only to a loopback address"),
        ("ftp://idp.example.com/jwks.json", "scheme `ftp` is not supported"),
        ("file:///etc/passwd", "scheme `file` is not supported"),
        ("not a url", "not a URL"),
    ],
)
def test_a_url_without_https_off_loopback_is_refused_at_construction(uri, says):
    with pytest.raises(jwtkit.ConfigurationError) as info:
        jwtkit.PyJWKClient(uri)
    assert info.value.kind == "invalid_uri"
    message = str(info.value)
    assert says in message, message
    assert "https" in message


def test_https_and_loopback_http_urls_are_accepted_without_fetching():
    for uri in ("https://idp.example.com/.well-known/jwks.json", "http://localhost:1/j", "http://[::1]:1/j"):
        client = jwtkit.PyJWKClient(uri)
        assert client.fetch_count == 0


def test_a_redirect_is_refused_naming_its_target(server, keys):
    server.status = 302
    server.extra_headers = {"Location": "http://evil.example.com/jwks.json"}
    client = jwtkit.PyJWKClient(server.url)
    with pytest.raises(jwtkit.PyJWKClientConnectionError) as info:
        client.get_signing_key("k-2024")
    assert info.value.kind == "fetch"
    message = str(info.value)
    assert "HTTP 302" in message and "http://evil.example.com/jwks.json" in message, message
    assert "configure the final JWKS URL" in message
    assert server.hits == 1  # the target was never asked


def test_bodies_jwt_keys_refuses_are_connection_errors_saying_why(server, keys):
    client = jwtkit.PyJWKClient(server.url, cooldown_duration=0)
    server.document = {"issuer": "https://idp", "jwks_uri": "https://idp/keys"}
    with pytest.raises(jwtkit.PyJWKClientConnectionError) as info:
        client.get_jwk_set(refresh=True)
    assert info.value.kind == "fetch" and "OpenID discovery document" in str(info.value)
    # A symmetric key in a published set is dropped: no usable key left.
    server.publish({"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": "hs"})
    with pytest.raises(jwtkit.PyJWKClientConnectionError) as info:
        client.get_jwk_set(refresh=True)
    assert "no usable signature key" in str(info.value)


def test_a_slow_server_times_out_and_the_gil_is_released_while_waiting(server, keys):
    server.publish(keys["k-2024"][1])
    server.delay = 1.5
    client = jwtkit.PyJWKClient(server.url, timeout=0.5)
    done = {}

    def lookup():
        start = time.monotonic()
        try:
            client.get_signing_key("k-2024")
        except jwtkit.PyJWKClientConnectionError as e:
            done["error"] = e
        done["elapsed"] = time.monotonic() - start

    worker = threading.Thread(target=lookup)
    worker.start()
    # This thread keeps running during the 0.5 s fetch only if the fetch let go
    # of the GIL: holding it would show here as a gap of about 0.5 s.
    last = time.monotonic()
    longest_gap = 0.0
    while worker.is_alive():
        now = time.monotonic()
        longest_gap = max(longest_gap, now - last)
        last = now
    worker.join()
    assert done["error"].kind == "fetch" and "did not answer in time" in str(done["error"])
    assert 0.45 < done["elapsed"] < 1.4
    assert longest_gap < 0.2, longest_gap


def test_threads_asking_at_once_cause_one_fetch(server, keys):
    server.publish(keys["k-2024"][1], keys["k-2025"][1])
    server.delay = 0.2
    client = jwtkit.PyJWKClient(server.url)
    found = []
    threads = [threading.Thread(target=lambda: found.append(client.get_signing_key("k-2025").key_id))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == ["k-2025"] * 8
    assert server.hits == 1


def test_cache_keys_is_pyjwts_lru_by_kid(server, keys):
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url, cache_keys=True, max_cached_keys=2)
    first = client.get_signing_key("k-2024")
    assert client.get_signing_key("k-2024") is first
    info = client.get_signing_key.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (1, 1, 2)


def test_cache_jwk_set_false_fetches_on_every_lookup(server, keys):
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url, cache_jwk_set=False)
    client.get_jwk_set()
    client.get_signing_key("k-2024")
    client.get_signing_keys()
    assert server.hits == 3


def test_fetch_data_fetches_and_returns_the_usable_keys(server, keys):
    server.publish(keys["k-2024"][1], {"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA", "kid": "bad"})
    client = jwtkit.PyJWKClient(server.url)
    data = client.fetch_data()
    assert [k["kid"] for k in data["keys"]] == ["k-2024"]
    assert data["keys"][0]["n"] == keys["k-2024"][1]["n"]
    client.fetch_data()
    assert server.hits == 2  # fetch_data always fetches, as in PyJWT


def test_settings_pyjwt_refuses_and_jwtkit_cannot_follow():
    url = "http://127.0.0.1:1/jwks.json"
    with pytest.raises(jwtkit.PyJWKClientError, match="Lifespan must be greater than 0") as info:
        jwtkit.PyJWKClient(url, lifespan=0)
    assert info.value.kind == "config"
    with pytest.raises(jwtkit.PyJWKClientError, match="Cooldown duration"):
        jwtkit.PyJWKClient(url, cooldown_duration=-1)
    with pytest.raises(jwtkit.ConfigurationError, match="timeout must be greater than 0") as info:
        jwtkit.PyJWKClient(url, timeout=0)
    assert info.value.kind == "config"
    with pytest.raises(jwtkit.ConfigurationError, match="finite"):
        jwtkit.PyJWKClient(url, lifespan=float("inf"))
    with pytest.raises(jwtkit.ConfigurationError, match="headers=.... is not supported") as info:
        jwtkit.PyJWKClient(url, headers={"Authorization": "Bearer x"})
    assert "PyJWKSet.from_dict" in str(info.value) and "Bearer x" not in str(info.value)
    jwtkit.PyJWKClient(url, headers={})  # nothing to send: accepted


def test_ssl_context_and_ca_file(tmp_path):
    url = "https://idp.example.com/.well-known/jwks.json"
    unchecked = ssl.create_default_context()
    unchecked.check_hostname = False
    unchecked.verify_mode = ssl.CERT_NONE
    with pytest.raises(jwtkit.ConfigurationError, match="never fetches keys without them") as info:
        jwtkit.PyJWKClient(url, ssl_context=unchecked)
    assert info.value.kind == "config"
    # A checking context is accepted (its loaded CAs are added to the roots).
    jwtkit.PyJWKClient(url, ssl_context=ssl.create_default_context())
    with pytest.raises(jwtkit.ConfigurationError, match="must be an ssl.SSLContext"):
        jwtkit.PyJWKClient(url, ssl_context="ca.pem")
    with pytest.raises(jwtkit.ConfigurationError, match="could not be read"):
        jwtkit.PyJWKClient(url, ca_file=str(tmp_path / "missing.pem"))
    not_a_cert = tmp_path / "key.pem"
    not_a_cert.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(jwtkit.ConfigurationError) as info:
        jwtkit.PyJWKClient(url, ca_file=str(not_a_cert))
    assert info.value.kind == "invalid_config" and "root_certificates" in str(info.value)


def test_a_token_without_kid_or_malformed(server, keys):
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url)
    # PyJWT's token: jwtkit.encode names its key by thumbprint when no kid is given.
    no_kid = pyjwt.encode({"sub": "a", "exp": EXP}, keys["k-2024"][0], algorithm="RS256")
    assert "kid" not in jwtkit.get_unverified_header(no_kid)
    with pytest.raises(jwtkit.PyJWKClientError, match="has no kid") as info:
        client.get_signing_key_from_jwt(no_kid)
    assert info.value.kind == "unknown_key"
    with pytest.raises(jwtkit.DecodeError) as info:
        client.get_signing_key_from_jwt("not-a-token")
    assert info.value.kind == "malformed"
    with pytest.raises(jwtkit.PyJWKClientError, match="must be a str"):
        client.get_signing_key(None)  # type: ignore[arg-type]
    assert server.hits == 0


def test_a_kid_with_control_characters_is_escaped_in_the_message(server, keys):
    server.publish(keys["k-2024"][1])
    client = jwtkit.PyJWKClient(server.url)
    with pytest.raises(jwtkit.PyJWKClientError) as info:
        client.get_signing_key("evil\x1b]0;x\x07")
    assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value)


def test_pyjwts_client_and_ours_give_the_same_key_for_the_same_kid(server):
    rsa_key, rsa_jwk = rsa_pair("rsa-1")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_jwk = dict(json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), kid="ec-1", alg="ES256")
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_jwk = dict(json.loads(pyjwt.algorithms.OKPAlgorithm.to_jwk(ed_key.public_key())), kid="ed-1", alg="EdDSA")
    server.publish(rsa_jwk, ec_jwk, ed_jwk)
    theirs = pyjwt.PyJWKClient(server.url)
    ours = jwtkit.PyJWKClient(server.url)
    for kid, private, alg in (("rsa-1", rsa_key, "RS256"), ("ec-1", ec_key, "ES256"), ("ed-1", ed_key, "EdDSA")):
        token = pyjwt.encode({"sub": kid, "exp": EXP}, private, algorithm=alg, headers={"kid": kid})
        their_key = theirs.get_signing_key_from_jwt(token)
        our_key = ours.get_signing_key_from_jwt(token)
        assert our_key.key_id == their_key.key_id == kid
        assert our_key.algorithm_name == their_key.algorithm_name == alg
        assert public_numbers(our_key.key) == public_numbers(their_key.key)
        # Each library verifies with the key the other's client handed out.
        assert jwtkit.decode(token, their_key.key, algorithms=[alg])["sub"] == kid
        assert pyjwt.decode(token, our_key.key, algorithms=[alg])["sub"] == kid
    assert {k.key_id for k in ours.get_signing_keys()} == {k.key_id for k in theirs.get_signing_keys()}
    assert ours.fetch_count == 1


def public_numbers(key):
    if isinstance(key, ed25519.Ed25519PublicKey):
        from cryptography.hazmat.primitives import serialization

        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    numbers = key.public_numbers()
    if isinstance(numbers, rsa.RSAPublicNumbers):
        return ("RSA", numbers.n, numbers.e)
    return ("EC", numbers.curve.name, numbers.x, numbers.y)
