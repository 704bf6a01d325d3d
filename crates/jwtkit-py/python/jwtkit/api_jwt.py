"""``PyJWT``: PyJWT's class, with its own default ``options``."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Union

from . import _jwtkit


class PyJWT:
    """An object with its own default ``options`` for ``decode`` (merged
    under the call's), as PyJWT's ``PyJWT(options=...)``. The module
    functions ``jwtkit.encode``/``decode``/``decode_complete`` are the same
    with no defaults."""

    def __init__(self, options: Optional[Dict[str, Any]] = None) -> None:
        self.options: Dict[str, Any] = dict(options or {})

    def _merged(self, options: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        if not self.options:
            return options
        merged = dict(self.options)
        merged.update(options or {})
        return merged

    def encode(
        self,
        payload: Dict[str, Any],
        key: Any,
        algorithm: Optional[str] = "HS256",
        headers: Optional[Dict[str, Any]] = None,
        json_encoder: Optional[type] = None,
        sort_headers: bool = True,
    ) -> str:
        """Signs ``payload`` (a dict; ``exp``/``iat``/``nbf`` may be datetimes)."""
        return _jwtkit.encode(payload, key, algorithm, headers, json_encoder, sort_headers)

    def decode_complete(
        self,
        jwt: Union[str, bytes],
        key: Any = None,
        algorithms: Optional[Iterable[str]] = None,
        options: Optional[Dict[str, Any]] = None,
        detached_payload: Optional[bytes] = None,
        audience: Optional[Union[str, Iterable[str]]] = None,
        issuer: Optional[Union[str, Iterable[str]]] = None,
        subject: Optional[str] = None,
        leeway: Any = 0,
    ) -> Dict[str, Any]:
        """Verifies ``jwt``: ``{"header", "payload", "signature"}``."""
        return _jwtkit.decode_complete(
            jwt, key, algorithms, self._merged(options), detached_payload, audience, issuer, subject, leeway
        )

    def decode(
        self,
        jwt: Union[str, bytes],
        key: Any = None,
        algorithms: Optional[Iterable[str]] = None,
        options: Optional[Dict[str, Any]] = None,
        detached_payload: Optional[bytes] = None,
        audience: Optional[Union[str, Iterable[str]]] = None,
        issuer: Optional[Union[str, Iterable[str]]] = None,
        subject: Optional[str] = None,
        leeway: Any = 0,
    ) -> Dict[str, Any]:
        """Verifies ``jwt`` and returns its claims."""
        return _jwtkit.decode(
            jwt, key, algorithms, self._merged(options), detached_payload, audience, issuer, subject, leeway
        )
