"""``PyJWS``: signing and verifying arbitrary byte payloads."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Union

from . import _jwtkit
from .exceptions import ConfigurationError, DecodeError


class PyJWS:
    """PyJWT's ``PyJWS``: a JWS over any bytes (not only JSON claims).
    ``algorithms`` given here are the defaults of ``decode``; ``options``
    accepts ``{"verify_signature": True}`` only (see ``jwtkit.dangerous_decode_unverified``)."""

    def __init__(self, algorithms: Optional[List[str]] = None, options: Optional[Dict[str, Any]] = None) -> None:
        self._algorithms = list(algorithms) if algorithms is not None else None
        self.options: Dict[str, Any] = {"verify_signature": True}
        self.options.update(options or {})
        _check_options(self.options)

    def get_algorithms(self) -> List[str]:
        """The algorithms jwtkit supports (or those this instance allows)."""
        if self._algorithms is not None:
            return list(self._algorithms)
        return ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                "ES256", "ES384", "ES512", "EdDSA"]

    def encode(
        self,
        payload: bytes,
        key: Any,
        algorithm: Optional[str] = "HS256",
        headers: Optional[Dict[str, Any]] = None,
        json_encoder: Optional[type] = None,
        is_payload_detached: bool = False,
        sort_headers: bool = True,
    ) -> str:
        """Signs ``payload`` (bytes)."""
        if is_payload_detached:
            raise ConfigurationError(
                "is_payload_detached=True (b64: false, RFC 7797) is not supported: jwtkit's verifiers refuse such tokens"
            )
        if json_encoder is not None and headers:
            headers = json.loads(json.dumps(headers, cls=json_encoder))
        return _jwtkit.jws_encode(bytes(payload), key, algorithm, headers)

    def decode_complete(
        self,
        jwt: Union[str, bytes],
        key: Any = None,
        algorithms: Optional[Iterable[str]] = None,
        options: Optional[Dict[str, Any]] = None,
        detached_payload: Optional[bytes] = None,
    ) -> Dict[str, Any]:
        """Verifies ``jwt``: ``{"payload": bytes, "header": dict, "signature": bytes}``."""
        merged = dict(self.options)
        merged.update(options or {})
        _check_options(merged)
        if detached_payload is not None:
            raise ConfigurationError("detached payloads (b64: false, RFC 7797) are not supported by jwtkit")
        algs = algorithms if algorithms is not None else self._algorithms
        if algs is None:
            raise DecodeError(
                'It is required that you pass in a value for the "algorithms" argument when calling decode()',
                kind="config",
            )
        if isinstance(algs, str):
            algs = [algs]
        token = jwt.decode("utf-8") if isinstance(jwt, bytes) else jwt
        return _jwtkit.jws_decode_complete(token, key, list(algs))

    def decode(
        self,
        jwt: Union[str, bytes],
        key: Any = None,
        algorithms: Optional[Iterable[str]] = None,
        options: Optional[Dict[str, Any]] = None,
        detached_payload: Optional[bytes] = None,
    ) -> bytes:
        """Verifies ``jwt`` and returns its payload bytes."""
        return self.decode_complete(jwt, key, algorithms, options, detached_payload)["payload"]

    def get_unverified_header(self, jwt: Union[str, bytes]) -> Dict[str, Any]:
        """The header, not verified."""
        return _jwtkit.get_unverified_header(jwt)


def _check_options(options: Dict[str, Any]) -> None:
    if not options.get("verify_signature", True):
        raise ConfigurationError(
            'options={"verify_signature": False} is refused: jwtkit always verifies. To read a token '
            "without verifying it, call jwtkit.dangerous_decode_unverified(token)"
        )
