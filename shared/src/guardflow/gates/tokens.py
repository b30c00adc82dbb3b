"""Signed decision links and CSRF tokens for approval gates.

A link token carries a gate id, a reviewer, an optional preselected option, an expiry and a random
nonce, signed with HMAC-SHA256::

    v1.<base64url(JSON payload)>.<base64url(HMAC-SHA256(key, "v1." + payload part))>

Verification compares signatures in constant time and refuses forged, damaged and expired tokens
with :class:`~guardflow.errors.GateTokenError` (messages never echo the token). Replay is refused
by the store, which consumes each nonce once (``GateStore.consume_token``).

Link and CSRF tokens are signed with different keys derived from the one signing key, so neither
can stand in for the other.

Examples:
    >>> signer = LinkSigner(b"k" * 32)
    >>> token = signer.issue("gate-1", "ana", ttl_s=3600)
    >>> signer.verify(token).reviewer
    'ana'
    >>> link_url("https://review.example/", token).startswith("https://review.example/l/v1.")
    True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, SecretStr

from guardflow.errors import ConfigurationError, GateTokenError

if TYPE_CHECKING:
    from guardflow.secrets.client import VaultClient
    from guardflow.secrets.values import SecretValue

__all__ = [
    "DEFAULT_SIGNING_KEY_REF",
    "MIN_KEY_BYTES",
    "LinkClaims",
    "LinkSigner",
    "gate_page_url",
    "link_url",
]

DEFAULT_SIGNING_KEY_REF = "env:GUARDFLOW_GATES_SIGNING_KEY"
"""Where the signing key is read from when a policy names none."""

MIN_KEY_BYTES = 32
"""The shortest signing key accepted (HMAC-SHA256 wants at least its output size)."""

_VERSION = "v1"
_CSRF_VERSION = "c1"
_MAX_TOKEN_CHARS = 4096  # a link token is ~200 chars; refuse huge input before decoding it
_FORGED = "the decision link is forged or damaged; ask for a new link"
_EXPIRED = "the decision link has expired; ask for a new link"
_BAD_CSRF = "the form's CSRF token is missing or invalid; reload the page and try again"


class LinkClaims(BaseModel):
    """What a verified link token says.

    Args:
        gate_id: The gate the link decides.
        reviewer: The reviewer the link was issued to.
        option: The option the link preselects, or ``None`` to let the reviewer choose.
        expires_at: When the link stops working (UTC).
        nonce: Random, single-use id; the store consumes it when the link's form is posted.
    """

    model_config = ConfigDict(frozen=True)

    gate_id: str
    reviewer: str
    option: str | None = None
    expires_at: datetime
    nonce: str


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(c not in _B64_CHARS for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _utcnow(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


class LinkSigner:
    """Issues and verifies signed decision links and CSRF tokens.

    Args:
        key: The signing key, at least 32 bytes (UTF-8 for text): bytes, text, a
            :class:`~guardflow.secrets.SecretValue` or a pydantic ``SecretStr``.

    Raises:
        ConfigurationError: The key is shorter than 32 bytes (the message never shows it).

    Examples:
        >>> signer = LinkSigner("a-long-random-key-of-at-least-32-bytes!")
        >>> signer.check_csrf(signer.csrf_token("gate-1", "ana"), "gate-1", "ana")
    """

    def __init__(
        self, key: bytes | str | SecretValue | SecretStr, *, source: str = "the signing key"
    ) -> None:
        raw = _key_bytes(key)
        if len(raw) < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"{source} is {len(raw)} bytes long; a gate signing key needs at least "
                f"{MIN_KEY_BYTES} bytes (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`)"
            )
        self._link_key = hmac.new(raw, b"guardflow.gates.link", hashlib.sha256).digest()
        self._csrf_key = hmac.new(raw, b"guardflow.gates.csrf", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "LinkSigner(key='**********')"

    def __reduce__(self) -> Any:
        from guardflow.errors import GuardflowError

        raise GuardflowError("a LinkSigner holds a signing key and must not be pickled")

    @classmethod
    def from_ref(
        cls,
        ref: str | None = None,
        *,
        vault: VaultClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> LinkSigner:
        """Build a signer from where its key lives.

        Args:
            ref: ``env:NAME`` (an environment variable), ``vault://MOUNT/PATH#KEY`` (read with
                :class:`~guardflow.secrets.VaultClient`), or ``None`` for
                ``env:GUARDFLOW_GATES_SIGNING_KEY``.
            vault: The Vault client for ``vault://`` references (default
                ``VaultClient.from_env()``).
            environ: Environment to read ``env:`` references from (default ``os.environ``).

        Returns:
            The signer.

        Raises:
            ConfigurationError: The reference is malformed, the variable is unset, the Vault
                reference names no key, or the key is too short (messages name the source only).
            SecretsError: Vault could not be read.

        Examples:
            >>> LinkSigner.from_ref("env:KEY", environ={"KEY": "x" * 40})
            LinkSigner(key='**********')
        """
        ref = DEFAULT_SIGNING_KEY_REF if ref is None else ref.strip()
        if ref.startswith("env:"):
            name = ref[4:]
            env = os.environ if environ is None else environ
            if not name:
                raise ConfigurationError("signing key reference 'env:' names no variable")
            value = env.get(name)
            if not value:
                raise ConfigurationError(
                    f"environment variable {name} (the gate signing key) is not set; set it to a "
                    f"random string of at least {MIN_KEY_BYTES} bytes or set signing_key_ref"
                )
            return cls(value, source=f"environment variable {name}")
        from guardflow.secrets.refs import SecretRef

        if SecretRef.is_ref(ref):
            parsed = SecretRef.parse(ref)
            if parsed.key is None:
                raise ConfigurationError(
                    f"signing key reference {ref!r} names no key; write vault://MOUNT/PATH#KEY"
                )
            if vault is None:
                from guardflow.secrets.client import VaultClient

                with VaultClient.from_env() as client:
                    secret = client.get(parsed)
            else:
                secret = vault.get(parsed)
            from guardflow.secrets.values import SecretValue

            if not isinstance(secret, SecretValue):  # pragma: no cover - keyed refs give values
                raise ConfigurationError(f"signing key reference {ref!r} names no key")
            return cls(secret, source=f"the signing key at {ref}")
        # Never echo: a literal key pasted here by mistake would end up in a log.
        raise ConfigurationError(
            "signing_key_ref must be 'env:NAME' or 'vault://MOUNT/PATH#KEY'; "
            "the value given is neither (not shown)"
        )

    # --- links ---------------------------------------------------------------------------------

    def issue(
        self,
        gate_id: str,
        reviewer: str,
        *,
        ttl_s: float,
        option: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """Return a signed link token for one reviewer of one gate.

        Args:
            gate_id: The gate.
            reviewer: Who the link is for; the decision is recorded under this name.
            ttl_s: Seconds the link stays valid.
            option: An option to preselect on the confirmation page, if any.
            now: The current time (default: now, UTC).

        Returns:
            The token (URL-safe text); put it in a URL with :func:`link_url`.
        """
        expires = _utcnow(now).timestamp() + float(ttl_s)
        payload: dict[str, Any] = {
            "g": gate_id,
            "r": reviewer,
            "o": option,
            "exp": round(expires, 3),
            "n": secrets.token_urlsafe(16),
        }
        body = _b64encode(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        signed = f"{_VERSION}.{body}"
        return f"{signed}.{_b64encode(self._sign(signed))}"

    def verify(self, token: str, *, now: datetime | None = None) -> LinkClaims:
        """Check a link token's signature and expiry and return its claims.

        Replay is not checked here: the store consumes the nonce when the link's form is posted.

        Args:
            token: The token from the link.
            now: The current time (default: now, UTC).

        Returns:
            The claims.

        Raises:
            GateTokenError: The token is forged or damaged, or it has expired (different
                messages; the token is never shown).
        """
        claims = self._decode(token)
        if _utcnow(now) >= claims.expires_at:
            raise GateTokenError(_EXPIRED, gate_id=claims.gate_id)
        return claims

    def _decode(self, token: str) -> LinkClaims:
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
            raise GateTokenError(_FORGED)
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            raise GateTokenError(_FORGED)
        try:
            signature = _b64decode(parts[2])
        except (ValueError, binascii.Error):
            raise GateTokenError(_FORGED) from None
        if not hmac.compare_digest(signature, self._sign(f"{parts[0]}.{parts[1]}")):
            raise GateTokenError(_FORGED)
        try:
            payload = json.loads(_b64decode(parts[1]))
            gate_id, reviewer, option = payload["g"], payload["r"], payload["o"]
            expires, nonce = payload["exp"], payload["n"]
            valid = (
                isinstance(gate_id, str)
                and isinstance(reviewer, str)
                and (option is None or isinstance(option, str))
                and isinstance(expires, (int, float))
                and not isinstance(expires, bool)
                and isinstance(nonce, str)
            )
            if not valid:
                raise ValueError("bad claims")
            expires_at = datetime.fromtimestamp(float(expires), tz=timezone.utc)
        except (ValueError, TypeError, KeyError, OverflowError, OSError, binascii.Error):
            raise GateTokenError(_FORGED) from None
        return LinkClaims(
            gate_id=gate_id, reviewer=reviewer, option=option, expires_at=expires_at, nonce=nonce
        )

    def _sign(self, text: str) -> bytes:
        return hmac.new(self._link_key, text.encode("utf-8"), hashlib.sha256).digest()

    # --- CSRF ----------------------------------------------------------------------------------

    def csrf_token(self, gate_id: str, reviewer: str) -> str:
        """Return the CSRF token that the review page embeds in a gate's decision form.

        The token binds the gate and the reviewer, so a form for one gate (or one reviewer)
        cannot be replayed against another.

        Args:
            gate_id: The gate shown.
            reviewer: The authenticated reviewer viewing the page.

        Returns:
            URL-safe text.
        """
        return f"{_CSRF_VERSION}.{_b64encode(self._csrf_mac(gate_id, reviewer))}"

    def check_csrf(self, token: str, gate_id: str, reviewer: str) -> None:
        """Check a posted CSRF token against the gate and reviewer.

        Args:
            token: The token posted with the form.
            gate_id: The gate the form decides.
            reviewer: The authenticated reviewer posting it.

        Raises:
            GateTokenError: The token is missing, malformed or for another gate or reviewer.
        """
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
            raise GateTokenError(_BAD_CSRF, gate_id=gate_id)
        version, _, mac = token.partition(".")
        try:
            given = _b64decode(mac)
        except (ValueError, binascii.Error):
            raise GateTokenError(_BAD_CSRF, gate_id=gate_id) from None
        expected = self._csrf_mac(gate_id, reviewer)
        if version != _CSRF_VERSION or not hmac.compare_digest(given, expected):
            raise GateTokenError(_BAD_CSRF, gate_id=gate_id)

    def _csrf_mac(self, gate_id: str, reviewer: str) -> bytes:
        material = json.dumps([gate_id, reviewer], separators=(",", ":")).encode("utf-8")
        return hmac.new(self._csrf_key, material, hashlib.sha256).digest()


def _key_bytes(key: object) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, SecretStr):
        return key.get_secret_value().encode("utf-8")
    reveal = getattr(key, "reveal", None)  # SecretValue, imported lazily by callers
    if callable(reveal):
        value = reveal()
        if isinstance(value, str):
            return value.encode("utf-8")
    raise ConfigurationError(
        f"a gate signing key must be bytes, str, SecretValue or SecretStr, not {type(key).__name__}"
    )


def link_url(base_url: str, token: str) -> str:
    """Return the personal decision link for a token.

    Args:
        base_url: Public URL of the review page, e.g. ``https://review.example``.
        token: A token from :meth:`LinkSigner.issue`.

    Returns:
        ``<base_url>/l/<token>``.
    """
    return f"{base_url.rstrip('/')}/l/{token}"


def gate_page_url(base_url: str, gate_id: str) -> str:
    """Return the review page of a gate (reviewers sign in through the identity header).

    Args:
        base_url: Public URL of the review page.
        gate_id: The gate.

    Returns:
        ``<base_url>/gates/<gate_id>``.
    """
    return f"{base_url.rstrip('/')}/gates/{quote(gate_id, safe='')}"
