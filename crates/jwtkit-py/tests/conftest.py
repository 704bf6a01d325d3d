"""Shared fixtures: keys made by `cryptography` and by the `openssl` CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

SECRET = "a secret of at least 64 bytes, enough for HS512 as well as HS256!!"

ALGORITHMS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "ES256", "ES384", "ES512", "EdDSA"]


def _pem_private(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="session")
def crypto_keys():
    """alg -> (private key object, private PEM bytes, public PEM bytes); HS* -> the secret."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
    out = {}
    for alg in ALGORITHMS:
        if alg.startswith("HS"):
            out[alg] = (SECRET, SECRET, SECRET)
            continue
        if alg[:2] in ("RS", "PS"):
            key = rsa_key
        elif alg.startswith("ES"):
            key = ec.generate_private_key(curves[alg])
        else:
            key = ed25519.Ed25519PrivateKey.generate()
        out[alg] = (key, _pem_private(key), _pem_public(key))
    return out


@pytest.fixture(scope="session")
def openssl_keys(tmp_path_factory):
    """PEM files written by the openssl CLI, as the tutorials make them."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed by these tests")
    d: Path = tmp_path_factory.mktemp("openssl")
    run = lambda *args: subprocess.run(["openssl", *args], check=True, cwd=d, capture_output=True)  # noqa: E731
    run("genrsa", "-out", "rsa.pem", "2048")
    run("rsa", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem")
    run("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", "ec.pem")
    run("ec", "-in", "ec.pem", "-pubout", "-out", "ec.pub.pem")
    return d


class _JwksServer:
    """A loopback HTTP server serving a JWKS document that tests can change."""

    def __init__(self):
        import http.server
        import json as _json
        import threading

        self.document = {"keys": []}
        self.hits = 0
        server_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server_self.hits += 1
                body = _json.dumps(server_self.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def set(self, document):
        self.document = document

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server():
    server = _JwksServer()
    yield server
    server.close()
