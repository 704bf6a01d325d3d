"""A FastAPI service whose routes are protected by jwtkit's TokenService.

- ``POST /login``   ``{"username", "password"}`` → a token pair (access + refresh)
- ``POST /refresh`` ``{"refresh_token"}`` → a new pair; the old refresh token is
  consumed, and presenting it again revokes the whole session (reuse detection)
- ``POST /logout``  ``{"refresh_token"}`` → the session is revoked
- ``GET  /me``      needs ``Authorization: Bearer <access token>``; 401 with
  ``WWW-Authenticate`` otherwise (RFC 6750)
- ``GET  /.well-known/jwks.json`` → the public keys, for other services

Run it (from the repository root, with the package installed)::

    JWTKIT_DEMO_PASSWORD=change-me uvicorn --app-dir crates/jwtkit-py/examples fastapi_app:app

Settings come from the environment: ``JWTKIT_KEY_STORE`` (default
``file:.jwtkit/keys``, initialized with ES256 if empty), ``JWTKIT_REFRESH``
(``memory``, a ``redis://`` URL, or comma-separated Redis Cluster seeds),
``JWTKIT_REFRESH_KEY_FILE`` (with Redis; default ``.jwtkit/refresh.key``),
``JWTKIT_ISSUER``, ``JWTKIT_AUDIENCE``. The one demo user is ``alice`` with
the password in ``JWTKIT_DEMO_PASSWORD``: put your own user check in
``check_password``.
"""

from __future__ import annotations

import hmac
import os
from contextlib import asynccontextmanager
from typing import Any, Dict, Optional

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import jwtkit


class Login(BaseModel):
    username: str
    password: str


class RefreshRequest(BaseModel):
    refresh_token: str


def check_password(username: str, password: str) -> bool:
    """The demo's user check: replace it with your user store."""
    expected = os.environ.get("JWTKIT_DEMO_PASSWORD", "")
    return bool(expected) and username == "alice" and hmac.compare_digest(password.encode(), expected.encode())


def tokens_from_env() -> jwtkit.TokenService:
    """The token service the environment describes (see the module docs)."""
    store = jwtkit.KeyStore.open(os.environ.get("JWTKIT_KEY_STORE", "file:.jwtkit/keys"))
    refresh = os.environ.get("JWTKIT_REFRESH", "memory")
    extra: Dict[str, Any] = {}
    if refresh != "memory":
        extra["refresh_key_file"] = os.environ.get("JWTKIT_REFRESH_KEY_FILE", ".jwtkit/refresh.key")
    return jwtkit.TokenService(
        store,
        issuer=os.environ.get("JWTKIT_ISSUER", "http://127.0.0.1:8000"),
        audience=os.environ.get("JWTKIT_AUDIENCE", "demo-api"),
        refresh_store=refresh,
        init_algorithm="ES256",
        **extra,
    )


def unauthorized(description: str, error: Optional[str] = "invalid_token") -> HTTPException:
    """A 401 with the RFC 6750 challenge: no error code when no token was sent."""
    challenge = 'Bearer realm="api"'
    if error:
        challenge += f', error="{error}", error_description="{description}"'
    return HTTPException(status_code=401, detail=description, headers={"WWW-Authenticate": challenge})


async def access_claims(request: Request) -> Dict[str, Any]:
    """The dependency that protects a route: the verified claims of the bearer token."""
    tokens: jwtkit.TokenService = request.app.state.tokens
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("a bearer access token is required", error=None)
    try:
        return await tokens.verify_async(token.strip())
    except jwtkit.InvalidTokenError as e:
        # e.kind is jwtkit's stable reason: expired, invalid_signature, invalid_audience, ...
        raise unauthorized(e.kind) from None
    except jwtkit.PyJWTError as e:
        # The key store could not answer: not the client's fault.
        status = 503 if getattr(e, "retryable", False) else 500
        raise HTTPException(status_code=status, detail="token verification is unavailable") from None


def token_response(pair: Dict[str, Any]) -> JSONResponse:
    """RFC 6749 §5.1: the pair, never cached."""
    body = {k: pair[k] for k in ("access_token", "token_type", "expires_in", "refresh_token")}
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def invalid_grant(e: jwtkit.InvalidGrantError) -> JSONResponse:
    """RFC 6749 §5.2: the client must log in again."""
    return JSONResponse({"error": "invalid_grant", "error_description": str(e)}, status_code=400)


def create_app(tokens: Optional[jwtkit.TokenService] = None) -> FastAPI:
    """The app, with `tokens` or (when None) a service built from the environment at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if getattr(app.state, "tokens", None) is None:
            app.state.tokens = tokens_from_env()
        yield

    app = FastAPI(title="jwtkit demo", lifespan=lifespan)
    app.state.tokens = tokens

    @app.post("/login")
    async def login(body: Login, request: Request) -> JSONResponse:
        if not check_password(body.username, body.password):
            raise HTTPException(status_code=401, detail="unknown user or wrong password")
        pair = await request.app.state.tokens.issue_async(body.username, {"scope": "read"})
        return token_response(pair)

    @app.post("/refresh")
    async def refresh(body: RefreshRequest, request: Request) -> JSONResponse:
        try:
            pair = await request.app.state.tokens.refresh_async(body.refresh_token)
        except jwtkit.InvalidGrantError as e:
            return invalid_grant(e)
        return token_response(pair)

    @app.post("/logout")
    async def logout(body: RefreshRequest, request: Request) -> Dict[str, bool]:
        try:
            revoked = await request.app.state.tokens.revoke_async(body.refresh_token)
        except jwtkit.InvalidGrantError:
            revoked = False  # RFC 7009 §2.2: an invalid token is not an error here
        return {"revoked": revoked}

    @app.get("/me")
    async def me(claims: Dict[str, Any] = Depends(access_claims)) -> Dict[str, Any]:
        return {"sub": claims["sub"], "scope": claims.get("scope")}

    @app.get("/.well-known/jwks.json")
    async def jwks(request: Request) -> JSONResponse:
        tokens = request.app.state.tokens
        return JSONResponse(await tokens.jwks_async(),
                            headers={"Cache-Control": f"public, max-age={tokens.jwks_max_age}"})

    return app


app = create_app()
