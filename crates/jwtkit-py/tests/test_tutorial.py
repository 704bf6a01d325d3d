"""The seed guide's PyJWT snippets (docs/from-pyjwt.md), run as written with
``import jwtkit as jwt`` in place of ``import jwt``, on the files the guide's
shell steps make (made here with jwtkit, openssl and a loopback JWKS
server). Where jwtkit's strictness differs, the test asserts the error."""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

import jwtkit

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "from-pyjwt.md"


def snippets():
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)


def run(index: int, **env):
    """Runs the guide's Python block `index` with jwtkit as `jwt`."""
    code = snippets()[index].replace("import jwt\n", "import jwtkit as jwt\n")
    assert "import jwtkit as jwt" in code
    scope = {"__name__": "__tutorial__", **env}
    exec(compile(code, f"from-pyjwt.md block {index}", "exec"), scope)  # noqa: S102
    return scope


@pytest.fixture
def guide_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    secret = os.urandom(32).hex()  # openssl rand -hex 32
    (tmp_path / "secret.txt").write_text(secret + "\n")
    return tmp_path, secret


def _write(name, text):
    Path(name).write_text(text + "\n")


def test_guide_has_the_blocks_this_test_runs():
    assert len(snippets()) == 13


def test_0_generated_secret(guide_dir):
    raw = os.urandom(64)
    _write("generated.key", "base64url:" + base64.urlsafe_b64encode(raw).decode().rstrip("="))
    run(0)
    token = Path("py-generated.txt").read_text()
    assert jwtkit.decode(token, raw, algorithms=["HS256"])["sub"] == "alice"


def test_1_encode_and_2_decode(guide_dir):
    _, secret = guide_dir
    run(1)
    claims = jwtkit.decode(Path("py-hs256.txt").read_text(), secret, algorithms=["HS256"], audience="my-api",
                           issuer="https://auth.example.com")
    assert claims["exp"] - claims["iat"] == 900
    _write("hs256.txt", jwtkit.encode({"sub": "alice", "iss": "https://auth.example.com", "aud": "my-api",
                                       "exp": int(time.time()) + 900}, secret, algorithm="HS256"))
    assert run(2)["claims"]["sub"] == "alice"


def test_3_expired(guide_dir, capsys):
    _, secret = guide_dir
    _write("expired.txt", jwtkit.encode({"sub": "alice", "exp": int(time.time()) - 2700}, secret))
    run(3)
    assert "PyJWT: ExpiredSignatureError" in capsys.readouterr().out


def test_4_leeway(guide_dir):
    _, secret = guide_dir
    _write("just-expired.txt", jwtkit.encode({"sub": "alice", "exp": int(time.time()) - 5}, secret))
    assert run(4)["claims"]["sub"] == "alice"


def test_5_required_claims(guide_dir, capsys):
    _, secret = guide_dir
    _write("no-iss.txt", jwtkit.encode({"sub": "alice", "exp": int(time.time()) + 900}, secret))
    run(5)
    assert "iss" in capsys.readouterr().out


def test_6_unverified_differs(guide_dir, capsys):
    """get_unverified_header works; decode(verify_signature=False) and
    signing with alg "none" are refused, each naming what to do."""
    _, secret = guide_dir
    _write("hs256.txt", jwtkit.encode({"sub": "alice", "exp": int(time.time()) + 900}, secret))
    with pytest.raises(jwtkit.ConfigurationError, match="dangerous_decode_unverified"):
        run(6)
    assert "'alg': 'HS256'" in capsys.readouterr().out
    token = Path("hs256.txt").read_text().strip()
    assert jwtkit.dangerous_decode_unverified(token)["sub"] == "alice"
    with pytest.raises(jwtkit.InvalidAlgorithmError, match="none"):
        jwtkit.encode({"sub": "mallory"}, None, algorithm="none")


def test_7_rs256_and_8_es256_openssl(guide_dir, openssl_keys):
    for name in ("rsa.pem", "rsa.pub.pem", "ec.pem", "ec.pub.pem"):
        Path(name).write_bytes((openssl_keys / name).read_bytes())
    for alg, key, out in (("RS256", "rsa.pem", "rs256.txt"), ("ES256", "ec.pem", "es256.txt")):
        _write(out, jwtkit.encode({"sub": "alice", "aud": "my-api", "exp": int(time.time()) + 900},
                                  Path(key).read_bytes(), algorithm=alg))
    run(7)
    run(8)
    assert jwtkit.decode(Path("py-rs256.txt").read_text(), Path("rsa.pub.pem").read_text(), algorithms=["RS256"],
                         audience="my-api")["sub"] == "alice"
    assert jwtkit.decode(Path("py-es256.txt").read_text(), Path("ec.pub.pem").read_text(), algorithms=["ES256"],
                         audience="my-api")["sub"] == "alice"


