"""Login requests for each auth model, and the token they give."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardflow.errors import VaultAuthError
from guardflow.secrets._hvac import Operation, api_request, translate
from guardflow.secrets.auth import (
    AppRoleAuth,
    JWTAuth,
    KubernetesAuth,
    TokenAuth,
    UserpassAuth,
)

__all__ = ["TokenState", "jwt_audiences", "login"]

AuthModel = TokenAuth | AppRoleAuth | KubernetesAuth | JWTAuth | UserpassAuth


@dataclass
class TokenState:
    """The client token in use and what is known of its lifetime.

    Args:
        token: The token (never shown in repr).
        ttl: Seconds it was valid for when obtained; ``None`` when unknown (a given token not
            looked up yet), ``0`` when it never expires.
        renewable: Whether ``auth/token/renew-self`` may extend it.
        obtained_at: ``time.monotonic()`` when ``ttl`` was measured.
    """

    token: str = field(repr=False)
    ttl: float | None = None
    renewable: bool = False
    obtained_at: float = field(default_factory=time.monotonic)


def jwt_audiences(token: str) -> list[str]:
    """Return the ``aud`` claim of a JWT (without verifying it: Vault does that).

    Raises:
        ValueError: ``token`` is not a JWT.
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise ValueError("not a JWT") from exc
    aud = claims.get("aud") if isinstance(claims, dict) else None
    if aud is None:
        return []
    return [aud] if isinstance(aud, str) else [str(a) for a in aud]


def _read_token_file(path: str, *, method: str, mount: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise VaultAuthError(
            f"cannot read the {method} login token at {path} ({type(exc).__name__}); mount the "
            "service-account token there or set jwt_path",
            method=method,
            mount=mount,
        ) from None
    if not text:
        raise VaultAuthError(
            f"the {method} login token file {path} is empty", method=method, mount=mount
        )
    return text


def _login_body(auth: AuthModel) -> tuple[str, dict[str, Any]]:
    if isinstance(auth, AppRoleAuth):
        body = {"role_id": auth.role_id, "secret_id": auth.secret_id.get_secret_value()}
        return f"auth/{auth.mount}/login", body
    if isinstance(auth, UserpassAuth):
        body = {"password": auth.password.get_secret_value()}
        return f"auth/{auth.mount}/login/{auth.username}", body
    if isinstance(auth, KubernetesAuth):
        jwt = _read_token_file(auth.jwt_path, method="kubernetes", mount=auth.mount)
        if auth.audience is not None:
            try:
                audiences = jwt_audiences(jwt)
            except ValueError:
                raise VaultAuthError(
                    f"the file at {auth.jwt_path} does not hold a JWT; point jwt_path at the "
                    "service-account token",
                    method="kubernetes",
                    mount=auth.mount,
                ) from None
            if auth.audience not in audiences:
                raise VaultAuthError(
                    f"the service-account token at {auth.jwt_path} is for audience(s) "
                    f"{audiences} but role {auth.role!r} expects {auth.audience!r}; mount a "
                    f"projected token with audience {auth.audience!r} (serviceAccountToken."
                    "audience) and point jwt_path at it",
                    method="kubernetes",
                    mount=auth.mount,
                )
        return f"auth/{auth.mount}/login", {"role": auth.role, "jwt": jwt}
    if isinstance(auth, JWTAuth):
        if auth.jwt is not None:
            jwt = auth.jwt.get_secret_value()
        else:
            jwt = _read_token_file(str(auth.jwt_path), method="jwt", mount=auth.mount)
        return f"auth/{auth.mount}/login", {"role": auth.role, "jwt": jwt}
    raise TypeError(f"unsupported auth model {type(auth).__name__}")


def login(session: Any, auth: AuthModel, *, url: str) -> TokenState:
    """Log in with ``auth`` through ``session`` and return the token state.

    A :class:`TokenAuth` makes no request: the token is used as given and checked by the first
    request that needs it.

    Args:
        session: An :class:`hvac.Client`.
        auth: The auth model.
        url: The server address (for messages).

    Raises:
        VaultAuthError: The login was refused or its token file could not be read.
        VaultUnreachableError: The server could not be reached.
        VaultSealedError: The server is sealed.
    """
    if isinstance(auth, TokenAuth):
        return TokenState(token=auth.token.get_secret_value())
    api_path, body = _login_body(auth)
    op = Operation(
        api_path=api_path,
        capability="update",
        mount=auth.mount,
        kind="login",
        auth_method=auth.method,
    )
    try:
        response = api_request(session, "POST", api_path, json=body)
    except Exception as exc:
        error = translate(exc, url=url, op=op)
        if error is None:
            raise
        raise error from None
    data = (response or {}).get("auth") or {}
    token = data.get("client_token")
    if not token:
        raise VaultAuthError(
            f"{auth.method} login at auth/{auth.mount} returned no token",
            method=auth.method,
            mount=auth.mount,
        )
    return TokenState(
        token=str(token),
        ttl=float(data.get("lease_duration") or 0),
        renewable=bool(data.get("renewable")),
    )
