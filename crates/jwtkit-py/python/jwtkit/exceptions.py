"""PyJWT's exception hierarchy, with the same names and bases, plus jwtkit's own.

Every exception carries ``kind``: jwtkit's stable error kind (``"expired"``,
``"invalid_signature"``, ``"weak_key"``, ``"backend"``, ...), the same names the
``jwtkit verify --json`` command prints and the Rust crates' ``ErrorKind``s use.
Catch by class as with PyJWT; branch on ``kind`` when a class covers several
reasons (``DecodeError`` is ``malformed``, ``unsupported`` or ``too_large``).
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
    "PyJWTError",
    "InvalidTokenError",
    "DecodeError",
    "InvalidSignatureError",
    "ExpiredSignatureError",
    "InvalidAudienceError",
    "InvalidIssuerError",
    "InvalidSubjectError",
    "InvalidIssuedAtError",
    "ImmatureSignatureError",
    "InvalidKeyError",
    "InvalidAlgorithmError",
    "MissingRequiredClaimError",
    "InvalidJTIError",
    "PyJWKError",
    "MissingCryptographyError",
    "PyJWKSetError",
    "PyJWKClientError",
    "PyJWKClientConnectionError",
    "ConfigurationError",
    "KeyStoreError",
    "BackendError",
    "InvalidGrantError",
]


class PyJWTError(Exception):
    """Base class of every jwtkit exception (PyJWT's name).

    ``kind`` is jwtkit's stable error kind; each class has a default, and an
    instance raised by jwtkit carries the precise one. ``retryable`` says
    whether the same call may succeed if retried (a backend that timed out):
    always a bool, ``False`` unless jwtkit says otherwise.
    """

    kind: str = "error"
    retryable: bool = False

    def __init__(self, *args: Any, kind: Optional[str] = None) -> None:
        super().__init__(*args)
        if kind is not None:
            self.kind = kind


class InvalidTokenError(PyJWTError):
    """The token was rejected (answer 401). Base of every rejection."""

    kind = "invalid_token"


class DecodeError(InvalidTokenError):
    """The token is not a well-formed JWS (``malformed``), uses a refused
    feature (``unsupported``: ``crit``, ``b64: false``) or is over the size
    limit (``too_large``)."""

    kind = "malformed"


class InvalidSignatureError(DecodeError):
    """The signature does not match the key."""

    kind = "invalid_signature"


class ExpiredSignatureError(InvalidTokenError):
    """``exp`` has passed (beyond the leeway)."""

    kind = "expired"


class InvalidAudienceError(InvalidTokenError):
    """``aud`` names none of the accepted audiences, or the token has an
    ``aud`` and no audience was configured."""

    kind = "invalid_audience"


class InvalidIssuerError(InvalidTokenError):
    """``iss`` is not an accepted issuer."""

    kind = "invalid_issuer"


class InvalidSubjectError(InvalidTokenError):
    """``sub`` is not the expected subject."""

    kind = "invalid_subject"


class InvalidIssuedAtError(InvalidTokenError):
    """``iat`` is not a number."""

    kind = "invalid_claim"


class ImmatureSignatureError(InvalidTokenError):
    """``nbf`` (or ``iat``) is in the future (beyond the leeway)."""

    kind = "immature"


class InvalidKeyError(PyJWTError):
    """The key cannot be used (``invalid_key``) or is too weak for its
    algorithm (``weak_key``): a configuration error, not a rejection."""

    kind = "invalid_key"


class InvalidAlgorithmError(InvalidTokenError):
    """The token's ``alg`` is not allowed, or does not fit the key."""

    kind = "invalid_algorithm"


class MissingRequiredClaimError(InvalidTokenError):
    """A required claim is absent; ``claim`` names it."""

    kind = "missing_claim"

    def __init__(self, claim: str, message: Optional[str] = None, *, kind: Optional[str] = None) -> None:
        super().__init__(message or f'Token is missing the "{claim}" claim', kind=kind)
        self.claim = claim

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidJTIError(InvalidTokenError):
    """``jti`` is not a string."""

    kind = "invalid_claim"


class PyJWKError(PyJWTError):
    """A JWK cannot be used."""

    kind = "invalid_key"


class MissingCryptographyError(PyJWKError):
    """The ``cryptography`` package is needed for this (converting a JWK to a
    ``cryptography`` key object) and is not installed."""

    kind = "config"


class PyJWKSetError(PyJWTError):
    """A JWK Set is malformed or holds no usable key."""

    kind = "invalid_key"


class PyJWKClientError(PyJWTError):
    """``PyJWKClient`` found no key for the token (``unknown_key``), or the
    JWKS is unusable."""

    kind = "unknown_key"


class PyJWKClientConnectionError(PyJWKClientError):
    """The JWKS URL could not be fetched (``fetch``)."""

    kind = "fetch"


class ConfigurationError(PyJWTError, ValueError):
    """jwtkit: a setting that cannot work, or one jwtkit refuses on purpose
    (``verify_signature: False``, ``verify_exp: False``, no ``algorithms``).
    A programming error, never a rejected token; also a ``ValueError``."""

    kind = "config"


class KeyStoreError(PyJWTError):
    """jwtkit: a key store refused or failed an operation (``not_active``,
    ``read_only``, ``not_initialized``, ``corrupt_store``, ...)."""

    kind = "key_store"


class BackendError(PyJWTError):
    """jwtkit: a remote backend (KMS, Vault, Redis) failed or timed out
    (``backend``, ``unavailable``, ``timeout``, ...); often worth a retry:
    ``retryable`` says whether a retry of the same call may succeed."""

    kind = "backend"
    retryable: bool = False


class InvalidGrantError(InvalidTokenError):
    """jwtkit: a refresh token was refused: invalid, expired, unknown,
    revoked, or reused (the whole session is then revoked).

    ``reason`` is why: ``"reused"``, ``"revoked"``, ``"expired"``,
    ``"unknown"`` or ``"invalid"``; ``retryable`` is ``False`` (send the
    user to log in again)."""

    kind = "invalid_grant"
    reason: str = "invalid"
    retryable: bool = False
