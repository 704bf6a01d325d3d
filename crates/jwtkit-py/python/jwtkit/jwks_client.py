"""``PyJWKClient``: the signing key for a token, from a JWKS URL.

Backed by jwt-keys' remote JWKS cache (``_jwtkit.RemoteJwks``, a
``jwt_keys::blocking::Verifier``): the fetch rules are jwt-keys'. Only
``https://`` URLs, or ``http://`` to a loopback address, are accepted (checked
when the client is built); redirects are refused; a response is bounded in
size and time and checked (JSON, a JWK Set, ``oct`` keys dropped, unusable keys
skipped); its ``Cache-Control`` max-age is honoured within bounds; an unknown
``kid`` refetches once per cooldown; and while refreshes fail the last good
key set keeps answering (stale-if-error). Fetches release the GIL.
"""

from __future__ import annotations

import json
import re
import ssl
from functools import lru_cache
from typing import Any, Dict, List, Optional

from . import _jwtkit
from .exceptions import ConfigurationError, PyJWKClientError
from .jwk import PyJWK, PyJWKSet


# An RFC 7638 SHA-256 thumbprint: 32 bytes in unpadded base64url.
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")


def _ca_pem(ssl_context: Optional[ssl.SSLContext], ca_file: Optional[str]) -> Optional[bytes]:
    """The extra CA certificates (PEM) to trust: ``ca_file``'s, and those an
    ``ssl_context`` has loaded. A context that turns certificate checks off is
    refused: jwt-keys never turns them off."""
    pem = b""
    if ssl_context is not None:
        if not isinstance(ssl_context, ssl.SSLContext):
            raise ConfigurationError(
                f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}", kind="config"
            )
        if ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
            raise ConfigurationError(
                "PyJWKClient(ssl_context=...) turns certificate or host name checks off; jwtkit "
                "never fetches keys without them. To trust a private CA, pass ca_file='ca.pem' "
                "(or a context with verify_mode=CERT_REQUIRED and check_hostname=True that "
                "loaded it with load_verify_locations(cafile=...))",
                kind="config",
            )
        for der in ssl_context.get_ca_certs(binary_form=True):
            pem += ssl.DER_cert_to_PEM_cert(der).encode("ascii")
    if ca_file is not None:
        try:
            with open(ca_file, "rb") as f:
                pem += f.read()
        except OSError as e:
            raise ConfigurationError(f"ca_file {ca_file!r} could not be read: {e}", kind="config") from e
    return pem or None