def test_9_jwks_by_kid_through_pyjwkclient(guide_dir, jwks_server, crypto_keys, capsys):
    from cryptography.hazmat.primitives.asymmetric import ec

    base = jwks_server.url.rsplit("/.well-known/", 1)[0]
    _write("base-url.txt", base)
    keys = []
    for name in ("access.txt", "access2.txt"):  # a rotation: two keys, two kids
        key = ec.generate_private_key(ec.SECP256R1())
        token = jwtkit.encode({"sub": "alice", "aud": "api", "iss": base, "exp": int(time.time()) + 900},
                              key, algorithm="ES256", headers={"typ": "at+jwt"})
        kid = jwtkit.get_unverified_header(token)["kid"]
        import jwt as pyjwt

        keys.append(dict(json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(key.public_key())), kid=kid, alg="ES256"))
        _write(name, token)
    jwks_server.set({"keys": keys})
    _write("access.txt", Path("access.txt").read_text().strip())
    run(9)
    run(10)
    out = capsys.readouterr().out
    assert "PyJWT verified alice" in out and "access2.txt verified with kid" in out


def test_10_refresh_pattern(guide_dir, capsys):
    run(11)
    assert "the replay was refused" in capsys.readouterr().out


def test_11_common_errors_table(guide_dir, openssl_keys, jwks_server):
    _, secret = guide_dir
    token = jwtkit.encode({"sub": "alice", "aud": "my-api", "exp": int(time.time()) + 900}, secret)
    rows = [
        (lambda: jwtkit.decode(token, secret + "\n", algorithms=["HS256"], audience="my-api"),
         jwtkit.InvalidSignatureError, "invalid_signature"),
        (lambda: jwtkit.decode("Bearer " + token, secret, algorithms=["HS256"]), jwtkit.DecodeError, "malformed"),
        (lambda: jwtkit.decode(token, secret, algorithms=["HS256"]), jwtkit.InvalidAudienceError, "invalid_audience"),
        (lambda: jwtkit.decode(token, secret), jwtkit.DecodeError, "config"),
        (lambda: jwtkit.decode(token, secret, algorithms=["HS512"], audience="my-api"),
         jwtkit.InvalidAlgorithmError, "invalid_algorithm"),
        (lambda: jwtkit.decode(jwtkit.encode({"sub": "a"}, secret), secret, algorithms=["HS256"]),
         jwtkit.MissingRequiredClaimError, "missing_claim"),  # exp required by default (differs)
        (lambda: jwtkit.decode(jwtkit.encode({"iat": int(time.time()) + 600, "exp": int(time.time()) + 900}, secret),
                               secret, algorithms=["HS256"]), jwtkit.ImmatureSignatureError, "immature"),
        (lambda: jwtkit.decode(token, (openssl_keys / "rsa.pub.pem").read_text(), algorithms=["HS256"]),
         jwtkit.InvalidKeyError, "invalid_key"),
        (lambda: jwtkit.decode(token, "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----",
                               algorithms=["RS256"]), jwtkit.InvalidKeyError, "invalid_key"),
        (lambda: jwtkit.encode({"sub": "a"}, "secret", algorithm="HS256"), jwtkit.InvalidKeyError, "weak_key"),
        (lambda: jwtkit.PyJWKClient(jwks_server.url).get_signing_key("nope"), jwtkit.PyJWKClientError, None),
        (lambda: jwtkit.PyJWKClient("http://127.0.0.1:9/jwks.json").get_jwk_set(),
         jwtkit.PyJWKClientConnectionError, "fetch"),
    ]
    jwks_server.set({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                               "kid": "k1"}]})
    for call, cls, kind in rows:
        with pytest.raises(cls) as info:
            call()
        if kind is not None:
            assert info.value.kind == kind, info.value
        assert str(info.value)


def test_12_weak_secret_differs(guide_dir):
    """PyJWT signs with the tutorials' "secret"; jwtkit refuses, saying why."""
    with pytest.raises(jwtkit.InvalidKeyError, match="weak key") as info:
        run(12)
    assert info.value.kind == "weak_key"


def test_openssl_cli_keys_are_read_as_written(openssl_keys):
    assert (openssl_keys / "ec.pem").read_text().startswith("-----BEGIN EC PRIVATE KEY-----")
    out = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("OpenSSL")
    # SEC1 (openssl ecparam) and PKCS#8/PKCS#1 (openssl genrsa) both sign.
    for key, alg in (("ec.pem", "ES256"), ("rsa.pem", "RS256")):
        token = jwtkit.encode({"exp": 4102444800}, (openssl_keys / key).read_bytes(), algorithm=alg)
        pub = (openssl_keys / key.replace(".pem", ".pub.pem")).read_bytes()
        assert jwtkit.decode(token, pub, algorithms=[alg]) == {"exp": 4102444800}
    _ = datetime  # the guide's snippets import it themselves
