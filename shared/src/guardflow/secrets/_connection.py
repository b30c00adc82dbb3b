"""One authenticated connection to Vault, shared by the threads of a :class:`VaultClient`.

Each thread gets its own :class:`hvac.Client` (a requests session is not meant to be shared);
they all send the one current token. This module owns that token: it logs in lazily, renews it
in the background, logs in again once when Vault answers 403, and tells a rejected token
(:class:`VaultAuthError`) from a policy that denies the path (:class:`VaultPermissionError`).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from guardflow.errors import SecretsError, VaultAuthError, VaultPermissionError
from guardflow.secrets._hvac import Operation, api_request, is_forbidden, new_session, translate
from guardflow.secrets._login import TokenState, login
from guardflow.secrets.auth import TokenAuth
from guardflow.secrets.config import VaultConfig
from guardflow.secrets.leases import Renewer

__all__ = ["TOKEN_JOB", "Connection"]

_log = logging.getLogger("guardflow.secrets")
TOKEN_JOB = "token"


class Connection:
    """Token, per-thread sessions and error mapping for one :class:`VaultConfig`.

    Args:
        config: The connection settings.
    """

    def __init__(self, config: VaultConfig) -> None:
        self.config = config
        self.renewer = Renewer()
        self.requests = 0  # requests sent, logins included (read by tests and benchmarks)
        self.logins = 0
        self.token_renewals = 0
        self._lock = threading.RLock()
        self._local = threading.local()
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._state: TokenState | None = None
        self._closed = False

    # --- sessions and token -------------------------------------------------------------------

    def session(self) -> Any:
        """This thread's :class:`hvac.Client`, carrying the current token (after logging in)."""
        token = self.token()
        sess = self._raw_session()
        sess.token = token
        return sess

    def token(self) -> str:
        """The current client token, logging in first when there is none."""
        with self._lock:
            if self._state is None:
                self._login()
            assert self._state is not None
            return self._state.token

    def _raw_session(self) -> Any:
        sess = getattr(self._local, "session", None)
        if sess is None:
            sess = new_session(self.config)
            self._local.session = sess
            with self._lock:
                self._sessions.add(sess)
        return sess

    def _login(self) -> None:
        with self._lock:
            if not isinstance(self.config.auth, TokenAuth):
                self.requests += 1
                self.logins += 1
            self._state = login(self._raw_session(), self.config.auth, url=self.config.url)
            self._schedule_token_job(self._state)

    def relogin(self, stale: str) -> bool:
        """Log in again unless another thread already replaced ``stale``; ``False`` for tokens."""
        if isinstance(self.config.auth, TokenAuth):
            return False
        with self._lock:
            if self._state is not None and self._state.token != stale:
                return True
            _log.info("Vault answered 403; logging in again with %s", self.config.auth.method)
            self._login()
            return True

    def _schedule_token_job(self, state: TokenState) -> None:
        if state.ttl is None:  # a given token: look it up once to learn its lifetime
            self.renewer.schedule(TOKEN_JOB, 0.0, self._token_job)
        elif state.ttl > 0:
            self.renewer.schedule(
                TOKEN_JOB, state.ttl * self.config.renew_fraction, self._token_job
            )

    def _token_job(self) -> float | None:
        """Renew the token (or log in again when it cannot be renewed); the next run's delay."""
        with self._lock:
            state = self._state
        if state is None or self._closed:
            return None
        fraction = self.config.renew_fraction
        if state.ttl is None:
            body = self._token_call("GET", "auth/token/lookup-self", state.token)
            data = (body or {}).get("data") or {}
            state.ttl = float(data.get("ttl") or 0)
            state.renewable = bool(data.get("renewable"))
            return state.ttl * fraction if state.ttl > 0 else None
        if state.renewable:
            body = self._token_call("POST", "auth/token/renew-self", state.token, json={})
            auth = (body or {}).get("auth") or {}
            ttl = float(auth.get("lease_duration") or 0)
            # Renewal can stop short at the token's max TTL; log in again near the end instead.
            if ttl > 0 and (
                ttl >= state.ttl * (1 - fraction) or isinstance(self.config.auth, TokenAuth)
            ):
                with self._lock:
                    state.ttl, state.renewable = ttl, bool(auth.get("renewable"))
                    state.obtained_at = time.monotonic()
                    self.token_renewals += 1
                return ttl * fraction
        if isinstance(self.config.auth, TokenAuth):
            return None
        self.relogin(state.token)
        return None  # _login scheduled the new token's job

    def _token_call(
        self, method: str, api_path: str, token: str, *, json: Any = None
    ) -> dict[str, Any] | None:
        sess = self._raw_session()
        sess.token = token
        op = Operation(api_path=api_path, kind="token", capability="update")
        with self._lock:
            self.requests += 1
        try:
            return api_request(sess, method, api_path, json=json)
        except Exception as exc:
            error = translate(exc, url=self.config.url, op=op)
            if error is None:
                raise
            raise error from None

    def token_rejected(self, token: str) -> bool:
        """Whether Vault refuses ``token`` itself (``auth/token/lookup-self`` answers 403)."""
        try:
            self._token_call("GET", "auth/token/lookup-self", token)
        except VaultPermissionError:
            return True
        except SecretsError:
            return False
        return False

    # --- requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        api_path: str,
        *,
        op: Operation | None = None,
        json: Any = None,
        params: Any = None,
    ) -> dict[str, Any] | None:
        """Send one authenticated request; on 403 log in again once and retry.

        Args:
            method: HTTP method.
            api_path: Path after ``/v1/``.
            op: What the request is for (for error messages); a read of ``api_path`` by default.
            json: JSON body.
            params: Query parameters.

        Returns:
            The JSON body, ``None`` for an empty answer.

        Raises:
            SecretsError: The matching subclass (see :mod:`guardflow.errors`).
        """
        op = op or Operation(api_path=api_path, kind="sys")
        retried = False
        while True:
            sess = self.session()
            token = sess.token
            with self._lock:
                self.requests += 1
            try:
                return api_request(sess, method, api_path, json=json, params=params)
            except Exception as exc:
                if is_forbidden(exc) and not retried and self.relogin(token):
                    retried = True
                    continue
                error = translate(exc, url=self.config.url, op=op)
                if error is None:
                    raise
                if isinstance(error, VaultPermissionError) and self.token_rejected(token):
                    auth = self.config.auth
                    error = VaultAuthError(
                        "Vault rejected the client token (invalid, expired or revoked, or it "
                        "lacks the default policy); "
                        + (
                            "set a fresh VAULT_TOKEN"
                            if isinstance(auth, TokenAuth)
                            else f"check the {auth.method} role's token TTLs"
                        ),
                        method=auth.method,
                        mount=auth.mount_point,
                    )
                raise error from exc

    def close(self) -> None:
        """Stop the renewal thread and close every session."""
        with self._lock:
            self._closed = True
            sessions = list(self._sessions)
            self._sessions.clear()
        self.renewer.close()
        for sess in sessions:
            adapter_session = getattr(getattr(sess, "adapter", None), "session", None)
            if adapter_session is not None:
                adapter_session.close()
