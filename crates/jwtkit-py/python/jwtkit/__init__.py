"""jwtkit: PyJWT's API on jwtkit's strict, fast Rust verifier.

``import jwtkit as jwt`` works for the calls PyJWT 2.x documents. Where
jwtkit is stricter (``algorithms`` required, no ``verify_signature: False``,
no switches turning off ``exp``/``aud`` checks, weak HMAC secrets refused) it
raises an error that says so; see docs/python.md.
"""

from ._jwtkit import (
    dangerous_decode_unverified,
    decode,
    decode_complete,
    encode,
    get_unverified_header,
)
from .api_jws import PyJWS
from .api_jwt import PyJWT
from .exceptions import (
    BackendError,
    ConfigurationError,
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidGrantError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidJTIError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidSubjectError,
    InvalidTokenError,
    KeyStoreError,
    MissingCryptographyError,
    MissingRequiredClaimError,
    PyJWKClientConnectionError,
    PyJWKClientError,
    PyJWKError,
    PyJWKSetError,
    PyJWTError,
)
from .jwk import PyJWK, PyJWKSet, public_jwk
from .jwks_client import PyJWKClient

# jwtkit's key stores and token service (src/store.rs, src/service.rs).
from ._jwtkit import KeyMaintenance, KeyStore, KeyStoreVerifier, TokenService

__version__ = "0.1.0"

__all__ = [
    "encode",
    "decode",
    "decode_complete",
    "get_unverified_header",
    "dangerous_decode_unverified",
    "PyJWT",
    "PyJWS",
    "PyJWK",
    "PyJWKSet",
    "public_jwk",
    "PyJWKClient",
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
    "PyJWKSetError",
    "MissingCryptographyError",
    "PyJWKClientError",
    "PyJWKClientConnectionError",
    "ConfigurationError",
    "KeyStoreError",
    "BackendError",
    "InvalidGrantError",
    "KeyStore",
    "KeyStoreVerifier",
    "TokenService",
    "KeyMaintenance",
]