class PyJWKClient:
    """PyJWT's ``PyJWKClient(uri, cache_keys=False, max_cached_keys=16,
    cache_jwk_set=True, lifespan=300, headers=None, timeout=30,
    ssl_context=None, cooldown_duration=30)`` on jwt-keys' remote JWKS cache.

    - ``lifespan``: the longest time a key set is kept (whole seconds,
      rounded up); a server's shorter ``Cache-Control: max-age`` is honoured,
      down to one minute (or ``lifespan`` if shorter). A set past its lifetime
      is refreshed in the background while it keeps answering; while
      refreshes fail it answers for ``max_stale`` more seconds (default six
      hours; jwtkit's addition), then lookups raise
      ``PyJWKClientConnectionError``.
    - ``cooldown_duration``: the least time between fetches caused by lookups
      (the first fetch, an unknown ``kid``, a background refresh), whole
      seconds; an unknown ``kid`` within it waits for a fetch under way, but
      starts none.
    - ``cache_jwk_set=False``: every lookup fetches first (as PyJWT).
    - ``cache_keys``/``max_cached_keys``: as PyJWT, an LRU of
      ``get_signing_key`` answers by ``kid``, with no expiry: a key removed
      from the JWKS is still handed out until evicted. Off by default; the
      key set cache is already an in-memory lookup.
    - ``headers``: refused (jwt-keys sends no custom request headers).
    - ``ssl_context``: its loaded CA certificates are trusted besides the
      built-in roots; a context with checks off is refused. ``ca_file`` (a
      PEM file, jwtkit's addition) does the same more directly.
    """

    def __init__(
        self,
        uri: str,
        cache_keys: bool = False,
        max_cached_keys: int = 16,
        cache_jwk_set: bool = True,
        lifespan: float = 300,
        headers: Optional[Dict[str, Any]] = None,
        timeout: float = 30,
        ssl_context: Optional[ssl.SSLContext] = None,
        cooldown_duration: float = 30,
        *,
        max_stale: Optional[float] = None,
        ca_file: Optional[str] = None,
    ) -> None:
        if headers:
            raise ConfigurationError(
                "PyJWKClient(headers=...) is not supported: jwt-keys fetches the JWKS with its own "
                "request (Accept: application/jwk-set+json, a jwtkit User-Agent) and sends no other "
                "headers, since a JWKS is public and needs no credentials. Remove `headers`; for a "
                "server that needs them, fetch the document yourself and use PyJWKSet.from_dict(...)",
                kind="config",
            )
        if not isinstance(lifespan, (int, float)) or not lifespan > 0:
            # PyJWT's words and class for the same mistake.
            raise PyJWKClientError(f'Lifespan must be greater than 0, the input is "{lifespan}"', kind="config")
        if not isinstance(cooldown_duration, (int, float)) or not cooldown_duration >= 0:
            raise PyJWKClientError(
                f'Cooldown duration must be greater than or equal to 0, the input is "{cooldown_duration}"',
                kind="config",
            )
        self.uri = uri
        self.headers: Dict[str, Any] = {}
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.lifespan = lifespan
        self.cooldown_duration = cooldown_duration
        self.cache_jwk_set = cache_jwk_set
        self._remote = _jwtkit.RemoteJwks(
            uri,
            lifespan=float(lifespan),
            cooldown=float(cooldown_duration),
            timeout=float(timeout),
            max_stale=None if max_stale is None else float(max_stale),
            root_certificates_pem=_ca_pem(ssl_context, ca_file),
        )
        if cache_keys:
            # PyJWT's per-kid LRU, as PyJWT builds it.
            self.get_signing_key = lru_cache(maxsize=max_cached_keys)(self.get_signing_key)  # type: ignore[method-assign]

    @property
    def fetch_count(self) -> int:
        """jwtkit: how many fetches of the JWKS succeeded so far."""
        return self._remote.fetch_count

    def fetch_data(self) -> Dict[str, Any]:
        """Fetches the JWKS now (ignoring the cooldown) and returns
        ``{"keys": [...]}``: the usable public keys, as jwt-keys keeps them
        (not the document verbatim)."""
        self._remote.refresh()
        return {"keys": [json.loads(k) for k in self._remote.signing_keys()]}

    def get_jwk_set(self, refresh: bool = False) -> PyJWKSet:
        """The key set, from jwt-keys' cache; ``refresh=True`` (or
        ``cache_jwk_set=False``) fetches it first, ignoring the cooldown."""
        if refresh or not self.cache_jwk_set:
            self._remote.refresh()
        return PyJWKSet([json.loads(k) for k in self._remote.signing_keys()])

    def get_signing_keys(self, refresh: bool = False) -> List[PyJWK]:
        """The keys of the set usable for signatures (``use`` ``sig`` or
        absent, with a ``kid``)."""
        keys = [k for k in self.get_jwk_set(refresh).keys if k.public_key_use in ("sig", None) and k.key_id]
        if not keys:
            raise PyJWKClientError("The JWKS endpoint did not contain any signing keys")
        return keys

    def get_signing_key(self, kid: str) -> PyJWK:
        """The key named ``kid``. A ``kid`` not in the cached set refetches
        once (unless a fetch caused by a lookup happened within the cooldown),
        then raises ``PyJWKClientError`` (kind ``unknown_key``)."""
        if not isinstance(kid, str):
            raise PyJWKClientError(
                f"a kid must be a str, not {type(kid).__name__}; no key of the JWKS can be chosen",
                kind="unknown_key",
            )
        if not self.cache_jwk_set:
            self._remote.refresh()
        for text in self._remote.signing_key(kid):
            key = PyJWK(json.loads(text))
            if key.public_key_use in ("sig", None):
                return key
        shown = kid if kid.isprintable() else repr(kid)
        held = ", ".join(repr(k) for k in self._remote.cached_kids()) or "no keys"
        raise PyJWKClientError(
            f'Unable to find a signing key that matches: "{shown}"; the JWKS holds: {held}', kind="unknown_key"
        )

    def get_signing_key_from_jwt(self, token: Any) -> PyJWK:
        """The key named by the token's ``kid`` (read without verifying: the
        token must still be verified with the key)."""
        header = _jwtkit.get_unverified_header(token)
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise PyJWKClientError("the token has no kid, so no key of the JWKS can be chosen", kind="unknown_key")
        try:
            return self.get_signing_key(kid)
        except PyJWKClientError as e:
            if e.kind != "unknown_key" or not _THUMBPRINT.fullmatch(kid):
                raise
            raise PyJWKClientError(
                f"{e}. The token's kid looks like an RFC 7638 thumbprint: jwtkit.encode puts the "
                "signing key's thumbprint in `kid` when headers= has none. Publish the key under that "
                "kid (jwtkit.public_jwk(key) builds the JWK with it), or sign with "
                'headers={"kid": "<the kid in your JWKS>"}',
                kind="unknown_key",
            ) from e

    @staticmethod
    def match_kid(signing_keys: List[PyJWK], kid: str) -> Optional[PyJWK]:
        """The first key of ``signing_keys`` named ``kid`` (PyJWT's helper)."""
        for key in signing_keys:
            if key.key_id == kid:
                return key
        return None
