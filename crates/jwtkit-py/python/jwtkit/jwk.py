"""``PyJWK`` and ``PyJWKSet``: JWKs parsed by jwt-core (strictly: a private
JWK must match its public part, ``use``/``key_ops`` must allow signatures)."""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, Iterator, List, Optional

from . import _jwtkit
from .exceptions import InvalidKeyError, MissingCryptographyError, PyJWKError, PyJWKSetError, PyJWTError


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(text: str) -> int:
    return int.from_bytes(_b64d(text), "big")


class PyJWK:
    """One JWK. Pass it (or its ``key``) as the key of ``jwtkit.decode`` /
    ``encode``; ``key`` is a ``cryptography`` key object (``bytes`` for an
    ``oct`` secret), made on first use."""

    def __init__(self, jwk_data: Dict[str, Any], algorithm: Optional[str] = None) -> None:
        if not isinstance(jwk_data, dict):
            raise PyJWKError(f"a JWK must be a dict, not {type(jwk_data).__name__}")
        data = dict(jwk_data)
        if algorithm is not None and "alg" not in data:
            data["alg"] = algorithm
        try:
            self._jwtkit_native = _jwtkit.NativeJwk(json.dumps(data))
        except PyJWTError as e:
            raise PyJWKError(str(e), kind=e.kind) from e
        self._jwk_data = data
        self._key: Any = None

    @classmethod
    def from_dict(cls, obj: Dict[str, Any], algorithm: Optional[str] = None) -> "PyJWK":
        """A ``PyJWK`` from a dict."""
        return cls(obj, algorithm)

    @classmethod
    def from_json(cls, data: str, algorithm: Optional[str] = None) -> "PyJWK":
        """A ``PyJWK`` from JSON text."""
        return cls(json.loads(data), algorithm)

    @classmethod
    def from_key(cls, key: Any, algorithm: Optional[str] = None, kid: Optional[str] = None) -> "PyJWK":
        """The public JWK of ``key`` (PEM ``str``/``bytes``, DER, a
        ``cryptography`` key object, private or public): what to publish in
        a JWKS for tokens signed with it. ``kid`` defaults to the key's
        RFC 7638 thumbprint, the ``kid`` jwtkit puts in the header of tokens
        signed without one; ``algorithm`` (e.g. ``"RS256"``) becomes ``alg``.
        ``to_dict()`` gives the JWK as a dict. HMAC secrets are refused:
        they are never published."""
        return cls(public_jwk(key, algorithm=algorithm, kid=kid))

    def to_dict(self) -> Dict[str, Any]:
        """The JWK as a dict (a copy)."""
        return dict(self._jwk_data)

    @property
    def key_type(self) -> str:
        """``kty``."""
        return self._jwtkit_native.kty

    @property
    def key_id(self) -> Optional[str]:
        """``kid``."""
        return self._jwtkit_native.kid

    @property
    def public_key_use(self) -> Optional[str]:
        """``use``."""
        return self._jwtkit_native.public_key_use

    @property
    def algorithm_name(self) -> str:
        """``alg``, or the default algorithm of the key's type."""
        return self._jwtkit_native.algorithm_name

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint (jwtkit's default ``kid``)."""
        return self._jwtkit_native.thumbprint()

    @property
    def key(self) -> Any:
        """The key as a ``cryptography`` object (bytes for ``oct``)."""
        if self._key is None:
            self._key = _to_cryptography(self._jwk_data)
        return self._key

    def __repr__(self) -> str:
        return f"PyJWK(key_type={self.key_type!r}, key_id={self.key_id!r}, algorithm_name={self.algorithm_name!r})"


def public_jwk(key: Any, algorithm: Optional[str] = None, kid: Optional[str] = None) -> Dict[str, Any]:
    """The public JWK of ``key`` as a dict (see ``PyJWK.from_key``), e.g.
    ``{"keys": [jwtkit.public_jwk(public_pem, "RS256")]}`` is a JWKS."""
    result: Dict[str, Any] = json.loads(_jwtkit.public_jwk(key, algorithm, kid))
    return result


def _to_cryptography(d: Dict[str, Any]) -> Any:
    kty = d.get("kty")
    if kty == "oct":
        return _b64d(d["k"])
    try:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    except ImportError as e:  # pragma: no cover - cryptography is a test dependency
        raise MissingCryptographyError(
            "PyJWK.key needs the `cryptography` package (pip install cryptography); "
            "or pass the PyJWK itself as the key"
        ) from e
    if kty == "RSA":
        public = rsa.RSAPublicNumbers(_int(d["e"]), _int(d["n"]))
        if "d" not in d:
            return public.public_key()
        return rsa.RSAPrivateNumbers(
            _int(d["p"]), _int(d["q"]), _int(d["d"]), _int(d["dp"]), _int(d["dq"]), _int(d["qi"]), public
        ).private_key()
    if kty == "EC":
        curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}[d["crv"]]()
        if "d" in d:
            return ec.derive_private_key(_int(d["d"]), curve)
        return ec.EllipticCurvePublicNumbers(_int(d["x"]), _int(d["y"]), curve).public_key()
    if kty == "OKP":
        if "d" in d:
            return ed25519.Ed25519PrivateKey.from_private_bytes(_b64d(d["d"]))
        return ed25519.Ed25519PublicKey.from_public_bytes(_b64d(d["x"]))
    raise InvalidKeyError(f"unsupported kty {kty!r}")


class PyJWKSet:
    """A JWK Set. Keys that cannot be used for signatures (``use: enc``,
    unsupported types) are skipped; a set with no usable key is an error."""

    def __init__(self, keys: List[Dict[str, Any]]) -> None:
        self.keys: List[PyJWK] = []
        if not isinstance(keys, list) or not keys:
            raise PyJWKSetError("The JWK Set did not contain any keys")
        for key in keys:
            try:
                self.keys.append(PyJWK(key))
            except PyJWTError:
                continue
        if not self.keys:
            raise PyJWKSetError("The JWK Set did not contain any usable keys. Perhaps `cryptography` is not installed?")

    @staticmethod
    def from_dict(obj: Dict[str, Any]) -> "PyJWKSet":
        """A set from ``{"keys": [...]}``."""
        return PyJWKSet(obj.get("keys", []))

    @staticmethod
    def from_json(data: str) -> "PyJWKSet":
        """A set from JSON text."""
        return PyJWKSet.from_dict(json.loads(data))

    def __getitem__(self, kid: str) -> PyJWK:
        for key in self.keys:
            if key.key_id == kid:
                return key
        raise KeyError(f"keyset has no key for kid: {kid}")

    def __iter__(self) -> Iterator[PyJWK]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)
